import { ConfigError } from './errors.js'
import { parseDuration } from './duration.js'
import { checkTrustedIssuers, TrustedIssuersProblem, type TrustedIssuerSettings } from './issuers/trusted-issuers.js'

/**
 * The library's configuration (README.md, "Configure"; docs/adopting.md): everything `createCbcJwt` needs. The
 * listen address is not part of it — an embedding API has its own server, so a library user
 * never has `PORT` parsed (or refused) on their behalf.
 */
export interface CbcJwtConfig {
  /** @default 'file' (`CBC_JWT_BACKEND`); `kubernetes` reads and watches the Secret through the API */
  backend: 'file' | 'vault' | 'kubernetes'
  /** Keyset path (`CBC_JWT_KEYSET_FILE`); undefined means none configured. */
  keysetFile: string | undefined
  /** @default 30 (`CBC_JWT_REFRESH_INTERVAL_SECONDS`) */
  refreshIntervalSeconds: number
  /** @default 10 (`CBC_JWT_UNKNOWN_KID_COOLDOWN_SECONDS`) */
  unknownKidCooldownSeconds: number
  /** @default 'cbc-omega2' (`CBC_JWT_ISSUER`) */
  issuer: string
  /** @default 'cbc-api' (`CBC_JWT_AUDIENCE`) */
  audience: string
  /** @default 30 (`CBC_JWT_CLOCK_TOLERANCE_SECONDS`) */
  clockToleranceSeconds: number
  /** @default 8192 (`CBC_JWT_MAX_TOKEN_BYTES`) */
  maxTokenBytes: number
  /**
   * The longest token lifetime issued and accepted (`CBC_JWT_MAX_TOKEN_TTL`: a duration such as
   * `24h`, or bare seconds). `sign()` and `token issue` refuse longer, the verifier rejects a
   * longer `exp − iat` as `malformed`; the rotation grace is sized from it.
   * @default 86400
   */
  maxTokenTtlSeconds: number
  /** @default 'info' (`CBC_JWT_LOG_LEVEL`) */
  logLevel: string
  /**
   * A proxy in front is trusted to set `X-Forwarded-For` (`CBC_JWT_TRUST_PROXY`: `true` or
   * `false`): rejection log lines then carry its chain as `forwarded_for`. Off, a client could
   * write any address there, so it is not logged.
   * @default false
   */
  trustProxy: boolean
  /**
   * Fraction of accepted tokens logged (`auth_accepted`, with kid and client id) at random, 0
   * to 1, on top of the first use of each (kid, client id) pair an hour
   * (`CBC_JWT_SUCCESS_LOG_SAMPLE`). What scopes the use of a leaked key.
   * @default 0.01
   */
  successLogSample: number
  /** Verified-token cache entries; 0 turns the cache off. @default 10000 (`CBC_JWT_TOKEN_CACHE_ENTRIES`) */
  tokenCacheEntries: number
  /** Bound on the cache's estimated heap bytes. @default 16777216 = 16 MiB (`CBC_JWT_TOKEN_CACHE_MAX_BYTES`) */
  tokenCacheMaxBytes: number
  /**
   * Other issuers whose tokens are accepted (`CBC_JWT_TRUSTED_ISSUERS`, a JSON array; see
   * `TrustedIssuer` and docs/trusted-issuers.md), checked once.
   * @default []
   */
  trustedIssuers: readonly TrustedIssuerSettings[]
}

/** Where the service listens: read only by the service (`npm start`, `cbc-jwt serve`). */
export interface ListenConfig {
  /** @default 8000 (`PORT`) */
  port: number
  /** @default '0.0.0.0' (`HOST`) */
  host: string
  /**
   * A request's headers and body must arrive within this many seconds of its first byte, or
   * the connection is answered 408 and closed: a client dripping a byte at a time cannot hold
   * a socket. @default 10 (`CBC_JWT_HTTP_REQUEST_TIMEOUT_SECONDS`)
   */
  httpRequestTimeoutSeconds: number
  /** Open connections beyond this are closed at once. @default 1000 (`CBC_JWT_HTTP_MAX_CONNECTIONS`) */
  httpMaxConnections: number
}

/** Service configuration: the library's plus the listen address. Precedence: defaults < environment < CLI flags. */
export interface ServiceConfig extends CbcJwtConfig, ListenConfig {
  /**
   * Generate (once) and use the development keyset `./.cbc-jwt/dev-keyset.json` under the
   * current folder (`CBC_JWT_DEV_KEYSET=true`, or `cbc-jwt serve --dev`). Only when asked:
   * with nothing configured the service refuses to start. Refused under `NODE_ENV=production`
   * and beside a configured keyset.
   * @default false
   */
  devKeyset?: boolean | undefined
}

export const DEFAULTS = {
  port: 8000,
  host: '0.0.0.0',
  backend: 'file',
  refreshIntervalSeconds: 30,
  unknownKidCooldownSeconds: 10,
  issuer: 'cbc-omega2',
  audience: 'cbc-api',
  clockToleranceSeconds: 30,
  maxTokenBytes: 8192,
  maxTokenTtlSeconds: 24 * 3600,
  logLevel: 'info',
  trustProxy: false,
  successLogSample: 0.01,
  tokenCacheEntries: 10_000,
  tokenCacheMaxBytes: 16 * 1024 * 1024,
  devKeyset: false,
  httpRequestTimeoutSeconds: 10,
  httpMaxConnections: 1000,
  trustedIssuers: [] as readonly TrustedIssuerSettings[],
} as const

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/** The library's configuration from the environment; `PORT` and `HOST` are not read. */
export function cbcJwtConfigFromEnv(env: NodeJS.ProcessEnv = process.env): CbcJwtConfig {
  const backend = env.CBC_JWT_BACKEND || DEFAULTS.backend
  if (backend !== 'file' && backend !== 'vault' && backend !== 'kubernetes') {
    throw new ConfigError(`CBC_JWT_BACKEND must be "file", "vault" or "kubernetes" (got "${backend}")`)
  }
  const issuer = env.CBC_JWT_ISSUER || DEFAULTS.issuer
  const logLevel = env.CBC_JWT_LOG_LEVEL || DEFAULTS.logLevel
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) throw new ConfigError(`CBC_JWT_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`)
  return {
    backend,
    keysetFile: keysetFile(env.CBC_JWT_KEYSET_FILE),
    refreshIntervalSeconds: number(env, 'CBC_JWT_REFRESH_INTERVAL_SECONDS', DEFAULTS.refreshIntervalSeconds, 0.1),
    unknownKidCooldownSeconds: number(env, 'CBC_JWT_UNKNOWN_KID_COOLDOWN_SECONDS', DEFAULTS.unknownKidCooldownSeconds, 0),
    issuer,
    audience: env.CBC_JWT_AUDIENCE || DEFAULTS.audience,
    clockToleranceSeconds: number(env, 'CBC_JWT_CLOCK_TOLERANCE_SECONDS', DEFAULTS.clockToleranceSeconds, 0),
    maxTokenBytes: integer(env, 'CBC_JWT_MAX_TOKEN_BYTES', DEFAULTS.maxTokenBytes, 64, 60 * 1024),
    maxTokenTtlSeconds: maxTokenTtlSeconds(env.CBC_JWT_MAX_TOKEN_TTL),
    logLevel,
    trustProxy: boolean(env, 'CBC_JWT_TRUST_PROXY', DEFAULTS.trustProxy),
    successLogSample: number(env, 'CBC_JWT_SUCCESS_LOG_SAMPLE', DEFAULTS.successLogSample, 0, 1),
    tokenCacheEntries: integer(env, 'CBC_JWT_TOKEN_CACHE_ENTRIES', DEFAULTS.tokenCacheEntries, 0, 10_000_000),
    tokenCacheMaxBytes: integer(env, 'CBC_JWT_TOKEN_CACHE_MAX_BYTES', DEFAULTS.tokenCacheMaxBytes, 1024, 4 * 1024 ** 3),
    trustedIssuers: trustedIssuersFromEnv(env.CBC_JWT_TRUSTED_ISSUERS, issuer),
  }
}

/** `CBC_JWT_TRUSTED_ISSUERS`: a JSON array of trusted issuers; empty or unset is none. */
export function trustedIssuersFromEnv(raw: string | undefined, ownIssuer: string): TrustedIssuerSettings[] {
  if (raw === undefined || raw.trim() === '') return []
  let value: unknown
  try {
    value = JSON.parse(raw)
  } catch {
    throw new ConfigError('CBC_JWT_TRUSTED_ISSUERS must be a JSON array of issuers, e.g. [{"issuer":"https://idp.example.com","audience":"orders-api"}]')
  }
  try {
    return checkTrustedIssuers(value, ownIssuer)
  } catch (err) {
    if (err instanceof TrustedIssuersProblem) throw new ConfigError(`CBC_JWT_TRUSTED_ISSUERS${err.message}`)
    throw err
  }
}

/** Where the service listens, from `PORT` and `HOST`. */
export function listenConfigFromEnv(env: NodeJS.ProcessEnv = process.env): ListenConfig {
  return {
    port: integer(env, 'PORT', DEFAULTS.port, 0, 65535),
    host: env.HOST || DEFAULTS.host,
    httpRequestTimeoutSeconds: number(env, 'CBC_JWT_HTTP_REQUEST_TIMEOUT_SECONDS', DEFAULTS.httpRequestTimeoutSeconds, 0.1, 3600),
    httpMaxConnections: integer(env, 'CBC_JWT_HTTP_MAX_CONNECTIONS', DEFAULTS.httpMaxConnections, 1, 1_000_000),
  }
}

export function serviceConfigFromEnv(env: NodeJS.ProcessEnv = process.env): ServiceConfig {
  return { ...listenConfigFromEnv(env), ...cbcJwtConfigFromEnv(env), devKeyset: boolean(env, 'CBC_JWT_DEV_KEYSET', DEFAULTS.devKeyset, true) }
}

/**
 * `CBC_JWT_KEYSET_FILE`: unset means none configured; set but empty is a mistake (a template
 * that did not fill it in), refused rather than read as "unset" — which would start a service
 * on no keyset, or on one nobody meant.
 */
function keysetFile(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined
  if (raw.trim() === '')
    throw new ConfigError('CBC_JWT_KEYSET_FILE is set but empty: set it to the keyset path (e.g. /var/run/secrets/cbc-jwt/jwt-keyset), or unset it')
  return raw
}

/** `CBC_JWT_MAX_TOKEN_TTL`: a duration (`24h`, `90m`) or a bare number of seconds; at least 1 s. @default 86400 */
export function maxTokenTtlSeconds(raw: string | undefined): number {
  if (raw === undefined || raw === '') return DEFAULTS.maxTokenTtlSeconds
  const ms = /^\d+$/.test(raw.trim()) ? Number(raw) * 1000 : parseDuration(raw)
  if (ms === undefined || ms < 1000) throw new ConfigError(`CBC_JWT_MAX_TOKEN_TTL must be a duration like 24h or a number of seconds (got "${raw}")`)
  return ms / 1000
}

function number(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be a number between ${min} and ${max} (got "${raw}")`)
  }
  return value
}

function boolean(env: NodeJS.ProcessEnv, name: string, fallback: boolean, emptyIsError = false): boolean {
  const raw = env[name]
  if (raw === '' && emptyIsError) throw new ConfigError(`${name} is set but empty: set it to true or false, or unset it`)
  if (raw === undefined || raw === '') return fallback
  if (raw === 'true' || raw === '1') return true
  if (raw === 'false' || raw === '0') return false
  throw new ConfigError(`${name} must be true or false (got "${raw}")`)
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const value = number(env, name, fallback, min, max)
  if (!Number.isInteger(value)) throw new ConfigError(`${name} must be an integer (got "${env[name]}")`)
  return value
}
