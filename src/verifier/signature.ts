import crypto from 'node:crypto'
import type { LoadedKey } from '../keyset/load.js'

/** Checks a JWS signature over `signingInput` (the ASCII `header.payload`). */
export type SignatureCheck = (signingInput: string, signature: Buffer) => boolean

const checks = new WeakMap<LoadedKey, SignatureCheck>()

/**
 * The signature check for a key, built once per loaded key and cached. The algorithm is the
 * key's own: a token's header never chooses how its signature is checked.
 */
export function signatureCheckFor(key: LoadedKey): SignatureCheck {
  let check = checks.get(key)
  if (!check) {
    check = buildCheck(key)
    checks.set(key, check)
  }
  return check
}

function buildCheck(key: LoadedKey): SignatureCheck {
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
      // JWS carries r‖s (IEEE P1363), not DER; a wrong length is rejected before OpenSSL sees it.
      const options = { key: verifyKey, dsaEncoding: 'ieee-p1363' as const }
      const bytes = spec.signatureBytes!
      return (input, signature) => signature.length === bytes && crypto.verify(hash, Buffer.from(input), options, signature)
    }
    case 'rsa-pss': {
      // RFC 7518 §3.5: MGF1 with the same hash and a salt as long as the digest. The signature is
      // exactly k octets (RFC 8017 §8.1.2): OpenSSL also takes it with leading zeros stripped,
      // which would give one token two strings.
      const options = { key: verifyKey, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: crypto.constants.RSA_PSS_SALTLEN_DIGEST }
      const bytes = rsaModulusBytes(key)
      return (input, signature) => signature.length === bytes && crypto.verify(hash, Buffer.from(input), options, signature)
    }
    case 'rsa': {
      const bytes = rsaModulusBytes(key)
      return (input, signature) => signature.length === bytes && crypto.verify(hash, Buffer.from(input), verifyKey, signature)
    }
    case 'eddsa':
      return (input, signature) => crypto.verify(hash, Buffer.from(input), verifyKey, signature)
  }
}

function rsaModulusBytes(key: LoadedKey): number {
  return Math.ceil((key.verifyKey.asymmetricKeyDetails?.modulusLength ?? 0) / 8)
}
