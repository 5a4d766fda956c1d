import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { nodeRequestAuthenticator } from '../../lib/core/adapter.js'
import type { CbcJwt } from '../../lib/core/cbc-jwt.js'
import { REJECTIONS, type AuthResult, type RejectionReason } from '../../lib/core/rejection.js'
import { grantedScopes } from '../../lib/core/scope.js'
import type { JwtClaims } from '../../lib/verifier/claims.js'
import { identityHeaders } from '../identity-headers.js'
import { requiredScopes, type RequiredScopes } from '../required-scopes.js'

/** Answers one forward-auth request on Node's own request and response. */
export type ForwardAuthAnswer = (request: IncomingMessage, response: ServerResponse) => void

/**
 * Forward authentication (docs/forward-auth.md) for nginx `auth_request`, Traefik ForwardAuth
 * and Envoy `ext_authz`: 200 with identity headers, or the 401 rejection with `X-Auth-Reason`;
 * 503 before the first keyset. `?scope=orders:write` (space-separated, all required) asks for
 * scopes: a valid token without them is answered 403 `insufficient_scope`, and only clean
 * scope-tokens count as granted. The request's body is never read or parsed: the answer does
 * not depend on it, and it may be of any type.
 *
 * Written on Node's response directly, not through fastify's reply: a gateway asks once per
 * request it forwards, and in a profile of a cached `/v1/auth` fastify's request, reply,
 * hook and send machinery cost more than the token check (docs/performance.md).
 */
export function forwardAuthAnswer(cbc: CbcJwt, logger: Pick<Logger, 'error'>): ForwardAuthAnswer {
  const authenticate = nodeRequestAuthenticator(cbc)
  const failed = (response: ServerResponse) => (err: unknown) => {
    logger.error({ err }, 'forward auth failed')
    // The cause is for the log: its message may name files, hosts or internals.
    if (!response.headersSent) response.writeHead(500, { 'content-type': JSON_TYPE, 'content-length': INTERNAL_ERROR.length }).end(INTERNAL_ERROR)
  }
  return (request, response) => {
    try {
      const required = requiredScopes(request.url)
      const answer = authenticate(request)
      if (answer instanceof Promise) answer.then((result) => send(result, response, required), failed(response))
      else send(answer, response, required)
    } catch (err) {
      failed(response)(err)
    }
  }
}

const JSON_TYPE = 'application/json; charset=utf-8'
const INTERNAL_ERROR = JSON.stringify({ error: 'internal_error', message: 'internal error' })

/** Each rejection's headers with its reason and its body's length, and the body: built once. */
const REFUSALS = new Map(
  Object.values(REJECTIONS).map((r) => {
    const body = JSON.stringify(r.body)
    return [r.reason, { headers: { ...r.headers, 'x-auth-reason': r.reason, 'content-length': String(Buffer.byteLength(body)) }, body }] as const
  }),
) as ReadonlyMap<RejectionReason, { headers: Readonly<Record<string, string>>; body: string }>

function send(result: AuthResult, response: ServerResponse, required: RequiredScopes): void {
  if (result.ok && required !== undefined && !holdsAll(result.claims, required.scopes)) {
    const body = JSON.stringify(required.rejection.body)
    response
      .writeHead(403, { ...required.rejection.headers, 'x-auth-reason': 'insufficient_scope', 'content-length': String(Buffer.byteLength(body)) })
      .end(body)
    return
  }
  if (result.ok) {
    const headers = identityHeaders(result.kid, result.claims)
    headers['cache-control'] = 'no-store'
    // Stated, so that Node neither buffers nor switches to a chunked empty body.
    headers['content-length'] = '0'
    response.writeHead(200, headers).end()
    return
  }
  const refusal = REFUSALS.get(result.reason)!
  response.writeHead(result.status, refusal.headers).end(refusal.body)
}

/** Whether the token grants every scope, counting only clean scope-tokens (as `X-Auth-Scope`). */
function holdsAll(claims: JwtClaims, scopes: readonly string[]): boolean {
  const granted = grantedScopes(claims)
  return granted !== undefined && scopes.every((scope) => granted.includes(scope))
}

/** `/v1/auth` and every path below it (Envoy appends the original path to its prefix), with any query. */
export function isForwardAuthUrl(url: string): boolean {
  return url.startsWith('/v1/auth') && (url.length === 8 || url.charCodeAt(8) === 0x2f /* / */ || url.charCodeAt(8) === 0x3f) /* ? */
}

/**
 * Puts forward auth in front of fastify on the app's own server: a request for `/v1/auth…`
 * is answered at once, every other request goes to fastify as before. The server stays the
 * one fastify made and configured (timeouts, keep-alive, header limit). Throws if fastify
 * ever attaches its handler differently, rather than leaving the path unserved.
 */
export function answerForwardAuthFirst(server: Server, answer: ForwardAuthAnswer): void {
  const handlers = server.listeners('request') as Array<(request: IncomingMessage, response: ServerResponse) => void>
  if (handlers.length !== 1) throw new Error(`expected fastify's one request handler on the server, found ${handlers.length}`)
  const fastifyHandler = handlers[0]!
  server.removeListener('request', fastifyHandler)
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    if (isForwardAuthUrl(request.url!)) answer(request, response)
    else fastifyHandler(request, response)
  })
}

/**
 * The same answer as fastify routes: for `inject` (which never passes through the server) and
 * for any spelling of the path fastify's router decodes to `/v1/auth…` (`/v1/%61uth`). Answered
 * in `onRequest`, before fastify would look at a body; the reply is hijacked, so fastify never
 * sends one of its own.
 */
export function forwardAuthRoutes(app: FastifyInstance, answer: ForwardAuthAnswer) {
  for (const url of ['/v1/auth', '/v1/auth/*']) {
    app.route({
      method: app.supportedMethods,
      url,
      // `done` is never called: the request is answered here and goes no further.
      onRequest: (request, reply, _done) => {
        reply.hijack()
        answer(request.raw, reply.raw)
      },
      handler: async () => undefined,
    })
  }
}
