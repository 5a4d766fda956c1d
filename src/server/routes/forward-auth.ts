import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { RequestOrigin } from '../../core/adapter.js'
import { authorizationFromRawHeaders } from '../../core/bearer.js'
import type { CbcJwt } from '../../core/cbc-jwt.js'
import { authenticateNowOf } from '../../core/immediate.js'
import type { AuthResult } from '../../core/rejection.js'
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
  const authenticateNow = authenticateNowOf(cbc)
  // A callback hook that never calls `done`: every request is answered here. An answer known at
  // once is sent at once; one that waits (threadpool, re-read) is a promise fastify waits for.
  function decide(request: FastifyRequest, reply: FastifyReply, _done: HookHandlerDoneFunction): Promise<FastifyReply> | undefined {
    const answer = authenticateNow(authorizationFromRawHeaders(request.raw.rawHeaders), new RequestOrigin(request.raw))
    if (answer instanceof Promise) return answer.then((result) => respond(result, reply))
    respond(answer, reply)
    return undefined
  }
  for (const url of ['/v1/auth', '/v1/auth/*']) {
    app.route({ method: app.supportedMethods, url, onRequest: decide, handler: async () => undefined })
  }
}

/** The reply (a thenable fastify waits on until it is sent). */
function respond(result: AuthResult, reply: FastifyReply): FastifyReply {
  if (result.ok) return reply.code(200).headers(identityHeaders(result.kid, result.claims)).header('cache-control', 'no-store').send()
  return reply.code(result.status).headers(result.headers).header('x-auth-reason', result.reason).send(result.body)
}
