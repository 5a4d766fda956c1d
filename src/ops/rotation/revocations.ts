import { RefusedError } from '../../lib/errors.js'
import { MAX_REVOCATION_RULES, ruleTarget, type KeysetDocument, type RevocationKind, type RevocationRule } from '../../lib/keyset/document.js'
import { toRfc3339 } from '../../lib/keyset/generate.js'
import { tooManyRulesMessage } from '../../lib/keyset/revocation-rules.js'
import { cloneDocument, type RotationResult } from './types.js'
import { OPTIONS } from '../../lib/options-table.js'
import { asciiJson } from '../../lib/logging/sanitize.js'

/**
 * How long a token can stay valid, which is how long a rule can still match one: the longest
 * lifetime a token may have (`CBC_JWT_MAX_TOKEN_TTL`; the verifier refuses a longer one) and
 * the clock tolerance the verifier applies to `iat` and `exp`.
 */
export interface RuleLifetime {
  maxTokenTtlMs: number
  clockToleranceMs: number
}

export const DEFAULT_RULE_LIFETIME: RuleLifetime = {
  maxTokenTtlMs: OPTIONS.maxTokenTtlSeconds.default * 1000,
  clockToleranceMs: OPTIONS.clockToleranceSeconds.default * 1000,
}

/**
 * When a rule can no longer match a token that would otherwise be valid (ms):
 * - by client or subject: a token issued before `issued_before` has `exp` ≤ `iat` + max TTL +
 *   tolerance (a longer-lived token is refused as malformed) and is accepted until `exp` +
 *   tolerance, so until `issued_before` + max TTL + 2 × tolerance;
 * - by jti: `expires_at` (the token's `exp`, or a bound on it) + tolerance.
 */
export function ruleDropsAt(rule: RevocationRule, life: RuleLifetime): number {
  if ('jti' in rule) return Date.parse(rule.expires_at) + life.clockToleranceMs
  return Date.parse(rule.issued_before) + life.maxTokenTtlMs + 2 * life.clockToleranceMs
}

/**
 * Drops every rule that can no longer match a valid token (see `ruleDropsAt`). Mutates `doc`
 * (removing an emptied list); returns the rules dropped. Every write calls it, so the list
 * holds only rules that still matter.
 */
export function pruneRevocations(doc: KeysetDocument, nowMs: number, life: RuleLifetime): RevocationRule[] {
  if (!doc.revocations) return []
  const dropped: RevocationRule[] = []
  doc.revocations = doc.revocations.filter((rule) => {
    const keep = ruleDropsAt(rule, life) >= nowMs
    if (!keep) dropped.push(rule)
    return keep
  })
  if (doc.revocations.length === 0) delete doc.revocations
  return dropped
}

export interface RevokeTargetsOptions {
  kind: RevocationKind
  /** The client ids, subjects or token ids to revoke (duplicates are ignored). */
  values: readonly string[]
  /** client_id / sub: tokens whose `iat` is earlier than this instant (ms) are revoked. */
  issuedBeforeMs?: number
  /** jti: when no token with that id can still be valid (ms). */
  expiresAtMs?: number
  nowMs: number
  /** Allow moving a client's or subject's existing time back (which un-revokes tokens). */
  force?: boolean
}

/**
 * Adds (or moves forward) one rule per value. A client or subject that already has a rule gets
 * the later of the two times; moving it earlier would make revoked tokens valid again, so that
 * is refused unless `force`. A token id already revoked keeps its rule, with the later
 * `expires_at`. Refused when the list would pass `MAX_REVOCATION_RULES`.
 */
export function revokeTargets(input: KeysetDocument, opts: RevokeTargetsOptions): RotationResult {
  const doc = cloneDocument(input)
  const rules = doc.revocations ?? []
  const index = new Map(rules.map((rule, i) => [key(ruleTarget(rule).kind, ruleTarget(rule).value), i]))
  const createdAt = toRfc3339(new Date(ruleCreatedAtMs(rules, opts.nowMs)))
  const time = opts.kind === 'jti' ? opts.expiresAtMs : opts.issuedBeforeMs
  if (time === undefined) throw new TypeError(`revokeTargets: a ${opts.kind} rule needs ${opts.kind === 'jti' ? 'expiresAtMs' : 'issuedBeforeMs'}`)
  const at = toRfc3339(new Date(time))
  const atMs = Date.parse(at)
  let added = 0
  let moved = 0
  for (const value of new Set(opts.values)) {
    const i = index.get(key(opts.kind, value))
    const rule = makeRule(opts.kind, value, at, createdAt)
    if (i === undefined) {
      index.set(key(opts.kind, value), rules.length)
      rules.push(rule)
      added++
      continue
    }
    const existing = rules[i]!
    const existingAt = 'jti' in existing ? existing.expires_at : existing.issued_before
    const existingMs = Date.parse(existingAt)
    if (existingMs === atMs) continue
    if (existingMs > atMs) {
      // A token id keeps its later expires_at: the rule must outlast the token.
      if (opts.kind === 'jti') continue
      if (!opts.force) {
        throw new RefusedError(
          `${opts.kind} ${asciiJson(value)} is already revoked for tokens issued before ${existingAt}; moving it back to ${at} would accept tokens that are revoked now (use --force to do it anyway)`,
        )
      }
    }
    rules[i] = rule
    moved++
  }
  if (rules.length > MAX_REVOCATION_RULES) {
    throw new RefusedError(`refusing to write ${rules.length} revocation rules: ${tooManyRulesMessage(rules.length)}; nothing was written`)
  }
  if (rules.length > 0) doc.revocations = rules
  const what = opts.kind === 'jti' ? 'token id(s)' : opts.kind === 'sub' ? 'subject(s)' : 'client id(s)'
  const notes: string[] = []
  if (added > 0) notes.push(`${added} ${what} newly revoked`)
  if (moved > 0) notes.push(`${moved} ${what} already revoked, now ${opts.kind === 'jti' ? `until ${at}` : `for tokens issued before ${at}`}`)
  if (added + moved < new Set(opts.values).size) notes.push(`${new Set(opts.values).size - added - moved} ${what} already revoked as asked`)
  return { doc, notes }
}

/**
 * The `created_at` of a write's rules: now (whole seconds), or one second after the newest rule
 * already in the document when that is later (two revokes within a second, or a writer whose
 * clock is behind). Each write's rules are then strictly newer than every rule before them, so
 * a replica whose newest rule has reached that time has loaded this write: what `revoke --wait`
 * checks on every replica.
 */
export function ruleCreatedAtMs(rules: readonly RevocationRule[], nowMs: number): number {
  let newest = -Infinity
  for (const rule of rules) newest = Math.max(newest, Date.parse(rule.created_at))
  return Math.max(Math.floor(nowMs / 1000) * 1000, newest + 1000)
}

function makeRule(kind: RevocationKind, value: string, at: string, createdAt: string): RevocationRule {
  if (kind === 'jti') return { jti: value, expires_at: at, created_at: createdAt }
  if (kind === 'sub') return { sub: value, issued_before: at, created_at: createdAt }
  return { client_id: value, issued_before: at, created_at: createdAt }
}

const key = (kind: RevocationKind, value: string) => `${kind}\u0000${value}`
