import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createFailureTally } from '../../../src/ops/triage/failures.js'
import type { RejectionRecord } from '../../../src/ops/triage/log-line.js'

const T = Date.parse('2026-11-25T20:00:00Z')
const record = (o: Partial<RejectionRecord> & { time: number }): RejectionRecord => ({
  reason: 'expired',
  clientId: 'acme',
  verified: true,
  subject: false,
  source: undefined,
  remoteAddress: undefined,
  kid: undefined,
  ...o,
})

describe('failures: the tally of rejections by client id and reason', () => {
  it('lines of several replicas arrive in any order: first and last seen are the earliest and latest', () => {
    const tally = createFailureTally(10)
    for (const time of [T + 5000, T, T + 9000, T + 2000]) tally.add(record({ time }))
    const [acme] = tally.result().groups
    assert.deepEqual([acme?.count, acme?.firstSeen, acme?.lastSeen], [4, T, T + 9000])
  })

  it('equal counts: the group seen first comes first, then by client id', () => {
    const tally = createFailureTally(10)
    tally.add(record({ clientId: 'zeta', time: T }))
    tally.add(record({ clientId: 'beta', time: T + 1000 }))
    tally.add(record({ clientId: 'alpha', time: T + 1000 }))
    assert.deepEqual(
      tally.result().groups.map((g) => g.clientId),
      ['zeta', 'alpha', 'beta'],
    )
  })

  it('no id and an empty id are not the same client', () => {
    const tally = createFailureTally(10)
    tally.add(record({ clientId: null, time: T }))
    tally.add(record({ clientId: '', time: T }))
    assert.equal(tally.result().groups.length, 2)
  })

  it('--max-groups N holds exactly N groups; the rest is counted, not grouped', () => {
    const tally = createFailureTally(2)
    for (const clientId of ['a', 'b', 'c']) tally.add(record({ clientId, time: T }))
    tally.add(record({ clientId: 'a', time: T + 1000 }))
    const result = tally.result()
    assert.deepEqual(
      result.groups.map((g) => [g.clientId, g.count]),
      [
        ['a', 2],
        ['b', 1],
      ],
    )
    assert.deepEqual(result.overflow, { count: 1, firstSeen: T, lastSeen: T })
    assert.equal(result.rejections, 4)
  })

  it('at most 16 replicas and 16 remote addresses are kept per group, whatever a forger sends', () => {
    const tally = createFailureTally(10)
    for (let i = 0; i < 40; i++) tally.add(record({ time: T + i, source: `pod/p-${i}/cbc-jwt`, remoteAddress: `10.0.0.${i}` }))
    const [acme] = tally.result().groups
    assert.deepEqual([acme?.sources.size, acme?.remoteAddresses.size, acme?.count], [16, 16, 40])
  })
})
