import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import { describe, it } from 'node:test'
import { createTokenCache, estimateEntryBytes, type CachedAcceptance } from '../../../src/lib/verifier/token-cache.js'
import { claimsAt, keysetOf, NOW, segment, verifierAt } from './fixtures.js'
import { makeKey, makeKeyset, signToken } from '../../support/keys.js'
import { loadKeyset, type LoadedKeyset } from '../../../src/lib/keyset/load.js'
import { ADVERSARIAL_SHAPES, heapFlood, shapeFlood } from '../../../bench/token-cache-heap.bench.js'
import { PROCESS_LEVEL } from '../../support/tier.js'

const KEY = crypto.createSecretKey(crypto.randomBytes(32))
const entry = (bytes: number): CachedAcceptance => ({ kid: 'k', alg: 'HS256', verifyKey: KEY, claims: { exp: 1, iat: 0 }, bytes })

describe('createTokenCache: bounded by entries and by bytes', () => {
  it('evicts an entry not used since it was stored before one in use, past the entry bound', () => {
    const cache = createTokenCache({ maxEntries: 2 })
    cache.store('a', entry(100))
    cache.store('b', entry(100))
    assert.ok(cache.lookup('a')) // a is in use, b is not
    cache.store('c', entry(100)) // full: the first offer is only remembered (see the doorkeeper tests)
    cache.store('c', entry(100))
    assert.equal(cache.lookup('b'), undefined, 'b was not used since it was stored')
    assert.ok(cache.lookup('a'))
    assert.ok(cache.lookup('c'))
    assert.deepEqual({ ...cache.stats(), maxBytes: 0 }, { hits: 3, misses: 1, evictions: 1, entries: 2, bytes: 200, maxEntries: 2, maxBytes: 0 })
  })

  it('when every entry is in use, eviction still ends: marks are cleared, the oldest goes, the new entry stays', () => {
    const cache = createTokenCache({ maxEntries: 3 })
    for (const t of ['a', 'b', 'c']) cache.store(t, entry(100))
    for (const t of ['a', 'b', 'c']) assert.ok(cache.lookup(t))
    for (let offer = 0; offer < 2; offer++) cache.store('d', entry(100))
    assert.equal(cache.lookup('a'), undefined, 'a, the oldest, went after one lap cleared every mark')
    // b and c lost their marks in that lap; d is unused too: the next store evicts b, the oldest unused.
    for (let offer = 0; offer < 2; offer++) cache.store('e', entry(100))
    assert.equal(cache.lookup('b'), undefined)
    for (const t of ['c', 'd', 'e']) assert.ok(cache.lookup(t), t)
    assert.equal(cache.stats().entries, 3)
    assert.equal(cache.stats().evictions, 2)
  })

  it('a hot entry survives a flood of new tokens that fills the cache many times over', () => {
    const cache = createTokenCache({ maxEntries: 100 })
    cache.store('hot', entry(100))
    for (let i = 0; i < 10_000; i++) {
      assert.ok(cache.lookup('hot'), `hot evicted after ${i} new tokens`)
      // Each offered twice, so that once full it is admitted and evicts (CLOCK's choice, not the doorkeeper's).
      cache.store(`new-${i}`, entry(100))
      cache.store(`new-${i}`, entry(100))
    }
    assert.equal(cache.stats().entries, 100)
    assert.ok(cache.stats().evictions > 9000)
  })

  it('once full, a token offered once is only remembered; offered again, it is stored and evicts', () => {
    const cache = createTokenCache({ maxEntries: 2 })
    cache.store('a', entry(100))
    cache.store('b', entry(100)) // below the bound, every first offer is stored
    cache.store('c', entry(100))
    assert.equal(cache.lookup('c'), undefined, 'the first offer of c would have evicted a or b')
    assert.deepEqual([cache.stats().entries, cache.stats().evictions], [2, 0])
    cache.store('c', entry(100))
    assert.ok(cache.lookup('c'), 'offered a second time, c is stored')
    assert.deepEqual([cache.stats().entries, cache.stats().evictions], [2, 1])
    // Not full any more (c dropped): a first offer is stored again.
    cache.drop('c')
    cache.store('d', entry(100))
    assert.ok(cache.lookup('d'))
  })

  it('once full, a flood of distinct tokens evicts nothing: every entry stays, used or not', () => {
    const cache = createTokenCache({ maxEntries: 100 })
    for (let i = 0; i < 100; i++) cache.store(`kept-${i}`, entry(100))
    for (let i = 0; i < 20_000; i++) cache.store(`one-off-${i}`, entry(100))
    for (let i = 0; i < 100; i++) assert.ok(cache.lookup(`kept-${i}`), `kept-${i}`)
    assert.equal(cache.stats().evictions, 0)
    // The last few once more, a second offer each: those the doorkeeper still remembers come
    // in, one eviction each (its 128 slots hold the latest marks; an older one may be overwritten).
    for (let i = 0; i < 10; i++) cache.store(`one-off-${19_990 + i}`, entry(100))
    assert.ok(cache.stats().evictions >= 8, `${cache.stats().evictions} of 10 admitted`)
  })

  it('once full of entries nobody uses, every token of a recurring set gets in within a few passes', () => {
    // Tokens whose slot keys share a doorkeeper bucket overwrite each other's mark; with one
    // mark per bucket, pairs of them recurring in turn never got in (≈ 6 % of these 1,000).
    const cache = createTokenCache({ maxEntries: 10_000 })
    const tokenOf = (name: string) => `${name}.${crypto.createHash('sha256').update(name).digest('base64url')}`
    for (let i = 0; i < 10_000; i++) cache.store(tokenOf(`stale-${i}`), entry(100))
    const recurring = Array.from({ length: 1000 }, (_, i) => tokenOf(`client-${i}`))
    for (let pass = 0; pass < 4; pass++) for (const t of recurring) if (!cache.lookup(t)) cache.store(t, entry(100))
    const missing = recurring.filter((t) => !cache.lookup(t))
    assert.equal(missing.length, 0, `${missing.length} of 1,000 recurring tokens never admitted`)
  })

  it('evicts past the byte bound, and never holds one entry larger than an eighth of it', () => {
    const cache = createTokenCache({ maxEntries: 1000, maxBytes: 8000 })
    for (let i = 0; i < 20; i++) cache.store(`t${i}`, entry(1000))
    assert.equal(cache.stats().bytes, 8000)
    assert.equal(cache.stats().entries, 8)
    cache.store('huge', entry(1001))
    assert.equal(cache.lookup('huge'), undefined)
    assert.equal(cache.stats().entries, 8)
  })

  it('drop turns the hit into a miss and frees the bytes', () => {
    const cache = createTokenCache({ maxEntries: 10 })
    cache.store('a', entry(500))
    assert.ok(cache.lookup('a'))
    cache.drop('a')
    assert.deepEqual([cache.stats().hits, cache.stats().misses, cache.stats().bytes, cache.stats().entries], [0, 1, 0, 0])
  })

  it('answers only for the exact token: another token with the same last characters is a miss, and takes the slot when stored', () => {
    const cache = createTokenCache({ maxEntries: 10 })
    const tail = 's'.repeat(40) // longer than the part of a token that keys its slot
    const a = `header-a.payload-a.${tail}`
    const b = `header-b.payload-b.${tail}`
    const stored = entry(100)
    cache.store(a, stored)
    assert.equal(cache.lookup(b), undefined, 'same ending, another token')
    assert.equal(cache.lookup(a)?.claims, stored.claims, "a's own acceptance")
    cache.drop(b) // the caller's own lookup of b missed; dropping it must not free a's slot
    assert.equal(cache.lookup(a)?.claims, stored.claims)
    cache.store(b, entry(200))
    assert.equal(cache.lookup(a), undefined, 'b took the slot: a is verified again when it comes back')
    assert.ok(cache.lookup(b))
    assert.deepEqual([cache.stats().entries, cache.stats().bytes], [1, 200])
  })

  it('refuses a bound that would make it unbounded or useless', () => {
    assert.throws(() => createTokenCache({ maxEntries: 0 }), RangeError)
    assert.throws(() => createTokenCache({ maxEntries: 1.5 }), RangeError)
    assert.throws(() => createTokenCache({ maxEntries: 10, maxBytes: 10 }), RangeError)
  })
})

// Process level: these measure the heap of the process they run in (npm test gives each file its own).
describe('the token cache on the real heap', PROCESS_LEVEL, () => {
  // The bound is enforced on an estimate; this measures the heap itself (full collections
  // before and after), so an estimate that undercounts — a token retaining its whole request
  // header, claims costing more than assumed — fails here.
  it('a flood of distinct valid 8 KiB tokens grows the heap by less than the 16 MiB bound', async () => {
    const r = await heapFlood('8 KiB', 8000, 3000)
    assert.ok(r.entries > 500 && r.entries < 3000, `the byte bound, not the entry bound, limited the cache (${r.entries} entries)`)
    assert.ok(r.heapGrowthBytes <= r.maxBytes, `heap grew ${r.heapGrowthBytes} bytes, bound ${r.maxBytes}`)
    assert.ok(r.heapGrowthBytes <= r.estimatedBytes * 1.1, `heap ${r.heapGrowthBytes} bytes against an estimate of ${r.estimatedBytes}`)
  })

  // A valid token chooses its claims: 2 characters of JSON (`{}`, `[]`) can hold 40–64 bytes of
  // heap. Counted from the payload's length, empty objects held 6.5× the bound.
  for (const shape of Object.keys(ADVERSARIAL_SHAPES)) {
    it(`attack: 8 KiB tokens of ${shape} keep the heap within the byte bound`, async () => {
      const maxBytes = 8 * 1024 * 1024
      const r = await shapeFlood(shape, 900, maxBytes)
      assert.ok(r.entries < 900, `the byte bound limited the cache (${r.entries} entries)`)
      assert.ok(r.heapGrowthBytes <= maxBytes, `heap grew ${(r.heapGrowthBytes / 1048576).toFixed(2)} MiB, bound 8 MiB`)
      assert.ok(r.heapGrowthBytes <= r.estimatedBytes, `heap ${r.heapGrowthBytes} bytes above the count ${r.estimatedBytes}`)
    })
  }
})

describe('verifier with a token cache', () => {
  const key = makeKey('HS256', 'k-hs')
  const keyset = keysetOf([key])

  it('a flood of distinct valid 8 KiB tokens stays within the byte bound (estimate counts the token)', async () => {
    const maxBytes = 256 * 1024
    const verifier = verifierAt(NOW, { tokenCacheEntries: 10_000, tokenCacheMaxBytes: maxBytes })
    for (let i = 0; i < 300; i++) {
      const token = signToken(key, claimsAt(undefined, { pad: 'x'.repeat(5900), n: i }))
      assert.ok(token.length > 7900 && token.length <= 8192)
      // Twice each: once the cache is full, a token is stored only when it comes back.
      assert.equal((await verifier.verify(token, keyset)).ok, true)
      assert.equal((await verifier.verify(token, keyset)).ok, true)
      const { bytes, entries } = verifier.tokenCache!.stats()
      assert.ok(bytes <= maxBytes, `${bytes} bytes held`)
      assert.ok(entries * token.length <= maxBytes)
    }
    assert.ok(verifier.tokenCache!.stats().evictions > 250)
    assert.ok(estimateEntryBytes('x'.repeat(8000), 5000) > 8000 + 5000)
  })

  it("a forged token ending in a cached token's signature is bad_signature, and the cached token still hits", async () => {
    const verifier = verifierAt(NOW)
    const token = signToken(key, claimsAt())
    assert.equal((await verifier.verify(token, keyset)).ok, true)
    const [header, , signature] = token.split('.')
    const forged = `${header}.${segment(claimsAt(undefined, { sub: 'mallory' }))}.${signature}`
    const hitsBefore = verifier.tokenCache!.stats().hits
    const result = await verifier.verify(forged, keyset)
    assert.deepEqual(result.ok ? 'accepted' : result.reason, 'bad_signature')
    assert.equal(verifier.tokenCache!.stats().hits, hitsBefore, 'the forgery was not answered from the cache')
    const again = await verifier.verify(token, keyset)
    assert.ok(again.ok && again.claims.sub === 'user-1')
    assert.equal(verifier.tokenCache!.stats().hits, hitsBefore + 1)
  })

  it('rejections are never cached', async () => {
    const verifier = verifierAt(NOW)
    const expired = signToken(key, claimsAt(undefined, { exp: NOW / 1000 - 3600 }))
    const badSig = signToken(makeKey('HS256', 'k-hs'), claimsAt())
    for (const token of [expired, badSig, 'not-a-token']) assert.equal((await verifier.verify(token, keyset)).ok, false)
    assert.equal(verifier.tokenCache!.stats().entries, 0)
  })

  it('0 entries turns the cache off', async () => {
    const verifier = verifierAt(NOW, { tokenCacheEntries: 0 })
    assert.equal(verifier.tokenCache, undefined)
    assert.equal((await verifier.verify(signToken(key, claimsAt()), keyset)).ok, true)
  })

  describe('a cached acceptance ends at the exact instant a full verification would refuse (CONTRACT §8)', () => {
    /** A cached verifier on a clock the test moves, and the answer it gives next to an uncached one's. */
    function pair() {
      let clock = NOW
      const cached = verifierAt(NOW, { now: () => clock })
      const answer = async (token: string, keyset: ReturnType<typeof keysetOf>) => {
        const result = await cached.verify(token, keyset)
        const full = await verifierAt(clock, { tokenCacheEntries: 0 }).verify(token, keyset)
        const said = (r: typeof result) => (r.ok ? 'ok' : r.reason)
        assert.equal(said(result), said(full), 'the cache changed the answer')
        return said(result)
      }
      return { answer, at: (ms: number) => void (clock = ms), hits: () => cached.tokenCache!.stats().hits }
    }
    const token = signToken(key, claimsAt())
    const iatMs = (NOW / 1000 - 60) * 1000
    /** The keyset reloaded with other revocations: its unchanged key keeps its material, so a repeat can hit. */
    const reloaded = (extra: { revoked_before?: string; revocations?: unknown[] }): LoadedKeyset => {
      const { revocations, ...rest } = extra
      return loadKeyset({ ...makeKeyset([key], rest), ...(revocations ? { revocations } : {}) }, NOW, keyset)
    }

    it('its key passing not_after: accepted one millisecond before, unknown_kid at the instant', async () => {
      const notAfter = NOW + 60_000
      const retiring = keysetOf([{ key, opts: { notAfter: new Date(notAfter) } }, makeKey('HS256', 'k-current')], { current: 'k-current' })
      const { answer, at, hits } = pair()
      assert.equal(await answer(token, retiring), 'ok')
      at(notAfter - 1)
      assert.equal(await answer(token, retiring), 'ok')
      assert.equal(hits(), 1, 'the repeat was answered from the cache')
      at(notAfter)
      assert.equal(await answer(token, retiring), 'unknown_kid')
    })

    it('revoked_before moving past its iat: equal still accepted, one millisecond later revoked (no tolerance)', async () => {
      const { answer, hits } = pair()
      assert.equal(await answer(token, keyset), 'ok')
      assert.equal(await answer(token, reloaded({ revoked_before: new Date(iatMs).toISOString() })), 'ok')
      assert.equal(hits(), 1)
      assert.equal(await answer(token, reloaded({ revoked_before: new Date(iatMs + 1).toISOString() })), 'revoked')
    })

    it('its key leaving the keyset, or its kid taking other material', async () => {
      const { answer } = pair()
      assert.equal(await answer(token, keyset), 'ok')
      assert.equal(await answer(token, keysetOf([makeKey('HS256', 'k-hs')])), 'bad_signature')
      assert.equal(await answer(token, keyset), 'ok')
      assert.equal(await answer(token, keysetOf([makeKey('HS256', 'k-other')])), 'unknown_kid')
    })

    it('a revocation rule naming its client, its subject or its jti, the moment it is loaded', async () => {
      const { answer, hits } = pair()
      const created_at = new Date(NOW).toISOString()
      const rules = [
        { client_id: 'client-1', issued_before: new Date(iatMs + 1).toISOString(), created_at },
        { sub: 'user-1', issued_before: new Date(iatMs + 1).toISOString(), created_at },
        { jti: 'tok-1', expires_at: new Date(NOW + 3_600_000).toISOString(), created_at },
      ]
      const withJti = signToken(key, claimsAt(undefined, { jti: 'tok-1' }))
      for (const rule of rules) {
        const before = hits()
        assert.equal(await answer(withJti, keyset), 'ok')
        assert.equal(await answer(withJti, reloaded({ revocations: [] })), 'ok')
        assert.equal(hits(), before + 1, 'the repeat was answered from the cache')
        assert.equal(await answer(withJti, reloaded({ revocations: [rule] })), 'revoked', JSON.stringify(rule))
      }
    })
  })

  it('hands out frozen claims, so one caller cannot change what a repeat of the token sees', async () => {
    const verifier = verifierAt(NOW)
    const token = signToken(key, claimsAt(undefined, { aud: ['x', 'cbc-api'] }))
    const first = await verifier.verify(token, keyset)
    assert.ok(first.ok)
    assert.throws(() => {
      ;(first.claims as Record<string, unknown>).sub = 'mallory'
    }, TypeError)
    assert.throws(() => (first.claims.aud as string[]).push('y'), TypeError)
    const again = await verifier.verify(token, keyset)
    assert.ok(again.ok && again.claims.sub === 'user-1')
  })
})
