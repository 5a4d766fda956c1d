// The interim projection published before a write that replaces the keyset in force with one
// that lacks its signing key (keyset init --force, keyset restore of an older copy): the keyset
// in force keeps verifying there, the new keys are published beside it, and every cut-off of
// either is in force.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import type { KeysetDocument } from '../../../src/lib/keyset/document.js'
import { loadKeyset } from '../../../src/lib/keyset/load.js'
import { interimProjection } from '../../../src/ops/projection/interim.js'
import { fuzzParameters } from '../../support/fuzz.js'
import { keyEntry, makeKey, makeKeyset } from '../../support/keys.js'

const a = makeKey('ES256', 'k-a')
const b = makeKey('ES256', 'k-b')
const c = makeKey('ES256', 'k-c')
const doc = (d: Record<string, unknown>) => d as unknown as KeysetDocument
const rule = (client: string) => ({ client_id: client, issued_before: '2026-11-25T10:00:00Z', created_at: '2026-11-25T10:00:00Z' })

describe('interimProjection', () => {
  it('is none for a successor: the replacing document holds the key the one in force signs with', () => {
    const before = doc(makeKeyset([a]))
    const rotated = doc(makeKeyset([b, a], { current: 'k-b' }))
    assert.equal(interimProjection(before, rotated), undefined)
    // Nor when the write retires that key on purpose: its projection cuts it off first.
    const retired = doc({ ...makeKeyset([b]), keys: [keyEntry(b), { ...keyEntry(a), not_after: '2026-11-25T12:00:00Z' }] })
    assert.equal(interimProjection(before, retired), undefined)
  })

  it('keyset init --force: the keyset in force stays current there, with its cut-offs; the new key is published beside it', () => {
    const before = doc({ ...makeKeyset([a, b]), revoked_before: '2026-11-25T09:00:00Z', revocations: [rule('app-1')] })
    const fresh = doc(makeKeyset([c]))
    const text = interimProjection(before, fresh)?.text
    assert.ok(text)
    const interim = loadKeyset(JSON.parse(text)).document
    assert.equal(interim.current, 'k-a')
    assert.deepEqual(interim.keys.map((k) => k.kid).sort(), ['k-a', 'k-b', 'k-c'])
    assert.equal(interim.keys.find((k) => k.kid === 'k-c')?.not_after, undefined, 'the new key is staged, not retiring')
    assert.equal(interim.revoked_before, '2026-11-25T09:00:00Z')
    assert.deepEqual(interim.revocations, [rule('app-1')])
    assert.ok(
      interim.keys.every((k) => !('d' in k.jwk)),
      'a projection holds no private key',
    )
  })

  it('keyset restore of an older copy: the earlier not_after of a key both hold, the later revoked_before, the rules of both', () => {
    const before = doc({
      version: 1,
      current: 'k-c',
      revoked_before: '2026-11-25T08:00:00Z',
      keys: [keyEntry(c), { ...keyEntry(b), not_after: '2026-11-26T00:00:00Z' }],
      revocations: [rule('app-1')],
    })
    const copy = doc({
      version: 1,
      current: 'k-a',
      revoked_before: '2026-11-25T09:00:00Z',
      keys: [keyEntry(a), { ...keyEntry(b), not_after: '2026-11-25T23:00:00Z' }],
      revocations: [rule('app-1'), rule('app-2')],
    })
    const interim = JSON.parse(interimProjection(before, copy)!.text) as KeysetDocument
    assert.equal(interim.current, 'k-c')
    assert.equal(interim.keys.find((k) => k.kid === 'k-b')?.not_after, '2026-11-25T23:00:00Z')
    assert.equal(interim.revoked_before, '2026-11-25T09:00:00Z')
    assert.deepEqual(interim.revocations, [rule('app-1'), rule('app-2')])
    const reversed = JSON.parse(interimProjection(copy, before)!.text) as KeysetDocument
    assert.equal(reversed.keys.find((k) => k.kid === 'k-b')?.not_after, '2026-11-25T23:00:00Z', 'whichever side holds the earlier one')
  })
})

// Any keyset in force, replaced by any other: whenever an interim projection is published, it
// loads as a verification keyset, the key in force still signs there, every key of the new
// keyset is published, and no cut-off of either side is relaxed.
describe('interimProjection, any pair of keysets', () => {
  const pool = ['k-p0', 'k-p1', 'k-p2', 'k-p3', 'k-p4'].map((kid) => makeKey('ES256', kid))
  const HOUR = 3_600_000
  const at = (hours: number) => new Date(Date.now() + hours * HOUR).toISOString().replace(/\.\d+Z$/, 'Z')
  const keyset = fc
    .record({
      kids: fc.uniqueArray(fc.integer({ min: 0, max: pool.length - 1 }), { minLength: 1, maxLength: pool.length }),
      notAfter: fc.array(fc.option(fc.integer({ min: 1, max: 48 }), { nil: undefined }), { minLength: pool.length, maxLength: pool.length }),
      revokedBefore: fc.option(fc.integer({ min: -48, max: -1 }), { nil: undefined }),
      clients: fc.uniqueArray(fc.constantFrom('app-1', 'app-2', 'app-3'), { maxLength: 3 }),
    })
    .map(({ kids, notAfter, revokedBefore, clients }) =>
      doc({
        version: 1,
        current: pool[kids[0]!]!.kid,
        ...(revokedBefore === undefined ? {} : { revoked_before: at(revokedBefore) }),
        // The current key has no not_after; the others may retire within two days.
        keys: kids.map((i, n) => ({ ...keyEntry(pool[i]!), ...(n > 0 && notAfter[i] !== undefined ? { not_after: at(notAfter[i]!) } : {}) })),
        ...(clients.length === 0 ? {} : { revocations: clients.map(rule) }),
      }),
    )

  it('holds for every pair', () => {
    let published = 0
    fc.assert(
      fc.property(keyset, keyset, (before, after) => {
        const text = interimProjection(before, after)?.text
        if (after.keys.some((k) => k.kid === before.current)) return assert.equal(text, undefined)
        assert.ok(text, 'a replacement that drops the signing key publishes an interim projection')
        published++
        const interim = loadKeyset(JSON.parse(text)).document
        assert.equal(interim.current, before.current)
        for (const k of after.keys)
          assert.ok(
            interim.keys.some((i) => i.kid === k.kid),
            `${k.kid} of the new keyset is published`,
          )
        for (const side of [before, after]) {
          for (const k of side.keys) {
            const cut = k.not_after
            const there = interim.keys.find((i) => i.kid === k.kid)
            assert.ok(there, `${k.kid} is published`)
            if (cut !== undefined) assert.ok(there.not_after !== undefined && Date.parse(there.not_after) <= Date.parse(cut), `${k.kid} stops no later`)
          }
          if (side.revoked_before !== undefined) assert.ok(Date.parse(interim.revoked_before ?? '') >= Date.parse(side.revoked_before))
          for (const r of side.revocations ?? []) assert.ok(interim.revocations?.some((i) => JSON.stringify(i) === JSON.stringify(r)))
        }
      }),
      fuzzParameters(200),
    )
    assert.ok(published > 0, 'the property saw interim projections')
  })
})
