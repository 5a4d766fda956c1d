import type { FastifyInstance } from 'fastify'
import { authenticate, type AuthContext } from '../authenticate.js'

/** The protected example route: who the verified token says the caller is. */
export function whoamiRoute(app: FastifyInstance, ctx: AuthContext) {
  app.get('/v1/whoami', async (request, reply) => {
    const auth = await authenticate(request, reply, ctx)
    if (!auth) return reply
    const { sub, client_id, scope, iat, exp } = auth.claims
    // Every field is present; a claim the token lacks is null rather than silently absent.
    return reply
      .header('cache-control', 'no-store')
      .send({ sub: sub ?? null, client_id: client_id ?? null, scope: scope ?? null, kid: auth.kid, iat, exp })
  })
}
