import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { adapterCore, nodeRequestAuthenticator, type CbcJwtAdapterOptions } from '../../lib/core/adapter.js'
import { REJECTIONS, type AuthResult } from '../../lib/core/rejection.js'
import { hasScope, scopeRequirement } from '../../lib/core/scope.js'
import { CbcJwtError, ERROR_CODES } from '../../lib/errors.js'
import { dualHook } from './dual-hook.js'
import type { CbcJwtHook } from './types.js'

/** Options of the Fastify plugin: `createCbcJwt`'s, plus `cbc` and `registry`. */
export type CbcJwtFastifyOptions = CbcJwtAdapterOptions

const plugin: FastifyPluginAsync<CbcJwtFastifyOptions> = async (app: FastifyInstance, options: CbcJwtFastifyOptions) => {
  // A second registration (here or in a parent scope) would build a second keyring whose
  // options silently lose to the first: refuse it with a clear message instead.
  if (app.hasDecorator('cbcJwt')) {
    throw new CbcJwtError(
      ERROR_CODES.ALREADY_REGISTERED,
      'cbc-jwt/fastify is already registered on this Fastify instance or a parent: register it once, at the root',
    )
  }
  // Fastify hands the plugin its own register options too; they are not cbc-jwt's (whose
  // createCbcJwt refuses a name it does not know). `logLevel` is both: Fastify's, and cbc-jwt's.
  const { prefix: _prefix, logSerializers: _logSerializers, ...own } = options as CbcJwtFastifyOptions & { prefix?: unknown; logSerializers?: unknown }
  const { cbc, owned, release } = adapterCore(own)
  app.decorate('cbcJwt', cbc)
  app.decorateRequest('auth', null)

  const authenticateRequest = nodeRequestAuthenticator(cbc)
  const authenticate = dualHook((request, reply) => {
    const answer = authenticateRequest(request.raw)
    return answer instanceof Promise ? answer.then((result) => applyAnswer(result, request, reply)) : applyAnswer(answer, request, reply)
  })
  app.decorate('authenticate', authenticate)

  app.decorate('requireScope', (scope: string): CbcJwtHook => {
    const denial = scopeRequirement(scope)
    let warned = false
    return dualHook((request, reply) => {
      const auth = request.auth
      if (!auth) {
        // A route that checks a scope but never authenticated: fail closed, tell the developer once.
        if (!warned) {
          warned = true
          request.log.warn(
            { event: 'scope_without_authentication', route: request.routeOptions.url, scope },
            'requireScope ran before app.authenticate: the request is refused (401)',
          )
        }
        const missing = REJECTIONS.missing
        void reply.code(missing.status).headers(missing.headers).send(missing.body)
        return false
      }
      if (hasScope(auth.claims, scope)) return true
      void reply.code(denial.status).headers(denial.headers).send(denial.body)
      return false
    })
  })

  if (owned) {
    // Another app registered with equal options shares the instance: the last to close closes it.
    app.addHook('onClose', release)
    // The app's ready() waits for the first read; a failed one leaves the routes answering 503.
    await cbc.start()
  }
}

/** Sets `request.auth`, or sends the refusal. True when the request goes on. */
function applyAnswer(result: AuthResult, request: FastifyRequest, reply: FastifyReply): boolean {
  if (result.ok) {
    request.auth = { kid: result.kid, claims: result.claims }
    return true
  }
  void reply.code(result.status).headers(result.headers).send(result.body)
  return false
}

/**
 * The Fastify plugin: `app.authenticate`, `app.requireScope(scope)`, `request.auth`, the
 * metrics on prom-client's default registry (or `registry`), started with the app and closed
 * with it. Configured by the environment (README.md, "Configure") unless options say otherwise.
 *
 * @example
 * import Fastify from 'fastify'
 * import cbcJwt, { authOf } from 'cbc-jwt/fastify'
 * const app = Fastify()
 * await app.register(cbcJwt)
 * app.get('/orders', { onRequest: [app.authenticate, app.requireScope('orders:read')] }, async (request) => authOf(request).claims.sub)
 */
export const cbcJwtPlugin = fp(plugin, { name: 'cbc-jwt', fastify: '5.x' })
