// The per-replica signal of which revocation rules are in force: cbc_jwt_revocation_rules and
// cbc_jwt_revocations_newest_timestamp_seconds on /metrics, revocation_rules and
// revocations_newest in /v1/keys — one value, computed once per load, read by both. What
// `revoke --client-id/--subject/--jti --wait` compares on every replica.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { keysBody } from '../../../src/lib/core/keys-view.js'
import type { KeysetDocument } from '../../../src/lib/keyset/document.js'
import { loadKeyset, type LoadedKeyset } from '../../../src/lib/keyset/load.js'
import { createMetrics } from '../../../src/lib/metrics/metrics.js'
import { METRIC_NAMES } from '../../../src/lib/metrics/names.js'
import { DEFAULT_RULE_LIFETIME, pruneRevocations, revokeTargets } from '../../../src/ops/rotation/revocations.js'
import { makeKey, makeKeyset } from '../../support/keys.js'
import { parseExposition, series } from '../../support/metrics-text.js'

const T0 = Date.parse('2026-11-25T12:00:00Z')
const HOUR = 3_600_000

describe('the revocation-rule signal (metrics and /v1/keys)', () => {
  const state: { keyset: LoadedKeyset | undefined } = { keyset: undefined }
  const keyring = { keyset: () => state.keyset, lastSuccessAt: () => undefined, verifyingKeys: () => (state.keyset ? [...state.keyset.keys.values()] : []) }
  const metrics = createMetrics({ keyring, refreshIntervalSeconds: 30, now: () => T0 })
  /** [rules, newest] as /metrics says, then as /v1/keys says. */
  const signal = async () => {
    const expo = parseExposition(await metrics.registry.metrics())
    const one = (name: string) => series(expo, name).map((s) => s.value)
    const body = keysBody(keyring, T0)
    return {
      metrics: [one(METRIC_NAMES.revocationRules), one(METRIC_NAMES.revocationsNewest)],
      keys: body === undefined ? undefined : [body.revocation_rules, body.revocations_newest],
    }
  }
  let doc = makeKeyset([makeKey('ES256', 'k-a')]) as unknown as KeysetDocument
  const load = (next: KeysetDocument) => {
    doc = next
    state.keyset = loadKeyset(doc, T0)
  }

  it('before the first load: 0 rules, newest 0 (one series each, never absent), and no /v1/keys', async () => {
    assert.deepEqual(await signal(), { metrics: [[0], [0]], keys: undefined })
  })

  it('a keyset without rules: 0 and 0; /v1/keys says 0 and null', async () => {
    load(doc)
    assert.deepEqual(await signal(), { metrics: [[0], [0]], keys: [0, null] })
  })

  it('rules added: their number, and the created_at of the newest — the newest of a batch', async () => {
    load(revokeTargets(doc, { kind: 'client_id', values: ['acme-batch'], issuedBeforeMs: T0 - HOUR, nowMs: T0 - HOUR }).doc)
    assert.deepEqual(await signal(), { metrics: [[1], [(T0 - HOUR) / 1000]], keys: [1, '2026-11-25T11:00:00Z'] })
    load(revokeTargets(doc, { kind: 'jti', values: ['t-1', 't-2', 't-3'], expiresAtMs: T0 + HOUR, nowMs: T0 }).doc)
    assert.deepEqual(await signal(), { metrics: [[4], [T0 / 1000]], keys: [4, '2026-11-25T12:00:00Z'] })
  })

  it("two writes in the same second: the second one's rules are a second newer, so the signal tells them apart", async () => {
    load(revokeTargets(doc, { kind: 'sub', values: ['alice'], issuedBeforeMs: T0, nowMs: T0 + 400 }).doc)
    assert.deepEqual(await signal(), { metrics: [[5], [T0 / 1000 + 1]], keys: [5, '2026-11-25T12:00:01Z'] })
  })

  it('rules dropped by a later write: the count falls, and newest is that of the rules left', async () => {
    // 25 h later the client and subject rules can match no valid token any more; the jti rules neither.
    const later = structuredClone(doc)
    const dropped = pruneRevocations(later, T0 + 25 * HOUR, DEFAULT_RULE_LIFETIME)
    assert.equal(dropped.length, 5)
    load(later)
    assert.deepEqual(await signal(), { metrics: [[0], [0]], keys: [0, null] })
    // Only the newest rule dropped (a jti rule that expired first): newest goes back to the older rule.
    let d = revokeTargets(makeKeyset([makeKey('ES256', 'k-a')]) as unknown as KeysetDocument, {
      kind: 'client_id',
      values: ['web'],
      issuedBeforeMs: T0,
      nowMs: T0,
    }).doc
    d = revokeTargets(d, { kind: 'jti', values: ['short-lived'], expiresAtMs: T0 + 60_000, nowMs: T0 + 5000 }).doc
    load(d)
    assert.deepEqual((await signal()).keys, [2, '2026-11-25T12:00:05Z'])
    pruneRevocations(d, T0 + 10 * 60_000, DEFAULT_RULE_LIFETIME)
    load(d)
    assert.deepEqual(await signal(), { metrics: [[1], [T0 / 1000]], keys: [1, '2026-11-25T12:00:00Z'] })
  })
})
