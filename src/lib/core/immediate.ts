import type { AuthorizationHeader } from './bearer.js'
import type { CbcJwt, RequestContext } from './cbc-jwt.js'
import type { AuthResult } from './rejection.js'

/**
 * `authenticate` without the promise when none is needed: the answer itself when it is known
 * at once (a cached acceptance, an HMAC check, a rejection before the signature), a promise
 * only when the signature goes to the threadpool or an unknown kid to the backend. Same
 * checks, same counts, same log lines. An adapter that can continue synchronously (a
 * Fastify callback hook) saves the promises and microtask turns of a request that has none
 * to wait for — on a warm cache, most of the time `authenticate` itself took.
 */
export type AuthenticateNow = (header: AuthorizationHeader, request?: RequestContext) => AuthResult | Promise<AuthResult>

// Kept beside the public object, not on it: the public interface stays `authenticate`.
const byInstance = new WeakMap<CbcJwt, AuthenticateNow>()

/** Records the immediate form of an instance built by `composeCbcJwt`. */
export function provideAuthenticateNow(cbc: CbcJwt, authenticateNow: AuthenticateNow): void {
  byInstance.set(cbc, authenticateNow)
}

/** The immediate form of `cbc.authenticate`; for an instance made elsewhere, `authenticate` itself. */
export function authenticateNowOf(cbc: CbcJwt): AuthenticateNow {
  return byInstance.get(cbc) ?? ((header, request) => cbc.authenticate(header, request))
}
