import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Registry } from 'prom-client'
import { loadKeyset, type LoadedKeyset } from '../../../src/lib/keyset/load.js'
import { createMetrics } from '../../../src/lib/metrics/metrics.js'
import { METRIC_NAMES } from '../../../src/lib/metrics/names.js'
import { AUTH_FAILURE_REASONS, BACKEND_ERROR_REASONS } from '../../../src/lib/reasons.js'
import { makeKey, makeKeyset } from '../../support/keys.js'
import { parseExposition, series, valueOf } from '../../support/metrics-text.js'

const T0 = Date.parse('2026-11-25T12:00:00Z')

function fakeKeyring(state: { keyset: LoadedKeyset | undefined; lastSuccess?: number }) {
  return {
    keyset: () => state.keyset,
    lastSuccessAt: () => state.lastSuccess,
    verifyingKeys: (at = T0) => (state.keyset ? [...state.keyset.keys.values()].filter((k) => k.notAfter === undefined || at < k.notAfter) : []),
  }
}

describe('createMetrics', () => {
  const a = makeKey('ES256', 'key-a')
  const b = makeKey('ES256', 'key-b')
  const createdA = new Date(T0 - 3600_000)
  const createdB = new Date(T0 - 10_000)
  const docA = makeKeyset([{ key: a, opts: { createdAt: createdA } }])
  const docB = makeKeyset([
    { key: b, opts: { createdAt: createdB } },
    { key: a, opts: { createdAt: createdA, notAfter: new Date(T0 + 60_000) } },
  ])

  it('exports every metric, every reason at 0, on its own registry (not the global one)', async () => {
    const registry = new Registry()
    const metrics = createMetrics({ keyring: fakeKeyring({ keyset: undefined }), refreshIntervalSeconds: 30, registry, now: () => T0 })
    assert.equal(metrics.registry, registry)
    const expo = parseExposition(await registry.metrics())
    assert.equal(expo.types[METRIC_NAMES.keysLoaded], 'gauge')
    assert.equal(expo.types[METRIC_NAMES.activeKeyAge], 'gauge')
    assert.equal(expo.types[METRIC_NAMES.rotations], 'counter')
    assert.equal(expo.types[METRIC_NAMES.authFailures], 'counter')
    assert.equal(expo.types[METRIC_NAMES.backendErrors], 'counter')
    assert.deepEqual(
      series(expo, METRIC_NAMES.authFailures).map((s) => [s.labels.reason, s.value]),
      AUTH_FAILURE_REASONS.map((r) => [r, 0]),
    )
    assert.deepEqual(
      series(expo, METRIC_NAMES.backendErrors).map((s) => [s.labels.reason, s.value]),
      BACKEND_ERROR_REASONS.map((r) => [r, 0]),
    )
    assert.equal(valueOf(expo, METRIC_NAMES.keysLoaded), 0)
    assert.equal(series(expo, METRIC_NAMES.activeKeyAge).length, 0, 'no age series before a keyset is loaded')
    assert.equal(valueOf(expo, METRIC_NAMES.lastSuccess), 0, 'last success is 0 (never) before the first success')
    assert.equal(valueOf(expo, METRIC_NAMES.refreshInterval), 30)
  })

  // The counter also counts trusted issuers' JWK Set reads (docs/metrics.md): a HELP that says
  // "from the secrets backend" sends an operator to a healthy keyset when an issuer fails.
  it("says in the backend errors' HELP that trusted issuers' JWK Sets count too", async () => {
    const metrics = createMetrics({ keyring: fakeKeyring({ keyset: undefined }), refreshIntervalSeconds: 30, now: () => T0 })
    const help = new RegExp(`^# HELP ${METRIC_NAMES.backendErrors} (.*)$`, 'm').exec(await metrics.registry.metrics())?.[1]
    assert.match(help ?? '', /keyset.*trusted issuers' JWK Sets/)
  })

  // With trusted issuers, a replica without its keyset exports their keys in cbc_jwt_key_info
  // and 0 here (docs/metrics.md): a HELP of "verification keys loaded" reads as a contradiction.
  it("says in the keys loaded HELP that trusted issuers' keys are not counted", async () => {
    const metrics = createMetrics({ keyring: fakeKeyring({ keyset: undefined }), refreshIntervalSeconds: 30, now: () => T0 })
    const help = new RegExp(`^# HELP ${METRIC_NAMES.keysLoaded} (.*)$`, 'm').exec(await metrics.registry.metrics())?.[1]
    assert.match(help ?? '', /keyset.*trusted issuers' keys are not counted/)
  })

  it("a current key created ahead of this replica's clock (skew between machines) is 0 s old, never negative", async () => {
    const ahead = makeKeyset([{ key: a, opts: { createdAt: new Date(T0 + 90_000) } }], { current: 'key-a' })
    const metrics = createMetrics({ keyring: fakeKeyring({ keyset: loadKeyset(ahead, T0) }), refreshIntervalSeconds: 30, now: () => T0 })
    const expo = parseExposition(await metrics.registry.metrics())
    assert.deepEqual(
      series(expo, METRIC_NAMES.activeKeyAge).map((s) => [s.labels.kid, s.value]),
      [['key-a', 0]],
    )
  })

  it('computes the age at scrape time and keeps exactly one kid series across a rotation', async () => {
    const state = { keyset: loadKeyset(docA, T0) as LoadedKeyset | undefined, lastSuccess: T0 }
    let now = T0
    const metrics = createMetrics({ keyring: fakeKeyring(state), refreshIntervalSeconds: 30, now: () => now })
    let expo = parseExposition(await metrics.registry.metrics())
    assert.deepEqual(
      series(expo, METRIC_NAMES.activeKeyAge).map((s) => [s.labels.kid, s.value]),
      [['key-a', 3600]],
    )
    now = T0 + 5000
    expo = parseExposition(await metrics.registry.metrics())
    assert.deepEqual(
      series(expo, METRIC_NAMES.activeKeyAge).map((s) => [s.labels.kid, s.value]),
      [['key-a', 3605]],
    )

    state.keyset = loadKeyset(docB, T0)
    metrics.rotation()
    expo = parseExposition(await metrics.registry.metrics())
    assert.deepEqual(
      series(expo, METRIC_NAMES.activeKeyAge).map((s) => [s.labels.kid, s.value]),
      [['key-b', 15]],
    )
    assert.equal(valueOf(expo, METRIC_NAMES.rotations), 1)
    assert.equal(valueOf(expo, METRIC_NAMES.keysLoaded), 2)
    assert.equal(valueOf(expo, METRIC_NAMES.lastSuccess), T0 / 1000)

    now = T0 + 60_000 // key-a reaches its not_after: it no longer counts as loaded
    expo = parseExposition(await metrics.registry.metrics())
    assert.equal(valueOf(expo, METRIC_NAMES.keysLoaded), 1)
  })

  it('counts failures only under the closed reason lists', async () => {
    const metrics = createMetrics({ keyring: fakeKeyring({ keyset: undefined }), refreshIntervalSeconds: 30 })
    metrics.authFailure('expired')
    metrics.authFailure('expired')
    metrics.backendError('not_found')
    const expo = parseExposition(await metrics.registry.metrics())
    assert.equal(valueOf(expo, METRIC_NAMES.authFailures, { reason: 'expired' }), 2)
    assert.equal(valueOf(expo, METRIC_NAMES.authFailures, { reason: 'revoked' }), 0)
    assert.equal(valueOf(expo, METRIC_NAMES.backendErrors, { reason: 'not_found' }), 1)
    assert.equal(series(expo, METRIC_NAMES.authFailures).length, AUTH_FAILURE_REASONS.length)
  })

  it('exports the verified-token cache counts, from 0 when the cache is off', async () => {
    const off = createMetrics({ keyring: fakeKeyring({ keyset: undefined }), refreshIntervalSeconds: 30 })
    let expo = parseExposition(await off.registry.metrics())
    for (const name of [METRIC_NAMES.tokenCacheHits, METRIC_NAMES.tokenCacheMisses, METRIC_NAMES.tokenCacheEntries, METRIC_NAMES.tokenCacheBytes]) {
      assert.equal(valueOf(expo, name), 0, name)
    }
    const stats = { hits: 5, misses: 2, evictions: 1, entries: 3, bytes: 4000, maxEntries: 10, maxBytes: 1 << 20 }
    const on = createMetrics({ keyring: fakeKeyring({ keyset: undefined }), refreshIntervalSeconds: 30, tokenCacheStats: () => stats })
    expo = parseExposition(await on.registry.metrics())
    assert.equal(expo.types[METRIC_NAMES.tokenCacheHits], 'counter')
    assert.deepEqual(
      [
        METRIC_NAMES.tokenCacheHits,
        METRIC_NAMES.tokenCacheMisses,
        METRIC_NAMES.tokenCacheEvictions,
        METRIC_NAMES.tokenCacheEntries,
        METRIC_NAMES.tokenCacheBytes,
      ].map((n) => valueOf(expo, n)),
      [5, 2, 1, 3, 4000],
    )
    stats.hits = 9
    expo = parseExposition(await on.registry.metrics())
    assert.equal(valueOf(expo, METRIC_NAMES.tokenCacheHits), 9, 'the counter catches up at each scrape')
    // A hit found stale is taken back (the cache's drop()): a scrape in between saw it. The
    // counter never goes down, and the hit counted once is not counted again when hits rise.
    stats.hits = 8
    expo = parseExposition(await on.registry.metrics())
    assert.equal(valueOf(expo, METRIC_NAMES.tokenCacheHits), 9)
    stats.hits = 9
    expo = parseExposition(await on.registry.metrics())
    assert.equal(valueOf(expo, METRIC_NAMES.tokenCacheHits), 9, 'no hit counted twice')
    stats.hits = 10
    expo = parseExposition(await on.registry.metrics())
    assert.equal(valueOf(expo, METRIC_NAMES.tokenCacheHits), 10)
  })
})
