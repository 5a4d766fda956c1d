import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { KeysetInvalidError } from '../../../src/lib/errors.js'
import { loadKeyset, loadKeysetYielding } from '../../../src/lib/keyset/load.js'
import { makeKey, makeKeyset } from '../../support/keys.js'

const NOW = Date.UTC(2026, 10, 25, 21, 20, 0)

describe('loadKeyset with the keyset in force: unchanged keys are reused, not re-imported', () => {
  const a = makeKey('ES256', 'k-a')
  const b = makeKey('EdDSA', 'k-b')
  const c = makeKey('HS256', 'k-c')
  const first = loadKeyset(makeKeyset([a, b, c]), NOW)

  it('reuses the imports (the same KeyObjects) of keys whose kid, alg and JWK are unchanged', () => {
    const next = loadKeyset(makeKeyset([a, b, c]), NOW, first)
    assert.notEqual(next, first)
    for (const kid of ['k-a', 'k-b', 'k-c']) {
      assert.equal(next.keys.get(kid)!.verifyKey, first.keys.get(kid)!.verifyKey, kid)
      assert.equal(next.keys.get(kid)!.signingKey, first.keys.get(kid)!.signingKey, kid)
    }
  })

  it('imports a key again when its material changes under the same kid', () => {
    const a2 = makeKey('ES256', 'k-a')
    const next = loadKeyset(makeKeyset([a2, b, c]), NOW, first)
    assert.notEqual(next.keys.get('k-a')!.verifyKey, first.keys.get('k-a')!.verifyKey)
    assert.deepEqual(next.keys.get('k-a')!.publicJwk, { kty: 'EC', crv: 'P-256', x: a2.jwk.x, y: a2.jwk.y })
    assert.equal(next.keys.get('k-b')!.verifyKey, first.keys.get('k-b')!.verifyKey)
  })

  it('imports again when only the alg changes (the same secret as HS384 is another key)', () => {
    const c384 = { ...makeKey('HS384', 'k-c'), jwk: { ...c.jwk, k: Buffer.alloc(48, 7).toString('base64url') } }
    const sameBytes = loadKeyset(makeKeyset([a, c384]), NOW)
    const asOther = loadKeyset(
      makeKeyset([a, { ...c384, alg: 'HS512' as const, jwk: { ...c384.jwk, k: Buffer.alloc(64, 7).toString('base64url') } }]),
      NOW,
      sameBytes,
    )
    assert.notEqual(asOther.keys.get('k-c')!.verifyKey, sameBytes.keys.get('k-c')!.verifyKey)
    assert.equal(asOther.keys.get('k-c')!.alg, 'HS512')
  })

  it('takes status and dates from the new document, even for a reused key', () => {
    const notAfter = new Date(NOW + 3600_000)
    const next = loadKeyset(makeKeyset([b, { key: a, opts: { notAfter } }, c]), NOW, first)
    const ka = next.keys.get('k-a')!
    assert.equal(ka.verifyKey, first.keys.get('k-a')!.verifyKey)
    assert.equal(ka.status, 'verify-only')
    assert.equal(ka.notAfter, notAfter.getTime())
    assert.equal(next.current.kid, 'k-b')
  })

  it('reuses nothing across kids: the same material under a new kid is imported and checked', () => {
    const renamed = { ...a, kid: 'k-a2' }
    const next = loadKeyset(makeKeyset([renamed, b]), NOW, first)
    assert.notEqual(next.keys.get('k-a2')!.verifyKey, first.keys.get('k-a')!.verifyKey)
  })

  it('a refused key is never vouched for: the same bad key is refused on every reload', () => {
    const bad = { ...a, jwk: { ...a.jwk, d: makeKey('ES256', 'x').jwk.d! } } // private part of another key
    for (let i = 0; i < 2; i++) {
      assert.throws(
        () => loadKeyset(makeKeyset([c, bad]), NOW, first),
        (err: unknown) => err instanceof KeysetInvalidError && /does not match the public part/.test(err.message),
      )
    }
  })

  it('loadKeysetYielding gives the same keyset, letting the event loop run between imports', async () => {
    // Other work queued while the load runs gets turns before the load is done.
    let turns = 0
    let loading = true
    const other = () => {
      turns++
      if (loading) setImmediate(other)
    }
    setImmediate(other)
    const keys = [a, b, c, makeKey('ES256', 'k-d'), makeKey('ES256', 'k-e')]
    const loaded = await loadKeysetYielding(makeKeyset(keys), NOW)
    loading = false
    const sync = loadKeyset(makeKeyset(keys), NOW)
    assert.deepEqual([...loaded.keys.keys()], [...sync.keys.keys()])
    assert.deepEqual(
      [...loaded.keys.values()].map((k) => [k.alg, k.status, k.publicJwk]),
      [...sync.keys.values()].map((k) => [k.alg, k.status, k.publicJwk]),
    )
    assert.ok(turns >= 4, `other work ran ${turns} times while 5 keys loaded`)
    await assert.rejects(loadKeysetYielding({ version: 1, current: 'nope', keys: [] }, NOW), KeysetInvalidError)
  })
})
