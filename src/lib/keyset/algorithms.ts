import type { JsonWebKey } from 'node:crypto'

/** The JWS algorithms a keyset key may use (schema/keyset.schema.json). */
export const ALGORITHMS = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const

export type Alg = (typeof ALGORITHMS)[number]

export type AlgFamily = 'hmac' | 'rsa' | 'rsa-pss' | 'ecdsa' | 'eddsa'

export interface AlgSpec {
  family: AlgFamily
  /** The JWK `kty` the key must have. */
  kty: 'oct' | 'RSA' | 'EC' | 'OKP'
  /** Node's digest name; `null` for EdDSA, which hashes internally. */
  hash: 'sha256' | 'sha384' | 'sha512' | null
  /** Allowed JWK `crv` values (EC, OKP). */
  curves?: readonly string[]
  /** ECDSA signature length in bytes (r‖s, RFC 7518 §3.4). */
  signatureBytes?: number
  /** Minimum HMAC secret length in bytes: the hash size (RFC 7518 §3.2). */
  minSecretBytes?: number
}

export const ALG_SPECS: Readonly<Record<Alg, AlgSpec>> = {
  HS256: { family: 'hmac', kty: 'oct', hash: 'sha256', minSecretBytes: 32 },
  HS384: { family: 'hmac', kty: 'oct', hash: 'sha384', minSecretBytes: 48 },
  HS512: { family: 'hmac', kty: 'oct', hash: 'sha512', minSecretBytes: 64 },
  RS256: { family: 'rsa', kty: 'RSA', hash: 'sha256' },
  RS384: { family: 'rsa', kty: 'RSA', hash: 'sha384' },
  RS512: { family: 'rsa', kty: 'RSA', hash: 'sha512' },
  PS256: { family: 'rsa-pss', kty: 'RSA', hash: 'sha256' },
  PS384: { family: 'rsa-pss', kty: 'RSA', hash: 'sha384' },
  PS512: { family: 'rsa-pss', kty: 'RSA', hash: 'sha512' },
  ES256: { family: 'ecdsa', kty: 'EC', hash: 'sha256', curves: ['P-256'], signatureBytes: 64 },
  ES384: { family: 'ecdsa', kty: 'EC', hash: 'sha384', curves: ['P-384'], signatureBytes: 96 },
  ES512: { family: 'ecdsa', kty: 'EC', hash: 'sha512', curves: ['P-521'], signatureBytes: 132 },
  EdDSA: { family: 'eddsa', kty: 'OKP', hash: null, curves: ['Ed25519', 'Ed448'] },
}

/** RSA keys below this modulus size are refused (NIST SP 800-131A). */
export const MIN_RSA_BITS = 2048

export function isAlg(value: unknown): value is Alg {
  return typeof value === 'string' && (ALGORITHMS as readonly string[]).includes(value)
}

/** JWK members that carry private or symmetric material: never published, never logged. */
export const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const

/** True when the JWK can sign: it holds a private exponent/scalar or a symmetric secret. */
export function hasSigningMaterial(jwk: JsonWebKey): boolean {
  return jwk.kty === 'oct' ? typeof jwk.k === 'string' : typeof jwk.d === 'string'
}
