import { ALG_SPECS, isAlg, type Alg } from '../keyset/algorithms.js'
import { printable } from '../logging/sanitize.js'
import { keysMayBeReadFrom } from './key-transport.js'

/**
 * One issuer whose tokens are accepted beside the keyset's own (`CBC_JWT_TRUSTED_ISSUERS`, a
 * JSON array of these; library option `trustedIssuers`, same shape). Unknown fields are refused,
 * so a typo never silently drops a check.
 *
 * @example
 * { "issuer": "https://login.example.com/realms/acme", "audience": "orders-api" }
 */
export interface TrustedIssuer {
  /**
   * The exact `iss` of its tokens: an https URL without query or fragment (OpenID Connect
   * Discovery §3); plain http only to this host's loopback (`localhost`, 127.0.0.0/8, `[::1]`).
   */
  issuer: string
  /** Accepted audiences: a token's `aud` (string or array) must hold at least one. */
  audience: string | readonly string[]
  /**
   * Where its JWK Set is read (https; plain http only to this host's loopback). Without it, OpenID Connect discovery
   * (`<issuer>/.well-known/openid-configuration`) finds it, and the discovered `issuer` must
   * equal this one exactly.
   */
  jwks_uri?: string | undefined
  /**
   * Algorithms accepted from this issuer (asymmetric only: a published JWK Set never holds a
   * secret). A key whose `alg` is outside the list is not loaded. A key without `alg` takes
   * the one algorithm of the list that fits its type; with none listed, RSA keys are RS256
   * (OpenID Connect's default) and EC/OKP keys follow their curve.
   * @default every asymmetric algorithm
   */
  algorithms?: readonly Alg[] | undefined
  /**
   * Accept tokens without `iat` (some issuers omit it; RFC 9068 requires it). Such a token
   * is still checked against `exp` and the lifetime bound, and a `revocations` rule by
   * `client_id` or `sub` rejects it (nothing proves it was issued after the rule's time).
   * @default false
   */
  allow_missing_iat?: boolean | undefined
  /**
   * The claim that holds the token's scopes, for `requireScope`, forward auth's `?scope=` and
   * `X-Auth-Scope`: `scp` (Microsoft Entra ID), `permissions` (Auth0 RBAC), … The accepted
   * claims then carry that claim's value as `scope` (a token's own `scope` is not used).
   * @default 'scope'
   */
  scope_claim?: string | undefined
  /** Leeway for `exp`, `nbf`, `iat`, in seconds. @default `CBC_JWT_CLOCK_TOLERANCE_SECONDS` */
  clock_tolerance_seconds?: number | undefined
  /** The longest `exp − iat` accepted, in seconds (Auth0 allows up to 30 days). @default `CBC_JWT_MAX_TOKEN_TTL` */
  max_token_lifetime_seconds?: number | undefined
  /** How often the JWK Set is read again, in seconds. @default 300 */
  refresh_interval_seconds?: number | undefined
  /** At most one unknown-`kid` re-read of the JWK Set per this many seconds. @default 30 */
  unknown_kid_cooldown_seconds?: number | undefined
}

/** A trusted issuer as checked once at start: every default filled in but the two global ones. */
export interface TrustedIssuerSettings {
  readonly issuer: string
  readonly audiences: readonly string[]
  readonly jwksUri: string | undefined
  readonly algorithms: readonly Alg[]
  readonly allowMissingIat: boolean
  /** undefined: the token's own `scope` claim. */
  readonly scopeClaim: string | undefined
  readonly clockToleranceSeconds: number | undefined
  readonly maxTokenTtlSeconds: number | undefined
  readonly refreshIntervalSeconds: number
  readonly unknownKidCooldownSeconds: number
}

export const TRUSTED_ISSUER_DEFAULTS = { refreshIntervalSeconds: 300, unknownKidCooldownSeconds: 30 } as const

/** The algorithms a trusted issuer may use: every asymmetric one (an HMAC secret is never published). */
export const ASYMMETRIC_ALGORITHMS: readonly Alg[] = (Object.keys(ALG_SPECS) as Alg[]).filter((alg) => ALG_SPECS[alg].family !== 'hmac')

const FIELDS = new Set([
  'issuer',
  'audience',
  'jwks_uri',
  'algorithms',
  'allow_missing_iat',
  'scope_claim',
  'clock_tolerance_seconds',
  'max_token_lifetime_seconds',
  'refresh_interval_seconds',
  'unknown_kid_cooldown_seconds',
])
const CLAIM_NAME = /^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$/
const MAX_ISSUERS = 32

/** A problem in the configuration: `at` is the JSON path (`[1].jwks_uri`). */
export class TrustedIssuersProblem extends Error {
  constructor(
    readonly at: string,
    message: string,
  ) {
    super(`${at}: ${message}`)
  }
}

/**
 * Checks a trusted-issuer list once (the environment's parsed JSON or the library option) and
 * fills in defaults. Throws `TrustedIssuersProblem` naming the first wrong field; the caller
 * turns it into its own error (a `ConfigError` naming the variable, a `TypeError` naming the
 * option). `ownIssuer` may not be listed: its tokens are the keyset's.
 */
export function checkTrustedIssuers(value: unknown, ownIssuer: string): TrustedIssuerSettings[] {
  if (!Array.isArray(value)) throw new TrustedIssuersProblem('', 'must be a JSON array of issuers')
  if (value.length > MAX_ISSUERS) throw new TrustedIssuersProblem('', `at most ${MAX_ISSUERS} issuers`)
  const seen = new Set<string>()
  return value.map((entry, i) => {
    const settings = checkOne(entry, `[${i}]`)
    if (settings.issuer === ownIssuer)
      throw new TrustedIssuersProblem(`[${i}].issuer`, "is the keyset's own issuer (CBC_JWT_ISSUER), whose tokens the keyset verifies")
    if (seen.has(settings.issuer)) throw new TrustedIssuersProblem(`[${i}].issuer`, 'is listed twice')
    seen.add(settings.issuer)
    return settings
  })
}

function checkOne(entry: unknown, at: string): TrustedIssuerSettings {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new TrustedIssuersProblem(at, 'must be an object')
  const e = entry as Record<string, unknown>
  // The name as typed, escaped: a line break or a terminal escape in it must not reach stderr raw.
  for (const name of Object.keys(e)) if (!FIELDS.has(name)) throw new TrustedIssuersProblem(`${at}.${printable(name, { max: 64 })}`, 'unknown field')
  const issuer = httpsUrl(e.issuer, `${at}.issuer`, true)
  const audiences = typeof e.audience === 'string' ? [e.audience] : e.audience
  if (!Array.isArray(audiences) || audiences.length === 0 || !audiences.every((a) => typeof a === 'string' && a !== '' && a.length <= 1024)) {
    throw new TrustedIssuersProblem(`${at}.audience`, 'is required: a non-empty string or a non-empty array of them')
  }
  const jwksUri = e.jwks_uri === undefined ? undefined : httpsUrl(e.jwks_uri, `${at}.jwks_uri`, false)
  let algorithms = ASYMMETRIC_ALGORITHMS
  if (e.algorithms !== undefined) {
    if (!Array.isArray(e.algorithms) || e.algorithms.length === 0) throw new TrustedIssuersProblem(`${at}.algorithms`, 'must be a non-empty array')
    for (const alg of e.algorithms) {
      if (!isAlg(alg) || !ASYMMETRIC_ALGORITHMS.includes(alg)) {
        throw new TrustedIssuersProblem(`${at}.algorithms`, `must hold only ${ASYMMETRIC_ALGORITHMS.join(', ')} (no HMAC: a published key set holds no secret)`)
      }
    }
    algorithms = [...new Set(e.algorithms as Alg[])]
  }
  const allowMissingIat = e.allow_missing_iat ?? false
  if (typeof allowMissingIat !== 'boolean') throw new TrustedIssuersProblem(`${at}.allow_missing_iat`, 'must be true or false')
  if (e.scope_claim !== undefined && (typeof e.scope_claim !== 'string' || !CLAIM_NAME.test(e.scope_claim))) {
    throw new TrustedIssuersProblem(`${at}.scope_claim`, 'must be a claim name such as "scp" or "permissions"')
  }
  const scopeClaim = e.scope_claim === 'scope' ? undefined : (e.scope_claim as string | undefined)
  return {
    issuer,
    audiences: [...new Set(audiences as string[])],
    jwksUri,
    algorithms,
    allowMissingIat,
    scopeClaim,
    clockToleranceSeconds: seconds(e.clock_tolerance_seconds, `${at}.clock_tolerance_seconds`, 0, 3600),
    maxTokenTtlSeconds: seconds(e.max_token_lifetime_seconds, `${at}.max_token_lifetime_seconds`, 1, 366 * 86400),
    refreshIntervalSeconds: seconds(e.refresh_interval_seconds, `${at}.refresh_interval_seconds`, 1, 86400) ?? TRUSTED_ISSUER_DEFAULTS.refreshIntervalSeconds,
    unknownKidCooldownSeconds:
      seconds(e.unknown_kid_cooldown_seconds, `${at}.unknown_kid_cooldown_seconds`, 0, 86400) ?? TRUSTED_ISSUER_DEFAULTS.unknownKidCooldownSeconds,
  }
}

/**
 * An https URL, as an OpenID issuer or a JWK Set location must be: keys read over plain HTTP
 * could be replaced by anyone on the path — plain http only to this host's loopback (see
 * key-transport.ts). An issuer has no query or fragment.
 */
function httpsUrl(value: unknown, at: string, isIssuer: boolean): string {
  if (typeof value !== 'string' || value === '') throw new TrustedIssuersProblem(at, 'is required: an https URL')
  // The URL parser drops surrounding spaces and any tab or line break, but the text is what a
  // token's `iss` and the discovered `issuer` are compared with: it must be the URL exactly.
  if (/[\s\p{Cc}]/u.test(value)) throw new TrustedIssuersProblem(at, 'must be an https URL, without spaces or control characters')
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new TrustedIssuersProblem(at, 'must be an https URL')
  }
  if (!keysMayBeReadFrom(url)) {
    throw new TrustedIssuersProblem(
      at,
      'must be an https URL (keys read over plain HTTP could be replaced on the way; http only to localhost, 127.0.0.0/8 or [::1])',
    )
  }
  if (url.username !== '' || url.password !== '') throw new TrustedIssuersProblem(at, 'must not carry credentials')
  if (isIssuer && (url.search !== '' || url.hash !== '')) throw new TrustedIssuersProblem(at, 'must have no query or fragment (OpenID Connect Discovery §3)')
  return value
}

function seconds(value: unknown, at: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !(value >= min && value <= max)) throw new TrustedIssuersProblem(at, `must be a number of seconds from ${min} to ${max}`)
  return value
}

/** The settings back in the configuration's shape (a checked configuration handed on as options). */
export function trustedIssuerOf(s: TrustedIssuerSettings): TrustedIssuer {
  return {
    issuer: s.issuer,
    audience: s.audiences,
    ...(s.jwksUri !== undefined ? { jwks_uri: s.jwksUri } : {}),
    algorithms: s.algorithms,
    allow_missing_iat: s.allowMissingIat,
    ...(s.scopeClaim !== undefined ? { scope_claim: s.scopeClaim } : {}),
    ...(s.clockToleranceSeconds !== undefined ? { clock_tolerance_seconds: s.clockToleranceSeconds } : {}),
    ...(s.maxTokenTtlSeconds !== undefined ? { max_token_lifetime_seconds: s.maxTokenTtlSeconds } : {}),
    refresh_interval_seconds: s.refreshIntervalSeconds,
    unknown_kid_cooldown_seconds: s.unknownKidCooldownSeconds,
  }
}
