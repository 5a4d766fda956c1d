import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Keyring } from '../keyring/keyring.js'
import type { Metrics } from '../metrics/metrics.js'
import type { AuthFailureReason } from '../reasons.js'
import type { JwtClaims } from '../verifier/claims.js'
import type { Verifier, VerifyResult } from '../verifier/verifier.js'

export interface AuthContext {
  keyring: Pick<Keyring, 'keyset' | 'refreshForUnknownKid'>
  verifier: Verifier
  metrics: Pick<Metrics, 'authFailure'>
}

export interface Authenticated {
  kid: string
  claims: JwtClaims
}

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i

/**
 * Verifies the request's bearer token. On rejection it answers 401 (RFC 6750), counts the
 * reason, logs reason, kid and client id — never the token — and returns undefined.
 */
export async function authenticate(request: FastifyRequest, reply: FastifyReply, ctx: AuthContext): Promise<Authenticated | undefined> {
  const token = bearerToken(request.headers.authorization)
  if (token === undefined) {
    reject(request, reply, ctx, 'missing', undefined)
    return undefined
  }
  let result = ctx.verifier.verify(token, ctx.keyring.keyset())
  if (!result.ok && result.reason === 'unknown_kid' && result.kid !== undefined) {
    // Maybe a rotation this replica has not seen yet: one shared re-read, behind a cooldown.
    await ctx.keyring.refreshForUnknownKid()
    result = ctx.verifier.verify(token, ctx.keyring.keyset())
  }
  if (!result.ok) {
    reject(request, reply, ctx, result.reason, result)
    return undefined
  }
  return { kid: result.kid, claims: result.claims }
}

/** The token of an `Authorization: Bearer <token>` header, or undefined when there is none. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined
  return BEARER.exec(header)?.[1]
}

function reject(
  request: FastifyRequest,
  reply: FastifyReply,
  ctx: AuthContext,
  reason: AuthFailureReason,
  result: Extract<VerifyResult, { ok: false }> | undefined,
) {
  ctx.metrics.authFailure(reason)
  request.log.warn({ event: 'auth_rejected', reason, kid: result?.kid ?? null, client_id: result?.clientId ?? null }, 'token rejected')
  void reply
    .code(401)
    .header('www-authenticate', reason === 'missing' ? 'Bearer' : 'Bearer error="invalid_token"')
    .header('cache-control', 'no-store')
    .send({ error: 'invalid_token', reason })
}
