import type { FastifyInstance } from 'fastify'
import { authenticate, type AuthContext } from '../authenticate.js'

/** The protected example route: who the verified token says the caller is. */
export function whoamiRoute(app: FastifyInstance, ctx: AuthContext) {
  app.get('/v1/whoami', async (request, reply) => {
    const auth = await authenticate(request, reply, ctx)
    if (!auth) return reply
    const { sub, client_id, scope, iat, exp } = auth.claims
    return reply.header('cache-control', 'no-store').send({ sub, client_id, scope, kid: auth.kid, iat, exp })
  })
}
