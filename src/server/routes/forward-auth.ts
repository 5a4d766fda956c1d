import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { forwardedFor } from '../../core/adapter.js'
import { authorizationFromRawHeaders } from '../../core/bearer.js'
import type { CbcJwt } from '../../core/cbc-jwt.js'
import { identityHeaders } from '../identity-headers.js'

/**
 * Forward authentication (CONTRACT §7) for nginx `auth_request`, Traefik ForwardAuth and
 * Envoy `ext_authz`: `/v1/auth` and every path below it (Envoy appends the original path to
 * its prefix), any method. 200 with identity headers, or the rejection of §2 with
 * `X-Auth-Reason`; 503 before the first keyset.
 *
 * The answer is given in `onRequest`, before Fastify looks at a body: the request being
 * authorised may carry any body with any content type, and none of it is read or parsed.
 */
export function forwardAuthRoutes(app: FastifyInstance, cbc: Pick<CbcJwt, 'authenticate'>) {
  const decide = async (request: FastifyRequest, reply: FastifyReply) => {
    const result = await cbc.authenticate(authorizationFromRawHeaders(request.raw.rawHeaders), {
      remoteAddress: request.socket.remoteAddress,
      forwardedFor: forwardedFor(request.headers['x-forwarded-for']),
    })
    if (result.ok) {
      await reply.code(200).headers(identityHeaders(result.kid, result.claims)).header('cache-control', 'no-store').send()
      return
    }
    await reply.code(result.status).headers(result.headers).header('x-auth-reason', result.reason).send(result.body)
  }
  for (const url of ['/v1/auth', '/v1/auth/*']) {
    app.route({ method: app.supportedMethods, url, onRequest: decide, handler: async () => undefined })
  }
}
