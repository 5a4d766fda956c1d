/**
 * `cbc-jwt/express`: the middleware for Express 4 and 5. No type from `express` is needed:
 * the request and response are described by what the middleware uses, which both versions have.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { adapterCore, nodeRequestAuthenticator, type CbcJwtAdapterOptions, type CbcJwtAuth } from '../../lib/core/adapter.js'
import type { CbcJwt } from '../../lib/core/cbc-jwt.js'
import { REJECTIONS, type AuthResult } from '../../lib/core/rejection.js'
import { hasScope, scopeRequirement } from '../../lib/core/scope.js'

export type { CbcJwtAuth } from '../../lib/core/adapter.js'
export { authOf } from '../../lib/core/adapter.js'
/** Options of `cbcJwt()`: `createCbcJwt`'s, plus `cbc` and `registry`. */
export type CbcJwtExpressOptions = CbcJwtAdapterOptions

// The augmentation ships with the middleware: `req.auth` is typed in the user's handlers.
declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The verified token, on a request that passed `cbcJwt()`. */
      auth?: CbcJwtAuth
    }
  }
}

/** The parts of Express's request the middleware reads (and `auth`, which it sets). */
export interface CbcJwtRequest {
  rawHeaders: string[]
  headers: IncomingHttpHeaders
  socket: { remoteAddress?: string | undefined }
  auth?: CbcJwtAuth
}

/** The parts of Express's response the middleware answers with. */
export interface CbcJwtResponse {
  status(code: number): CbcJwtResponse
  set(headers: Record<string, string>): CbcJwtResponse
  json(body: unknown): unknown
}

export type CbcJwtNext = (err?: unknown) => void

export interface CbcJwtMiddleware {
  (req: CbcJwtRequest, res: CbcJwtResponse, next: CbcJwtNext): void
  /**
   * The instance behind the middleware (and every other `cbcJwt()` of equal options): `sign`,
   * `jwks`, `keys`, `ready`, and `close()` on shutdown.
   */
  readonly cbc: CbcJwt
  /** Resolves after the first keyset read (requests wait for it too). */
  readonly started: Promise<void>
}

/**
 * Verifies the bearer token of every request it sees: answers 401 (503 before the first
 * keyset) like the service, or sets `req.auth` and calls `next()`. Starts loading keys at
 * once; its timers never keep the process alive. Metrics go on prom-client's default
 * registry unless `registry` says otherwise. Calls with equal options (one per route, say)
 * share one instance: one keyring, and every route's rejections counted together. Another
 * open instance's metrics already on the registry make it throw `ERR_ALREADY_REGISTERED`.
 *
 * @example
 * import express from 'express'
 * import { authOf, cbcJwt, requireScope } from 'cbc-jwt/express'
 * const app = express()
 * app.use('/orders', cbcJwt())
 * app.get('/orders', requireScope('orders:read'), (req, res) => res.json({ sub: authOf(req).claims.sub }))
 */
export function cbcJwt(options: CbcJwtExpressOptions = {}): CbcJwtMiddleware {
  const { cbc, owned } = adapterCore(options)
  const started = owned ? cbc.start() : Promise.resolve()
  const check = nodeRequestAuthenticator(cbc)
  let isStarted = !owned
  void started.then(
    () => (isStarted = true),
    () => undefined,
  )
  const middleware = (req: CbcJwtRequest, res: CbcJwtResponse, next: CbcJwtNext): void => {
    // Promise chains, not async/await: Express 4 does not catch a rejected promise. An answer
    // known at once (a cached token, a rejection) goes on at once, without a promise.
    let answer: AuthResult | Promise<AuthResult>
    try {
      answer = isStarted ? check(req) : started.then(() => check(req))
    } catch (err) {
      next(err)
      return
    }
    if (answer instanceof Promise) answer.then((result) => respond(result, req, res, next), next)
    else respond(answer, req, res, next)
  }
  return Object.assign(middleware, { cbc, started })
}

function respond(result: AuthResult, req: CbcJwtRequest, res: CbcJwtResponse, next: CbcJwtNext): void {
  if (result.ok) {
    req.auth = { kid: result.kid, claims: result.claims }
    next()
  } else {
    res.status(result.status).set(result.headers).json(result.body)
  }
}

/**
 * After `cbcJwt()`: the token's `scope` (space-separated, or an array) must hold `scope`,
 * else 403 with `WWW-Authenticate: Bearer error="insufficient_scope"` (RFC 6750) and a body naming the scope.
 * On a request that `cbcJwt()` did not authenticate it answers 401 (`missing`): it fails
 * closed, never open. Throws `TypeError` at once for a scope that is not one scope-token.
 *
 * @example app.delete('/orders/:id', cbcJwt(), requireScope('orders:write'), handler)
 */
export function requireScope(scope: string): (req: CbcJwtRequest, res: CbcJwtResponse, next: CbcJwtNext) => void {
  const denial = scopeRequirement(scope)
  return (req, res, next) => {
    const auth = req.auth
    if (!auth) {
      const missing = REJECTIONS.missing
      res.status(missing.status).set(missing.headers).json(missing.body)
      return
    }
    if (hasScope(auth.claims, scope)) next()
    else res.status(denial.status).set(denial.headers).json(denial.body)
  }
}
