import type { IncomingHttpHeaders } from 'node:http'
import { register as defaultRegistry, type Registry } from 'prom-client'
import type { JwtClaims } from '../verifier/claims.js'
import { authorizationFromRawHeaders } from './bearer.js'
import type { CbcJwt, RequestContext } from './cbc-jwt.js'
import { createCbcJwt } from './compose.js'
import { authenticateNowOf } from './immediate.js'
import type { CbcJwtOptions } from './options.js'
import { sharedInstance } from './shared-instances.js'
import type { AuthResult } from './rejection.js'

/** What a framework adapter puts on an authenticated request (`request.auth`, `req.auth`). */
export interface CbcJwtAuth<Claims extends JwtClaims = JwtClaims> {
  /** The key that verified the token. */
  kid: string
  /** The token's claims, verified. */
  claims: Claims
}

/**
 * The verified token of a request that passed `app.authenticate` (Fastify) or `cbcJwt()`
 * (Express), never null, with the claims typed as you expect them — as jose's `jwtVerify<T>`:
 * `Claims` is merged over the registered claims (`exp`, `iat` are numbers; the others unknown).
 * The type is your assertion about what your issuer puts in its tokens; nothing checks it at run
 * time. On a request that was not authenticated it throws a `TypeError` (the route answers 500
 * and its handler goes no further): a handler reading identity without the hook is a bug to
 * find at once, not a request to serve.
 *
 * @example
 * app.get('/orders', { onRequest: app.authenticate }, async (request) => {
 *   const { claims } = authOf<{ sub: string; tenant: string }>(request)
 *   return listOrders(claims.tenant, claims.sub)
 * })
 */
export function authOf<Claims extends object = JwtClaims>(request: { auth?: CbcJwtAuth | null | undefined }): CbcJwtAuth<JwtClaims & Claims> {
  const auth = request.auth
  if (auth === null || auth === undefined) {
    throw new TypeError('authOf(request): this request was not authenticated — put app.authenticate (Fastify) or cbcJwt() (Express) before the handler')
  }
  return auth as CbcJwtAuth<JwtClaims & Claims>
}

/** Options of the Fastify plugin and the Express middleware. */
export interface CbcJwtAdapterOptions extends CbcJwtOptions {
  /**
   * An instance you built with `createCbcJwt` and start and close yourself. Without it, the
   * adapter builds one from the other options (and the environment) and owns it.
   */
  cbc?: CbcJwt | undefined
  /**
   * The prom-client registry for the metrics; `false` for none (you call
   * `cbc.registerMetrics` yourself).
   * @default prom-client's default registry
   */
  registry?: Registry | false | undefined
}

/** What an adapter works with: the instance, whether the adapter owns it, and how to hand it back. */
export interface AdapterCore {
  cbc: CbcJwt
  /** False for a `cbc` the user gave: the adapter then neither starts nor closes it. */
  owned: boolean
  /** Hands an owned instance back; the last adapter holding it closes it. Nothing for a given one. */
  release(): Promise<void>
}

/**
 * The instance an adapter works with, its metrics placed. Adapters given equal options share
 * one instance (shared-instances.ts): `app.use('/a', cbcJwt()); app.use('/b', cbcJwt())` is one
 * keyring, and the two routes' rejections are counted together on the registry.
 */
export function adapterCore(options: CbcJwtAdapterOptions): AdapterCore {
  const { cbc: given, registry, ...rest } = options
  if (given !== undefined) {
    if (registry !== false) given.registerMetrics(registry)
    return { cbc: given, owned: false, release: async () => undefined }
  }
  // The environment by value: a call made after the environment changed is not the same options.
  const key = { ...rest, env: { ...(rest.env ?? process.env) }, registry: registry ?? defaultRegistry }
  const shared = sharedInstance(key, () => createCbcJwt(rest))
  try {
    if (registry !== false) shared.cbc.registerMetrics(registry)
  } catch (err) {
    void shared.release()
    throw err
  }
  return { cbc: shared.cbc, owned: true, release: shared.release }
}

/** The parts of a Node request (`http.IncomingMessage`, Express's `req`) an adapter reads. */
export interface NodeRequestLike {
  rawHeaders: readonly string[]
  socket: { remoteAddress?: string | undefined }
  headers: IncomingHttpHeaders
}

/**
 * How every adapter asks: a Node request in, its answer out — at once when it is known, a
 * promise only when it has to wait (immediate.ts). The credential is read from the raw headers
 * (two `Authorization` headers are refused, never one picked), the origin for the log line.
 */
export function nodeRequestAuthenticator(cbc: CbcJwt): (request: NodeRequestLike) => AuthResult | Promise<AuthResult> {
  const authenticateNow = authenticateNowOf(cbc)
  return (request) => authenticateNow(authorizationFromRawHeaders(request.rawHeaders), new RequestOrigin(request))
}

/**
 * Where a request came from, for the log line a rejection (or a sampled acceptance) writes.
 * The peer address is read at once: once a client has gone, its socket no longer knows it,
 * and a forger's rejection is logged only when the threadpool answers. `X-Forwarded-For` is
 * read only when a line is written, which most accepted requests never do.
 */
class RequestOrigin implements RequestContext {
  readonly remoteAddress: string | undefined
  readonly #headers: IncomingHttpHeaders

  constructor(request: NodeRequestLike) {
    this.remoteAddress = request.socket.remoteAddress
    this.#headers = request.headers
  }

  /** `X-Forwarded-For` as one string (several headers are joined, as proxies would). */
  get forwardedFor(): string | undefined {
    const value = this.#headers['x-forwarded-for']
    return Array.isArray(value) ? value.join(', ') : value
  }
}
