import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { signToken } from '../../support/keys.js'
import { claimsAt, keyPool, verifierAt, withSignature } from './fixtures.js'

describe('signature checks on the threadpool: same answers, only later', () => {
  const { byAlg, keyset } = keyPool()
  const threadpool = verifierAt(undefined, { tokenCacheEntries: 0 })
  const inline = verifierAt(undefined, { tokenCacheEntries: 0, threadpoolFamilies: [] })

  for (const [alg, key] of Object.entries(byAlg)) {
    it(`${alg}: a good token, a forged signature, a truncated one, impossible ones and an expired one get the same answer both ways`, async () => {
      const good = signToken(key, claimsAt())
      const sig = Buffer.from(good.split('.')[2]!, 'base64url')
      const tokens = [
        good,
        withSignature(good, Buffer.from(sig.map((b, i) => (i === 3 ? b ^ 1 : b)))),
        withSignature(good, sig.subarray(0, sig.length - 1)),
        // Right length, impossible values (r = s = 0; r, s ≥ the group order; m ≥ n for RSA):
        // the inline check (a `Verify`) and the threadpool's (one-shot) must both say no.
        withSignature(good, Buffer.alloc(sig.length)),
        withSignature(good, Buffer.alloc(sig.length, 0xff)),
        signToken(key, claimsAt(undefined, { exp: 1 })),
      ]
      // ES* and PS* go to the threadpool; HMAC, EdDSA and RS* stay on the event loop (measured).
      assert.equal(threadpool.verify(good, keyset) instanceof Promise, alg.startsWith('ES') || alg.startsWith('PS'))
      assert.ok(!(inline.verify(good, keyset) instanceof Promise))
      for (const token of tokens) assert.deepEqual(await threadpool.verify(token, keyset), inline.verify(token, keyset))
    })
  }

  it('a cached acceptance answers at once, without the threadpool', async () => {
    const verifier = verifierAt()
    const token = signToken(byAlg.ES256, claimsAt())
    const first = verifier.verify(token, keyset)
    assert.ok(first instanceof Promise)
    assert.ok((await first).ok)
    const again = verifier.verify(token, keyset)
    assert.ok(!(again instanceof Promise) && again.ok)
  })
})
