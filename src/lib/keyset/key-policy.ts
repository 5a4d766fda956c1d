import type { JsonWebKey, KeyObject } from 'node:crypto'
import { MIN_RSA_BITS, type Alg, type AlgSpec } from './algorithms.js'

/**
 * What a key must be to provide security, beyond "it imports". OpenSSL imports keys that are
 * arithmetically degenerate — an RSA exponent of 1, an Ed25519 point of small order — and then
 * verifies signatures that anyone can make without a private key. Every rule here names the
 * attack it stops; docs/security.md lists them for operators.
 */

/** RSA modulus sizes accepted: NIST SP 800-131A floor; the cap keeps one verify cheap (a keyset must not make every request slow). */
export const RSA_MODULUS_BITS = { min: MIN_RSA_BITS, max: 8192 } as const

/** FIPS 186-5 §A.1.1: the public exponent is odd and 2^16 < e < 2^256. */
const RSA_MIN_EXPONENT = 65537n
const RSA_MAX_EXPONENT = 1n << 256n

/** Products of the small odd primes, for a cheap check that the modulus has no tiny factor. */
const SMALL_PRIMES_PRODUCT = smallOddPrimes(2000).reduce((a, p) => a * p, 2n)

/** JWK members holding binary values, which must be canonical base64url (RFC 7515 §2). */
const BINARY_MEMBERS = ['n', 'e', 'd', 'p', 'q', 'dp', 'dq', 'qi', 'x', 'y', 'k'] as const

/** Octet lengths of coordinates and scalars per curve (RFC 7518 §6.2.1.2, RFC 8037 §2). */
const CURVE_OCTETS: Readonly<Record<string, number>> = { 'P-256': 32, 'P-384': 48, 'P-521': 66, Ed25519: 32, Ed448: 57 }

export interface PolicyProblem {
  /** JWK member the problem is about, e.g. `e` (the caller prefixes its path). */
  member: string
  message: string
}

/**
 * Returns why a JWK that Node could import must still be refused, or undefined when it is fit to
 * verify (and sign) with. `verifyKey` is the public key imported from the JWK's public members.
 */
export function keyPolicyProblem(alg: Alg, spec: AlgSpec, jwk: JsonWebKey, verifyKey: KeyObject): PolicyProblem | undefined {
  const encoding = nonCanonicalMember(jwk)
  if (encoding) return encoding
  switch (spec.kty) {
    case 'RSA':
      return rsaProblem(jwk, verifyKey)
    case 'EC':
    case 'OKP':
      return curveProblem(jwk)
    case 'oct': {
      const bytes = verifyKey.symmetricKeySize ?? 0
      const min = spec.minSecretBytes!
      return bytes < min ? { member: 'k', message: `${alg} needs a secret of at least ${min} bytes (got ${bytes})` } : undefined
    }
  }
}

/**
 * One key, one encoding: `Buffer.from(…, 'base64url')` ignores stray trailing bits, so `AQAB` and
 * `AQAC`-style twins would name the same material under two spellings (a material fingerprint, a
 * diff or an audit line would then disagree with what verifies). Integers carry no leading zero
 * octet (RFC 7518 §6.3.1.1), which would also hide a short modulus behind a long encoding.
 */
function nonCanonicalMember(jwk: JsonWebKey): PolicyProblem | undefined {
  for (const member of BINARY_MEMBERS) {
    const value = (jwk as Record<string, unknown>)[member]
    if (typeof value !== 'string') continue
    const bytes = Buffer.from(value, 'base64url')
    if (bytes.toString('base64url') !== value) return { member, message: 'is not canonical base64url (no padding, no stray bits)' }
    if (jwk.kty === 'RSA' && bytes.length > 1 && bytes[0] === 0) {
      return { member, message: 'has a leading zero octet; RSA integers use the minimum number of octets (RFC 7518 §6.3)' }
    }
  }
  return undefined
}

function rsaProblem(jwk: JsonWebKey, key: KeyObject): PolicyProblem | undefined {
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0
  const e = key.asymmetricKeyDetails?.publicExponent ?? 0n
  if (bits < RSA_MODULUS_BITS.min) return { member: 'n', message: `RSA key is ${bits} bits; at least ${RSA_MODULUS_BITS.min} required` }
  if (bits > RSA_MODULUS_BITS.max) return { member: 'n', message: `RSA key is ${bits} bits; at most ${RSA_MODULUS_BITS.max} accepted` }
  // e = 1 makes every padded message its own signature (forgery without a private key); an even
  // e has no inverse mod φ(n), so there is no private key at all; a huge e is not a key anyone generates.
  if (e % 2n === 0n || e < RSA_MIN_EXPONENT || e >= RSA_MAX_EXPONENT) {
    return {
      member: 'e',
      message: `RSA public exponent ${e < 1n << 64n ? e : 'of more than 64 bits'} refused: it must be odd and 65537 ≤ e < 2^256 (FIPS 186-5)`,
    }
  }
  const n = BigInt(`0x${Buffer.from(String(jwk.n), 'base64url').toString('hex')}`)
  // A product of two large primes is odd and has no small factor; anything else is trivially factored.
  if (gcd(n, SMALL_PRIMES_PRODUCT) !== 1n) return { member: 'n', message: 'RSA modulus has a small prime factor: it can be factored' }
  return undefined
}

function curveProblem(jwk: JsonWebKey): PolicyProblem | undefined {
  const octets = CURVE_OCTETS[String(jwk.crv)]
  if (octets === undefined) return undefined // the caller already refused the curve
  for (const member of ['x', 'y', 'd'] as const) {
    const value = jwk[member]
    if (typeof value === 'string' && Buffer.from(value, 'base64url').length !== octets) {
      return { member, message: `must be exactly ${octets} octets for ${jwk.crv}` }
    }
  }
  if (jwk.crv === 'Ed25519' || jwk.crv === 'Ed448') {
    const why = edwardsPointProblem(jwk.crv, Buffer.from(String(jwk.x), 'base64url'))
    return why ? { member: 'x', message: why } : undefined
  }
  // NIST curves: Node refuses points off the curve (and the point at infinity has no affine JWK form).
  return undefined
}

interface EdwardsCurve {
  p: bigint
  /** x² = (y² − 1) / (d·y² − a) on a·x² + y² = 1 + d·x²·y² */
  a: bigint
  d: bigint
  /** y-coordinates of the points whose order divides the cofactor (identity included) */
  smallOrderY: readonly bigint[]
}

const P25519 = (1n << 255n) - 19n
const P448 = (1n << 448n) - (1n << 224n) - 1n
const EDWARDS: Readonly<Record<'Ed25519' | 'Ed448', EdwardsCurve>> = {
  Ed25519: {
    p: P25519,
    a: P25519 - 1n,
    d: mod(-121665n * modInverse(121666n, P25519), P25519),
    // order 1 (y=1), 2 (y=−1), 4 (y=0), 8 (±y₈): RFC 8032 §5.1, the libsodium small-order list
    smallOrderY: [
      1n,
      P25519 - 1n,
      0n,
      2707385501144840649318225287225658788936804267575313519463743609750303402022n,
      P25519 - 2707385501144840649318225287225658788936804267575313519463743609750303402022n,
    ],
  },
  Ed448: {
    p: P448,
    a: 1n,
    d: P448 - 39081n,
    // cofactor 4: order 1 (y=1), 2 (y=−1), 4 (y=0)
    smallOrderY: [1n, P448 - 1n, 0n],
  },
}

/**
 * A small-order public point A makes [S]B = R + [k]A hold for R = [S]B whatever the message
 * (the "identity key" forgery); a non-canonical or off-curve encoding is not a key at all.
 */
function edwardsPointProblem(crv: 'Ed25519' | 'Ed448', encoded: Buffer): string | undefined {
  const curve = EDWARDS[crv]
  const bytes = Buffer.from(encoded)
  const last = bytes.length - 1
  if (crv === 'Ed448' && (bytes[last]! & 0x7f) !== 0) return 'is not a valid Ed448 point encoding (RFC 8032 §5.2.3)'
  bytes[last]! &= 0x7f // the sign of x
  const y = BigInt(`0x${Buffer.from(bytes).reverse().toString('hex')}`)
  if (y >= curve.p) return `is a non-canonical ${crv} point encoding (y ≥ p)`
  if (curve.smallOrderY.includes(y)) return `is a small-order ${crv} point: signatures could be forged without a private key`
  const y2 = (y * y) % curve.p
  const x2 = mod((y2 - 1n) * modInverse(mod(curve.d * y2 - curve.a, curve.p), curve.p), curve.p)
  // Euler's criterion: x² must be a square for the point to exist.
  if (x2 !== 0n && modPow(x2, (curve.p - 1n) / 2n, curve.p) !== 1n) return `is not a point on ${crv}`
  return undefined
}

function mod(a: bigint, m: bigint): bigint {
  const r = a % m
  return r < 0n ? r + m : r
}

function modPow(base: bigint, exponent: bigint, m: bigint): bigint {
  let result = 1n
  let b = mod(base, m)
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % m
    b = (b * b) % m
  }
  return result
}

/** Inverse modulo a prime (Fermat). */
function modInverse(a: bigint, p: bigint): bigint {
  return modPow(a, p - 2n, p)
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b]
  return a
}

function smallOddPrimes(limit: number): bigint[] {
  const composite = new Uint8Array(limit + 1)
  const primes: bigint[] = []
  for (let i = 3; i <= limit; i += 2) {
    if (composite[i]) continue
    primes.push(BigInt(i))
    for (let j = i * i; j <= limit; j += 2 * i) composite[j] = 1
  }
  return primes
}
