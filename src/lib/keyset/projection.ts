import type { JsonWebKey } from 'node:crypto'
import { NoSigningKeyError, RefusedError } from '../errors.js'
import { PRIVATE_JWK_MEMBERS } from './algorithms.js'
import type { KeysetDocument } from './document.js'
import type { LoadedKey } from './load.js'

/**
 * Members of an asymmetric JWK that make it a private key (RFC 7518 §6.2.2, §6.3.2; RFC 8037
 * §2). A key without any of them can verify but never sign.
 */
export const ASYMMETRIC_PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth'] as const

/**
 * What a keyset document is for: `signing` (every asymmetric key holds its private part, or
 * the keyset holds a symmetric key), `verification` (no key holds anything secret), or
 * `mixed` (some asymmetric keys private, others not — refused, it is neither).
 */
export type KeysetKind = 'signing' | 'verification' | 'mixed'

/** True when the JWK carries any private member of an asymmetric key. */
export function hasPrivateMembers(jwk: object): boolean {
  return ASYMMETRIC_PRIVATE_MEMBERS.some((name) => name in jwk)
}

/**
 * The kind of a (schema-valid) document. An `oct` key is secret by nature (whoever can verify
 * with it can sign), so a keyset holding one is never a verification keyset: with otherwise
 * public keys it is `mixed`.
 */
export function keysetKind(doc: Pick<KeysetDocument, 'keys'>): KeysetKind {
  let secret = 0
  let open = 0
  for (const entry of doc.keys) {
    if (entry.jwk.kty === 'oct' || hasPrivateMembers(entry.jwk)) secret++
    else open++
  }
  if (open === 0) return 'signing'
  if (secret === 0) return 'verification'
  return 'mixed'
}

/**
 * The verification projection of a keyset (the document verifiers are given instead of the
 * private one): the same document with every private member removed from every key. Every
 * other field — `current`, `revoked_before`, revocation rules, fields added later — is
 * carried unchanged, so a verifier on the projection answers every token exactly as one on
 * the private document would.
 *
 * Throws `RefusedError` when the keyset holds an `oct` (HS*) key: its secret both signs and
 * verifies, so there is no public half to publish. Least privilege needs asymmetric keys.
 *
 * @example
 * const publicDoc = toVerificationKeyset(loadKeyset(data).document)
 */
export function toVerificationKeyset<T extends Pick<KeysetDocument, 'keys'>>(doc: T): T {
  const symmetric = doc.keys.filter((entry) => entry.jwk.kty === 'oct').map((entry) => entry.kid)
  if (symmetric.length > 0) {
    throw new RefusedError(
      `no verification keyset can be made: ${symmetric.join(', ')} ${symmetric.length === 1 ? 'is an HS* (oct) key' : 'are HS* (oct) keys'}, whose secret signs as well as verifies; use an asymmetric algorithm (ES256, EdDSA, RS256, PS256, ...) for least privilege`,
    )
  }
  return {
    ...structuredClone(doc),
    keys: doc.keys.map((entry) => ({ ...structuredClone(entry), jwk: publicJwk(entry.jwk) })),
  }
}

/**
 * The document as it may be printed (a log, a crash report): every private or secret JWK member
 * (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`, an HMAC `k`) shown as `[redacted]`, nothing else changed.
 */
export function redactedKeyset<T extends Pick<KeysetDocument, 'keys'>>(doc: T): T {
  const secret = PRIVATE_JWK_MEMBERS as readonly string[]
  return {
    ...doc,
    keys: doc.keys.map((entry) => ({
      ...entry,
      jwk: Object.fromEntries(Object.entries(entry.jwk).map(([name, value]) => [name, secret.includes(name) ? '[redacted]' : value])),
    })),
  }
}

function publicJwk(jwk: JsonWebKey): JsonWebKey {
  const out: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(jwk)) {
    // key_ops and ext describe the private key's uses; a public key left with "sign" would lie.
    // PRIVATE_JWK_MEMBERS includes `k`: a secret never reaches a projection, whatever key carries it.
    if (!(PRIVATE_JWK_MEMBERS as readonly string[]).includes(name) && name !== 'key_ops' && name !== 'ext') out[name] = structuredClone(value)
  }
  return out as JsonWebKey
}

/**
 * The current key's private key, or `NoSigningKeyError` saying why there is none: the keyset
 * is a verification keyset, or the current key is past its own `not_after` (a token signed
 * with it would be `unknown_kid` on every verifier). The one check behind `cbc.sign()` and
 * `cbc-jwt token issue`.
 */
export function signingKeyOf(current: LoadedKey, nowMs: number): NonNullable<LoadedKey['signingKey']> {
  if (!current.signingKey) {
    throw new NoSigningKeyError(
      `cannot sign: the keyset is a verification keyset (its keys hold no private part; current ${current.kid}); sign with the private keyset, which only the issuer should hold`,
    )
  }
  if (current.notAfter !== undefined && current.notAfter <= nowMs) {
    throw new NoSigningKeyError(
      `cannot sign: the current key ${current.kid} is past its not_after (${new Date(current.notAfter).toISOString()}) and no verifier accepts it any more; rotate the keyset`,
    )
  }
  return current.signingKey
}
