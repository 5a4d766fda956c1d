import type { Registry } from 'prom-client'
import type { CbcJwtConfig } from '../config.js'
import type { JwtClaims } from '../verifier/claims.js'
import type { AuthorizationHeader } from './bearer.js'
import type { JwksBody, KeysBody } from './keys-view.js'
import type { AuthResult } from './rejection.js'
import type { SignOptions } from './sign.js'

/** What the adapter knows about the request, for the rejection log line. */
export interface RequestContext {
  /** The peer address of the connection. Logged as `remote_addr`. */
  remoteAddress?: string | undefined
  /** The `X-Forwarded-For` header as received (not trusted, not parsed here). */
  forwardedFor?: string | undefined
}

/**
 * cbc-jwt in an API: one object that holds the keyset in force (hot-reloaded, last good kept),
 * verifies bearer tokens, signs, and counts and logs every rejection — what the service does,
 * without its HTTP server. Built by `createCbcJwt`; the Fastify plugin, the Express middleware
 * and the service's own routes are thin adapters of it.
 */
export interface CbcJwt {
  /** The configuration in force (options over environment over defaults). */
  readonly config: Readonly<CbcJwtConfig>
  /**
   * First load, then the change watch and the refresh interval. Resolves after the first read,
   * whatever its outcome: a failed first read leaves `ready()` false and is retried on the
   * interval; it does not throw. Calling it again returns the same promise.
   */
  start(): Promise<void>
  /** Stops the watch and the timers; nothing is left running. Safe to call twice. */
  close(): Promise<void>
  /** True once a valid keyset has been loaded (it stays loaded through any later failure). */
  ready(): boolean
  /**
   * Checks the `Authorization` header value of a request: the whole path of the service —
   * bearer parsing, verification, one backend re-read for an unknown `kid`, the count in
   * `cbc_jwt_auth_failures_total` and a log line per rejection (never the token).
   *
   * @param header the header as the framework gives it; an array of several values (two
   *   `Authorization` headers) is `malformed`.
   * @param request peer information for the rejection log line.
   * @returns `{ ok: true, kid, claims }`, or `{ ok: false, reason, status, headers, body }`
   *   ready to send: 401 (RFC 6750) for a token failure, 503 `not_ready` (not counted) while
   *   no keyset is loaded, whatever the token.
   *
   * @example
   * const result = await cbc.authenticate(req.headers.authorization)
   * if (!result.ok) return res.writeHead(result.status, result.headers).end(JSON.stringify(result.body))
   * console.log(result.claims.sub)
   */
  authenticate<Claims extends JwtClaims = JwtClaims>(header: AuthorizationHeader, request?: RequestContext): Promise<AuthResult<Claims>>
  /**
   * Signs a token with the current key (following rotations, no restart): header `alg`, `kid`;
   * claims `iat`, `exp` = `iat` + ttl, a random `jti`, and `iss`/`aud` from the configuration
   * unless `claims` has them. Rejects with `ERR_REFUSED` when `ttl` is over the max token TTL,
   * `ERR_NOT_READY` before the first keyset.
   *
   * @example
   * const token = await cbc.sign({ sub: 'alice', client_id: 'billing', scope: 'orders:read' }, { ttl: '15m' })
   */
  sign(claims: Record<string, unknown>, options?: SignOptions): Promise<string>
  /** The RFC 7517 JWK Set of the public halves of the asymmetric keys that verify now. */
  jwks(): JwksBody
  /** Key metadata (kid, alg, status, ages — never material); undefined before the first load. */
  keys(): KeysBody | undefined
  /**
   * Puts the metrics of docs/metrics.md on a prom-client registry. Registering again on the same
   * registry does nothing; a registry that holds the metrics of a closed instance (one
   * re-created after `close()`) gets this one's instead. A registry that holds those of another
   * instance still open is refused with `ERR_ALREADY_REGISTERED`, changing nothing: the two
   * would be exported as one and one instance's counts lost. Share one instance instead.
   * @default registry prom-client's default `register`
   */
  registerMetrics(registry?: Registry): void
}
