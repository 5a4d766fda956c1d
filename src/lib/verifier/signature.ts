import crypto from 'node:crypto'
import type { AlgSpec } from '../keyset/algorithms.js'
import type { LoadedKey } from '../keyset/load.js'
import { p1363ToDer } from './ecdsa-der.js'
import { rsaPssVerifyKey } from './rsa-pss-key.js'

/**
 * Checks a JWS signature over `signingInput` (the ASCII `header.payload`): a boolean, or a
 * promise of one when the check runs on the libuv threadpool.
 */
export type SignatureCheck = (signingInput: string, signature: Buffer) => boolean | Promise<boolean>

export type SignatureFamily = AlgSpec['family']

/**
 * Families whose public-key verify runs on the libuv threadpool (`crypto.verify` with a
 * callback) instead of on the event loop, chosen by measurement under HTTP load
 * (bench/peers/offload-server.ts, docs/performance.md): ECDSA and RSA-PSS verifies are long
 * enough (≈ 50–100 µs) that handing them to another core pays for the hop; EdDSA measured
 * slower offloaded in every round, and RSA PKCS#1 v1.5 (≈ 20 µs) no better, so they stay
 * inline, as HMAC (a microsecond) does.
 */
export const THREADPOOL_FAMILIES: readonly SignatureFamily[] = ['ecdsa', 'rsa-pss']

const inline = new WeakMap<LoadedKey, SignatureCheck>()
const offloaded = new WeakMap<LoadedKey, SignatureCheck>()

/**
 * The signature check for a key, built once per loaded key and cached. The algorithm is the
 * key's own: a token's header never chooses how its signature is checked. `threadpool` says
 * which families are checked off the event loop; the answer is the same either way.
 */
export function signatureCheckFor(key: LoadedKey, threadpool: readonly SignatureFamily[] = THREADPOOL_FAMILIES): SignatureCheck {
  const async = threadpool.includes(key.spec.family) && key.spec.family !== 'hmac'
  const checks = async ? offloaded : inline
  let check = checks.get(key)
  if (!check) {
    check = buildCheck(key, async ? verifyOnThreadpool : verifyInline)
    checks.set(key, check)
  }
  return check
}

/** Always a bare KeyObject: Node 24 charges ≈ 10 µs per call for a `{ key, … }` object in its place (docs/performance.md). */
type PublicKeyVerify = (hash: string | null, input: string, key: crypto.KeyObject, signature: Buffer) => boolean | Promise<boolean>

/**
 * A public-key check on this thread. With a digest, through a `Verify` (digest the input, then
 * check): the same OpenSSL verification as the one-shot `crypto.verify`, measured ≈ 1 µs
 * cheaper per call (ES256 55.0 against 56.1 µs, RS256 19.9 against 21.1 µs; docs/performance.md),
 * and the input is hashed from the string with no Buffer made of it. EdDSA hashes inside the
 * signature scheme and has only the one-shot form.
 */
function verifyInline(hash: string | null, input: string, key: crypto.KeyObject, signature: Buffer): boolean {
  if (hash === null) return crypto.verify(null, Buffer.from(input), key, signature)
  try {
    return crypto.createVerify(hash).update(input).verify(key, signature)
  } catch {
    // `Verify` throws where the one-shot form answers false (an ECDSA signature of the wrong
    // length, which the length check before it already refuses): a failed check either way.
    return false
  }
}

/** `crypto.verify` on the libuv threadpool. An error (a signature OpenSSL cannot parse) is a failed check, as inline. */
function verifyOnThreadpool(hash: string | null, input: string, key: crypto.KeyObject, signature: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    crypto.verify(hash, Buffer.from(input), key, signature, (err, ok) => resolve(err === null && ok))
  })
}

function buildCheck(key: LoadedKey, verify: PublicKeyVerify): SignatureCheck {
  const { spec, verifyKey } = key
  const hash = spec.hash
  switch (spec.family) {
    case 'hmac': {
      const digestBytes = spec.minSecretBytes!
      return (input, signature) => {
        if (signature.length !== digestBytes) return false
        const expected = crypto.createHmac(hash!, verifyKey).update(input).digest()
        return crypto.timingSafeEqual(expected, signature)
      }
    }
    case 'ecdsa': {
      // JWS carries r‖s (IEEE P1363), given to OpenSSL as DER (ecdsa-der.ts says why); a wrong
      // length is rejected before either sees it.
      const bytes = spec.signatureBytes!
      return (input, signature) => signature.length === bytes && verify(hash, input, verifyKey, p1363ToDer(signature))
    }
    case 'rsa-pss': {
      // RFC 7518 §3.5: MGF1 with the same hash and a salt as long as the digest, carried by the
      // key itself (rsa-pss-key.ts says why). The signature is exactly k octets (RFC 8017
      // §8.1.2): OpenSSL also takes it with leading zeros stripped, which would give one token
      // two strings.
      const pssKey = rsaPssVerifyKey(verifyKey, hash!)
      const bytes = rsaModulusBytes(key)
      return (input, signature) => signature.length === bytes && verify(hash, input, pssKey, signature)
    }
    case 'rsa': {
      const bytes = rsaModulusBytes(key)
      return (input, signature) => signature.length === bytes && verify(hash, input, verifyKey, signature)
    }
    case 'eddsa':
      return (input, signature) => verify(hash, input, verifyKey, signature)
  }
}

function rsaModulusBytes(key: LoadedKey): number {
  return Math.ceil((key.verifyKey.asymmetricKeyDetails?.modulusLength ?? 0) / 8)
}
