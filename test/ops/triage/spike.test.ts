import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fs from 'node:fs'
import fc from 'fast-check'
import { SpikeHistogram } from '../../../src/ops/triage/spike.js'
import { revokeCommand, revokeTime } from '../../../src/ops/triage/offenders.js'
import { makeKey, makeKeyset } from '../../support/keys.js'
import { at, cbcJwt, tempDir } from '../cli/cli.js'

const T = Date.parse('2026-11-25T20:00:00Z')
const MIN = 60_000
const GAP = 5 * MIN

describe('spike start of one group', () => {
  it('a stray rejection eleven minutes earlier does not move the start back', () => {
    const h = new SpikeHistogram()
    h.add(T - 11 * MIN)
    for (let i = 0; i < 40; i++) h.add(T + 700 + i * 1000)
    assert.deepEqual(h.spike(GAP), { start: T + 700, count: 40 })
  })

  it('lines in any order (one replica after the other) give the same start', () => {
    const times = [T + 3000, T + 500, T + 90_000, T - 20 * MIN, T + 1000]
    const forward = new SpikeHistogram()
    const backward = new SpikeHistogram()
    times.forEach((t) => forward.add(t))
    ;[...times].reverse().forEach((t) => backward.add(t))
    assert.deepEqual(forward.spike(GAP), { start: T + 500, count: 4 })
    assert.deepEqual(backward.spike(GAP), forward.spike(GAP))
  })

  it('of two equal runs, the later one; a run goes on across silences shorter than the gap', () => {
    const h = new SpikeHistogram()
    ;[T, T + 1000, T + 30 * MIN, T + 33 * MIN].forEach((t) => h.add(t))
    assert.deepEqual(h.spike(GAP), { start: T + 30 * MIN, count: 2 })
  })

  it('the start is the first rejection of the busiest run, whatever the history (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 120 * MIN }), { minLength: 1, maxLength: 60 }), (offsets) => {
        const h = new SpikeHistogram()
        offsets.forEach((o) => h.add(T + o))
        const spike = h.spike(GAP)!
        // The run it names: every rejection from the start on, while minute gaps stay ≤ 5.
        const sorted = [...offsets].map((o) => T + o).sort((a, b) => a - b)
        assert.ok(sorted.includes(spike.start), 'the start is a real rejection')
        const before = sorted.filter((t) => t < spike.start)
        const minute = (t: number) => Math.floor(t / MIN)
        if (before.length > 0) assert.ok(minute(spike.start) - minute(before.at(-1)!) > 5, 'nothing within the gap before the start')
        assert.ok(spike.count >= 1 && spike.count <= sorted.length)
      }),
      { ...(process.env.CI ? { seed: 20261206 } : {}), numRuns: 200 },
    )
  })

  it('memory is bounded: past the cap the oldest minutes go, the recent spike stays', () => {
    const h = new SpikeHistogram(60_000, 10)
    for (let m = 0; m < 50; m++) h.add(T + m * 10 * MIN)
    for (let i = 0; i < 5; i++) h.add(T + 600 * MIN + i)
    h.add(T) // older than every minute kept: ignored
    assert.deepEqual(h.spike(GAP), { start: T + 600 * MIN, count: 5 })
  })
})

describe('the revoke command for an offender', () => {
  const o = (clientId: string) => ({ clientId, verified: true, subject: false, reason: 'bad_signature' as const, spikeCount: 3, spikeStart: T + 400 })
  it('rounds the start up to the second and quotes for the shell only when needed', () => {
    assert.equal(revokeTime(T + 400), '2026-11-25T20:00:01Z')
    assert.equal(revokeTime(T), '2026-11-25T20:00:00Z')
    assert.equal(revokeCommand(o('acme-batch')), 'cbc-jwt revoke --client-id acme-batch --issued-before 2026-11-25T20:00:01Z')
    assert.equal(revokeCommand(o("it's $(rm -rf) x")), `cbc-jwt revoke --client-id 'it'\\''s $(rm -rf) x' --issued-before 2026-11-25T20:00:01Z`)
    assert.equal(revokeCommand(o('evil\u001b[2J')), undefined, 'never a control character on the terminal')
    assert.equal(revokeCommand(o('ünïcode')), undefined)
  })

  it("an id that starts with a dash is the option's value, not another option: the printed command runs", async () => {
    assert.equal(revokeCommand(o('-x')), 'cbc-jwt revoke --client-id=-x --issued-before 2026-11-25T20:00:01Z')
    const tmp = tempDir('dash-id')
    try {
      const file = tmp.file('keyset.json')
      fs.writeFileSync(file, JSON.stringify(makeKeyset([makeKey('ES256', 'k-dash')])))
      for (const id of ['-x', '--jti']) {
        // These commands need no quoting: the shell splits them at the spaces.
        const [, ...words] = revokeCommand(o(id))!.split(' ')
        const r = await cbcJwt([...words, '--keyset-file', file], { env: at('2026-11-25T21:00:00Z') })
        assert.equal(r.code, 0, r.stderr)
        const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as { revocations: Array<Record<string, string>> }
        assert.ok(
          doc.revocations.some((rule) => rule.client_id === id),
          `client ${id} revoked`,
        )
      }
    } finally {
      tmp.cleanup()
    }
  })
})
