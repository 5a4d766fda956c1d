import type { FastifyInstance, FastifyReply } from 'fastify'
import { nodeRequestAuthenticator } from '../../lib/core/adapter.js'
import type { CbcJwt } from '../../lib/core/cbc-jwt.js'
import type { AuthResult } from '../../lib/core/rejection.js'
import { dualHook } from '../../adapters/fastify/dual-hook.js'
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
export function forwardAuthRoutes(app: FastifyInstance, cbc: CbcJwt) {
  const authenticateRequest = nodeRequestAuthenticator(cbc)
  // Every request is answered here (the hook never lets one go on): at once when the answer is
  // known, after the wait otherwise.
  const decide = dualHook((request, reply) => {
    const answer = authenticateRequest(request.raw)
    return answer instanceof Promise ? answer.then((result) => respond(result, reply)) : respond(answer, reply)
  })
  for (const url of ['/v1/auth', '/v1/auth/*']) {
    app.route({ method: app.supportedMethods, url, onRequest: decide, handler: async () => undefined })
  }
}

/** Sends the answer; the request never goes on to the (empty) handler. */
function respond(result: AuthResult, reply: FastifyReply): false {
  if (result.ok) void reply.code(200).headers(identityHeaders(result.kid, result.claims)).header('cache-control', 'no-store').send()
  else void reply.code(result.status).headers(result.headers).header('x-auth-reason', result.reason).send(result.body)
  return false
}
