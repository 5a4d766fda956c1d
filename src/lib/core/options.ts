import type { KeysetBackend } from '../backends/backend.js'
import { cbcJwtConfigFromEnv, LOG_LEVELS, type CbcJwtConfig } from '../config.js'
import { ConfigError } from '../errors.js'
import { checkTrustedIssuers, TrustedIssuersProblem, type TrustedIssuer } from '../issuers/trusted-issuers.js'
import type { CbcJwtLogger } from './logger.js'

/**
 * Options of `createCbcJwt`. Each one given here wins over its environment variable; each one
 * left out is read from `env` (README.md, "Configure"), then from the defaults.
 */
export interface CbcJwtOptions {
  /**
   * Where the keyset comes from: `'file'` (with `keysetFile`), `'vault'` (configured by Vault's
   * variables, `docs/vault.md`), `'kubernetes'` (the Secret read and watched through the API,
   * `docs/kubernetes.md`), or any `KeysetBackend` object — `createFileBackend(path)`,
   * `createVaultBackend(options)` or your own.
   * @default 'file' (`CBC_JWT_BACKEND`)
   */
  backend?: 'file' | 'vault' | 'kubernetes' | KeysetBackend | undefined
  /** Keyset path, a plain file or a Kubernetes secret volume's item. Env `CBC_JWT_KEYSET_FILE`. */
  keysetFile?: string | undefined
  /** @default 30 (`CBC_JWT_REFRESH_INTERVAL_SECONDS`) */
  refreshIntervalSeconds?: number | undefined
  /** @default 10 (`CBC_JWT_UNKNOWN_KID_COOLDOWN_SECONDS`) */
  unknownKidCooldownSeconds?: number | undefined
  /** Expected `iss`; also the `iss` of `sign()`. @default 'cbc-omega2' (`CBC_JWT_ISSUER`) */
  issuer?: string | undefined
  /** Expected audience; also the `aud` of `sign()`. @default 'cbc-api' (`CBC_JWT_AUDIENCE`) */
  audience?: string | undefined
  /** Leeway for `exp`, `nbf`, `iat`, in seconds. @default 30 (`CBC_JWT_CLOCK_TOLERANCE_SECONDS`) */
  clockToleranceSeconds?: number | undefined
  /**
   * Longer tokens are rejected (`too_large`) before any parsing. The host server must accept
   * headers this large (Node's default limit is 16 KiB for all headers together).
   * @default 8192 (`CBC_JWT_MAX_TOKEN_BYTES`)
   */
  maxTokenBytes?: number | undefined
  /** Longest lifetime `sign()` issues, in seconds. @default 86400 (`CBC_JWT_MAX_TOKEN_TTL`) */
  maxTokenTtlSeconds?: number | undefined
  /**
   * Size of the verified-token cache: a repeat of an accepted token skips the
   * signature check, never a check that can change its answer. `0` turns it off.
   * @default 10000 (`CBC_JWT_TOKEN_CACHE_ENTRIES`)
   */
  tokenCacheEntries?: number | undefined
  /** The cache's bound in estimated heap bytes. @default 16777216 (`CBC_JWT_TOKEN_CACHE_MAX_BYTES`) */
  tokenCacheMaxBytes?: number | undefined
  /** Level of the default logger. @default 'info' (`CBC_JWT_LOG_LEVEL`) */
  logLevel?: string | undefined
  /**
   * Where log lines go (key loads, backend errors, one line per rejection — never a token):
   * a pino logger, Fastify's `app.log`, or any object with `info`/`warn`/`error`; `false`
   * for none. Anything else is a `TypeError` when cbc-jwt is built.
   * @default JSON lines on stdout, in pino's format
   */
  logger?: CbcJwtLogger | false | undefined
  /**
   * A proxy in front is trusted to set `X-Forwarded-For`: rejection log lines carry its chain.
   * @default false (`CBC_JWT_TRUST_PROXY`)
   */
  trustProxy?: boolean | undefined
  /**
   * Fraction of accepted tokens logged at random (0 to 1), beside the first use of each (kid,
   * client id) pair an hour. @default 0.01 (`CBC_JWT_SUCCESS_LOG_SAMPLE`)
   */
  successLogSample?: number | undefined
  /**
   * Other issuers whose tokens are accepted, each with its audience(s) and its JWK Set (its
   * `jwks_uri`, else found by OpenID Connect discovery) — see `TrustedIssuer` and
   * docs/trusted-issuers.md. Their keys never sign and never appear in `jwks()`.
   * @default [] (`CBC_JWT_TRUSTED_ISSUERS`)
   * @example
   * trustedIssuers: [{ issuer: 'https://acme.eu.auth0.com/', audience: 'https://orders.acme.com', scope_claim: 'permissions' }]
   */
  trustedIssuers?: readonly TrustedIssuer[] | undefined
  /**
   * PEM certificates trusted for the issuers' TLS instead of Node's store — for an API that
   * cannot set `NODE_EXTRA_CA_CERTS` (the service uses that variable, read by Node at start).
   * @default Node's CA store, with `NODE_EXTRA_CA_CERTS`
   */
  trustedIssuersCa?: string | undefined
  /** The environment the options not given are read from. Pass `{}` to read none. @default process.env */
  env?: NodeJS.ProcessEnv | undefined
  /** Clock, ms since the epoch (tests). @default Date.now */
  now?: (() => number) | undefined
}

type Tunable = Exclude<keyof CbcJwtConfig, 'backend' | 'keysetFile' | 'logLevel' | 'issuer' | 'audience' | 'trustProxy' | 'trustedIssuers'>

const RANGES: Record<Tunable, [min: number, max: number]> = {
  refreshIntervalSeconds: [0.1, Number.MAX_SAFE_INTEGER],
  unknownKidCooldownSeconds: [0, Number.MAX_SAFE_INTEGER],
  clockToleranceSeconds: [0, Number.MAX_SAFE_INTEGER],
  maxTokenBytes: [64, 60 * 1024],
  maxTokenTtlSeconds: [1, Number.MAX_SAFE_INTEGER],
  successLogSample: [0, 1],
  tokenCacheEntries: [0, 10_000_000],
  tokenCacheMaxBytes: [1024, 4 * 1024 ** 3],
}

/**
 * The configuration in force: the environment's, with every option given in code over it.
 * An option of the wrong type or range is a programming error: `TypeError`/`RangeError`
 * naming it. A bad environment variable is the operator's: `ConfigError` naming the variable.
 */
export function resolveConfig(options: CbcJwtOptions): CbcJwtConfig {
  const config = cbcJwtConfigFromEnv(options.env ?? process.env)
  const { backend } = options
  if (backend === 'file' || backend === 'vault' || backend === 'kubernetes') config.backend = backend
  else if (backend !== undefined && (typeof backend !== 'object' || typeof backend.read !== 'function')) {
    throw new TypeError(`createCbcJwt: backend must be 'file', 'vault', 'kubernetes' or a KeysetBackend object, got ${JSON.stringify(backend)}`)
  }
  for (const name of ['keysetFile', 'issuer', 'audience'] as const) {
    const value = options[name]
    if (value === undefined) continue
    if (typeof value !== 'string' || value === '') throw new TypeError(`createCbcJwt: ${name} must be a non-empty string`)
    config[name] = value
  }
  for (const [name, [min, max]] of Object.entries(RANGES) as Array<[Tunable, [number, number]]>) {
    const value = options[name]
    if (value === undefined) continue
    if (typeof value !== 'number' || !(value >= min && value <= max)) {
      throw new RangeError(`createCbcJwt: ${name} must be a number from ${min} to ${max}, got ${JSON.stringify(value)}`)
    }
    config[name] = value
  }
  if (options.trustProxy !== undefined) {
    if (typeof options.trustProxy !== 'boolean') throw new TypeError('createCbcJwt: trustProxy must be a boolean')
    config.trustProxy = options.trustProxy
  }
  if (options.logLevel !== undefined) {
    if (!(LOG_LEVELS as readonly string[]).includes(options.logLevel)) {
      throw new RangeError(`createCbcJwt: logLevel must be one of ${LOG_LEVELS.join(', ')}`)
    }
    config.logLevel = options.logLevel
  }
  if (options.trustedIssuers !== undefined) {
    try {
      config.trustedIssuers = checkTrustedIssuers(options.trustedIssuers, config.issuer)
    } catch (err) {
      if (err instanceof TrustedIssuersProblem) throw new TypeError(`createCbcJwt: trustedIssuers${err.message}`)
      throw err
    }
  } else if (config.trustedIssuers.some((t) => t.issuer === config.issuer)) {
    // The environment's list was checked against the environment's issuer; an issuer option may differ.
    throw new ConfigError(`CBC_JWT_TRUSTED_ISSUERS lists ${config.issuer}, the keyset's own issuer, whose tokens the keyset verifies`)
  }
  return config
}
