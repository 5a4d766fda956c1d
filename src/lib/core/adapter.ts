import type { IncomingHttpHeaders } from 'node:http'
import type { Registry } from 'prom-client'
import type { JwtClaims } from '../verifier/claims.js'
import { authorizationFromRawHeaders } from './bearer.js'
import type { CbcJwt, RequestContext } from './cbc-jwt.js'
import { createCbcJwt } from './compose.js'
import { authenticateNowOf } from './immediate.js'
import type { CbcJwtOptions } from './options.js'
import type { AuthResult } from './rejection.js'

/** What a framework adapter puts on an authenticated request (`request.auth`, `req.auth`). */
export interface CbcJwtAuth<Claims extends JwtClaims = JwtClaims> {
  /** The key that verified the token. */
  kid: string
  /** The token's claims, verified. */
  claims: Claims
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

/** The instance an adapter works with, whether it owns it, and the metrics placed. */
export function adapterCore(options: CbcJwtAdapterOptions): { cbc: CbcJwt; owned: boolean } {
  const { cbc: given, registry, ...rest } = options
  const cbc = given ?? createCbcJwt(rest)
  if (registry !== false) cbc.registerMetrics(registry)
  return { cbc, owned: given === undefined }
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
