import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { loadKeyset, type LoadedKey, type LoadedKeyset } from '../../../src/lib/keyset/load.js'
import { createMetrics } from '../../../src/lib/metrics/metrics.js'
import { METRIC_NAMES } from '../../../src/lib/metrics/names.js'
import { makeKey, makeKeyset } from '../../support/keys.js'
import { parseExposition, series, valueOf } from '../../support/metrics-text.js'

const T0 = Date.parse('2026-11-25T12:00:00Z')

function keyringOf(state: { keyset: LoadedKeyset | undefined }) {
  return {
    keyset: () => state.keyset,
    lastSuccessAt: () => undefined,
    verifyingKeys: (at: number = T0) => (state.keyset ? [...state.keyset.keys.values()].filter((k) => k.notAfter === undefined || at < k.notAfter) : []),
  }
}

const info = (text: string) =>
  series(parseExposition(text), METRIC_NAMES.keyInfo)
    .map((s) => `${s.labels.kid} ${s.labels.alg} ${s.labels.status} ${s.value}`)
    .sort()

describe('key state metrics (cbc_jwt_key_info, cbc_jwt_revoked_before_timestamp_seconds)', () => {
  const cur = makeKey('ES256', 'k-current')
  const old = makeKey('RS256', 'k-old')
  const staged = makeKey('ES256', 'k-staged')
  const created = new Date(T0 - 3600_000)

  it('exports no key series before the first load, and revoked_before 0 (none in force)', async () => {
    const metrics = createMetrics({ keyring: keyringOf({ keyset: undefined }), refreshIntervalSeconds: 30, now: () => T0 })
    const expo = parseExposition(await metrics.registry.metrics())
    assert.equal(expo.types[METRIC_NAMES.keyInfo], 'gauge')
    assert.equal(expo.types[METRIC_NAMES.revokedBefore], 'gauge')
    assert.equal(series(expo, METRIC_NAMES.keyInfo).length, 0)
    assert.deepEqual(
      series(expo, METRIC_NAMES.revokedBefore).map((s) => s.value),
      [0],
    )
  })

  it('one series per verifying key, status as the keyset says (no not_after and not current = staged)', async () => {
    const doc = makeKeyset(
      [
        { key: cur, opts: { createdAt: created } },
        { key: old, opts: { createdAt: created, notAfter: new Date(T0 + 60_000) } },
        { key: staged, opts: { createdAt: created } },
      ],
      { current: 'k-current', revoked_before: '2026-11-25T11:30:00Z' },
    )
    let now = T0
    const metrics = createMetrics({ keyring: keyringOf({ keyset: loadKeyset(doc, T0) }), refreshIntervalSeconds: 30, now: () => now })
    let text = await metrics.registry.metrics()
    assert.deepEqual(info(text), ['k-current ES256 current 1', 'k-old RS256 verify-only 1', 'k-staged ES256 staged 1'])
    assert.equal(valueOf(parseExposition(text), METRIC_NAMES.revokedBefore), Date.parse('2026-11-25T11:30:00Z') / 1000)

    now = T0 + 60_000 // k-old reaches not_after: it no longer verifies, so its series goes
    text = await metrics.registry.metrics()
    assert.deepEqual(info(text), ['k-current ES256 current 1', 'k-staged ES256 staged 1'])
  })

  it('series of removed keys disappear when the keyset changes; 0 when no revoked_before', async () => {
    const state = {
      keyset: loadKeyset(
        makeKeyset(
          [
            { key: cur, opts: { createdAt: created } },
            { key: staged, opts: { createdAt: created } },
          ],
          { current: 'k-current' },
        ),
        T0,
      ),
    }
    const metrics = createMetrics({ keyring: keyringOf(state), refreshIntervalSeconds: 30, now: () => T0 })
    assert.deepEqual(info(await metrics.registry.metrics()), ['k-current ES256 current 1', 'k-staged ES256 staged 1'])
    state.keyset = loadKeyset(makeKeyset([{ key: staged, opts: { createdAt: created } }], { current: 'k-staged' }), T0)
    const text = await metrics.registry.metrics()
    assert.deepEqual(info(text), ['k-staged ES256 current 1'])
    assert.equal(valueOf(parseExposition(text), METRIC_NAMES.revokedBefore), 0)
  })

  it('revoked_before back to none (a restored older keyset): 0 at the next scrape, never the old value left standing', async () => {
    const keys = [{ key: cur, opts: { createdAt: created } }]
    const state = { keyset: loadKeyset(makeKeyset(keys, { current: 'k-current', revoked_before: '2026-11-25T11:30:00Z' }), T0) }
    const metrics = createMetrics({ keyring: keyringOf(state), refreshIntervalSeconds: 30, now: () => T0 })
    assert.equal(valueOf(parseExposition(await metrics.registry.metrics()), METRIC_NAMES.revokedBefore), Date.parse('2026-11-25T11:30:00Z') / 1000)
    state.keyset = loadKeyset(makeKeyset(keys, { current: 'k-current' }), T0)
    // Left at the old value, min() over the replicas would show this one still enforcing it.
    assert.equal(valueOf(parseExposition(await metrics.registry.metrics()), METRIC_NAMES.revokedBefore), 0)
  })
})

describe('key state metrics with trusted issuers', () => {
  it('every series carries its issuer; a trusted issuer\'s keys are status="trusted", a shared kid is two series', async () => {
    const own = makeKey('ES256', 'shared')
    const keyset = loadKeyset(makeKeyset([own]), T0)
    let idpKeys: ReadonlyMap<string, LoadedKey> | undefined = new Map([['shared', { ...keyset.current, alg: 'RS256' as const }]])
    let lastRead: number | undefined = T0 - 5000
    const metrics = createMetrics({
      keyring: keyringOf({ keyset }),
      refreshIntervalSeconds: 30,
      now: () => T0,
      issuer: 'https://api.example.com',
      trustedIssuers: [{ issuer: 'https://idp.example.com', keys: () => idpKeys, lastSuccessAt: () => lastRead }],
    })
    const labels = async () =>
      series(parseExposition(await metrics.registry.metrics()), METRIC_NAMES.keyInfo)
        .map((s) => [s.labels.issuer, s.labels.kid, s.labels.alg, s.labels.status])
        .sort()
    assert.deepEqual(await labels(), [
      ['https://api.example.com', 'shared', 'ES256', 'current'],
      ['https://idp.example.com', 'shared', 'RS256', 'trusted'],
    ])
    const expo = parseExposition(await metrics.registry.metrics())
    assert.equal(valueOf(expo, METRIC_NAMES.issuerLastSuccess, { issuer: 'https://idp.example.com' }), (T0 - 5000) / 1000)
    idpKeys = undefined
    lastRead = undefined
    assert.deepEqual(await labels(), [['https://api.example.com', 'shared', 'ES256', 'current']])
    assert.equal(valueOf(parseExposition(await metrics.registry.metrics()), METRIC_NAMES.issuerLastSuccess, { issuer: 'https://idp.example.com' }), 0)
  })

  it("without trusted issuers, the keyset's keys carry the default issuer and no per-issuer gauge is exported", async () => {
    const metrics = createMetrics({
      keyring: keyringOf({ keyset: loadKeyset(makeKeyset([makeKey('ES256', 'k-1')]), T0) }),
      refreshIntervalSeconds: 30,
      now: () => T0,
    })
    const expo = parseExposition(await metrics.registry.metrics())
    assert.deepEqual(
      series(expo, METRIC_NAMES.keyInfo).map((s) => s.labels.issuer),
      ['cbc-omega2'],
    )
    assert.equal(expo.types[METRIC_NAMES.issuerLastSuccess], undefined)
  })
})
