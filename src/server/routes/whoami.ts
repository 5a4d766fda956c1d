import type { FastifyInstance } from 'fastify'

/**
 * The body's schema, for fastify's compiled serializer (≈ 0.15 µs less than `JSON.stringify`
 * per request). `sub`, `client_id` and `scope` are whatever the token holds (a scope may be an
 * array), so they have no type: the serializer writes them as `JSON.stringify` would.
 */
const WHOAMI_BODY = {
  type: 'object',
  // `iat` may be null: a trusted issuer may be allowed to omit it (allow_missing_iat).
  properties: { sub: {}, client_id: {}, scope: {}, kid: { type: 'string' }, iat: { type: ['number', 'null'] }, exp: { type: 'number' } },
} as const

/** The protected example route: who the verified token says the caller is. */
export function whoamiRoute(app: FastifyInstance) {
  app.get('/v1/whoami', { onRequest: app.authenticate, schema: { response: { 200: WHOAMI_BODY } } }, async (request, reply) => {
    const { kid, claims } = request.auth!
    const { sub, client_id, scope, iat, exp } = claims
    void reply.header('cache-control', 'no-store')
    // Every field is present; a claim the token lacks is null rather than silently absent.
    // The body is returned, not sent: an async handler that returns the reply makes its promise
    // adopt a thenable, and fastify's `Reply.then` then waits on the response's end — closures
    // and listeners on every request (≈ 1–2 µs of a cached request's CPU, in a perf profile).
    return { sub: sub ?? null, client_id: client_id ?? null, scope: scope ?? null, kid, iat: iat ?? null, exp }
  })
}
