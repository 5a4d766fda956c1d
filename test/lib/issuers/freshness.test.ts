// How long an issuer says its JWK Set stays fresh, and when cbc-jwt reads it again: parsed from
// a foreign header, so every odd spelling either yields a number or is ignored — never a throw,
// never a refresh sooner than a minute or later than the operator's interval.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { freshnessSeconds, MIN_REFRESH_SECONDS, nextRefreshSeconds } from '../../../src/lib/issuers/freshness.js'

describe('freshnessSeconds (RFC 9111 §4.2)', () => {
  const cases: Array<[Record<string, string>, number | undefined]> = [
    [{}, undefined],
    [{ 'cache-control': 'public, max-age=3600' }, 3600],
    [{ 'cache-control': 'Max-Age=120, must-revalidate' }, 120],
    [{ 'cache-control': 'max-age="60"' }, 60],
    [{ 'cache-control': 'max-age=200', age: '80' }, 120],
    [{ 'cache-control': 'max-age=60', age: '600' }, 0],
    [{ 'cache-control': 'max-age=60', age: 'soon' }, 60],
    [{ 'cache-control': 'no-cache' }, 0],
    [{ 'cache-control': 'private, no-store, max-age=600' }, 0],
    [{ 'cache-control': 'max-age=60, max-age=600' }, undefined],
    [{ 'cache-control': 'max-age=-5' }, undefined],
    [{ 'cache-control': 'max-age=1e9' }, undefined],
    [{ 'cache-control': 'max-age' }, undefined],
    [{ 'cache-control': `max-age=60,${' '.repeat(2000)}` }, undefined],
  ]
  for (const [headers, expected] of cases) {
    it(`${JSON.stringify(headers).slice(0, 80)} → ${expected}`, () => {
      assert.equal(freshnessSeconds(headers), expected)
    })
  }

  it('any header text yields undefined or a whole number ≥ 0, never a throw', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), fc.option(fc.string({ maxLength: 20 }), { nil: undefined }), (cacheControl, age) => {
        const headers: Record<string, string> = { 'cache-control': cacheControl }
        if (age !== undefined) headers.age = age
        const seconds = freshnessSeconds(headers)
        assert.ok(seconds === undefined || (Number.isInteger(seconds) && seconds >= 0))
      }),
    )
  })
})

describe('nextRefreshSeconds', () => {
  it('the interval alone when the issuer says nothing', () => {
    assert.equal(nextRefreshSeconds(300, undefined), 300)
  })
  it('sooner when the issuer says so, never under a minute, never over the interval', () => {
    assert.equal(nextRefreshSeconds(300, 90), 90)
    assert.equal(nextRefreshSeconds(300, 0), MIN_REFRESH_SECONDS)
    assert.equal(nextRefreshSeconds(300, 86400), 300)
    // An operator who set a shorter interval than the floor keeps it.
    assert.equal(nextRefreshSeconds(10, 0), 10)
  })
  it('always within [min(floor, interval), interval]', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 86400 }), fc.option(fc.nat({ max: 10 ** 9 }), { nil: undefined }), (interval, freshness) => {
        const next = nextRefreshSeconds(interval, freshness)
        assert.ok(next <= interval && next >= Math.min(MIN_REFRESH_SECONDS, interval))
      }),
    )
  })
})
