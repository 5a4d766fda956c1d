import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { CbcJwtAuth } from '../../lib/core/adapter.js'
import type { CbcJwt } from '../../lib/core/cbc-jwt.js'

/** A hook for `onRequest` or `preHandler`, of a route or of a scope. */
export interface CbcJwtHook {
  /** Called from your own code: resolves once the request is authenticated or answered. */
  (request: FastifyRequest, reply: FastifyReply): Promise<void>
  /** Called by fastify as a hook: goes on through `done`, or returns a promise to wait for. */
  (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): Promise<void> | undefined
}

// The augmentation ships with the plugin: a user writes none of it.
declare module 'fastify' {
  interface FastifyInstance {
    /** The cbc-jwt instance behind the plugin (sign, jwks, keys, ready). */
    cbcJwt: CbcJwt
    /**
     * Verifies the request's bearer token; answers 401 (or 503 before the first keyset) and
     * stops the request, or sets `request.auth`.
     * @example app.get('/orders', { onRequest: app.authenticate }, handler)
     */
    authenticate: CbcJwtHook
    /**
     * A hook placed after `app.authenticate`: the token's `scope` must hold `scope`, else 403
     * `insufficient_scope` (RFC 6750). Without a prior `app.authenticate` it answers 401.
     * @example app.get('/orders', { onRequest: [app.authenticate, app.requireScope('orders:read')] }, handler)
     */
    requireScope(scope: string): CbcJwtHook
  }
  interface FastifyRequest {
    /** The verified token, on a request that passed `app.authenticate`; null otherwise. */
    auth: CbcJwtAuth | null
  }
}
