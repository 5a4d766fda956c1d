import { ConfigError } from '../../errors.js'
import { OPTIONS } from '../../options-table.js'
import { readOption } from '../../config.js'
import { MAX_KEYSET_BYTES } from '../../keyset/document.js'

/** How the backend authenticates to Vault. */
export type VaultAuthMethod = 'token' | 'kubernetes'

/**
 * Options of the Vault KV v2 backend. Each one maps to one environment variable (named in
 * its doc); `vaultOptionsFromEnv` reads them, `createVaultBackend` takes them. Only `addr`
 * (and the credential of the auth method) is required: the others default as documented.
 */
export interface VaultBackendOptions {
  /**
   * Base URL of Vault, `http(s)://host:port` (a path prefix is kept, for Vault behind a proxy).
   * Env `VAULT_ADDR`, required.
   */
  addr: string
  /** Token for `auth: 'token'`. Env `VAULT_TOKEN`. Never logged, never in an error. */
  token?: string
  /** Vault Enterprise namespace, sent as `X-Vault-Namespace`. Env `VAULT_NAMESPACE`. */
  namespace?: string
  /**
   * Path of a PEM CA bundle. When set, it is the only trust anchor for the Vault connection
   * (the system roots are not used). Env `VAULT_CACERT`.
   */
  caCertFile?: string
  /**
   * Do not verify Vault's TLS certificate. For labs only; the backend logs a warning when it
   * is on. Env `VAULT_SKIP_VERIFY` (`true`/`1`, Go `ParseBool` spellings).
   * @default false
   */
  skipVerify?: boolean
  /**
   * Mount path of the KV v2 engine. Env `CBC_JWT_VAULT_MOUNT`.
   * @default 'secret'
   */
  mount?: string
  /**
   * Secret path inside the mount; the keyset is its field `jwt-keyset`. Env `CBC_JWT_VAULT_PATH`.
   * @default 'cbc/jwt-keyset'
   */
  path?: string
  /**
   * Authentication method. Env `CBC_JWT_VAULT_AUTH`.
   * @default 'token'
   */
  auth?: VaultAuthMethod
  /** Vault role for `auth: 'kubernetes'` (required there). Env `CBC_JWT_VAULT_ROLE`. */
  role?: string
  /**
   * Mount path of the Kubernetes auth method. Env `CBC_JWT_VAULT_K8S_MOUNT`.
   * @default 'kubernetes'
   */
  k8sMount?: string
  /**
   * Service account token file, read again at every login (the kubelet rotates projected
   * tokens). Env `CBC_JWT_VAULT_K8S_TOKEN_PATH`.
   * @default '/var/run/secrets/kubernetes.io/serviceaccount/token'
   */
  k8sTokenPath?: string
  /**
   * Deadline of one HTTP request (connect to last byte), in milliseconds.
   * Env `CBC_JWT_VAULT_TIMEOUT_MS`.
   * @default 5000
   */
  timeoutMs?: number
  /**
   * Extra attempts after a transient failure (unreachable, timeout, 5xx, sealed) within one
   * read: `2` means at most 3 requests. Env `CBC_JWT_VAULT_RETRIES`.
   * @default 2
   */
  retries?: number
  /**
   * Base of the exponential backoff between attempts, in milliseconds (full jitter: the
   * delay before attempt n+1 is uniform in [0, min(retryMaxDelayMs, base·2ⁿ⁻¹)]).
   * @default 100
   */
  retryBaseMs?: number
  /**
   * Cap of one backoff delay, in milliseconds.
   * @default 2000
   */
  retryMaxDelayMs?: number
  /**
   * Largest response body accepted, in bytes; a bigger one fails with `bad_response`. Twice
   * the largest keyset: the document travels JSON-escaped inside Vault's JSON.
   * @default 8388608
   */
  maxResponseBytes?: number
}

/** The options with every default filled in: what `vaultOptionsFromEnv` reads. */
export type VaultSettings = VaultBackendOptions &
  Required<Pick<VaultBackendOptions, 'skipVerify' | 'mount' | 'path' | 'auth' | 'k8sMount' | 'k8sTokenPath' | 'timeoutMs' | 'retries'>>

/** Defaults of the optional settings, with their units in the names (the variables' from the options table). */
export const VAULT_DEFAULTS = {
  mount: OPTIONS.vaultMount.default,
  path: OPTIONS.vaultPath.default,
  auth: OPTIONS.vaultAuth.default,
  k8sMount: OPTIONS.vaultK8sMount.default,
  k8sTokenPath: OPTIONS.vaultK8sTokenPath.default,
  timeoutMs: OPTIONS.vaultTimeoutMs.default,
  retries: OPTIONS.vaultRetries.default,
  retryBaseMs: 100,
  retryMaxDelayMs: 2000,
  maxResponseBytes: 2 * MAX_KEYSET_BYTES,
} as const

/**
 * What Node refuses in a header value (`X-Vault-Token`, `X-Vault-Namespace`): sent anyway, every
 * read would fail before leaving the host, counted as Vault unreachable, while the process serves on.
 * A token a login answers is checked by the same rule (auth.ts).
 */
export const NOT_IN_HEADER = /[^\t\x20-\x7e\x80-\xff]/

const TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True'])
const FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False'])

/**
 * Reads the Vault backend's settings from the environment: Vault's own variables as the
 * Vault CLI reads them, plus `CBC_JWT_VAULT_*`. Throws `ConfigError` naming the variable on
 * a missing or malformed value.
 *
 * @example
 * const backend = createVaultBackend(vaultOptionsFromEnv(process.env), { logger })
 */
export function vaultOptionsFromEnv(env: NodeJS.ProcessEnv): VaultSettings {
  const get = (name: string): string | undefined => {
    const v = env[name]?.trim()
    return v === undefined || v === '' ? undefined : v
  }
  const addr = get('VAULT_ADDR')
  if (addr === undefined) throw new ConfigError('VAULT_ADDR is required when CBC_JWT_BACKEND=vault')

  const auth = get('CBC_JWT_VAULT_AUTH') ?? VAULT_DEFAULTS.auth
  if (auth !== 'token' && auth !== 'kubernetes') {
    throw new ConfigError(`CBC_JWT_VAULT_AUTH must be "token" or "kubernetes", got ${JSON.stringify(auth)}`)
  }
  const token = env.VAULT_TOKEN?.trim() || undefined
  if (auth === 'token' && token === undefined) {
    throw new ConfigError('VAULT_TOKEN is required when CBC_JWT_VAULT_AUTH=token (the default)')
  }
  const namespace = get('VAULT_NAMESPACE')
  checkHeaderValues({ token, namespace })
  const role = get('CBC_JWT_VAULT_ROLE')
  if (auth === 'kubernetes' && role === undefined) {
    throw new ConfigError('CBC_JWT_VAULT_ROLE is required when CBC_JWT_VAULT_AUTH=kubernetes')
  }

  const skip = get('VAULT_SKIP_VERIFY')
  if (skip !== undefined && !TRUE.has(skip) && !FALSE.has(skip)) {
    throw new ConfigError(`VAULT_SKIP_VERIFY must be true/1 or false/0, got ${JSON.stringify(skip)}`)
  }

  const options: VaultSettings = {
    addr: checkAddr(addr, 'VAULT_ADDR'),
    skipVerify: skip !== undefined && TRUE.has(skip),
    mount: checkPath(readOption(env, 'vaultMount').trim(), 'CBC_JWT_VAULT_MOUNT'),
    path: checkPath(readOption(env, 'vaultPath').trim(), 'CBC_JWT_VAULT_PATH'),
    auth,
    k8sMount: checkPath(get('CBC_JWT_VAULT_K8S_MOUNT') ?? VAULT_DEFAULTS.k8sMount, 'CBC_JWT_VAULT_K8S_MOUNT'),
    k8sTokenPath: get('CBC_JWT_VAULT_K8S_TOKEN_PATH') ?? VAULT_DEFAULTS.k8sTokenPath,
    timeoutMs: intVar(get(OPTIONS.vaultTimeoutMs.env), OPTIONS.vaultTimeoutMs),
    retries: intVar(get(OPTIONS.vaultRetries.env), OPTIONS.vaultRetries),
  }
  if (token !== undefined) options.token = token
  if (namespace !== undefined) options.namespace = namespace
  const caCertFile = get('VAULT_CACERT')
  if (caCertFile !== undefined) options.caCertFile = caCertFile
  if (role !== undefined) options.role = role
  return options
}

/** Refuses a token or namespace (from the environment or given in code) no HTTP header can carry. */
export function checkHeaderValues(options: { token?: string | undefined; namespace?: string | undefined }): void {
  // Never quoted: the token is a secret.
  if (options.token !== undefined && NOT_IN_HEADER.test(options.token)) {
    throw new ConfigError('VAULT_TOKEN holds a character an HTTP header cannot carry (a line break?)')
  }
  if (options.namespace !== undefined && NOT_IN_HEADER.test(options.namespace)) {
    throw new ConfigError(`VAULT_NAMESPACE holds a character an HTTP header cannot carry, got ${JSON.stringify(options.namespace)}`)
  }
}

/** Checks a Vault address; the name is the variable (or option) it came from. */
export function checkAddr(addr: string, name: string): string {
  let url: URL
  try {
    url = new URL(addr)
  } catch {
    throw new ConfigError(`${name} must be a URL like https://vault.example:8200, got ${JSON.stringify(addr)}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`${name} must use http or https, got ${JSON.stringify(url.protocol)}`)
  }
  if (url.username || url.password || url.search || url.hash) {
    throw new ConfigError(`${name} must not carry credentials, a query or a fragment`)
  }
  return addr.replace(/\/+$/, '')
}

/** Checks a mount or secret path: segments without `.`/`..`, no empty segment. */
export function checkPath(value: string, name: string): string {
  const trimmed = value.replace(/^\/+|\/+$/g, '')
  const segments = trimmed.split('/')
  if (trimmed === '' || segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw new ConfigError(`${name} must be a path like a/b (no empty, "." or ".." segments), got ${JSON.stringify(value)}`)
  }
  return trimmed
}

function intVar(raw: string | undefined, spec: { env: string; default: number; min: number; max: number }): number {
  if (raw === undefined) return spec.default
  const n = /^\d+$/.test(raw) ? Number(raw) : Number.NaN
  if (!Number.isSafeInteger(n) || n < spec.min || n > spec.max) {
    throw new ConfigError(`${spec.env} must be an integer from ${spec.min} to ${spec.max}, got ${JSON.stringify(raw)}`)
  }
  return n
}
