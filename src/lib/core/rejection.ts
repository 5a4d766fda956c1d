import { AUTH_FAILURE_REASONS, type AuthFailureReason } from '../reasons.js'
import type { JwtClaims } from '../verifier/claims.js'

/** An accepted token: the key that verified it and its claims. */
export interface AuthSuccess<Claims extends JwtClaims = JwtClaims> {
  ok: true
  kid: string
  claims: Claims
}

/** Why a request was refused: a reason of docs/reasons.md, or `not_ready` before the first keyset. */
export type RejectionReason = AuthFailureReason | 'not_ready'

/**
 * A refused request, ready to send: `status`, `headers` (lower-case names) and `body` (the
 * object to send as JSON). 401 with `WWW-Authenticate` (RFC 6750) for a token failure; 503
 * while no keyset is loaded. The objects are shared and frozen: copy before changing them.
 */
export interface AuthRejection {
  ok: false
  reason: RejectionReason
  status: 401 | 503
  headers: Readonly<Record<string, string>>
  body: Readonly<{ error: 'invalid_token' | 'temporarily_unavailable'; reason: RejectionReason }>
}

export type AuthResult<Claims extends JwtClaims = JwtClaims> = AuthSuccess<Claims> | AuthRejection

const JSON_TYPE = 'application/json; charset=utf-8'

function build(reason: RejectionReason): AuthRejection {
  if (reason === 'not_ready') {
    return Object.freeze({
      ok: false,
      reason,
      status: 503,
      // Not a token problem: no WWW-Authenticate. A second is about what a keyset read takes.
      headers: Object.freeze({ 'cache-control': 'no-store', 'content-type': JSON_TYPE, 'retry-after': '1' }),
      body: Object.freeze({ error: 'temporarily_unavailable', reason }),
    } as const)
  }
  return Object.freeze({
    ok: false,
    reason,
    status: 401,
    headers: Object.freeze({
      // RFC 6750 §3.1: a request without credentials gets the challenge without an error code.
      'www-authenticate': reason === 'missing' ? 'Bearer' : 'Bearer error="invalid_token"',
      'cache-control': 'no-store',
      'content-type': JSON_TYPE,
    }),
    body: Object.freeze({ error: 'invalid_token', reason }),
  } as const)
}

/** One frozen answer per reason, built once: a rejection allocates nothing. */
export const REJECTIONS: Readonly<Record<RejectionReason, AuthRejection>> = Object.freeze(
  Object.fromEntries([...AUTH_FAILURE_REASONS, 'not_ready' as const].map((r) => [r, build(r)])) as Record<RejectionReason, AuthRejection>,
)
