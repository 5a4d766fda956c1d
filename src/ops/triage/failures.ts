import type { AuthFailureReason } from '../../lib/reasons.js'
import type { RejectionRecord } from './log-line.js'
import { SpikeHistogram } from './spike.js'

/** One row of `cbc-jwt failures`: rejections of one client id for one reason. */
export interface FailureGroup {
  clientId: string | null
  /** False when the id is only what a token whose signature did not verify claims. */
  verified: boolean
  /** True when the id is the tokens' `sub` (they had no `client_id` or `azp`). */
  subject: boolean
  reason: AuthFailureReason
  count: number
  firstSeen: number
  lastSeen: number
  /** Replicas (`kubectl logs --prefix` sources) that logged it, at most `MAX_SOURCES` named. */
  sources: Set<string>
  /** Remote addresses seen, at most `MAX_SOURCES` named. */
  remoteAddresses: Set<string>
  /** Its rejections per minute: where this group's own spike began. */
  spike: SpikeHistogram
}

export interface FailureTally {
  groups: FailureGroup[]
  /** Rejections that did not fit under `maxGroups` (new client ids after the cap): counted, not grouped. */
  overflow: { count: number; firstSeen: number | undefined; lastSeen: number | undefined }
  rejections: number
  firstSeen: number | undefined
  lastSeen: number | undefined
}

const MAX_SOURCES = 16

/**
 * Counts rejections by (client id, reason) as they stream by. Each group holds a count, two
 * times and two small capped sets, whatever the number of lines; the number of groups is capped
 * too (`maxGroups`), because forged tokens can claim a new client id each.
 */
export function createFailureTally(maxGroups: number) {
  const groups = new Map<string, FailureGroup>()
  const tally: FailureTally = {
    groups: [],
    overflow: { count: 0, firstSeen: undefined, lastSeen: undefined },
    rejections: 0,
    firstSeen: undefined,
    lastSeen: undefined,
  }
  return {
    add(r: RejectionRecord): void {
      tally.rejections++
      tally.firstSeen = min(tally.firstSeen, r.time)
      tally.lastSeen = max(tally.lastSeen, r.time)
      const key = `${r.reason}\u0000${r.verified ? 'v' : 'u'}${r.subject ? 's' : ''}\u0000${r.clientId ?? ''}\u0000${r.clientId === null ? 'null' : ''}`
      let g = groups.get(key)
      if (!g) {
        if (groups.size >= maxGroups) {
          const o = tally.overflow
          o.count++
          o.firstSeen = min(o.firstSeen, r.time)
          o.lastSeen = max(o.lastSeen, r.time)
          return
        }
        g = {
          clientId: r.clientId,
          verified: r.verified,
          subject: r.subject,
          reason: r.reason,
          count: 0,
          firstSeen: r.time,
          lastSeen: r.time,
          sources: new Set(),
          remoteAddresses: new Set(),
          spike: new SpikeHistogram(),
        }
        groups.set(key, g)
      }
      g.count++
      g.firstSeen = Math.min(g.firstSeen, r.time)
      g.lastSeen = Math.max(g.lastSeen, r.time)
      g.spike.add(r.time)
      if (r.source !== undefined && g.sources.size < MAX_SOURCES) g.sources.add(r.source)
      if (r.remoteAddress !== undefined && g.remoteAddresses.size < MAX_SOURCES) g.remoteAddresses.add(r.remoteAddress)
    },
    /** The groups, busiest first; ties by first seen, then client id. */
    result(): FailureTally {
      tally.groups = [...groups.values()].sort(
        (a, b) => b.count - a.count || a.firstSeen - b.firstSeen || (a.clientId ?? '').localeCompare(b.clientId ?? '') || a.reason.localeCompare(b.reason),
      )
      return tally
    },
  }
}

const min = (a: number | undefined, b: number) => (a === undefined || b < a ? b : a)
const max = (a: number | undefined, b: number) => (a === undefined || b > a ? b : a)
