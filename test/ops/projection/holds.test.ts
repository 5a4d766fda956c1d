// What rotate asks of the verification projection before it promotes a staged key: whether
// a verifier reading it would verify with that key (the same kid, algorithm and public key, not
// cut off), as that verifier would judge it.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { KeysetBackend } from '../../../src/lib/backends/backend.js'
import type { KeysetDocument } from '../../../src/lib/keyset/document.js'
import { projectionsLacking, projectionView } from '../../../src/ops/projection/holds.js'
import { projectionOf } from '../../../src/ops/projection/publish.js'
import { makeKey, makeKeyset } from '../../support/keys.js'

const HOUR = 3600_000
const NOW = Date.parse('2021-06-01T12:00:00Z') // before the wall clock: a test that read it would see another answer
const current = makeKey('RS256', 'k-current')
const staged = makeKey('RS256', 'k-staged')
const doc = makeKeyset([
  { key: current, opts: { createdAt: new Date(NOW - 24 * HOUR) } },
  { key: staged, opts: { createdAt: new Date(NOW - HOUR) } },
]) as unknown as KeysetDocument
const stagedEntry = doc.keys.find((k) => k.kid === 'k-staged')!
const published = JSON.parse((projectionOf(doc) as { text: string }).text) as { keys: Array<Record<string, unknown>> }
/** The projection with the staged key's entry changed by `edit`. */
const edited = (edit: (k: Record<string, unknown>) => Record<string, unknown>) =>
  JSON.stringify({ ...published, keys: published.keys.map((k) => (k.kid === 'k-staged' ? edit(k) : k)) })
const LOCATION = '/etc/cbc/keyset.public.json'
const target = (text: string, reads?: { n: number }) =>
  ({
    kind: 'file',
    location: LOCATION,
    read: async () => {
      if (reads) reads.n++
      return { text, version: '1' }
    },
  }) as unknown as KeysetBackend
const lacking = (text: string, nowMs = NOW) => projectionsLacking([{ target: target(text), stored: { text, version: '1' } }], doc, stagedEntry, nowMs)

describe('projectionsLacking', () => {
  it('the projection as published holds the staged key', () => {
    assert.deepEqual(lacking(JSON.stringify(published)), [])
  })

  it('the same public key under another algorithm is another key: its verifiers refuse the tokens as unsupported_alg', () => {
    // RS256 and PS256 share an RSA key; a verifier checks the token's alg against the key's.
    assert.deepEqual(lacking(edited((k) => ({ ...k, alg: 'PS256' }))), [`${LOCATION} holds another key under that kid`])
  })

  it('a not_after cuts the key off from that instant, as a verifier cuts it off (now >= not_after)', () => {
    const at = (iso: string) => edited((k) => ({ ...k, not_after: iso }))
    assert.deepEqual(lacking(at('2021-06-01T12:00:00Z')), [`${LOCATION} cuts it off (not_after 2021-06-01T12:00:00Z)`])
    assert.deepEqual(lacking(at('2021-06-01T12:00:01Z')), [])
  })
  it('a keyset with HS* keys has no projection: one still stored somewhere lacks nothing, its verifiers read the keyset', () => {
    const hmac = makeKeyset([makeKey('HS256', 'k-secret'), makeKey('HS256', 'k-next')]) as unknown as KeysetDocument
    const stale = JSON.stringify(published)
    const next = hmac.keys.find((k) => k.kid === 'k-next')!
    assert.deepEqual(projectionsLacking([{ target: target(stale), stored: { text: stale, version: '1' } }], hmac, next, NOW), [])
  })
})

describe('projectionView', () => {
  it("reads the targets once per view, and judges them at the view's clock", async () => {
    const reads = { n: 0 }
    // Cut off an hour from the view's now, long before the wall clock.
    const text = edited((k) => ({ ...k, not_after: '2021-06-01T13:00:00Z' }))
    const view = projectionView([target(text, reads)], () => NOW)
    assert.deepEqual(await view.lacking(doc, 'k-staged'), [])
    assert.deepEqual(await view.lacking(doc, 'k-staged'), [])
    assert.equal(reads.n, 1)
    const later = projectionView([target(text)], () => NOW + 2 * HOUR)
    assert.deepEqual(await later.lacking(doc, 'k-staged'), [`${LOCATION} cuts it off (not_after 2021-06-01T13:00:00Z)`])
  })
})
