import type { FastifyInstance } from 'fastify'

/** The protected example route: who the verified token says the caller is. */
export function whoamiRoute(app: FastifyInstance) {
  app.get('/v1/whoami', { onRequest: app.authenticate }, async (request, reply) => {
    const { kid, claims } = request.auth!
    const { sub, client_id, scope, iat, exp } = claims
    // Every field is present; a claim the token lacks is null rather than silently absent.
    return reply.header('cache-control', 'no-store').send({ sub: sub ?? null, client_id: client_id ?? null, scope: scope ?? null, kid, iat, exp })
  })
}
