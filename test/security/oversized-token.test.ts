// Attack: resource exhaustion with huge tokens — megabytes of base64 and JSON to decode per
// request. A token over maxTokenBytes is refused before any decoding, and the HTTP layer
// reads headers large enough that the refusal is a counted 401 too_large, not a silent 431.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { makeKey, makeKeyset, signToken, validClaims } from '../support/keys.js'
import { authFailures, bearer, delta, onlyReasonRose, startWithKeyset, type KeysetService } from '../server/fixtures.js'
import { NOW_S, claimsAt, keyPool, verifierAt } from '../lib/verifier/fixtures.js'
import { PROCESS_LEVEL } from '../support/tier.js'

describe('attack: oversized token (verifier)', () => {
  const { byAlg, keyset } = keyPool()
  const verifier = verifierAt()

  it('a validly signed token over 8192 bytes → too_large', async () => {
    const token = signToken(byAlg.ES256, claimsAt(NOW_S, { padding: 'x'.repeat(8192) }))
    assert.ok(token.length > 8192)
    const result = await verifier.verify(token, keyset)
    assert.equal(!result.ok && result.reason, 'too_large')
  })

  it('an 8193-byte token that is not even a JWS → too_large (size is checked first)', async () => {
    const result = await verifier.verify('!'.repeat(8193), keyset)
    assert.equal(!result.ok && result.reason, 'too_large')
  })
})

describe('attack: oversized token (over HTTP, real service)', PROCESS_LEVEL, () => {
  const key = makeKey('ES256', 'k-big')
  let ctx: KeysetService

  before(async () => {
    ctx = await startWithKeyset(makeKeyset([key]))
  })
  after(async () => {
    await ctx?.stop()
  })

  for (const kib of [20, 60]) {
    it(`a ~${kib} KB Authorization header → 401 too_large, counted, not 431`, async () => {
      const token = signToken(key, validClaims({ padding: 'x'.repeat(kib * 1024 * 0.75) }))
      assert.ok(token.length > (kib - 1) * 1024 && token.length < (kib + 1) * 1024)
      const before = authFailures(await ctx.service.metrics())
      const res = await ctx.service.get('/v1/whoami', bearer(token))
      assert.equal(res.status, 401)
      assert.equal(res.headers.get('www-authenticate'), 'Bearer error="invalid_token"')
      assert.deepEqual(res.json, { error: 'invalid_token', reason: 'too_large' })
      assert.deepEqual(delta(before, authFailures(await ctx.service.metrics())), onlyReasonRose('too_large'))
    })
  }

  it('the service still answers normally afterwards', async () => {
    const res = await ctx.service.get('/v1/whoami', bearer(signToken(key, validClaims())))
    assert.equal(res.status, 200)
  })
})
