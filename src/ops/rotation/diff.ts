import { keyStatus, type KeyStatus, type KeysetDocument } from '../../lib/keyset/document.js'

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

/** What changed from `before` to `after`, in a stable order: revocation, then keys as listed. */
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
  return changes
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
    case 'changed': {
      const parts: string[] = []
      if (c.status.from !== c.status.to) parts.push(`${c.status.from} → ${c.status.to}`)
      if (c.notAfter.from !== c.notAfter.to) parts.push(`not_after ${c.notAfter.to ?? '(none)'}`)
      return `changed  ${c.kid}  ${parts.join(', ')}`
    }
  }
}
