import { keyStatus, ruleTarget, type KeyStatus, type KeysetDocument, type RevocationRule } from '../../lib/keyset/document.js'
import { asciiJson } from '../../lib/logging/sanitize.js'

/** One difference between two keysets, as `--dry-run` and every write report it. */
export type KeysetChange =
  | { kind: 'added'; kid: string; alg: string; status: KeyStatus }
  | { kind: 'removed'; kid: string; status: KeyStatus }
  | {
      kind: 'changed'
      kid: string
      status: { from: KeyStatus; to: KeyStatus }
      notAfter: { from: string | undefined; to: string | undefined }
    }
  | { kind: 'revoked_before'; from: string | undefined; to: string | undefined }
  | { kind: 'rule_added'; rule: RevocationRule }
  | { kind: 'rule_removed'; rule: RevocationRule }

/** What changed from `before` to `after`, in a stable order: revocation, keys as listed, then rules. */
export function diffKeysets(before: KeysetDocument, after: KeysetDocument): KeysetChange[] {
  const changes: KeysetChange[] = []
  if (before.revoked_before !== after.revoked_before) {
    changes.push({ kind: 'revoked_before', from: before.revoked_before, to: after.revoked_before })
  }
  const old = new Map(before.keys.map((k) => [k.kid, k]))
  const now = new Set(after.keys.map((k) => k.kid))
  for (const k of after.keys) {
    const prev = old.get(k.kid)
    const status = keyStatus(after, k)
    if (!prev) {
      changes.push({ kind: 'added', kid: k.kid, alg: k.alg, status })
      continue
    }
    const prevStatus = keyStatus(before, prev)
    if (prevStatus !== status || prev.not_after !== k.not_after) {
      changes.push({ kind: 'changed', kid: k.kid, status: { from: prevStatus, to: status }, notAfter: { from: prev.not_after, to: k.not_after } })
    }
  }
  for (const k of before.keys) if (!now.has(k.kid)) changes.push({ kind: 'removed', kid: k.kid, status: keyStatus(before, k) })
  const rules = diffRules(before.revocations, after.revocations)
  for (const rule of rules.added) changes.push({ kind: 'rule_added', rule })
  for (const rule of rules.removed) changes.push({ kind: 'rule_removed', rule })
  return changes
}

/**
 * The rules in `after` that are not (the same) in `before`, and the reverse. A rule whose time
 * moved is one removed and one added: the audit trail shows both times.
 */
export function diffRules(
  before: readonly RevocationRule[] = [],
  after: readonly RevocationRule[] = [],
): { added: RevocationRule[]; removed: RevocationRule[] } {
  const text = (r: RevocationRule) => JSON.stringify(r)
  const old = new Set(before.map(text))
  const now = new Set(after.map(text))
  return { added: after.filter((r) => !old.has(text(r))), removed: before.filter((r) => !now.has(text(r))) }
}

/** A rule in one line: `client_id acme-batch  issued before 2026-11-25T20:00:00Z`; the value printable or JSON-quoted, escaped to ASCII. */
export function describeRule(rule: RevocationRule): string {
  const { kind, value } = ruleTarget(rule)
  // Escaped to ASCII: a value may come from a token (C1 controls, bidi overrides).
  const shown = /^[\x21-\x7e]+$/.test(value) ? value : asciiJson(value)
  return 'jti' in rule ? `${kind} ${shown}  until ${rule.expires_at}` : `${kind} ${shown}  issued before ${rule.issued_before}`
}

/** One line per change, e.g. `changed  k-20261118-77c1  current → verify-only, not_after 2026-11-26T21:16:00Z`. */
export function describeChange(c: KeysetChange): string {
  switch (c.kind) {
    case 'added':
      return `added    ${c.kid}  ${c.alg} ${c.status}`
    case 'removed':
      return `pruned   ${c.kid}  (was ${c.status})`
    case 'revoked_before':
      return `revoked_before  ${c.from ?? '(none)'} → ${c.to ?? '(none)'}`
    case 'rule_added':
      return `revoked  ${describeRule(c.rule)}`
    case 'rule_removed':
      return `dropped  ${describeRule(c.rule)}`
    case 'changed': {
      const parts: string[] = []
      if (c.status.from !== c.status.to) parts.push(`${c.status.from} → ${c.status.to}`)
      if (c.notAfter.from !== c.notAfter.to) parts.push(`not_after ${c.notAfter.to ?? '(none)'}`)
      return `changed  ${c.kid}  ${parts.join(', ')}`
    }
  }
}
