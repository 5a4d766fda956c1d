import type { KeyObject } from 'node:crypto'
import { loadKeyset, type LoadedKeyset } from '../../../src/lib/keyset/load.js'
import { createVerifier, type Verifier, type VerifierOptions } from '../../../src/lib/verifier/verifier.js'
import { makeKey, makeKeyset, rawSignature, type KeyEntryOptions, type TestAlg, type TestKey } from '../../support/keys.js'

/** The pinned clock of the unit tests: 2026-11-25T21:20:00Z, in ms. */
export const NOW = Date.UTC(2026, 10, 25, 21, 20, 0)
/** NOW in whole seconds (a NumericDate). */
export const NOW_S = NOW / 1000
export const ISSUER = 'cbc-omega2'
export const AUDIENCE = 'cbc-api'
export const LEEWAY = 30

/** A verifier at a pinned clock; `options` override the defaults of CONTRACT §2. */
export function verifierAt(nowMs: number = NOW, options: Partial<VerifierOptions> = {}): Verifier {
  return createVerifier({ issuer: ISSUER, audience: AUDIENCE, clockToleranceSeconds: LEEWAY, maxTokenBytes: 8192, now: () => nowMs, ...options })
}

/** Claims valid at `nowS` (seconds) for ISSUER/AUDIENCE; `overrides` win (`undefined` removes a claim). */
export function claimsAt(nowS: number = NOW_S, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const claims: Record<string, unknown> = { iss: ISSUER, aud: AUDIENCE, sub: 'user-1', client_id: 'client-1', scope: 'read', iat: nowS - 60, exp: nowS + 600 }
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) delete claims[name]
    else claims[name] = value
  }
  return claims
}

export const b64u = (data: Buffer | string): string => Buffer.from(data).toString('base64url')
export const segment = (value: unknown): string => b64u(JSON.stringify(value))

/**
 * A token with exactly the given header and payload (objects are JSON-encoded, strings are
 * taken as raw payload bytes), signed as `alg` with `signingKey`. Lets a test sign what no
 * honest library would: a non-JSON payload, a confused algorithm, a duplicated member.
 */
export function forge(opts: { header: unknown; payload: unknown; alg: TestAlg; signingKey: KeyObject; rawHeader?: string }): string {
  const h = opts.rawHeader !== undefined ? b64u(opts.rawHeader) : segment(opts.header)
  const p = typeof opts.payload === 'string' ? b64u(opts.payload) : segment(opts.payload)
  return `${h}.${p}.${b64u(rawSignature(opts.alg, opts.signingKey, Buffer.from(`${h}.${p}`)))}`
}

/** Replaces the signature segment of a compact token. */
export function withSignature(token: string, signature: Buffer | string): string {
  const [h, p] = token.split('.')
  return `${h}.${p}.${typeof signature === 'string' ? signature : b64u(signature)}`
}

/** A copy of `key` under another kid/alg sharing its material (RSA keys are slow to make). */
export function alias(key: TestKey, alg: TestAlg, kid = `k-${alg}`): TestKey {
  return { ...key, alg, kid }
}

export interface KeyPool {
  byAlg: Record<TestAlg, TestKey>
  /** Every key, with `k-ES256` current. */
  keyset: LoadedKeyset
}

let pool: KeyPool | undefined

/** One key per algorithm (kid `k-<ALG>`), made once per test file; `k-ES256` is current. */
export function keyPool(): KeyPool {
  if (pool) return pool
  const rsa = makeKey('RS256', 'k-RS256')
  const byAlg = {
    HS256: makeKey('HS256', 'k-HS256'),
    HS384: makeKey('HS384', 'k-HS384'),
    HS512: makeKey('HS512', 'k-HS512'),
    RS256: rsa,
    RS384: alias(rsa, 'RS384'),
    RS512: alias(rsa, 'RS512'),
    PS256: alias(rsa, 'PS256'),
    PS384: alias(rsa, 'PS384'),
    PS512: alias(rsa, 'PS512'),
    ES256: makeKey('ES256', 'k-ES256'),
    ES384: makeKey('ES384', 'k-ES384'),
    ES512: makeKey('ES512', 'k-ES512'),
    EdDSA: makeKey('EdDSA', 'k-EdDSA'),
  } satisfies Record<TestAlg, TestKey>
  const keys = Object.values(byAlg)
  pool = { byAlg, keyset: loadKeyset(makeKeyset(keys, { current: 'k-ES256' }), NOW) }
  return pool
}

/** Loads a keyset made of `keys` (first is current unless `extra.current` says otherwise). */
export function keysetOf(
  keys: Array<TestKey | { key: TestKey; opts: KeyEntryOptions }>,
  extra: { current?: string; revoked_before?: string; revocations?: unknown[] } = {},
  now: number = NOW,
): LoadedKeyset {
  const { revocations, ...rest } = extra
  return loadKeyset({ ...makeKeyset(keys, rest), ...(revocations ? { revocations } : {}) }, now)
}
