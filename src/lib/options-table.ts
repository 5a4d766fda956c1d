import { MAX_DURATION_MS } from './duration.js'

/**
 * Every environment variable cbc-jwt reads, in one table: its option name, who reads it, how
 * its text is parsed, its default and range, and its one-line meaning. The environment parser
 * (`cbcJwtConfigFromEnv`, `serviceConfigFromEnv`), the checks of `createCbcJwt`'s options, the
 * types `CbcJwtConfig`/`ServiceConfig`/`CbcJwtOptions`, `DEFAULTS`, the Vault and Kubernetes
 * defaults and ranges, and the README's configuration table all come from it;
 * test/docs/options-table.test.ts holds the README and every docs table that names a variable
 * to it, and fails on a `CBC_JWT_*` name in src/ that it does not list.
 *
 * To add an option, add one entry here:
 *   - `scope`: who reads it — `library` (the environment and `createCbcJwt({ name })`),
 *     `service` (the server only), `vault` / `kubernetes` (that backend's reader),
 *     `projection` (where CLI writes publish the verification keyset), `cli`;
 *   - `type`: how its text is parsed — `integer`/`number` with `min`/`max`, `boolean`,
 *     `string`, `enum` with `values`, `duration` (`24h` or bare seconds, kept in seconds),
 *     `json` (parsed by its reader);
 *   - `default` (absent: unset); `shownDefault` when the docs say it in words; `emptyHint`
 *     when a set-but-empty value is a mistake to refuse rather than "unset";
 *   - `doc`: the meaning shown in the README (the TSDoc above an entry shows on the option).
 * Then `npm run docs:options` rewrites the README table. A `library` or `service` option needs
 * no other edit to be parsed, checked and typed; a backend's reader picks its own up by name.
 */
export const OPTIONS = {
  /** Port the service listens on. @default 8000 */
  port: {
    env: 'PORT',
    scope: 'service',
    type: 'integer',
    default: 8000,
    min: 0,
    max: 65535,
    doc: 'port the service listens on (the service only; the library never reads it)',
  },
  /** Address the service listens on. @default '0.0.0.0' */
  host: { env: 'HOST', scope: 'service', type: 'string', default: '0.0.0.0', doc: 'address the service listens on (the service only)' },
  /**
   * Where the keyset comes from: `file` (with `keysetFile`), `vault` (configured by Vault's
   * variables) or `kubernetes` (the Secret read and watched through the API).
   * @default 'file'
   */
  backend: {
    env: 'CBC_JWT_BACKEND',
    scope: 'library',
    type: 'enum',
    values: ['file', 'vault', 'kubernetes'],
    default: 'file',
    doc: '`file`, `vault` or `kubernetes`: the Secret read (the service also watches it: a change is in force in about a second) and written (the CLI) through the Kubernetes API ([docs/kubernetes.md](docs/kubernetes.md))',
  },
  /** Keyset path, a plain file or a Kubernetes secret volume's item; unset means none configured. */
  keysetFile: {
    env: 'CBC_JWT_KEYSET_FILE',
    scope: 'library',
    type: 'string',
    shownDefault: '— (required for `file`)',
    emptyHint: 'set it to the keyset path (e.g. /var/run/secrets/cbc-jwt/jwt-keyset)',
    doc: 'keyset path; works on a Kubernetes secret volume. Set but empty is a start-up error. A file that does not exist yet is a cold start: alive, not ready, ready when it appears',
  },
  /**
   * Generate (once) and use the development keyset `./.cbc-jwt/dev-keyset.json` under the
   * current folder (`cbc-jwt serve --dev` does the same). Only when asked: with nothing
   * configured the service refuses to start. Refused under `NODE_ENV=production` and beside a
   * configured keyset.
   * @default false
   */
  devKeyset: {
    env: 'CBC_JWT_DEV_KEYSET',
    scope: 'service',
    type: 'boolean',
    default: false,
    emptyHint: 'set it to true or false',
    doc: '`true` (or `cbc-jwt serve --dev`): generate once and use `.cbc-jwt/dev-keyset.json` under the current folder — what `npm start` asks for when no keyset is configured. Refused under `NODE_ENV=production`, beside a configured keyset, and inside `node_modules`',
  },
  /** How often the backend is read again, in seconds. @default 30 */
  refreshIntervalSeconds: {
    env: 'CBC_JWT_REFRESH_INTERVAL_SECONDS',
    scope: 'library',
    type: 'number',
    default: 30,
    min: 0.1,
    // A day, as for a trusted issuer's refresh; past 2^31 ms a timer fires every millisecond instead.
    max: 86_400,
    doc: 'how often the backend is read again, in seconds, at most 86400 (after a failed read: within a minute until one succeeds; the file backend also reacts to change events at once)',
  },
  /** At most one backend re-read per this many seconds is triggered by unknown `kid`s. @default 10 */
  unknownKidCooldownSeconds: {
    env: 'CBC_JWT_UNKNOWN_KID_COOLDOWN_SECONDS',
    scope: 'library',
    type: 'number',
    default: 10,
    min: 0,
    doc: 'at most one backend re-read per this period (seconds) is triggered by tokens with an unknown `kid`',
  },
  /** Expected `iss`; also the `iss` of `sign()`. @default 'cbc-omega2' */
  issuer: {
    env: 'CBC_JWT_ISSUER',
    scope: 'library',
    type: 'string',
    default: 'cbc-omega2',
    // Set but empty is a template that did not fill it in: the default would accept another issuer's tokens.
    emptyHint: 'set it to the issuer (iss) of your tokens',
    doc: 'expected `iss`; the `iss` of issued tokens',
  },
  /** Expected audience; also the `aud` of `sign()`. @default 'cbc-api' */
  audience: {
    env: 'CBC_JWT_AUDIENCE',
    scope: 'library',
    type: 'string',
    default: 'cbc-api',
    // Set but empty is a template that did not fill it in: the default would accept tokens meant for another API.
    emptyHint: 'set it to the audience (aud) this API accepts',
    doc: 'expected `aud`; the `aud` of issued tokens',
  },
  /** Leeway for `exp`, `nbf`, `iat`, in seconds. @default 30 */
  clockToleranceSeconds: {
    env: 'CBC_JWT_CLOCK_TOLERANCE_SECONDS',
    scope: 'library',
    type: 'number',
    default: 30,
    min: 0,
    // An hour, as for a trusted issuer: a leeway of days would accept tokens long expired.
    max: 3600,
    doc: 'leeway for `exp`, `nbf`, `iat`, in seconds, at most 3600 (never for `revoked_before`)',
  },
  /**
   * Longer tokens are rejected (`too_large`) before any parsing. The host server must accept
   * headers this large (Node's default limit is 16 KiB for all headers together).
   * @default 8192
   */
  maxTokenBytes: {
    env: 'CBC_JWT_MAX_TOKEN_BYTES',
    scope: 'library',
    type: 'integer',
    default: 8192,
    min: 64,
    max: 60 * 1024,
    doc: 'longer tokens are rejected (`too_large`) before any parsing',
  },
  /**
   * The longest token lifetime, in seconds: `sign()` and `token issue` refuse longer, the
   * verifier rejects a longer `exp − iat` as `malformed`, the rotation grace is at least this.
   * @default 86400
   */
  maxTokenTtlSeconds: {
    env: 'CBC_JWT_MAX_TOKEN_TTL',
    scope: 'library',
    type: 'duration',
    default: 24 * 3600,
    min: 1,
    // Added to now as the rotation grace, a longer one would leave the range of a date.
    max: MAX_DURATION_MS / 1000,
    shownDefault: '`24h`',
    doc: 'the longest token lifetime (a duration such as `24h`, or bare seconds) issued (`token issue`, `cbc.sign`) and accepted (`exp − iat`, else `malformed`); the rotation grace is at least this',
  },
  /**
   * Size of the verified-token cache: a repeat of an accepted token skips the signature check,
   * never a check that can change its answer. `0` turns it off.
   * @default 10000
   */
  tokenCacheEntries: {
    env: 'CBC_JWT_TOKEN_CACHE_ENTRIES',
    scope: 'library',
    type: 'integer',
    default: 10_000,
    min: 0,
    max: 10_000_000,
    doc: 'size of the verified-token cache: a repeated accepted token skips the signature check, never the checks that can change (key still loaded with the same material, `not_after`, `exp`, `nbf`, `iat`, `revoked_before`; `iss` and `aud` are fixed for an instance, whose cache is its own); once it is full, a token is stored the second time it comes, so a flood of one-off tokens evicts nothing; rejections are not cached; `0` turns it off',
  },
  /** The cache's bound in estimated heap bytes. @default 16777216 (16 MiB) */
  tokenCacheMaxBytes: {
    env: 'CBC_JWT_TOKEN_CACHE_MAX_BYTES',
    scope: 'library',
    type: 'integer',
    default: 16 * 1024 * 1024,
    min: 1024,
    max: 4 * 1024 ** 3,
    doc: "the cache's second bound: estimated heap bytes (token + claims + bookkeeping), so a flood of large tokens cannot grow memory past it; one entry over ⅛ of it is not cached",
  },
  /**
   * Other issuers whose tokens are accepted (a JSON array; see `TrustedIssuer` and
   * docs/trusted-issuers.md), checked once.
   * @default []
   */
  trustedIssuers: {
    env: 'CBC_JWT_TRUSTED_ISSUERS',
    scope: 'library',
    type: 'json',
    default: [],
    shownDefault: '`[]`',
    doc: 'other issuers whose tokens are accepted, a JSON array of `{"issuer","audience","jwks_uri"?,"algorithms"?,…}`: routed by `iss` before any key lookup, keys from each issuer\'s JWK Set (found by OpenID Connect discovery without `jwks_uri`), last good kept through an outage; [docs/trusted-issuers.md](docs/trusted-issuers.md) (Keycloak, Auth0, Entra ID)',
  },
  /** Level of the default logger. @default 'info' */
  logLevel: {
    env: 'CBC_JWT_LOG_LEVEL',
    scope: 'library',
    type: 'enum',
    values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    default: 'info',
    doc: 'pino level',
  },
  /**
   * A request's headers and body must arrive within this many seconds of its first byte, or the
   * connection is answered 408 and closed: a client dripping a byte at a time cannot hold a socket.
   * @default 10
   */
  httpRequestTimeoutSeconds: {
    env: 'CBC_JWT_HTTP_REQUEST_TIMEOUT_SECONDS',
    scope: 'service',
    type: 'number',
    default: 10,
    min: 0.1,
    max: 3600,
    doc: "a request's headers and body must arrive within this of its first byte, else `408` and the connection closes (checked every second): a client dripping bytes cannot hold a socket. Idle keep-alive connections close after 72 s",
  },
  /** Open connections beyond this are closed at once. @default 1000 */
  httpMaxConnections: {
    env: 'CBC_JWT_HTTP_MAX_CONNECTIONS',
    scope: 'service',
    type: 'integer',
    default: 1000,
    min: 1,
    max: 1_000_000,
    doc: 'open connections beyond this are closed as they arrive',
  },
  /** A proxy in front is trusted to set `X-Forwarded-For`: rejection log lines carry its chain. @default false */
  trustProxy: {
    env: 'CBC_JWT_TRUST_PROXY',
    scope: 'library',
    type: 'boolean',
    default: false,
    doc: '`true` when a proxy in front sets `X-Forwarded-For`: rejection lines then log its chain as `forwarded_for` (otherwise a client could write any address there)',
  },
  /**
   * Fraction of accepted tokens logged at random (0 to 1), beside the first use of each (kid,
   * client id) pair an hour: what scopes the use of a leaked key.
   * @default 0.01
   */
  successLogSample: {
    env: 'CBC_JWT_SUCCESS_LOG_SAMPLE',
    scope: 'library',
    type: 'number',
    default: 0.01,
    min: 0,
    max: 1,
    doc: 'fraction (0–1) of accepted tokens logged as `auth_accepted` (kid, client id, `iat`, peer), beside the first use of each (kid, client id) pair every hour, which is always logged: what scopes the use of a leaked key',
  },

  vaultAddr: {
    env: 'VAULT_ADDR',
    scope: 'vault',
    type: 'string',
    shownDefault: '— (required)',
    doc: "Vault's base URL, `http(s)://host:port`, as Vault's CLI reads it",
  },
  vaultToken: { env: 'VAULT_TOKEN', scope: 'vault', type: 'string', doc: 'token for `CBC_JWT_VAULT_AUTH=token`; never logged' },
  vaultNamespace: { env: 'VAULT_NAMESPACE', scope: 'vault', type: 'string', doc: 'sent as `X-Vault-Namespace` (Vault Enterprise)' },
  vaultCaCert: { env: 'VAULT_CACERT', scope: 'vault', type: 'string', doc: 'PEM CA bundle; when set it is the only trust anchor for Vault' },
  vaultSkipVerify: {
    env: 'VAULT_SKIP_VERIFY',
    scope: 'vault',
    type: 'boolean',
    default: false,
    doc: "do not verify Vault's certificate — for labs only; logs a loud warning",
  },
  vaultMount: { env: 'CBC_JWT_VAULT_MOUNT', scope: 'vault', type: 'string', default: 'secret', emptyHint: 'set it to the KV v2 mount', doc: 'KV v2 mount' },
  vaultPath: {
    env: 'CBC_JWT_VAULT_PATH',
    scope: 'vault',
    type: 'string',
    default: 'cbc/jwt-keyset',
    // Set but empty is a template that did not fill it in: the default is the private keyset.
    emptyHint: 'set it to the KV v2 path of the keyset (a verifier: the projection, e.g. cbc/jwt-keyset-public)',
    doc: 'KV v2 secret path; the keyset is its field `jwt-keyset`',
  },
  vaultAuth: {
    env: 'CBC_JWT_VAULT_AUTH',
    scope: 'vault',
    type: 'enum',
    values: ['token', 'kubernetes'],
    default: 'token',
    doc: "`kubernetes` logs in with the pod's service-account token and `CBC_JWT_VAULT_ROLE`",
  },
  vaultRole: { env: 'CBC_JWT_VAULT_ROLE', scope: 'vault', type: 'string', doc: 'Vault role for Kubernetes auth (required with it)' },
  vaultK8sMount: { env: 'CBC_JWT_VAULT_K8S_MOUNT', scope: 'vault', type: 'string', default: 'kubernetes', doc: 'mount of the Kubernetes auth method' },
  vaultK8sTokenPath: {
    env: 'CBC_JWT_VAULT_K8S_TOKEN_PATH',
    scope: 'vault',
    type: 'string',
    default: '/var/run/secrets/kubernetes.io/serviceaccount/token',
    doc: 'service-account token file, read again at every login',
  },
  vaultTimeoutMs: {
    env: 'CBC_JWT_VAULT_TIMEOUT_MS',
    scope: 'vault',
    type: 'integer',
    default: 5000,
    min: 1,
    max: 600_000,
    doc: 'deadline of one HTTP request to Vault, in ms',
  },
  vaultRetries: {
    env: 'CBC_JWT_VAULT_RETRIES',
    scope: 'vault',
    type: 'integer',
    default: 2,
    min: 0,
    max: 10,
    doc: 'extra attempts after a transient failure within one read',
  },

  kubernetesNamespace: {
    env: 'CBC_JWT_KUBERNETES_NAMESPACE',
    scope: 'kubernetes',
    type: 'string',
    shownDefault: "as kubectl: the context's, else the pod's, else `default`",
    // Set but empty is a template that did not fill it in: unset, it is whatever namespace the context or pod has.
    emptyHint: 'set it to the namespace of the Secret',
    doc: 'namespace of the Secret (`CBC_JWT_BACKEND=kubernetes`)',
  },
  kubernetesSecret: {
    env: 'CBC_JWT_KUBERNETES_SECRET',
    scope: 'kubernetes',
    type: 'string',
    default: 'cbc-secrets',
    // Set but empty is a template that did not fill it in: the default is the private keyset.
    emptyHint: 'set it to the Secret to read (a verifier: the projection, cbc-jwt-verification)',
    doc: 'the Secret holding the keyset',
  },
  kubernetesKey: {
    env: 'CBC_JWT_KUBERNETES_KEY',
    scope: 'kubernetes',
    type: 'string',
    default: 'jwt-keyset',
    emptyHint: "set it to the key of the Secret's data holding the keyset",
    doc: "the key of the Secret's `data` holding the keyset",
  },
  kubernetesContext: {
    env: 'CBC_JWT_KUBERNETES_CONTEXT',
    scope: 'kubernetes',
    type: 'string',
    shownDefault: '`current-context`',
    emptyHint: 'set it to the kubeconfig context to use',
    doc: 'kubeconfig context',
  },

  publicKeysetFile: {
    env: 'CBC_JWT_PUBLIC_KEYSET_FILE',
    scope: 'projection',
    type: 'string',
    shownDefault: 'the keyset path, `.json` → `.public.json`',
    doc: "where CLI writes to a keyset file publish its verification projection (the keyset without private keys, created 0644); with `--keyset-file`, used unless `CBC_JWT_KEYSET_FILE` names another keyset (then that keyset's, and the file's projection goes beside it)",
  },
  vaultPublicPath: {
    env: 'CBC_JWT_VAULT_PUBLIC_PATH',
    scope: 'projection',
    type: 'string',
    shownDefault: '`CBC_JWT_VAULT_PATH` + `-public`',
    doc: 'the KV v2 path (same mount and field) where CLI writes to Vault publish the verification projection; give verifiers a read policy on it only',
  },
  kubernetesPublicSecret: {
    env: 'CBC_JWT_KUBERNETES_PUBLIC_SECRET',
    scope: 'projection',
    type: 'string',
    default: 'cbc-jwt-verification',
    emptyHint: "set it to the verification projection's Secret",
    doc: 'the Secret (same data key) where CLI writes to Kubernetes publish the verification projection, readable by verifiers without any right on the private Secret',
  },
  kubernetesLastGoodSecret: {
    env: 'CBC_JWT_KUBERNETES_LAST_GOOD_SECRET',
    scope: 'cli',
    type: 'string',
    default: 'cbc-jwt-last-good',
    emptyHint: "set it to the last good copy's Secret",
    doc: 'the Secret (same namespace and data key) where every CLI write to Kubernetes first keeps the last good copy, for `keyset restore`; apart from `cbc-secrets`, so it survives its deletion',
  },
  /** Replaced by `CBC_JWT_KUBERNETES_LAST_GOOD_SECRET`: set, it is refused (the copy is no longer a key of the keyset's Secret). */
  kubernetesLastGoodKey: {
    env: 'CBC_JWT_KUBERNETES_LAST_GOOD_KEY',
    scope: 'cli',
    type: 'string',
    doc: 'no longer read, and refused when set: the last good copy is a Secret of its own (`CBC_JWT_KUBERNETES_LAST_GOOD_SECRET`)',
  },
  vaultLastGoodPath: {
    env: 'CBC_JWT_VAULT_LAST_GOOD_PATH',
    scope: 'cli',
    type: 'string',
    shownDefault: '`CBC_JWT_VAULT_PATH` + `-last-good`',
    doc: 'the KV v2 path (same mount and field) where every CLI write to Vault first keeps the last good copy, for `keyset restore`',
  },
  kubernetesPublicNamespaces: {
    env: 'CBC_JWT_KUBERNETES_PUBLIC_NAMESPACES',
    scope: 'projection',
    type: 'string',
    shownDefault: "the keyset's namespace",
    doc: 'comma-separated namespaces that each get the verification projection Secret',
  },

  prometheusUrl: {
    env: 'CBC_JWT_PROMETHEUS_URL',
    scope: 'cli',
    type: 'string',
    doc: 'Prometheus for the replica gate of `rotate --promote`/`--auto` and `verify-rotation`',
  },
  now: { env: 'CBC_JWT_NOW', scope: 'cli', type: 'string', doc: 'testing aid: an RFC 3339 time that pins the clock of every command' },
  debug: { env: 'CBC_JWT_DEBUG', scope: 'cli', type: 'string', doc: 'print the stack of an unexpected error' },
} as const satisfies Record<string, OptionSpec>

/** One option of the table. */
export interface OptionSpec {
  env: string
  scope: 'library' | 'service' | 'vault' | 'kubernetes' | 'projection' | 'cli'
  type: 'integer' | 'number' | 'boolean' | 'string' | 'enum' | 'duration' | 'json'
  default?: number | string | boolean | readonly never[]
  min?: number
  max?: number
  values?: readonly string[]
  shownDefault?: string
  /** Set but empty is refused with `<VAR> is set but empty: <hint>, or unset it`; otherwise it is unset. */
  emptyHint?: string
  doc: string
}

type Table = typeof OPTIONS
export type OptionName = keyof Table
export type OptionScope = OptionSpec['scope']
type NamesIn<S extends OptionScope> = { [K in OptionName]: Table[K]['scope'] extends S ? K : never }[OptionName]
export type LibraryOptionName = NamesIn<'library'>
export type ServiceOptionName = NamesIn<'service'>

/** The value an option's text parses to (`json`: whatever its reader makes of it). */
export type OptionValue<S> = S extends { type: 'integer' | 'number' | 'duration' }
  ? number
  : S extends { type: 'boolean' }
    ? boolean
    : S extends { type: 'enum'; values: readonly (infer V)[] }
      ? V
      : S extends { type: 'json' }
        ? unknown
        : string

/** The parsed options of a scope: those with a default are always set. */
export type OptionValues<S extends OptionScope> = {
  -readonly [K in keyof Pick<Table, NamesIn<S>>]: Table[K] extends { default: unknown } ? OptionValue<Table[K]> : OptionValue<Table[K]> | undefined
}

/** The names of a scope's options, in table order. */
export function optionNames<S extends OptionScope>(scope: S): Array<NamesIn<S>> {
  return (Object.keys(OPTIONS) as OptionName[]).filter((name): name is NamesIn<S> => OPTIONS[name].scope === scope)
}

/** The variables the service reads: its own, the library's, and those of the backend it is configured with. */
export function serviceVariables(): string[] {
  const scopes: readonly OptionScope[] = ['service', 'library', 'vault', 'kubernetes']
  return Object.values(OPTIONS as Record<string, OptionSpec>)
    .filter((spec) => scopes.includes(spec.scope))
    .map((spec) => spec.env)
}
