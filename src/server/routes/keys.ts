import type { FastifyInstance } from 'fastify'
import type { CbcJwt } from '../../lib/core/cbc-jwt.js'

/**
 * The public face of the keyset: the RFC 7517 JWK Set (public halves of asymmetric keys
 * that verify now) and key metadata. Neither ever carries private or symmetric material.
 */
export function keyRoutes(app: FastifyInstance, cbc: Pick<CbcJwt, 'jwks' | 'keys'>) {
  app.get('/.well-known/jwks.json', async (_request, reply) => reply.header('cache-control', 'public, max-age=60').send(cbc.jwks()))

  app.get('/v1/keys', async (_request, reply) => {
    const body = cbc.keys()
    if (!body) return reply.code(503).send({ error: 'not_ready', reason: 'no valid keyset loaded yet' })
    return body
  })
}
