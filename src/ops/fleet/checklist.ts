import { toRfc3339 } from '../../lib/keyset/generate.js'
import { describeReplica, replicasHolding, replicasLacking, type FleetView } from './fleet.js'

/** One item of a checklist: what was seen, and whether it passed. */
export interface CheckItem {
  name: string
  result: 'pass' | 'fail' | 'skip'
  /** What was seen, e.g. `3 replicas, current k-20261125-3f9a1c everywhere`. */
  detail: string
}

export interface FleetChecklistOptions {
  /** The kids that were in the keyset before the rotation (at least the previous current one). */
  previousKids: readonly string[]
  /**
   * Compromise mode: the previous kids must verify nowhere and a `revoked_before` must be in
   * force on every replica (at least `revokedAtLeast`, Unix seconds, when given).
   */
  compromised: boolean
  revokedAtLeast?: number
}

const when = (s: number) => (s > 0 ? toRfc3339(new Date(s * 1000)) : 'none')

/**
 * The post-rotation checklist over every replica at once (docs/rotation.md, "Verification"): all replicas seen,
 * one current key everywhere that is not a previous one, previous keys verifying everywhere
 * (routine) or nowhere (compromise), and the same `revoked_before` in force everywhere.
 */
export function fleetChecklist(view: FleetView, o: FleetChecklistOptions): CheckItem[] {
  const items: CheckItem[] = []
  const up = view.replicas.filter((r) => r.reachable)
  const down = view.replicas.filter((r) => !r.reachable)
  items.push(
    down.length === 0
      ? { name: 'replicas up', result: 'pass', detail: `${up.length} replicas seen through ${view.source}` }
      : { name: 'replicas up', result: 'fail', detail: `${down.length} of ${view.replicas.length} cannot be seen: ${down.map(describeReplica).join('; ')}` },
  )

  const currents = up.map((r) => ({ r, kid: [...r.keys].find(([, s]) => s === 'current')?.[0] }))
  const distinct = [...new Set(currents.map((c) => c.kid ?? '(none)'))]
  const only = distinct.length === 1 ? distinct[0]! : undefined
  if (up.length === 0) items.push({ name: 'one current key', result: 'fail', detail: 'no replica can be seen' })
  else if (only === undefined) {
    items.push({ name: 'one current key', result: 'fail', detail: `replicas disagree: ${currents.map((c) => `${c.r.name} ${c.kid ?? '(none)'}`).join('; ')}` })
  } else if (o.previousKids.includes(only)) {
    items.push({ name: 'one current key', result: 'fail', detail: `current ${only} everywhere: still a previous kid, the rotation is not loaded` })
  } else items.push({ name: 'one current key', result: only === '(none)' ? 'fail' : 'pass', detail: `current ${only} on all ${up.length} replicas` })

  if (o.compromised) {
    const holding = replicasHolding(view, o.previousKids)
    items.push(
      holding.length === 0
        ? { name: 'previous keys verify nowhere', result: 'pass', detail: `${o.previousKids.join(', ')} verify on none of ${view.replicas.length} replicas` }
        : { name: 'previous keys verify nowhere', result: 'fail', detail: `still verifying (or unseen): ${holding.map(describeReplica).join('; ')}` },
    )
  } else if (o.previousKids.length === 0) {
    items.push({ name: 'previous key verifies everywhere', result: 'skip', detail: 'skipped (no --previous-kid)' })
  } else {
    const lacking = [...new Set(o.previousKids.flatMap((kid) => replicasLacking(view, kid)))]
    items.push(
      lacking.length === 0
        ? {
            name: 'previous key verifies everywhere',
            result: 'pass',
            detail: `${o.previousKids.join(', ')} ${o.previousKids.length === 1 ? 'verifies' : 'verify'} on all ${view.replicas.length} replicas (grace)`,
          }
        : { name: 'previous key verifies everywhere', result: 'fail', detail: `legacy tokens would fail on: ${lacking.map(describeReplica).join('; ')}` },
    )
  }

  const revoked = up.map((r) => ({ r, at: r.revokedBefore }))
  const values = [...new Set(revoked.map((x) => x.at))]
  const name = o.compromised ? 'revoked_before in force everywhere' : 'same revoked_before everywhere'
  const perReplica = () => revoked.map((x) => `${x.r.name} ${x.at === undefined ? 'unknown' : when(x.at)}`).join('; ')
  if (up.length === 0) items.push({ name, result: 'fail', detail: 'no replica can be seen' })
  else if (values.length !== 1 || values[0] === undefined) items.push({ name, result: 'fail', detail: `replicas differ: ${perReplica()}` })
  else if (o.compromised && !(values[0] > 0)) items.push({ name, result: 'fail', detail: 'no revoked_before is in force' })
  else if (o.compromised && o.revokedAtLeast !== undefined && values[0] < o.revokedAtLeast) {
    items.push({ name, result: 'fail', detail: `${when(values[0])} everywhere, earlier than ${when(o.revokedAtLeast)}` })
  } else if (o.compromised && down.length > 0) items.push({ name, result: 'fail', detail: `${when(values[0])} where seen; ${down.length} replicas unseen` })
  else items.push({ name, result: 'pass', detail: `${when(values[0])} on all ${up.length} replicas` })
  return items
}
