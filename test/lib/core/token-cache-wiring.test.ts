import assert from 'node:assert/strict'
import { afterEach, describe, it } from 'node:test'
import { makeKey, makeKeyset, signToken, validClaims } from '../../support/keys.js'
import { parseExposition, valueOf } from '../../support/metrics-text.js'
import { coreOn, tempKeyset } from './fixtures.js'

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

async function counts(options: Record<string, unknown>, env: Record<string, string> = {}) {
  const key = makeKey('ES256', 'k-a')
  const ks = tempKeyset(makeKeyset([key]))
  cleanups.push(ks.cleanup)
  const parts = coreOn(ks.file, { ...options, env })
  cleanups.push(() => parts.cbc.close())
  await parts.cbc.start()
  const header = `Bearer ${signToken(key, validClaims())}`
  for (let i = 0; i < 3; i++) assert.equal((await parts.cbc.authenticate(header)).ok, true)
  const expo = parseExposition(await parts.metrics.registry.metrics())
  return { hits: valueOf(expo, 'cbc_jwt_token_cache_hits_total'), misses: valueOf(expo, 'cbc_jwt_token_cache_misses_total'), config: parts.cbc.config }
}

describe('createCbcJwt: the verified-token cache comes from the configuration (CONTRACT §8)', () => {
  it('is on by default: a repeated token is a hit, counted in the metrics', async () => {
    const { hits, misses, config } = await counts({})
    assert.equal(config.tokenCacheEntries, 10_000)
    assert.deepEqual([hits, misses], [2, 1])
  })

  // The unknown-kid re-read verifies the token a second time: that is the same verification,
  // not a second token missing from the cache (docs/metrics.md: one miss per verification).
  it('a token whose unknown kid triggers the re-read counts one miss, not two', async () => {
    const key = makeKey('ES256', 'k-a')
    const ks = tempKeyset(makeKeyset([key]))
    cleanups.push(ks.cleanup)
    const parts = coreOn(ks.file, {})
    cleanups.push(() => parts.cbc.close())
    await parts.cbc.start()
    const forged = await parts.cbc.authenticate(`Bearer ${signToken(makeKey('ES256', 'k-not-loaded'), validClaims())}`)
    assert.equal(forged.ok ? 'accepted' : forged.reason, 'unknown_kid')
    const expo = parseExposition(await parts.metrics.registry.metrics())
    assert.deepEqual([valueOf(expo, 'cbc_jwt_token_cache_hits_total'), valueOf(expo, 'cbc_jwt_token_cache_misses_total')], [0, 1])
  })

  it('CBC_JWT_TOKEN_CACHE_ENTRIES=0 turns it off; the option in code wins over the environment', async () => {
    assert.deepEqual([(await counts({}, { CBC_JWT_TOKEN_CACHE_ENTRIES: '0' })).hits], [0])
    assert.deepEqual([(await counts({ tokenCacheEntries: 5 }, { CBC_JWT_TOKEN_CACHE_ENTRIES: '0' })).hits], [2])
    assert.throws(() => coreOn('/nonexistent', { tokenCacheEntries: -1 }), RangeError)
  })
})
