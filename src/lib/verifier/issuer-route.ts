import type { LoadedKey, LoadedKeyset } from '../keyset/load.js'
import type { AuthFailureReason } from '../reasons.js'
import type { JwtClaims } from './claims.js'

/**
 * How the tokens of one trusted issuer are checked: its own keys (its JWK Set,
 * last good kept), its audiences, its clock tolerance and lifetime bound, whether it may omit
 * `iat`, and which claim holds its scopes. The verifier picks a route by the token's `iss`
 * before any key lookup, so a `kid` of one issuer never finds a key of another.
 */
export interface IssuerRoute {
  readonly issuer: string
  readonly audiences: readonly string[]
  /** Seconds of leeway for `exp`, `nbf`, `iat`. */
  readonly leeway: number
  /** Longest `exp − iat` (or `exp − now` without `iat`), in seconds. */
  readonly maxTokenTtlSeconds: number
  readonly allowMissingIat: boolean
  /** The claim read as `scope`; undefined: `scope` itself. */
  readonly scopeClaim: string | undefined
  /** The issuer's keys in force, or undefined before its first good read. Called per token: keep it a field read. */
  keys(): ReadonlyMap<string, LoadedKey> | undefined
}

/**
 * The checks of a trusted issuer's token after its signature verified, in the keyset's order:
 * `exp`/`iat` present and numeric (`iat` may be absent when the issuer is configured so),
 * lifetime, then the time checks (see `routeTimeProblem`), then `aud`. `iss` chose the route.
 */
export function routeClaimsProblem(route: IssuerRoute, claims: JwtClaims, nowMs: number, keyset: LoadedKeyset | undefined): AuthFailureReason | undefined {
  const { exp, iat, nbf } = claims
  if (!isNumericDate(exp) || (nbf !== undefined && !isNumericDate(nbf))) return 'malformed'
  if (iat === undefined ? !route.allowMissingIat : !isNumericDate(iat)) return 'malformed'
  // Time-independent, so a cached acceptance never needs it again (without iat, see routeTimeProblem).
  if (iat !== undefined && exp - iat > route.maxTokenTtlSeconds + route.leeway) return 'malformed'
  const problem = routeTimeProblem(route, claims, nowMs, keyset)
  if (problem !== undefined) return problem
  const aud = claims.aud
  const audiences = route.audiences
  if (typeof aud === 'string' ? !audiences.includes(aud) : !(Array.isArray(aud) && aud.some((a) => audiences.includes(a)))) return 'bad_audience'
  return undefined
}

/**
 * What can change while a trusted issuer's token is cached: the clock, and the keyset's
 * `revocations` rules (by client, subject or token id: a partner's client can be cut off here
 * without waiting for the partner). The keyset's global `revoked_before` is about the keyset's
 * own keys and does not apply. Without `iat`, the lifetime bound is on what is left of it
 * (`exp − now`), which moves with the clock: a clock stepped back must meet it again.
 */
export function routeTimeProblem(route: IssuerRoute, claims: JwtClaims, nowMs: number, keyset: LoadedKeyset | undefined): AuthFailureReason | undefined {
  const nowSeconds = nowMs / 1000
  const { exp, iat, nbf } = claims
  if (iat === undefined && exp - nowSeconds > route.maxTokenTtlSeconds + route.leeway) return 'malformed'
  if (nowSeconds >= exp + route.leeway) return 'expired'
  if ((nbf !== undefined && nowSeconds + route.leeway < (nbf as number)) || (iat !== undefined && iat > nowSeconds + route.leeway)) return 'not_yet_valid'
  if (keyset?.revocations.isRevoked(claims)) return 'revoked'
  return undefined
}

/**
 * The claims an application sees: with a `scope_claim` (`scp`, `permissions`), its value is the
 * `scope` that `requireScope`, forward auth and `/v1/whoami` read — a string or an array of
 * strings, else no `scope` at all (never a value of another shape).
 */
export function routeClaims(route: IssuerRoute, claims: JwtClaims): JwtClaims {
  const name = route.scopeClaim
  if (name === undefined) return claims
  const value = claims[name]
  const usable = typeof value === 'string' || (Array.isArray(value) && value.every((s) => typeof s === 'string'))
  const { scope: _ignored, ...rest } = claims
  return (usable ? { ...rest, scope: value } : rest) as JwtClaims
}

function isNumericDate(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value)
}
