import crypto, { type JsonWebKey } from 'node:crypto'
import { ALG_SPECS, type Alg } from './algorithms.js'
import type { KeyEntry, KeysetDocument } from './document.js'

/** RSA keys made by cbc-jwt; above the 2048-bit floor the validator enforces. */
export const GENERATED_RSA_BITS = 3072

/**
 * A readable, unique kid: `k-<UTC date>-<6 hex>`, e.g. `k-20261125-3f9a1c`. The suffix is
 * random (not a key hash) so that nothing about a secret leaks through the kid.
 */
export function newKid(now: Date, taken: ReadonlySet<string> = new Set()): string {
  const day = now.toISOString().slice(0, 10).replace(/-/g, '')
  for (;;) {
    const kid = `k-${day}-${crypto.randomBytes(3).toString('hex')}`
    if (!taken.has(kid)) return kid
  }
}

/** Generates a key entry for `alg` with fresh material (private JWK included). */
export async function generateKeyEntry(alg: Alg, opts: { now: Date; taken?: ReadonlySet<string>; kid?: string }): Promise<KeyEntry> {
  const kid = opts.kid ?? newKid(opts.now, opts.taken)
  const jwk = await generateJwk(alg)
  return { kid, alg, created_at: toRfc3339(opts.now), jwk }
}

async function generateJwk(alg: Alg): Promise<JsonWebKey> {
  // jose is loaded when a key is first generated: an app that only verifies never loads it.
  const { exportJWK, generateKeyPair, generateSecret } = await import('jose')
  if (ALG_SPECS[alg].family === 'hmac') {
    const secret = await generateSecret(alg, { extractable: true })
    return stripJoseExtras(await exportJWK(secret))
  }
  const options = ALG_SPECS[alg].kty === 'RSA' ? { extractable: true, modulusLength: GENERATED_RSA_BITS } : { extractable: true }
  const { privateKey } = await generateKeyPair(alg, options)
  return stripJoseExtras(await exportJWK(privateKey))
}

// Keep the JWK to the members the schema knows; `alg`/`kid` live on the entry.
function stripJoseExtras(jwk: Record<string, unknown>): JsonWebKey {
  const { key_ops: _ops, ext: _ext, alg: _alg, kid: _kid, ...rest } = jwk
  return rest as JsonWebKey
}

/** A new keyset with one current key. */
export async function generateKeyset(alg: Alg, now: Date = new Date()): Promise<KeysetDocument> {
  const entry = await generateKeyEntry(alg, { now })
  return { version: 1, current: entry.kid, keys: [entry] }
}

/** RFC 3339 in UTC with second precision: `2026-11-25T21:16:00Z`. */
export function toRfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z')
}
