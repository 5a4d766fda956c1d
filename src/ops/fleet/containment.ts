import { setTimeout as sleep } from 'node:timers/promises'
import { formatDuration } from '../../lib/duration.js'
import { toRfc3339 } from '../../lib/keyset/generate.js'
import { describeReplica, type FleetSource, type ReplicaState } from './fleet.js'

/** What every replica must report once an emergency change is in force there. */
export interface ContainedState {
  /** The kid that signs now: loaded and `current` (after `rotate --compromised`). */
  current?: string
  /** Kids that must verify nowhere (the keys an emergency rotation cut off). */
  gone: readonly string[]
  /** `revoked_before` (Unix seconds) that must be in force, or a later one. */
  revokedBefore?: number
  /**
   * A revocation rule's `created_at` (Unix seconds): the replica's newest rule must be at least
   * this one. Every write gives its new rules a `created_at` later than any rule already in the
   * document, so reaching it means having loaded that write (or a later one).
   */
  rulesCreatedAt?: number
}

export interface ContainmentReport {
  /** Replicas in the new state, with how long after the start of the wait they were first seen in it. */
  contained: Array<{ name: string; afterMs: number }>
  /** Replicas not seen in the new state when the wait ended (down ones included). */
  lagging: ReplicaState[]
  source: string
  /** Why the fleet itself could not be read at the end of the wait (Prometheus unreachable, …): no replica was seen. */
  unseen?: string
}

function holds(r: ReplicaState, want: ContainedState): boolean {
  if (!r.reachable) return false
  if (want.current !== undefined && r.keys.get(want.current) !== 'current') return false
  if (want.gone.some((kid) => r.keys.has(kid))) return false
  if (want.revokedBefore !== undefined && !(r.revokedBefore !== undefined && r.revokedBefore >= want.revokedBefore)) return false
  if (want.rulesCreatedAt !== undefined && !(r.revocationsNewest !== undefined && r.revocationsNewest >= want.rulesCreatedAt)) return false
  return true
}

/** A read never gets less time than this, even when the wait is (nearly) over: one real look. */
const MIN_READ_MS = 1000

/**
 * Asks the fleet again and again (every `intervalMs`) until every replica reports `want` at
 * once, or `waitMs` has passed. A replica counts as contained while its latest view shows it so,
 * timed from the first view of that run (one that shows the old state again — restarted onto
 * an older keyset — is lagging again); one that cannot be seen never does (what cannot be seen
 * may still accept the leaked key). A fleet that cannot be read at all is retried until the
 * deadline. Replicas that can be asked one by one (`members`) are each followed at their own
 * pace, and no request outlives the wait: a replica that never answers delays no other's time.
 */
export async function waitForContainment(
  source: FleetSource,
  want: ContainedState,
  opts: { waitMs: number; intervalMs?: number; now?: () => number },
): Promise<ContainmentReport> {
  const now = opts.now ?? Date.now
  const start = now()
  const left = () => opts.waitMs - (now() - start)
  const parts = source.members?.() ?? [source]
  // Whether each part's latest view shows every replica of it contained; the wait ends when all do.
  const holding = parts.map(() => false)
  let allHeld = false
  const follow = async (part: FleetSource, i: number): Promise<ContainmentReport> => {
    const seen = new Map<string, number>()
    let last: ReplicaState[] = []
    let unseen: string | undefined
    let description = part.description
    const report = (lagging: ReplicaState[]): ContainmentReport => ({
      contained: last.flatMap((r) => (seen.has(r.name) ? [{ name: r.name, afterMs: seen.get(r.name)! }] : [])),
      lagging,
      source: description,
      ...(unseen !== undefined ? { unseen } : {}),
    })
    for (;;) {
      try {
        const view = await part.read({ timeoutMs: Math.max(MIN_READ_MS, left()) })
        description = view.source
        last = view.replicas
        unseen = undefined
        for (const r of view.replicas) {
          if (!holds(r, want)) seen.delete(r.name)
          else if (!seen.has(r.name)) seen.set(r.name, now() - start)
        }
      } catch (err) {
        unseen = (err as Error).message.slice(0, 300)
        last = [{ name: part.description, reachable: false, problem: unseen, keys: new Map(), revokedBefore: undefined }]
      }
      const lagging = last.filter((r) => !seen.has(r.name))
      holding[i] = lagging.length === 0 && last.length > 0
      if (holding.every(Boolean)) allHeld = true
      if (allHeld || left() <= 0) return report(lagging)
      await sleep(Math.min(opts.intervalMs ?? 250, Math.max(0, left())))
      // Another part saw the last one follow: this part's latest view, contained, is the answer.
      if (allHeld) return report([])
    }
  }
  const reports = await Promise.all(parts.map(follow))
  const unseen = reports.find((r) => r.unseen !== undefined)?.unseen
  return {
    contained: reports.flatMap((r) => r.contained).sort((a, b) => a.afterMs - b.afterMs),
    lagging: reports.flatMap((r) => r.lagging),
    source: source.members ? source.description : reports[0]!.source,
    ...(unseen !== undefined ? { unseen } : {}),
  }
}

/**
 * What a containment wait was for, which names a lagging replica and what it may still accept:
 * `keys` (an emergency rotation: its keys), `revoked_before` (a global revoke), `rules` (a
 * narrow revoke: its newest rule).
 */
export type ContainmentKind = 'keys' | 'revoked_before' | 'rules'

/** The lines a command prints: one per replica, then the verdict. */
export function describeContainment(report: ContainmentReport, waitMs: number, opts: { kind?: ContainmentKind } = {}): { lines: string[]; ok: boolean } {
  const kind = opts.kind ?? 'keys'
  const lines = report.contained.map((c) => `contained on ${c.name} after ${formatSeconds(c.afterMs)}`)
  if (report.unseen !== undefined) {
    // Not a replica that lags: nothing could be seen, so nothing is known either way.
    lines.push(
      `NOT confirmed after ${formatDuration(waitMs)}: ${report.unseen} — the change is written: confirm it on each replica (cbc-jwt verify-rotation --replica URL …)`,
    )
    return { lines, ok: false }
  }
  if (report.lagging.length === 0 && report.contained.length === 0) {
    // No replica in the view: none lags, and none was seen contained either.
    lines.push(
      `NOT confirmed after ${formatDuration(waitMs)}: no replica was seen through ${report.source} — confirm it on each replica (cbc-jwt verify-rotation --replica URL …)`,
    )
    return { lines, ok: false }
  }
  if (report.lagging.length === 0) {
    lines.push(`contained on every replica (${report.contained.length}, seen through ${report.source})`)
    return { lines, ok: true }
  }
  const describe = kind === 'rules' ? describeRules : kind === 'revoked_before' ? describeRevokedBefore : describeReplica
  lines.push(
    `NOT contained after ${formatDuration(waitMs)} on ${report.lagging.length} replica(s): ${report.lagging.map(describe).join('; ')} — ` +
      `they may still accept ${kind === 'keys' ? 'the old keys' : 'the revoked tokens'}: restart those pods`,
  )
  return { lines, ok: false }
}

/** A lagging replica by its newest rule: `http://… (newest rule 2026-11-25T20:00:00Z)`. */
function describeRules(r: ReplicaState): string {
  if (!r.reachable) return describeReplica(r)
  if (r.revocationsNewest === undefined) return `${r.name} (does not report its revocation rules)`
  return `${r.name} (newest rule ${r.revocationsNewest > 0 ? toRfc3339(new Date(r.revocationsNewest * 1000)) : 'none'})`
}

/** A lagging replica by its `revoked_before`: `http://… (revoked_before 2026-11-25T20:00:00Z)`. */
function describeRevokedBefore(r: ReplicaState): string {
  if (!r.reachable || r.revokedBefore === undefined) return describeReplica(r)
  return `${r.name} (revoked_before ${r.revokedBefore > 0 ? toRfc3339(new Date(r.revokedBefore * 1000)) : 'none'})`
}

function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`
}
