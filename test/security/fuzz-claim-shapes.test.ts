// Property: a valid token whose claims are shaped against the verified-token cache — deep
// nesting, many empty objects and arrays, long distinct names, the prototype's own names,
// two-byte strings — gets the same answer from the cache as without it, its claims come back
// exactly and frozen all the way down, nothing leaks onto Object.prototype, and the cache's
// counted bytes never pass its bound (the heap behind that count is measured for fixed
// adversarial shapes in test/lib/verifier/token-cache.test.ts).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { loadKeyset } from '../../src/lib/keyset/load.js'
import { MAX_CLAIMS_DEPTH } from '../../src/lib/verifier/claims-cost.js'
import { claimShape, coverage, fuzzParameters } from '../support/fuzz.js'
import { makeKey, makeKeyset, signToken } from '../support/keys.js'
import { claimsAt, forge, NOW, verifierAt } from '../lib/verifier/fixtures.js'

const key = makeKey('HS256', 'k-shapes')
const keyset = loadKeyset(makeKeyset([key]), NOW)
const MAX_BYTES = 64 * 1024

function deepFrozen(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return true
  return Object.isFrozen(value) && Object.values(value).every(deepFrozen)
}

describe('fuzz: claim shapes against the verified-token cache', () => {
  it('same answer cached or not, claims exact and frozen, no prototype pollution, the byte bound kept', async () => {
    const cached = verifierAt(NOW, { tokenCacheEntries: 1000, tokenCacheMaxBytes: MAX_BYTES })
    const uncached = verifierAt(NOW, { tokenCacheEntries: 0 })
    const counts = { tokens: 0, tooLarge: 0, hits: 0 }
    await fc.assert(
      fc.asyncProperty(claimShape(), async (shape) => {
        // The registered claims the verifier checks win over the shape's names.
        const claims = { ...shape, ...claimsAt() }
        const token = signToken(key, claims)
        counts.tokens++
        const plain = await uncached.verify(token, keyset)
        const first = await cached.verify(token, keyset)
        const again = await cached.verify(token, keyset)
        assert.deepEqual(first, plain)
        assert.deepEqual(again, plain)
        if (!plain.ok) {
          assert.equal(plain.reason, 'too_large', JSON.stringify(plain))
          counts.tooLarge++
          return
        }
        assert.deepEqual(plain.claims, JSON.parse(JSON.stringify(claims)))
        assert.ok(again.ok && deepFrozen(again.claims), 'the claims handed to every repeat can be changed')
        assert.equal(Object.getPrototypeOf(again.ok && again.claims), Object.prototype)
        assert.equal(({} as Record<string, unknown>).polluted, undefined)
        const stats = cached.tokenCache!.stats()
        assert.ok(stats.bytes <= MAX_BYTES, `${stats.bytes} bytes counted, bound ${MAX_BYTES}`)
        counts.hits = stats.hits
      }),
      fuzzParameters(200),
    )
    coverage('claim-shapes', counts)
    assert.ok(counts.tokens - counts.tooLarge > 0, 'no case produced a token within the size bound')
  })
})

describe('claims nested deeper than the call stack', () => {
  // CBC_JWT_MAX_TOKEN_BYTES goes up to 60 KiB: room for a claim nested ~20 000 deep. JSON.parse
  // reads it; a walk of the claims by recursion overflowed the stack (authenticate() rejected:
  // a 500), and so did /v1/whoami's serializer when the deep claim was `sub`.
  const tokenNesting = (depth: number) => {
    const { exp, iat, iss, aud } = claimsAt()
    const payload = `{"iss":${JSON.stringify(iss)},"aud":${JSON.stringify(aud)},"iat":${iat},"exp":${exp},"deep":${'['.repeat(depth)}${']'.repeat(depth)}}`
    return forge({ header: { alg: 'HS256', kid: key.kid }, payload, alg: 'HS256', signingKey: key.signingKey })
  }

  it('attack: a signed token nesting a claim 20 000 deep is malformed, cached or not, never a thrown error', async () => {
    const token = tokenNesting(20_000)
    for (const entries of [0, 10]) {
      const verifier = verifierAt(NOW, { maxTokenBytes: 60 * 1024, tokenCacheEntries: entries })
      for (let i = 0; i < 2; i++) assert.deepEqual(await verifier.verify(token, keyset), { ok: false, reason: 'malformed', kid: key.kid, clientId: undefined })
    }
  })

  it(`claims nest up to ${MAX_CLAIMS_DEPTH} levels (the claims object is the first), frozen all the way down; one more is malformed`, async () => {
    const verifier = verifierAt(NOW, { maxTokenBytes: 60 * 1024 })
    const deepest = await verifier.verify(tokenNesting(MAX_CLAIMS_DEPTH - 1), keyset)
    assert.ok(deepest.ok, JSON.stringify(deepest))
    let node = deepest.claims.deep as unknown[]
    for (let d = 2; d < MAX_CLAIMS_DEPTH; d++) node = node[0] as unknown[]
    assert.ok(Object.isFrozen(node) && node.length === 0)
    const deeper = await verifier.verify(tokenNesting(MAX_CLAIMS_DEPTH), keyset)
    assert.equal(deeper.ok || deeper.reason, 'malformed')
  })
})
