import type { JwtClaims } from '../verifier/claims.js'

/** RFC 6749 §3.3 scope-token: printable ASCII without space, `"` and `\`. */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/

/** A 403 for a verified token that lacks a scope (RFC 6750 §3.1 `insufficient_scope`). */
export interface ScopeRejection {
  status: 403
  headers: Readonly<Record<string, string>>
  /** `reason` as in a 401's body, so a client reads one field for why; `scope` what was missing. */
  body: Readonly<{ error: 'insufficient_scope'; reason: 'insufficient_scope'; scope: string }>
}

/** Whether `value` is one RFC 6749 scope-token. */
export function isScopeToken(value: unknown): value is string {
  return typeof value === 'string' && SCOPE_TOKEN.test(value)
}

/**
 * The scopes a token grants, when every one is a clean RFC 6749 scope-token: a string of
 * scope-tokens separated by single spaces, or an array of scope-tokens. Anything else —
 * an array element holding a space (`["orders:read admin"]`), a non-string, a stray space —
 * is `undefined`: such a claim is never turned into scopes, so that nothing downstream reads
 * `admin` where the token granted the one odd scope `orders:read admin`.
 */
export function grantedScopes(claims: Pick<JwtClaims, 'scope'>): string[] | undefined {
  const granted = claims.scope
  const list = typeof granted === 'string' ? granted.split(' ') : granted
  if (!Array.isArray(list) || list.length === 0 || !list.every(isScopeToken)) return undefined
  return list
}

/**
 * Checks a scope named in code once, when a route is declared, and builds its 403 answer.
 * Throws `TypeError` for a scope that is not one RFC 6749 scope-token (a space would make it two
 * scopes, and the body's `scope` is read as RFC 6750 writes the attribute).
 */
export function scopeRequirement(scope: string): ScopeRejection {
  if (!isScopeToken(scope)) {
    throw new TypeError(`requireScope(scope): scope must be one RFC 6749 scope-token (no spaces or quotes), got ${JSON.stringify(scope)}`)
  }
  return scopesRejection(scope)
}

/**
 * The 403 for a list of scope-tokens, space-separated as RFC 6750 §3 writes them. The challenge
 * is exactly `Bearer error="insufficient_scope"`, the value a client or gateway compares with
 * (RFC 6750 lets a `scope` attribute follow; the body names the scope instead, so the header
 * stays one fixed string).
 */
export function scopesRejection(scope: string): ScopeRejection {
  return Object.freeze({
    status: 403,
    headers: Object.freeze({
      'www-authenticate': 'Bearer error="insufficient_scope"',
      'cache-control': 'no-store',
      'content-type': 'application/json; charset=utf-8',
    }),
    body: Object.freeze({ error: 'insufficient_scope', reason: 'insufficient_scope', scope }),
  } as const)
}

/**
 * Whether the token's `scope` claim holds exactly `scope`: a space-separated string
 * (RFC 8693 §4.2) or an array of strings. `orders` does not match `orders:read`, nor the reverse.
 */
export function hasScope(claims: Pick<JwtClaims, 'scope'>, scope: string): boolean {
  const granted = claims.scope
  if (typeof granted === 'string') return granted.split(' ').includes(scope)
  return Array.isArray(granted) && granted.includes(scope)
}
