import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { ERROR_CODES, type CbcJwtError } from '../../../src/lib/errors.js'
import type { KeysetDocument } from '../../../src/lib/keyset/document.js'
import { signWith } from '../../../src/lib/core/sign.js'
import { loadKeyset } from '../../../src/lib/keyset/load.js'
import { keysetKind, toVerificationKeyset } from '../../../src/lib/keyset/projection.js'
import { makeKey, makeKeyset, publicHalf, type TestAlg } from '../../support/keys.js'
import { assertNoPrivateMaterial } from './fixtures.js'

const NOW = Date.parse('2026-11-25T21:16:00Z')
const HOUR = 3600_000
const ASYMMETRIC: TestAlg[] = ['RS256', 'PS384', 'ES256', 'ES384', 'ES512', 'EdDSA']
const keys = Object.fromEntries(ASYMMETRIC.map((alg) => [alg, makeKey(alg, `k-${alg.toLowerCase()}`)]))

function signingDoc(algs: TestAlg[] = ASYMMETRIC): KeysetDocument {
  return makeKeyset(
    algs.map((alg, i) => ({ key: keys[alg]!, opts: { createdAt: new Date(NOW - (i + 1) * HOUR), ...(i === 2 ? { notAfter: new Date(NOW + HOUR) } : {}) } })),
    { revoked_before: '2026-11-25T20:00:00Z' },
  ) as unknown as KeysetDocument
}

const settings = { issuer: 'cbc-omega2', audience: 'cbc-api', maxTokenTtlSeconds: 86_400, nowMs: NOW }

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise
  } catch (err) {
    return (err as CbcJwtError).code
  }
  assert.fail('expected a rejection')
}

describe('toVerificationKeyset', () => {
  it('keeps every key, status and date, and drops every private member', () => {
    const doc = signingDoc()
    const projection = toVerificationKeyset(doc)
    assertNoPrivateMaterial(JSON.stringify(projection), doc, 'the projection')
    const loaded = loadKeyset(projection, NOW)
    const original = loadKeyset(doc, NOW)
    assert.equal(loaded.signing, false)
    assert.equal(original.signing, true)
    assert.equal(loaded.current.kid, original.current.kid)
    assert.equal(loaded.revokedBefore, original.revokedBefore)
    assert.deepEqual(
      [...loaded.keys.values()].map((k) => [k.kid, k.alg, k.status, k.createdAt, k.notAfter, k.publicJwk]),
      [...original.keys.values()].map((k) => [k.kid, k.alg, k.status, k.createdAt, k.notAfter, k.publicJwk]),
    )
    for (const key of loaded.keys.values()) assert.equal(key.signingKey, undefined)
  })

  it('carries every other top-level and per-key field unchanged (rules added later reach verifiers too)', () => {
    const doc = { ...signingDoc(['ES256']), revocations: [{ sub: 'user-9', issued_before: '2026-11-25T20:00:00Z', created_at: '2026-11-25T20:00:00Z' }] }
    const projection = toVerificationKeyset(doc)
    assert.deepEqual(projection.revocations, doc.revocations)
    assert.deepEqual({ ...projection, keys: undefined }, { ...doc, keys: undefined })
    assert.notEqual(projection.revocations, doc.revocations, 'a copy, not the same array')
  })

  it('drops key_ops and ext too: on a public key, "sign" would describe a use it no longer has', () => {
    const doc = signingDoc(['ES256'])
    const jwk = doc.keys[0]!.jwk
    doc.keys[0]!.jwk = { ...jwk, key_ops: ['sign'], ext: true, use: 'sig' }
    const { d: _d, ...expected } = jwk
    assert.deepEqual(toVerificationKeyset(doc).keys[0]!.jwk, { ...expected, use: 'sig' })
  })

  // An asymmetric JWK carrying a stray `k` (a secret pasted into the wrong key) was copied into
  // the 0644 projection as it was: the projection must never hold a secret member, whatever key.
  it('never carries a `k` member, even one an asymmetric key was given by mistake', () => {
    for (const alg of ['ES256', 'RS256', 'EdDSA'] as const) {
      const doc = signingDoc([alg])
      const jwk = doc.keys[0]!.jwk
      doc.keys[0]!.jwk = { ...jwk, k: 'c2VjcmV0LXN5bW1ldHJpYy1rZXktbWF0ZXJpYWw' } as typeof jwk
      assert.equal('k' in toVerificationKeyset(doc).keys[0]!.jwk, false, alg)
    }
  })

  it('is idempotent, and a projection is a verification keyset (property: any subset of algorithms)', () => {
    fc.assert(
      fc.property(fc.subarray(ASYMMETRIC, { minLength: 1 }), (algs) => {
        const once = toVerificationKeyset(signingDoc(algs))
        assert.deepEqual(toVerificationKeyset(once), once)
        assert.equal(keysetKind(once), 'verification')
        assert.equal(loadKeyset(once, NOW).signing, false)
      }),
      { numRuns: 30 },
    )
  })

  it('refuses a keyset holding an HS* key: its secret signs as well as verifies', () => {
    const doc = makeKeyset([keys.ES256!, makeKey('HS256', 'k-hs')]) as unknown as KeysetDocument
    assert.throws(
      () => toVerificationKeyset(doc),
      (err: CbcJwtError) => {
        assert.equal(err.code, ERROR_CODES.REFUSED)
        assert.match(err.message, /k-hs is an HS\* \(oct\) key, whose secret signs as well as verifies; use an asymmetric algorithm/)
        return true
      },
    )
  })

  it('keysetKind tells signing, verification and mixed apart', () => {
    assert.equal(keysetKind(makeKeyset([keys.ES256!, keys.EdDSA!]) as unknown as KeysetDocument), 'signing')
    assert.equal(keysetKind(makeKeyset([publicHalf(keys.ES256!), publicHalf(keys.EdDSA!)]) as unknown as KeysetDocument), 'verification')
    assert.equal(keysetKind(makeKeyset([keys.ES256!, publicHalf(keys.EdDSA!)]) as unknown as KeysetDocument), 'mixed')
    assert.equal(keysetKind(makeKeyset([publicHalf(keys.ES256!), makeKey('HS256', 'k-hs')]) as unknown as KeysetDocument), 'mixed')
  })
})

describe('signing is for signers (ERR_NO_SIGNING_KEY)', () => {
  it('sign() on a verification keyset fails with ERR_NO_SIGNING_KEY', async () => {
    const projection = loadKeyset(toVerificationKeyset(signingDoc(['ES256'])), NOW)
    assert.equal(await codeOf(signWith(projection, { sub: 'a' }, {}, settings)), ERROR_CODES.NO_SIGNING_KEY)
  })

  it('sign() refuses once the current key is past its own not_after (every verifier would say unknown_kid)', async () => {
    const doc = makeKeyset([{ key: keys.ES256!, opts: { createdAt: new Date(NOW - HOUR), notAfter: new Date(NOW + 60_000) } }])
    const keyset = loadKeyset(doc, NOW)
    assert.equal(typeof (await signWith(keyset, { sub: 'a' }, {}, { ...settings, nowMs: NOW + 59_000 })), 'string')
    assert.equal(await codeOf(signWith(keyset, { sub: 'a' }, {}, { ...settings, nowMs: NOW + 60_000 })), ERROR_CODES.NO_SIGNING_KEY)
  })
})
