import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { KeyStatus } from '../../../src/lib/keyset/document.js'
import { type CheckItem, type FleetChecklistOptions, fleetChecklist } from '../../../src/ops/fleet/checklist.js'
import type { FleetView, ReplicaState } from '../../../src/ops/fleet/fleet.js'

/**
 * `verify-rotation --prometheus/--replica` decides from one view of the fleet: these views are
 * built by hand, one replica differing from the others at a time, so that each item is shown
 * passing and failing for its own reason (its readers are tested in replicas.test.ts).
 */
const REVOKED = Date.parse('2026-11-25T20:00:00Z') / 1000
const up = (name: string, keys: Record<string, KeyStatus>, revokedBefore: number | undefined = REVOKED): ReplicaState => ({
  name,
  reachable: true,
  keys: new Map(Object.entries(keys)),
  revokedBefore,
})
const down = (name: string): ReplicaState => ({ name, reachable: false, problem: 'down: connection refused', keys: new Map(), revokedBefore: undefined })
const view = (...replicas: ReplicaState[]): FleetView => ({ source: '--replica a, b, c', replicas })
const ROTATED = { 'k-new': 'current', 'k-old': 'verify-only' } as const
const CONTAINED = { 'k-new': 'current' } as const
const ROUTINE: FleetChecklistOptions = { previousKids: ['k-old'], compromised: false }
const EMERGENCY: FleetChecklistOptions = { previousKids: ['k-old'], compromised: true }

const item = (items: CheckItem[], name: string): CheckItem => {
  const found = items.find((i) => i.name === name)
  assert.ok(found, `no item ${name} in ${items.map((i) => i.name).join(', ')}`)
  return found
}
const results = (items: CheckItem[]) => Object.fromEntries(items.map((i) => [i.name, i.result]))

describe('verify-rotation over the fleet: a routine rotation', () => {
  it('every replica with the new key current and the previous one verifying: every item passes', () => {
    const items = fleetChecklist(view(up('a', ROTATED), up('b', ROTATED), up('c', ROTATED)), ROUTINE)
    assert.deepEqual(results(items), {
      'replicas up': 'pass',
      'one current key': 'pass',
      'previous key verifies everywhere': 'pass',
      'same revoked_before everywhere': 'pass',
    })
    assert.equal(item(items, 'replicas up').detail, '3 replicas seen through --replica a, b, c')
    assert.equal(item(items, 'one current key').detail, 'current k-new on all 3 replicas')
    assert.equal(item(items, 'previous key verifies everywhere').detail, 'k-old verifies on all 3 replicas (grace)')
    assert.equal(item(items, 'same revoked_before everywhere').detail, '2026-11-25T20:00:00Z on all 3 replicas')
  })

  it('one replica down fails "replicas up" and the grace item, naming it and counting', () => {
    const items = fleetChecklist(view(up('a', ROTATED), down('b'), up('c', ROTATED)), ROUTINE)
    assert.equal(item(items, 'replicas up').result, 'fail')
    assert.equal(item(items, 'replicas up').detail, '1 of 3 cannot be seen: b (down: connection refused)')
    // What cannot be seen cannot be trusted to accept legacy tokens.
    assert.equal(item(items, 'previous key verifies everywhere').result, 'fail')
    assert.match(item(items, 'previous key verifies everywhere').detail, /^legacy tokens would fail on: b \(down/)
    // The replicas that are seen still agree.
    assert.equal(item(items, 'one current key').detail, 'current k-new on all 2 replicas')
  })

  it('one replica still signing with the previous key: the replicas disagree', () => {
    const items = fleetChecklist(view(up('a', ROTATED), up('b', { 'k-old': 'current', 'k-new': 'staged' }), up('c', ROTATED)), ROUTINE)
    assert.equal(item(items, 'one current key').result, 'fail')
    assert.equal(item(items, 'one current key').detail, 'replicas disagree: a k-new; b k-old; c k-new')
  })

  it('every replica still signing with a previous kid: the rotation is not loaded', () => {
    const before = { 'k-old': 'current', 'k-new': 'staged' } as const
    const items = fleetChecklist(view(up('a', before), up('b', before)), { previousKids: ['k-older', 'k-old'], compromised: false })
    assert.equal(item(items, 'one current key').result, 'fail')
    assert.match(item(items, 'one current key').detail, /still a previous kid/)
  })

  it('no replica with a current key fails, and one without fails beside others that have one', () => {
    const none = fleetChecklist(view(up('a', { 'k-old': 'verify-only' }), up('b', { 'k-old': 'verify-only' })), ROUTINE)
    assert.equal(item(none, 'one current key').result, 'fail')
    assert.equal(item(none, 'one current key').detail, 'current (none) on all 2 replicas')
    const one = fleetChecklist(view(up('a', ROTATED), up('b', { 'k-old': 'verify-only' })), ROUTINE)
    assert.equal(item(one, 'one current key').detail, 'replicas disagree: a k-new; b (none)')
  })

  it('no replica seen at all fails the current key and revoked_before items', () => {
    const items = fleetChecklist(view(down('a'), down('b')), ROUTINE)
    assert.deepEqual(results(items), {
      'replicas up': 'fail',
      'one current key': 'fail',
      'previous key verifies everywhere': 'fail',
      'same revoked_before everywhere': 'fail',
    })
    assert.equal(item(items, 'one current key').detail, 'no replica can be seen')
    assert.equal(item(items, 'same revoked_before everywhere').detail, 'no replica can be seen')
  })

  it('a replica that dropped the previous key early fails the grace item, naming only it', () => {
    const items = fleetChecklist(view(up('a', ROTATED), up('b', CONTAINED)), ROUTINE)
    assert.equal(item(items, 'previous key verifies everywhere').result, 'fail')
    assert.equal(item(items, 'previous key verifies everywhere').detail, 'legacy tokens would fail on: b (has k-new current)')
  })

  it('with two previous kids, a replica lacking either fails, and is named once', () => {
    const both = { 'k-new': 'current', 'k-old': 'verify-only', 'k-older': 'verify-only' } as const
    const o = { previousKids: ['k-older', 'k-old'], compromised: false }
    const pass = fleetChecklist(view(up('a', both), up('b', both)), o)
    assert.equal(item(pass, 'previous key verifies everywhere').detail, 'k-older, k-old verify on all 2 replicas (grace)')
    const fail = fleetChecklist(view(up('a', both), up('b', CONTAINED)), o)
    assert.equal(item(fail, 'previous key verifies everywhere').detail, 'legacy tokens would fail on: b (has k-new current)')
    const oneOfTwo = fleetChecklist(view(up('a', both), up('b', ROTATED)), o)
    assert.equal(item(oneOfTwo, 'previous key verifies everywhere').result, 'fail')
  })

  it('without --previous-kid the grace item is skipped, not passed', () => {
    const items = fleetChecklist(view(up('a', ROTATED)), { previousKids: [], compromised: false })
    assert.equal(item(items, 'previous key verifies everywhere').result, 'skip')
    assert.equal(item(items, 'previous key verifies everywhere').detail, 'skipped (no --previous-kid)')
    assert.equal(item(items, 'one current key').result, 'pass')
  })

  it('replicas with different revoked_before, or one that does not say, fail; none everywhere passes', () => {
    const differ = fleetChecklist(view(up('a', ROTATED), up('b', ROTATED, REVOKED - 1)), ROUTINE)
    assert.equal(item(differ, 'same revoked_before everywhere').result, 'fail')
    assert.equal(item(differ, 'same revoked_before everywhere').detail, 'replicas differ: a 2026-11-25T20:00:00Z; b 2026-11-25T19:59:59Z')
    const unsaid = { ...up('b', ROTATED), revokedBefore: undefined }
    const unknown = fleetChecklist(view(up('a', ROTATED), unsaid), ROUTINE)
    assert.equal(item(unknown, 'same revoked_before everywhere').result, 'fail')
    assert.equal(item(unknown, 'same revoked_before everywhere').detail, 'replicas differ: a 2026-11-25T20:00:00Z; b unknown')
    // A replica that does not report it (its gauge is missing from Prometheus) is never "the same".
    const silent = fleetChecklist(view({ ...up('a', ROTATED), revokedBefore: undefined }, { ...up('b', ROTATED), revokedBefore: undefined }), ROUTINE)
    assert.equal(item(silent, 'same revoked_before everywhere').result, 'fail')
    assert.equal(item(silent, 'same revoked_before everywhere').detail, 'replicas differ: a unknown; b unknown')
    const none = fleetChecklist(view(up('a', ROTATED, 0), up('b', ROTATED, 0)), ROUTINE)
    assert.equal(item(none, 'same revoked_before everywhere').result, 'pass')
    assert.equal(item(none, 'same revoked_before everywhere').detail, 'none on all 2 replicas')
  })
})

describe('verify-rotation --compromised over the fleet: the leaked key cut off', () => {
  it('the previous kid verifying nowhere and a revoked_before everywhere: every item passes', () => {
    const items = fleetChecklist(view(up('a', CONTAINED), up('b', CONTAINED)), { ...EMERGENCY, revokedAtLeast: REVOKED })
    assert.deepEqual(results(items), {
      'replicas up': 'pass',
      'one current key': 'pass',
      'previous keys verify nowhere': 'pass',
      'revoked_before in force everywhere': 'pass',
    })
    assert.equal(item(items, 'previous keys verify nowhere').detail, 'k-old verify on none of 2 replicas')
    assert.equal(item(items, 'revoked_before in force everywhere').detail, '2026-11-25T20:00:00Z on all 2 replicas')
  })

  it('attack: one replica still accepting the leaked key (as verify-only) is never all clear', () => {
    const items = fleetChecklist(view(up('a', CONTAINED), up('b', ROTATED)), EMERGENCY)
    assert.equal(item(items, 'previous keys verify nowhere').result, 'fail')
    assert.equal(item(items, 'previous keys verify nowhere').detail, 'still verifying (or unseen): b (has k-new current, k-old verify-only)')
  })

  it('attack: the leaked key kept as staged on one replica fails too', () => {
    const items = fleetChecklist(view(up('a', CONTAINED), up('b', { 'k-new': 'current', 'k-old': 'staged' })), EMERGENCY)
    assert.equal(item(items, 'previous keys verify nowhere').result, 'fail')
  })

  it('without --revoked-before, any revoked_before in force everywhere passes', () => {
    const items = fleetChecklist(view(up('a', CONTAINED), up('b', CONTAINED)), EMERGENCY)
    assert.equal(item(items, 'revoked_before in force everywhere').result, 'pass')
  })

  it('every replica that fails an item is named, each on its own', () => {
    const o = { previousKids: ['k-older', 'k-old'], compromised: true }
    const items = fleetChecklist(view(down('a'), down('b'), up('c', { 'k-new': 'current', 'k-old': 'verify-only' })), o)
    assert.equal(item(items, 'replicas up').detail, '2 of 3 cannot be seen: a (down: connection refused); b (down: connection refused)')
    assert.equal(
      item(items, 'previous keys verify nowhere').detail,
      'still verifying (or unseen): a (down: connection refused); b (down: connection refused); c (has k-new current, k-old verify-only)',
    )
    const clean = fleetChecklist(view(up('a', CONTAINED)), o)
    assert.equal(item(clean, 'previous keys verify nowhere').detail, 'k-older, k-old verify on none of 1 replicas')
    const lacking = fleetChecklist(view(up('a', CONTAINED), up('b', CONTAINED)), ROUTINE)
    assert.equal(item(lacking, 'previous key verifies everywhere').detail, 'legacy tokens would fail on: a (has k-new current); b (has k-new current)')
  })

  it('attack: any one of several leaked kids still verifying fails', () => {
    const o = { previousKids: ['k-older', 'k-old'], compromised: true }
    const items = fleetChecklist(view(up('a', CONTAINED), up('b', { 'k-new': 'current', 'k-older': 'verify-only' })), o)
    assert.equal(item(items, 'previous keys verify nowhere').result, 'fail')
    assert.match(item(items, 'previous keys verify nowhere').detail, /^still verifying \(or unseen\): b /)
  })

  it('a replica that cannot be seen may still accept the leaked key: fails, and so does revoked_before', () => {
    const items = fleetChecklist(view(up('a', CONTAINED), down('b')), EMERGENCY)
    assert.equal(item(items, 'previous keys verify nowhere').result, 'fail')
    assert.match(item(items, 'previous keys verify nowhere').detail, /b \(down: connection refused\)/)
    assert.equal(item(items, 'revoked_before in force everywhere').result, 'fail')
    assert.equal(item(items, 'revoked_before in force everywhere').detail, '2026-11-25T20:00:00Z where seen; 1 replicas unseen')
  })

  it('no revoked_before in force fails after an emergency rotation', () => {
    const fleet = view(up('a', CONTAINED, 0), up('b', CONTAINED, 0))
    assert.equal(item(fleetChecklist(fleet, EMERGENCY), 'revoked_before in force everywhere').result, 'fail')
    assert.equal(item(fleetChecklist(fleet, EMERGENCY), 'revoked_before in force everywhere').detail, 'no revoked_before is in force')
  })

  it('--revoked-before: a revoked_before one second earlier fails, the same instant passes', () => {
    const fleet = view(up('a', CONTAINED), up('b', CONTAINED))
    const early = fleetChecklist(fleet, { ...EMERGENCY, revokedAtLeast: REVOKED + 1 })
    assert.equal(item(early, 'revoked_before in force everywhere').result, 'fail')
    assert.equal(item(early, 'revoked_before in force everywhere').detail, '2026-11-25T20:00:00Z everywhere, earlier than 2026-11-25T20:00:01Z')
    const exact = fleetChecklist(fleet, { ...EMERGENCY, revokedAtLeast: REVOKED })
    assert.equal(item(exact, 'revoked_before in force everywhere').result, 'pass')
  })

  it('replicas with different revoked_before fail, even when both are in force', () => {
    const items = fleetChecklist(view(up('a', CONTAINED), up('b', CONTAINED, REVOKED + 60)), EMERGENCY)
    assert.equal(item(items, 'revoked_before in force everywhere').result, 'fail')
    assert.match(item(items, 'revoked_before in force everywhere').detail, /^replicas differ: /)
  })
})
