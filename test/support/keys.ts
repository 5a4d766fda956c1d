import crypto, { type KeyObject } from 'node:crypto'

/**
 * Test keys and tokens made with `node:crypto` alone, independent of the code under test:
 * a token signed here and accepted by the service proves interoperability, not agreement
 * of the code with itself.
 */
export type TestAlg = 'HS256' | 'HS384' | 'HS512' | 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512' | 'EdDSA'

export interface TestKey {
  kid: string
  alg: TestAlg
  /** Private (or secret) key used to sign. */
  signingKey: KeyObject
  /** The JWK with private material, as it goes into a keyset. */
  jwk: crypto.JsonWebKey
}

const CURVES = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' } as const
const HMAC_BYTES = { HS256: 32, HS384: 48, HS512: 64 } as const

const PEM = { privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } } as const

/**
 * A fresh private key, generated as PEM and imported: never `generateKeyPairSync(…)` followed by
 * `export({ format: 'jwk' })` on the object it returned, which deadlocks Node 20 when a garbage
 * collection runs inside the export (Ed25519 hangs within seconds under `--max-semi-space-size=1`).
 */
export function generatePrivateKey(type: 'rsa', options: { modulusLength: number }): KeyObject
export function generatePrivateKey(
  type: 'rsa-pss',
  options: { modulusLength: number; hashAlgorithm: string; mgf1HashAlgorithm: string; saltLength: number },
): KeyObject
export function generatePrivateKey(type: 'ec', options: { namedCurve: string }): KeyObject
export function generatePrivateKey(type: 'ed25519' | 'ed448'): KeyObject
export function generatePrivateKey(type: 'rsa' | 'rsa-pss' | 'ec' | 'ed25519' | 'ed448', options: object = {}): KeyObject {
  const { privateKey } = crypto.generateKeyPairSync(type as 'ec', { ...(options as { namedCurve: string }), ...PEM }) as unknown as { privateKey: string }
  return crypto.createPrivateKey(privateKey)
}

export function makeKey(alg: TestAlg, kid: string): TestKey {
  let signingKey: KeyObject
  if (alg.startsWith('HS')) {
    signingKey = crypto.createSecretKey(crypto.randomBytes(HMAC_BYTES[alg as keyof typeof HMAC_BYTES]))
  } else if (alg.startsWith('RS') || alg.startsWith('PS')) {
    signingKey = generatePrivateKey('rsa', { modulusLength: 2048 })
  } else if (alg === 'EdDSA') {
    signingKey = generatePrivateKey('ed25519')
  } else {
    signingKey = generatePrivateKey('ec', { namedCurve: CURVES[alg as keyof typeof CURVES] })
  }
  return { kid, alg, signingKey, jwk: signingKey.export({ format: 'jwk' }) }
}

/** The same key with only its public JWK members: it still signs here (signingKey), but a keyset of such keys cannot. */
export function publicHalf(key: TestKey): TestKey {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = key.jwk
  return { ...key, jwk: pub }
}

/** The signer of the key `kid` in a keyset document (a CLI-made key, read back from where it was written). */
export function signerOf(doc: { keys: Array<{ kid: string; alg: string; jwk: crypto.JsonWebKey }> }, kid: string): TestKey {
  const entry = doc.keys.find((k) => k.kid === kid)
  if (!entry) throw new Error(`${kid} is not in the keyset`)
  return { kid, alg: entry.alg as TestAlg, jwk: entry.jwk, signingKey: crypto.createPrivateKey({ key: entry.jwk, format: 'jwk' }) }
}

export interface KeyEntryOptions {
  createdAt?: Date
  notAfter?: Date
}

/** The keyset entry of a key (CONTRACT §1). */
export function keyEntry(key: TestKey, opts: KeyEntryOptions = {}): Record<string, unknown> {
  return {
    kid: key.kid,
    alg: key.alg,
    created_at: (opts.createdAt ?? new Date(Date.now() - 3600_000)).toISOString(),
    ...(opts.notAfter ? { not_after: opts.notAfter.toISOString() } : {}),
    jwk: key.jwk,
  }
}

/** A keyset document whose `current` is the first key. */
export function makeKeyset(
  keys: Array<TestKey | { key: TestKey; opts: KeyEntryOptions }>,
  extra: { current?: string; revoked_before?: string } = {},
): Record<string, unknown> {
  const entries = keys.map((k) => ('key' in k ? keyEntry(k.key, k.opts) : keyEntry(k)))
  const first = keys[0]!
  const current = extra.current ?? ('key' in first ? first.key.kid : first.kid)
  return { version: 1, current, ...(extra.revoked_before ? { revoked_before: extra.revoked_before } : {}), keys: entries }
}

const b64u = (b: Buffer | string) => Buffer.from(b).toString('base64url')
const HASH: Record<string, string> = { '256': 'sha256', '384': 'sha384', '512': 'sha512' }

/** Signs a JWS compact token with `key`; `header` overrides or adds header members. */
export function signToken(key: TestKey, claims: Record<string, unknown>, header: Record<string, unknown> = {}): string {
  const h = b64u(JSON.stringify({ alg: key.alg, typ: 'JWT', kid: key.kid, ...header }))
  const p = b64u(JSON.stringify(claims))
  return `${h}.${p}.${b64u(rawSignature(key.alg, key.signingKey, Buffer.from(`${h}.${p}`)))}`
}

/** Signs `input` as JWS algorithm `alg` would, with any key (used to forge confusion attacks). */
export function rawSignature(alg: TestAlg, key: KeyObject, input: Buffer): Buffer {
  const hash = HASH[alg.slice(2)]
  if (alg.startsWith('HS')) return crypto.createHmac(hash!, key).update(input).digest()
  if (alg === 'EdDSA') return crypto.sign(null, input, key)
  if (alg.startsWith('ES')) return crypto.sign(hash!, input, { key, dsaEncoding: 'ieee-p1363' })
  if (alg.startsWith('PS')) {
    return crypto.sign(hash!, input, { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: crypto.constants.RSA_PSS_SALTLEN_DIGEST })
  }
  return crypto.sign(hash!, input, key)
}

/** Claims valid for the service's defaults (or the given issuer/audience) for 10 minutes. */
export function validClaims(overrides: Record<string, unknown> = {}, { iss = 'cbc-omega2', aud = 'cbc-api' } = {}): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000)
  return { iss, aud, sub: 'user-1', client_id: 'client-1', scope: 'read', iat: now - 5, exp: now + 600, ...overrides }
}
