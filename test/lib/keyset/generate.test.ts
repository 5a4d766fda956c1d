import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ALGORITHMS, ALG_SPECS, MIN_RSA_BITS } from '../../../src/lib/keyset/algorithms.js'
import { GENERATED_RSA_BITS, generateKeyEntry, generateKeyset, newKid, toRfc3339 } from '../../../src/lib/keyset/generate.js'
import { loadKeyset } from '../../../src/lib/keyset/load.js'
import { schemaProblems } from '../../../src/lib/keyset/schema.js'

const NOW = new Date('2026-11-25T21:16:00.123Z')

describe('generateKeyset', () => {
  // Generated concurrently: RSA keys of 3072 bits take a while each.
  const generated = Promise.all(ALGORITHMS.map(async (alg) => [alg, await generateKeyset(alg, NOW)] as const))

  it('makes, for every alg, a keyset that passes the schema and loadKeyset', async () => {
    for (const [alg, doc] of await generated) {
      assert.deepEqual(schemaProblems(doc), [], alg)
      const ks = loadKeyset(doc, NOW.getTime())
      assert.equal(ks.current.alg, alg)
      assert.equal(ks.current.status, 'current')
      assert.ok(ks.current.signingKey, `${alg}: the current key must be able to sign`)
      assert.equal(ks.current.createdAt, Date.parse('2026-11-25T21:16:00Z'))
      assert.equal(ks.keys.size, 1)
    }
  })

  it('RSA keys are at least 2048 bits (3072 as generated)', async () => {
    assert.ok(GENERATED_RSA_BITS >= MIN_RSA_BITS)
    for (const [alg, doc] of await generated) {
      if (ALG_SPECS[alg].kty !== 'RSA') continue
      const bits = loadKeyset(doc, NOW.getTime()).current.verifyKey.asymmetricKeyDetails?.modulusLength
      assert.equal(bits, GENERATED_RSA_BITS, alg)
    }
  })

  it('HMAC secrets are at least the hash size', async () => {
    for (const [alg, doc] of await generated) {
      if (ALG_SPECS[alg].family !== 'hmac') continue
      assert.ok(loadKeyset(doc, NOW.getTime()).current.verifyKey.symmetricKeySize! >= ALG_SPECS[alg].minSecretBytes!, alg)
    }
  })

  it('keeps the JWK to the members the schema knows (no key_ops, ext, alg, kid)', async () => {
    for (const [, doc] of await generated) {
      const jwk = doc.keys[0]!.jwk as Record<string, unknown>
      for (const m of ['key_ops', 'ext', 'alg', 'kid']) assert.ok(!(m in jwk), m)
    }
  })
})

describe('generateKeyEntry and kids', () => {
  it('new kids follow the grammar k-<UTC date>-<6 hex> and avoid taken ones', () => {
    const kid = newKid(NOW)
    assert.match(kid, /^k-20261125-[0-9a-f]{6}$/)
    const taken = new Set(Array.from({ length: 200 }, () => newKid(NOW)))
    assert.ok(!taken.has(newKid(NOW, taken)))
  })

  it('two generated keys differ and carry the given kid', async () => {
    const a = await generateKeyEntry('ES256', { now: NOW, kid: 'k-a' })
    const b = await generateKeyEntry('ES256', { now: NOW })
    assert.equal(a.kid, 'k-a')
    assert.notEqual(a.jwk.d, b.jwk.d)
    assert.equal(a.created_at, '2026-11-25T21:16:00Z')
  })

  it('toRfc3339 is UTC with second precision', () => {
    assert.equal(toRfc3339(new Date('2026-01-02T03:04:05.999Z')), '2026-01-02T03:04:05Z')
  })
})
