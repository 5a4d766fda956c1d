import type { AuthFailureReason } from '../../lib/reasons.js'
import type { FailureGroup } from './failures.js'

/** A client to cut off: its busiest group and where that group's spike began. */
export interface Offender {
  clientId: string
  verified: boolean
  /** The id is the tokens' `sub`: cut off with `--subject`, not `--client-id`. */
  subject: boolean
  reason: AuthFailureReason
  /** Rejections in the spike, and its first one (ms). */
  spikeCount: number
  spikeStart: number
}

/**
 * The busiest client ids, each once, from the groups busiest first: the spike of its busiest
 * group (rejections already `revoked` are the cut-off working, not an offender; a rejection
 * without a client id names no one to cut off).
 */
export function busiestOffenders(groups: readonly FailureGroup[], top: number, gapMs: number): Offender[] {
  const out: Offender[] = []
  const seen = new Set<string>()
  for (const g of groups) {
    if (out.length >= top) break
    const who = `${g.subject ? 'sub' : 'client'}\u0000${g.clientId}`
    if (g.clientId === null || g.reason === 'revoked' || seen.has(who)) continue
    const spike = g.spike.spike(gapMs)
    if (!spike) continue
    seen.add(who)
    out.push({ clientId: g.clientId, verified: g.verified, subject: g.subject, reason: g.reason, spikeCount: spike.count, spikeStart: spike.start })
  }
  return out
}

/**
 * The `revoke` time for a spike: the first whole second at or after its first rejection
 * (`issued_before` has seconds precision; rounding down would spare a token issued in the
 * very second the spike began).
 */
export function revokeTime(spikeStartMs: number): string {
  return new Date(Math.ceil(spikeStartMs / 1000) * 1000).toISOString().replace(/\.000Z$/, 'Z')
}

/**
 * The exact command that cuts one client off, ready to paste into a POSIX shell — by
 * `--subject` when the id is the tokens' `sub` (a rule by client reads `client_id` and `azp`
 * only); undefined when the id cannot be written safely on a terminal (not printable ASCII: it
 * came from a token, and the terminal must not interpret it).
 */
export function revokeCommand(o: Offender): string | undefined {
  if (!/^[\x20-\x7e]{1,256}$/.test(o.clientId)) return undefined
  const option = o.subject ? '--subject' : '--client-id'
  // An id that starts with a dash goes after `=`: as a separate word, the parser takes it for an option.
  const flag = o.clientId.startsWith('-') ? `${option}=${shellWord(o.clientId)}` : `${option} ${shellWord(o.clientId)}`
  return `cbc-jwt revoke ${flag} --issued-before ${revokeTime(o.spikeStart)}`
}

/** A word as the shell reads it: as is when it has nothing the shell would interpret, else single-quoted. */
function shellWord(value: string): string {
  return /^[A-Za-z0-9._:@%+=,/-]+$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`
}
