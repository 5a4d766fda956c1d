import { grantedScopes } from '../lib/core/scope.js'
import type { JwtClaims } from '../lib/verifier/claims.js'

/**
 * A header value that is safe to pass on: printable ASCII, no control characters or line
 * breaks (no header injection, no response splitting), no leading or trailing space (a proxy
 * would trim it and two hops would disagree), not empty.
 */
const SAFE_VALUE = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/

function safe(value: unknown): string | undefined {
  return typeof value === 'string' && SAFE_VALUE.test(value) ? value : undefined
}

/**
 * The identity of a verified token as forward-auth response headers (docs/forward-auth.md). A claim the
 * token lacks, or one whose value is not safe, is an absent header — never a repaired one.
 * `X-Auth-Client-Id` is `client_id`, else `azp` (when `client_id` is present but unsafe, the
 * header is left out rather than filled from `azp`). `X-Auth-Scope` is sent only when every
 * scope granted is one RFC 6749 scope-token.
 */
export function identityHeaders(kid: string, claims: JwtClaims): Record<string, string> {
  const headers: Record<string, string> = { 'x-auth-kid': kid }
  const subject = safe(claims.sub)
  if (subject !== undefined) headers['x-auth-subject'] = subject
  const clientId = claims.client_id !== undefined ? safe(claims.client_id) : safe(claims.azp)
  if (clientId !== undefined) headers['x-auth-client-id'] = clientId
  // Only clean scope-tokens: a scope array element holding a space would read as two scopes
  // behind the gateway (`["orders:read admin"]` must never become `admin`).
  const scopes = grantedScopes(claims)
  if (scopes !== undefined) headers['x-auth-scope'] = scopes.join(' ')
  if (typeof claims.exp === 'number' && Number.isFinite(claims.exp)) headers['x-auth-expires'] = String(Math.floor(claims.exp))
  return headers
}
