import type { FastifyInstance, FastifyReply } from 'fastify'
import type { CbcJwt } from '../../lib/core/cbc-jwt.js'
import { REJECTIONS } from '../../lib/core/rejection.js'

/**
 * The public face of the keyset: the RFC 7517 JWK Set (public halves of asymmetric keys
 * that verify now) and key metadata. Neither ever carries private or symmetric material.
 */
export function keyRoutes(app: FastifyInstance, cbc: Pick<CbcJwt, 'jwks' | 'keys' | 'ready'>) {
  // Before the first load, nothing: an empty JWK Set would be cached (by a relying party, a CDN)
  // as "this issuer has no keys" for as long as the answer says. The same 503 as a token gets
  // then (no-store, Retry-After), so a client handles one shape of "not yet".
  const { status, headers, body } = REJECTIONS.not_ready
  const notReady = (reply: FastifyReply) => reply.code(status).headers(headers).send(body)

  app.get('/.well-known/jwks.json', async (_request, reply) =>
    cbc.ready() ? reply.header('cache-control', 'public, max-age=60').send(cbc.jwks()) : notReady(reply),
  )

  app.get('/v1/keys', async (_request, reply) => {
    const body = cbc.keys()
    if (!body) return notReady(reply)
    return body
  })
}
