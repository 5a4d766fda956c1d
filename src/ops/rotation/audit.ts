import { keyStatus, type KeyStatus, type KeysetDocument, type RevocationRule } from '../../lib/keyset/document.js'
import { diffRules } from './diff.js'

/** The most rules of each list an audit line names (the counts are always exact). */
export const MAX_AUDITED_RULES = 100

/**
 * The audit record of one keyset change (docs/rotation.md, "The audit trail"): the runbook's "log the rotation time
 * in the security change calendar", as one JSON line. Kids, times and statuses only — never
 * key material.
 */
export interface KeysetChangedEvent {
  event: 'keyset_changed'
  /** The command that made the change, e.g. `rotate --promote`. */
  command: string
  /** Where the keyset lives (a path, `vault:…`, `kubernetes:…`); never a secret. */
  location: string
  /** Current kid before (null when the keyset was created) and after. */
  from: string | null
  to: string
  added: string[]
  removed: string[]
  /** The new `revoked_before` (null when removed); present only when it changed. */
  revoked_before?: string | null
  /**
   * The revocation rules added and removed (dropped once expired, or replaced), present only
   * when some changed: the counts, and the rules themselves up to `MAX_AUDITED_RULES` of each
   * (a `revoke --jti -` of thousands of ids stays a readable line; the keyset holds them all).
   */
  revocations?: { added_count: number; removed_count: number; added: RevocationRule[]; removed: RevocationRule[] }
  /** When the change was written, RFC 3339. */
  at: string
  actor: string
  reason: string | null
  /**
   * The times that matter for every key whose status changed: `created_at`, when it was
   * published (a key verifies from the moment it is in the keyset: its `created_at`),
   * when it was promoted (this change, when it became current), and its `not_after`.
   */
  keys: Array<{
    kid: string
    status: KeyStatus | 'removed'
    was: KeyStatus | null
    created_at: string
    published: string
    promoted: string | null
    not_after: string | null
  }>
}

/**
 * Builds the event for the change `before` → `after` (`before` null for a new keyset).
 *
 * @example
 * auditEvent({ command: 'rotate --promote', location: 'keyset.json', before, after, at: '2026-11-25T21:16:00Z', actor: 'alice', reason: 'CHG-1234' })
 */
export function auditEvent(o: {
  command: string
  location: string
  before: KeysetDocument | null
  after: KeysetDocument
  at: string
  actor: string
  reason: string | null
}): KeysetChangedEvent {
  const { before, after } = o
  const old = new Map((before?.keys ?? []).map((k) => [k.kid, k]))
  const now = new Map(after.keys.map((k) => [k.kid, k]))
  const keys: KeysetChangedEvent['keys'] = []
  for (const k of after.keys) {
    const prev = old.get(k.kid)
    const was = prev && before ? keyStatus(before, prev) : null
    const status = keyStatus(after, k)
    if (was === status && prev?.not_after === k.not_after) continue
    keys.push({
      kid: k.kid,
      status,
      was,
      created_at: k.created_at,
      published: k.created_at,
      promoted: status === 'current' && was !== 'current' ? o.at : null,
      not_after: k.not_after ?? null,
    })
  }
  for (const [kid, k] of old) {
    if (!now.has(kid)) {
      keys.push({
        kid,
        status: 'removed',
        was: keyStatus(before!, k),
        created_at: k.created_at,
        published: k.created_at,
        promoted: null,
        not_after: k.not_after ?? null,
      })
    }
  }
  const event: KeysetChangedEvent = {
    event: 'keyset_changed',
    command: o.command,
    location: o.location,
    from: before?.current ?? null,
    to: after.current,
    added: after.keys.filter((k) => !old.has(k.kid)).map((k) => k.kid),
    removed: [...old.keys()].filter((kid) => !now.has(kid)),
    at: o.at,
    actor: o.actor,
    reason: o.reason,
    keys,
  }
  if (before?.revoked_before !== after.revoked_before) event.revoked_before = after.revoked_before ?? null
  const rules = diffRules(before?.revocations, after.revocations)
  if (rules.added.length > 0 || rules.removed.length > 0) {
    event.revocations = {
      added_count: rules.added.length,
      removed_count: rules.removed.length,
      added: rules.added.slice(0, MAX_AUDITED_RULES),
      removed: rules.removed.slice(0, MAX_AUDITED_RULES),
    }
  }
  return event
}
