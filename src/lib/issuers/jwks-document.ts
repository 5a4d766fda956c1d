import crypto, { type JsonWebKey } from 'node:crypto'
import { ALG_SPECS, PRIVATE_JWK_MEMBERS, isAlg, type Alg } from '../keyset/algorithms.js'
import { keyPolicyProblem } from '../keyset/key-policy.js'
import type { LoadedKey } from '../keyset/load.js'
import { ISSUER_KID_GRAMMAR } from '../verifier/claims.js'

/** A trusted issuer's JWK Set, checked and imported: what verifies its tokens until the next good read. */
export interface RemoteKeySet {
  readonly keys: ReadonlyMap<string, LoadedKey>
  /** Per kid, a hash of what its import depends on: an unchanged key keeps its KeyObject (and its cached tokens). */
  readonly fingerprints: ReadonlyMap<string, string>
  /** Keys left out, by why (never a foreign value: only these words and counts). */
  readonly skipped: Readonly<Partial<Record<SkipReason, number>>>
}

/**
 * Why a published key is left out without refusing the document: it is not for us (an
 * encryption key by its `use` or its `key_ops`, a type or algorithm we do not verify, one
 * outside the issuer's `algorithms`), or it cannot be named safely (no `kid`, or one that could
 * not be a label or a log field).
 */
export type SkipReason = 'not_for_signing' | 'unsupported' | 'not_allowed' | 'ambiguous_alg' | 'unusable_kid'

/** The JWK Set document was refused: the last good one stays in force. The message names no foreign value. */
export class JwksRefused extends Error {
  constructor(
    readonly reason: 'invalid_keyset',
    message: string,
  ) {
    super(message)
  }
}

/** More keys than any issuer publishes (a rotation holds two or three): a bound on series and work. */
export const MAX_JWKS_KEYS = 100

/**
 * Reads a JWK Set (RFC 7517 §5, parsed JSON) from a trusted issuer: every key we would verify with goes
 * through the same checks as the keyset's own (the type fits the algorithm, it imports, and
 * key-policy's rules: RSA size and exponent, canonical encodings, no small-order Edwards
 * point). One key that fails them refuses the whole document, as one bad key refuses a keyset:
 * a set that publishes a degenerate key is broken or hostile, and the last good one is kept.
 * A key that carries private members refuses it too (an issuer leaking its signing key).
 *
 * @param previous the set in force: an unchanged key reuses its import and first-seen time.
 */
export function readJwksDocument(doc: unknown, algorithms: readonly Alg[], now: number, previous?: RemoteKeySet): RemoteKeySet {
  const entries = (doc as { keys?: unknown } | null)?.keys
  if (typeof doc !== 'object' || doc === null || !Array.isArray(entries)) throw new JwksRefused('invalid_keyset', 'the JWK Set has no "keys" array')
  if (entries.length > MAX_JWKS_KEYS) throw new JwksRefused('invalid_keyset', `the JWK Set has ${entries.length} keys; at most ${MAX_JWKS_KEYS} are read`)
  const keys = new Map<string, LoadedKey>()
  const fingerprints = new Map<string, string>()
  const skipped: Partial<Record<SkipReason, number>> = {}
  const skip = (why: SkipReason): void => {
    skipped[why] = (skipped[why] ?? 0) + 1
  }
  for (const [i, entry] of entries.entries()) {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new JwksRefused('invalid_keyset', `keys[${i}] is not an object`)
    const jwk = entry as JsonWebKey & { use?: unknown; kid?: unknown; alg?: unknown; key_ops?: unknown }
    if (PRIVATE_JWK_MEMBERS.some((m) => m !== 'k' && jwk[m] !== undefined)) {
      throw new JwksRefused('invalid_keyset', `keys[${i}] carries private key material: the issuer publishes its signing key`)
    }
    // `key_ops` says what the key is for as `use` does (RFC 7517 §4.3): without "verify", not ours.
    if ((jwk.use !== undefined && jwk.use !== 'sig') || (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify')))) {
      skip('not_for_signing')
      continue
    }
    const alg = algorithmOf(jwk, algorithms)
    if (typeof alg !== 'string') {
      skip(alg.skip)
      continue
    }
    if (typeof jwk.kid !== 'string' || !ISSUER_KID_GRAMMAR.test(jwk.kid)) {
      skip('unusable_kid')
      continue
    }
    const kid = jwk.kid
    if (keys.has(kid)) throw new JwksRefused('invalid_keyset', `keys[${i}]: a kid used twice (which key would verify is ambiguous)`)
    const spec = ALG_SPECS[alg]
    if (jwk.kty !== spec.kty || (spec.curves !== undefined && !spec.curves.includes(curveOf(jwk)))) {
      throw new JwksRefused('invalid_keyset', `keys[${i}] (${kid}): its type or curve does not fit ${alg}`)
    }
    const publicJwk = keyMembers(jwk, `keys[${i}] (${kid})`)
    const fingerprint = crypto
      .createHash('sha256')
      .update(JSON.stringify([alg, KEY_MEMBERS.map((m) => publicJwk[m] ?? null)]))
      .digest('base64url')
    fingerprints.set(kid, fingerprint)
    const prior = previous?.keys.get(kid)
    if (prior !== undefined && previous?.fingerprints.get(kid) === fingerprint) {
      keys.set(kid, prior)
      continue
    }
    let verifyKey: crypto.KeyObject
    try {
      verifyKey = crypto.createPublicKey({ key: publicJwk, format: 'jwk' })
    } catch {
      throw new JwksRefused('invalid_keyset', `keys[${i}] (${kid}) cannot be imported as a ${spec.kty} key for ${alg}`)
    }
    const refused = keyPolicyProblem(alg, spec, publicJwk, verifyKey)
    if (refused) throw new JwksRefused('invalid_keyset', `keys[${i}] (${kid}).${refused.member} ${refused.message}`)
    // Verify-only by nature: nothing here ever signs, and no `not_after` applies (the issuer
    // retires a key by no longer publishing it).
    // Built as the keyset's loader builds its keys (the same members, spread in the same order),
    // so both kinds share one hidden class and the verifier's hot path stays monomorphic on them.
    const meta = { kid, alg, spec, status: 'verify-only' as const, createdAt: now, notAfter: undefined }
    const material = { verifyKey, signingKey: undefined, publicJwk }
    keys.set(kid, { ...meta, ...material })
  }
  return { keys, fingerprints, skipped }
}

/**
 * The algorithm a published key verifies with — the key's, never a token's: its `alg` when it
 * has one (within `algorithms`), else the one algorithm of `algorithms` that fits its type and
 * curve. Several RSA algorithms fit an RSA key without `alg`: RS256 when it is allowed (the
 * algorithm OpenID Connect signs with by default), else the key is left out as ambiguous.
 */
function algorithmOf(jwk: JsonWebKey & { alg?: unknown }, algorithms: readonly Alg[]): Alg | { skip: SkipReason } {
  if (jwk.kty === 'oct') return { skip: 'unsupported' }
  if (jwk.alg !== undefined) {
    if (!isAlg(jwk.alg) || ALG_SPECS[jwk.alg].family === 'hmac') return { skip: 'unsupported' }
    return algorithms.includes(jwk.alg) ? jwk.alg : { skip: 'not_allowed' }
  }
  const fitting = algorithms.filter((alg) => {
    const spec = ALG_SPECS[alg]
    return spec.kty === jwk.kty && (spec.curves === undefined || spec.curves.includes(curveOf(jwk)))
  })
  if (fitting.length === 1) return fitting[0]!
  if (fitting.length === 0) return { skip: typeof jwk.kty === 'string' && ['RSA', 'EC', 'OKP'].includes(jwk.kty) ? 'not_allowed' : 'unsupported' }
  return fitting.includes('RS256') ? 'RS256' : { skip: 'ambiguous_alg' }
}

/** The members that define a published key (RFC 7518 §6, RFC 8037 §2): all it is imported from and fingerprinted by. */
const KEY_MEMBERS = ['kty', 'crv', 'x', 'y', 'n', 'e'] as const

/**
 * A published key's defining members, each a string as RFC 7518 has it, and nothing else: what
 * else the issuer put in (`x5c`, extensions, values nested any depth) is neither kept nor walked.
 */
function keyMembers(jwk: JsonWebKey, where: string): JsonWebKey {
  const out: Record<string, string> = {}
  for (const m of KEY_MEMBERS) {
    const value: unknown = jwk[m]
    if (value === undefined) continue
    if (typeof value !== 'string') throw new JwksRefused('invalid_keyset', `${where}.${m} is not a string`)
    out[m] = value
  }
  return out
}

/** The key's `crv` when it is a string: a foreign value is never coerced (`{"toString":1}` throws, a deep array overflows). */
function curveOf(jwk: JsonWebKey): string {
  return typeof jwk.crv === 'string' ? jwk.crv : ''
}
