import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { AuthFailureReason } from '../../../src/lib/reasons.js'
import { createFailureTally } from '../../../src/ops/triage/failures.js'
import type { RejectionRecord } from '../../../src/ops/triage/log-line.js'
import { busiestOffenders, revokeCommand } from '../../../src/ops/triage/offenders.js'

const T = Date.parse('2026-11-25T20:00:00Z')
const GAP = 5 * 60_000

/** `n` rejections one second apart from `from`, as `classifyLine` reads them back. */
const rejections = (n: number, o: { clientId: string | null; reason: AuthFailureReason; from?: number; verified?: boolean; subject?: boolean }) =>
  Array.from(
    { length: n },
    (_, i): RejectionRecord => ({
      reason: o.reason,
      clientId: o.clientId,
      verified: o.verified ?? true,
      subject: o.subject ?? false,
      time: (o.from ?? T) + i * 1000,
      source: undefined,
      remoteAddress: undefined,
      kid: undefined,
    }),
  )
const groupsOf = (...records: RejectionRecord[][]) => {
  const tally = createFailureTally(100)
  for (const r of records.flat()) tally.add(r)
  return tally.result().groups
}
const names = (list: ReturnType<typeof busiestOffenders>) => list.map((o) => `${o.subject ? 'sub' : 'client'} ${o.clientId} ${o.reason} ${o.spikeCount}`)

describe('failures: the client ids to cut off', () => {
  it('busiest first, each id once from its busiest group, at most --offenders of them', () => {
    const groups = groupsOf(
      rejections(9, { clientId: 'acme', reason: 'expired' }),
      rejections(7, { clientId: 'beta', reason: 'bad_signature', verified: false }),
      rejections(5, { clientId: 'acme', reason: 'bad_audience' }),
      rejections(3, { clientId: 'gamma', reason: 'expired' }),
    )
    assert.deepEqual(names(busiestOffenders(groups, 3, GAP)), ['client acme expired 9', 'client beta bad_signature 7', 'client gamma expired 3'])
    assert.deepEqual(names(busiestOffenders(groups, 2, GAP)), ['client acme expired 9', 'client beta bad_signature 7'])
    assert.deepEqual(busiestOffenders(groups, 0, GAP), [])
    assert.equal(busiestOffenders(groups, 3, GAP)[1]?.verified, false, 'an id only claimed stays marked unverified')
  })

  it('a group already revoked is the cut-off working, and a rejection without an id names no one: neither takes a place', () => {
    const groups = groupsOf(
      rejections(20, { clientId: 'acme', reason: 'revoked' }),
      rejections(12, { clientId: null, reason: 'missing' }),
      rejections(4, { clientId: 'beta', reason: 'expired' }),
    )
    assert.deepEqual(names(busiestOffenders(groups, 1, GAP)), ['client beta expired 4'])
  })

  it("an id that is the tokens' sub and the same id as a client id are two offenders", () => {
    const groups = groupsOf(rejections(6, { clientId: 'svc-a', reason: 'expired', subject: true }), rejections(4, { clientId: 'svc-a', reason: 'expired' }))
    const list = busiestOffenders(groups, 3, GAP)
    assert.deepEqual(names(list), ['sub svc-a expired 6', 'client svc-a expired 4'])
    assert.match(revokeCommand(list[0]!) ?? '', /^cbc-jwt revoke --subject svc-a /)
    assert.match(revokeCommand(list[1]!) ?? '', /^cbc-jwt revoke --client-id svc-a /)
  })

  it("each offender's command starts at its own spike, not at a stray rejection before it", () => {
    const groups = groupsOf(
      rejections(1, { clientId: 'acme', reason: 'expired', from: T - 30 * 60_000 }),
      rejections(5, { clientId: 'acme', reason: 'expired', from: T + 400 }),
    )
    const [acme] = busiestOffenders(groups, 1, GAP)
    assert.deepEqual({ count: acme?.spikeCount, start: acme?.spikeStart }, { count: 5, start: T + 400 })
    assert.equal(revokeCommand(acme!), 'cbc-jwt revoke --client-id acme --issued-before 2026-11-25T20:00:01Z')
  })
})

describe('failures: a command is printed only for an id the terminal and the shell take as it is', () => {
  const offender = (clientId: string) => ({ clientId, verified: true, subject: false, reason: 'expired' as const, spikeCount: 1, spikeStart: T })
  it('an id of 256 characters (what a rule may name) gets a command; one of 257 does not', () => {
    assert.equal(revokeCommand(offender('a'.repeat(256))), `cbc-jwt revoke --client-id ${'a'.repeat(256)} --issued-before 2026-11-25T20:00:00Z`)
    assert.equal(revokeCommand(offender('a'.repeat(257))), undefined)
  })
  it('a DEL or a unit separator (controls just outside printable ASCII) gets no command', () => {
    assert.equal(revokeCommand(offender('acme\u007f')), undefined)
    assert.equal(revokeCommand(offender('acme\u001f')), undefined)
  })
  it('a space is quoted: the shell would split the id into two words', () => {
    assert.equal(revokeCommand(offender('acme batch')), "cbc-jwt revoke --client-id 'acme batch' --issued-before 2026-11-25T20:00:00Z")
  })
})
