import type { LoadedKey, LoadedKeyset } from '../keyset/load.js'
import type { AuthFailureReason } from '../reasons.js'
import { clientIdClaim, loggableAudience, loggableClientId, loggableIssuerKid, loggableKid, type JwtClaims } from './claims.js'
import { hasCanonicalBase64urlTail } from './base64url.js'
import { routeClaims, routeClaimsProblem, routeTimeProblem, type IssuerRoute } from './issuer-route.js'
import { signatureCheckFor, THREADPOOL_FAMILIES, type SignatureFamily } from './signature.js'
import { freezeAndCost } from './claims-cost.js'
import { createTokenCache, estimateEntryBytes, type CachedAcceptance, type TokenCache } from './token-cache.js'
import { acceptableType } from './token-type.js'
import { OPTIONS } from '../options-table.js'

export interface VerifierOptions {
  /** Expected `iss`. @default 'cbc-omega2' */
  issuer: string
  /** Expected audience; a token's `aud` (string or array) must contain it. @default 'cbc-api' */
  audience: string
  /** Leeway for `exp`, `nbf` and `iat`, in seconds; not applied to `revoked_before`. @default 30 */
  clockToleranceSeconds: number
  /** Tokens longer than this many bytes are rejected before any parsing. @default 8192 */
  maxTokenBytes: number
  /**
   * The longest lifetime (`exp − iat`, in seconds) a token may claim; a longer one is `malformed`:
   * no issuer of ours mints it, and it would outlive the rotation grace sized from this value.
   * @default 86400 (`CBC_JWT_MAX_TOKEN_TTL`, 24h)
   */
  maxTokenTtlSeconds?: number
  /** Clock in ms since the epoch. @default Date.now */
  now?: () => number
  /**
   * Size of the verified-token cache: repeats of an accepted token skip the
   * signature check, never the checks that can change (key still loaded with the same
   * material, `not_after`, `exp`, `nbf`, `iat`, `revoked_before`); `iss` and `aud` cannot
   * change for a verifier, whose cache is its own. `0` turns it off.
   * @default 10000
   */
  tokenCacheEntries?: number | undefined
  /** Bound on the cache's estimated heap bytes, whichever bound is reached first. @default 16777216 (16 MiB) */
  tokenCacheMaxBytes?: number | undefined
  /**
   * Signature families checked on the libuv threadpool rather than on the event loop; the
   * answer is the same either way. `[]` keeps every check inline (a CLI has no loop to free).
   * @default ['ecdsa', 'rsa-pss'] (measured: docs/performance.md)
   */
  threadpoolFamilies?: readonly SignatureFamily[] | undefined
  /**
   * Other issuers whose tokens are accepted, each with its own keys and rules. A token is
   * routed by its `iss` before any key lookup, with or without them: `issuer` uses the keyset,
   * a listed issuer its own keys, any other `iss` is `bad_issuer`.
   * @default []
   */
  trustedIssuers?: readonly IssuerRoute[] | undefined
}

export type VerifyResult =
  | { ok: true; kid: string; claims: JwtClaims }
  | {
      ok: false
      reason: AuthFailureReason
      /** The token's kid when it is safe to log (matches the kid grammar: its trusted issuer's, for its tokens), else undefined. */
      kid: string | undefined
      /** For logs: only from a token whose signature verified. */
      clientId: string | undefined
      /** The claim `clientId` was read from when it is not `client_id` (an `azp`, or a `sub`: see `clientIdClaim`). */
      clientIdClaim?: 'azp' | 'sub' | undefined
      /**
       * `unknown_kid` only: the kid names a key of the keyset in force that is past its
       * `not_after` (retired, or cut off by a compromise rotation). Reading the backend again
       * cannot make it verify, so it triggers no re-read: a flood of leaked-key tokens must not
       * hold the re-read cooldown that the replacement key's first tokens need.
       */
      retired?: true | undefined
      /** The trusted issuer the token was routed to (from the configuration, never the token); undefined for the keyset's own. */
      issuer?: string | undefined
      /**
       * `bad_audience` only: the audience(s) this verifier accepts, and the token's `aud` made
       * fit for a log line (escaped and bounded, `loggableAudience`).
       */
      audience?: { expected: readonly string[]; received: string | string[] | undefined } | undefined
    }

export interface VerifyOptions {
  /**
   * The same token verified again after the unknown-kid re-read: its cache lookup was made
   * (and counted) the first time, so the cache is not asked again. @default false
   */
  again?: boolean | undefined
}

export interface Verifier {
  /**
   * Verifies a compact JWS against a keyset: one token, one result, no I/O. The result is
   * immediate (a rejection before the signature, an HMAC token, a cached acceptance) or a
   * promise (a public-key signature checked on the threadpool): `await` it either way.
   */
  verify(token: string, keyset: LoadedKeyset | undefined, options?: VerifyOptions): VerifyResult | Promise<VerifyResult>
  /** The verified-token cache, or undefined when it is off; its `stats()` feed the metrics. */
  readonly tokenCache: TokenCache | undefined
}

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

/**
 * Builds a verifier; options are checked once here so the per-token path does no setup.
 *
 * Order of checks (each maps to exactly one reason): size → shape → header → `alg: none` →
 * `crit`, `b64`, `typ` → `iss` (the keyset's issuer or a trusted one, else `bad_issuer`) → kid →
 * key lookup among that issuer's keys (incl. `not_after`) → header alg equals the key's alg →
 * canonical signature encoding → signature → payload a JSON object → `exp`/`iat` present,
 * lifetime ≤ max → `exp` → `nbf`/`iat` in the future → `revoked_before`, `revocations` → `aud`.
 * A payload that is not a JSON object has no `iss`: it is looked up among the keyset's keys.
 * `iss` is the one claim read before the signature has verified, and only to choose whose keys
 * to look the `kid` up in; nothing else of the payload is trusted before the signature.
 *
 * This is one piece of the path, not the path: it neither re-reads the backend for an unknown
 * `kid` (a replica would refuse a new key's tokens until its next poll) nor counts or logs a
 * rejection. An API uses `createCbcJwt().authenticate`, which does all of it.
 *
 * @example
 * const verifier = createVerifier({ issuer: 'cbc-omega2', audience: 'cbc-api', clockToleranceSeconds: 30, maxTokenBytes: 8192 })
 * const result = await verifier.verify(token, keyring.keyset()) // offline checks, e.g. `cbc-jwt token verify`
 */
export function createVerifier(options: VerifierOptions): Verifier {
  const { issuer, audience, clockToleranceSeconds: leeway, maxTokenBytes } = options
  if (!issuer) throw new TypeError('issuer must be a non-empty string')
  if (!audience) throw new TypeError('audience must be a non-empty string')
  if (!(leeway >= 0)) throw new RangeError('clockToleranceSeconds must be ≥ 0')
  if (!(maxTokenBytes > 0)) throw new RangeError('maxTokenBytes must be > 0')
  const maxTokenTtlSeconds = options.maxTokenTtlSeconds ?? OPTIONS.maxTokenTtlSeconds.default
  if (!(maxTokenTtlSeconds > 0)) throw new RangeError('maxTokenTtlSeconds must be > 0')
  const now = options.now ?? Date.now
  const threadpool = options.threadpoolFamilies ?? THREADPOOL_FAMILIES
  const cacheEntries = options.tokenCacheEntries ?? OPTIONS.tokenCacheEntries.default
  if (!(Number.isInteger(cacheEntries) && cacheEntries >= 0)) throw new RangeError('tokenCacheEntries must be an integer ≥ 0')
  // The cache is private to this verifier, whose issuer/audience never change: an entry can
  // never be answered under another configuration.
  const cache = cacheEntries > 0 ? createTokenCache({ maxEntries: cacheEntries, maxBytes: options.tokenCacheMaxBytes }) : undefined
  const routes = new Map<string, IssuerRoute>()
  for (const route of options.trustedIssuers ?? []) {
    if (route.issuer === issuer || routes.has(route.issuer))
      throw new TypeError(`trustedIssuers: ${route.issuer} is listed twice or is the keyset's own issuer`)
    routes.set(route.issuer, route)
  }
  const expectedAudience = [audience]

  /**
   * The checks after the signature that can change while a token is cached: time, the
   * keyset's `revoked_before` and its `revocations` rules. The caller has checked the key (loaded, same material, before
   * `not_after`).
   */
  const timeProblem = (claims: JwtClaims, nowMs: number, keyset: LoadedKeyset): AuthFailureReason | undefined => {
    const { exp, iat, nbf } = claims
    const nowSeconds = nowMs / 1000
    if (nowSeconds >= exp + leeway) return 'expired'
    if ((nbf !== undefined && nowSeconds + leeway < (nbf as number)) || iat > nowSeconds + leeway) return 'not_yet_valid'
    // No leeway here: "issued before the spike" must mean exactly that.
    if (keyset.revokedBefore !== undefined && iat < keyset.revokedBefore) return 'revoked'
    // The keyset's rules by client, subject and token id: a few Map lookups, built at load.
    if (keyset.revocations.isRevoked(claims)) return 'revoked'
    return undefined
  }

  /**
   * `aud` (`iss` chose the route): the claims are frozen and this verifier's audience never
   * changes, so an acceptance never needs it again (its cache is private to this verifier). A
   * hit skips it, and with it a read of memory a busy server no longer has at hand.
   */
  const audienceProblem = (claims: JwtClaims): AuthFailureReason | undefined => {
    const aud = claims.aud
    if (!(aud === audience || (Array.isArray(aud) && aud.includes(audience)))) return 'bad_audience'
    return undefined
  }

  const fail = (reason: AuthFailureReason, kid?: unknown, claims?: JwtClaims, route?: IssuerRoute): VerifyResult => {
    // A trusted issuer's token is named by its issuer's kid grammar, which the unknown-kid re-read needs too.
    const result: VerifyResult = {
      ok: false,
      reason,
      kid: route === undefined ? loggableKid(kid) : loggableIssuerKid(kid),
      clientId: claims ? loggableClientId(claims) : undefined,
    }
    if (result.clientId !== undefined) {
      const claim = clientIdClaim(claims!)
      if (claim !== 'client_id') result.clientIdClaim = claim
    }
    if (route !== undefined) result.issuer = route.issuer
    // What was expected and what came: the signature verified, so the token is ours (or a
    // trusted issuer's) and sent to the wrong API — the log line must say which.
    if (reason === 'bad_audience' && claims !== undefined) {
      result.audience = { expected: route === undefined ? expectedAudience : route.audiences, received: loggableAudience(claims.aud) }
    }
    return result
  }

  /** A trusted issuer's token after its signature verified: its route's rules, then the cache. */
  function acceptRouted(
    route: IssuerRoute,
    token: string,
    kid: string,
    key: LoadedKey,
    nowMs: number,
    keyset: LoadedKeyset | undefined,
    verified: JwtClaims,
  ): VerifyResult {
    const problem = routeClaimsProblem(route, verified, nowMs, keyset)
    if (problem !== undefined) return fail(problem, kid, verified, route)
    const claims = routeClaims(route, verified)
    const claimsBytes = freezeAndCost(claims)
    if (claimsBytes === undefined) return fail('malformed', kid, verified, route)
    cache?.store(token, { kid: key.kid, alg: key.alg, verifyKey: key.verifyKey, claims, bytes: estimateEntryBytes(token, claimsBytes), route })
    return { ok: true, kid: key.kid, claims }
  }

  /**
   * Everything after the signature, in the same order whether its answer came at once or later.
   * `claims` is the payload routing decoded, undefined when it is not a JSON object (trusted only from here on).
   */
  function afterSignature(
    verified: boolean,
    token: string,
    kid: string,
    key: LoadedKey,
    nowMs: number,
    keyset: LoadedKeyset | undefined,
    claims: JwtClaims | undefined,
    route: IssuerRoute | undefined,
  ): VerifyResult {
    if (!verified) return fail('bad_signature', kid, undefined, route)
    if (!claims) return fail('malformed', kid)
    if (route !== undefined) return acceptRouted(route, token, kid, key, nowMs, keyset, claims)
    if (keyset === undefined) return fail('unknown_kid', kid)
    const { exp, iat, nbf } = claims
    if (!isNumericDate(exp) || !isNumericDate(iat) || (nbf !== undefined && !isNumericDate(nbf))) {
      return fail('malformed', kid, claims)
    }
    // Time-independent, so a cached acceptance never needs it again.
    if (exp - iat > maxTokenTtlSeconds + leeway) return fail('malformed', kid, claims)
    const problem = timeProblem(claims, nowMs, keyset) ?? audienceProblem(claims)
    if (problem !== undefined) return fail(problem, kid, claims)
    // Frozen: a cached acceptance hands the same claims to every repeat of the token. The same
    // walk counts what they hold, so the cache's byte bound holds whatever shape they have.
    const claimsBytes = freezeAndCost(claims)
    if (claimsBytes === undefined) return fail('malformed', kid, claims)
    // The key's own kid string (the same text as the token's): every repeat then reads one
    // shared string rather than one parsed from each token.
    cache?.store(token, { kid: key.kid, alg: key.alg, verifyKey: key.verifyKey, claims, bytes: estimateEntryBytes(token, claimsBytes) })
    return { ok: true, kid: key.kid, claims }
  }

  /**
   * Whether a cached acceptance still holds: its key still loaded with the same material, before
   * its `not_after`, and the checks that can change while a token is cached. One function for
   * the keyset's own tokens and one for a trusted issuer's, so that each sees one kind of key
   * and claims only, whatever mix of tokens a process serves first.
   */
  const ownRepeatHolds = (cached: CachedAcceptance, keyset: LoadedKeyset | undefined, nowMs: number): boolean => {
    const key = keyset?.keys.get(cached.kid)
    return (
      key !== undefined &&
      key.verifyKey === cached.verifyKey &&
      key.alg === cached.alg &&
      (key.notAfter === undefined || nowMs < key.notAfter) &&
      timeProblem(cached.claims, nowMs, keyset!) === undefined
    )
  }
  const routedRepeatHolds = (cached: CachedAcceptance, route: IssuerRoute, keyset: LoadedKeyset | undefined, nowMs: number): boolean => {
    const key = route.keys()?.get(cached.kid)
    return (
      key !== undefined &&
      key.verifyKey === cached.verifyKey &&
      key.alg === cached.alg &&
      (key.notAfter === undefined || nowMs < key.notAfter) &&
      routeTimeProblem(route, cached.claims, nowMs, keyset) === undefined
    )
  }

  return {
    tokenCache: cache,
    verify(token, keyset, options) {
      // Size first: nothing is decoded from an oversized token. Length ≤ bytes, so only a
      // token near the limit pays for counting bytes.
      if (token.length > maxTokenBytes || (token.length * 3 > maxTokenBytes && Buffer.byteLength(token) > maxTokenBytes)) {
        return fail('too_large')
      }
      const cached = options?.again ? undefined : cache?.lookup(token)
      if (cached !== undefined) {
        // A repeat of an accepted token: the signature is not checked again, nor are `iss` and
        // `aud` (see audienceProblem); everything else is. Any doubt (key gone, material changed, past not_after, a time check, revocation)
        // falls through to the full path, which then gives the exact answer.
        // A trusted issuer's token is checked against its issuer's keys and rules, never the keyset's.
        const route = cached.route
        const nowMs = now()
        if (route === undefined ? ownRepeatHolds(cached, keyset, nowMs) : routedRepeatHolds(cached, route, keyset, nowMs)) {
          return { ok: true, kid: cached.kid, claims: cached.claims }
        }
        cache!.drop(token)
      }
      if (!COMPACT_JWS.test(token)) return fail('malformed')
      const dot1 = token.indexOf('.')
      const dot2 = token.indexOf('.', dot1 + 1)
      const header = decodeJsonObject(token.slice(0, dot1))
      if (!header || typeof header.alg !== 'string') return fail('malformed', header?.kid)
      const { alg, kid } = header
      // `none` is never accepted, whatever the key; the key's alg decides everything else.
      if (alg.toLowerCase() === 'none') return fail('unsupported_alg', kid)
      // We implement no JWS extension, so any `crit` is one we do not understand (RFC 7515 §4.1.11).
      if (header.crit !== undefined) return fail('malformed', kid)
      // RFC 7797 unencoded payloads change what is signed; a verifier that ignored `b64` would
      // read another payload than the signer signed. We implement none of it, so any `b64` is refused.
      if (header.b64 !== undefined) return fail('malformed', kid)
      // Explicit typing (RFC 8725 §3.11): a JWT of another kind signed by the same key (a logout
      // token, a DPoP proof, …) is not an access token here.
      if (!acceptableType(header.typ)) return fail('malformed', kid)
      // Routing by `iss` before any key lookup: a kid is looked up only among the keys of the
      // issuer the token names, so one issuer's key never verifies another's token; a token of
      // no known issuer is `bad_issuer` whether or not it names a kid, and costs no key lookup,
      // no signature check and no re-read of the backend. Only `iss` is used before the
      // signature has verified; the payload is decoded once, here. A payload that is not a JSON
      // object names no issuer: it goes the keyset's way, where the signature judges it first
      // (a token damaged in transit is `bad_signature`, what it is; one validly signed is `malformed`).
      const read = decodeJsonObject(token.slice(dot1 + 1, dot2)) as JwtClaims | undefined
      let route: IssuerRoute | undefined
      if (read !== undefined && read.iss !== issuer) {
        route = typeof read.iss === 'string' ? routes.get(read.iss) : undefined
        if (route === undefined) return fail('bad_issuer', kid)
      }
      if (typeof kid !== 'string' || kid.length === 0) return fail('unknown_kid', undefined, undefined, route)
      // jku, x5u, jwk and x5c are never read: the only keys are the keyset's and the trusted issuers' own.
      const key = route === undefined ? keyset?.keys.get(kid) : route.keys()?.get(kid)
      const nowMs = now()
      if (!key) return fail('unknown_kid', kid, undefined, route)
      if (key.notAfter !== undefined && nowMs >= key.notAfter) return { ...fail('unknown_kid', kid, undefined, route), retired: true } as VerifyResult
      // Algorithm confusion (RS256 → HS256 with the public key as secret, ES → none, …) stops here.
      if (alg !== key.alg) return fail('unsupported_alg', kid, undefined, route)
      // One token, one string: stray low bits in the last character would decode to the same
      // signature under another spelling (a cache, a denylist or a log correlates on the string).
      const signatureText = token.slice(dot2 + 1)
      if (!hasCanonicalBase64urlTail(signatureText)) return fail('bad_signature', kid, undefined, route)
      const signature = Buffer.from(signatureText, 'base64url')
      const verified = signatureCheckFor(key, threadpool)(token.slice(0, dot2), signature)
      // The clock and keyset are those read before the signature, whether its answer is
      // immediate (HMAC, inline) or comes back from the threadpool.
      if (typeof verified === 'boolean') return afterSignature(verified, token, kid, key, nowMs, keyset, read, route)
      return verified.then((ok) => afterSignature(ok, token, kid, key, nowMs, keyset, read, route))
    },
  }
}

function isNumericDate(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value)
}

function decodeJsonObject(segment: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'))
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}
