import type { KeysetDocument } from './document.js'

/**
 * The canonical text of a keyset document — the private keyset and its verification projection
 * alike: two-space JSON and a final newline, `revocations` last with one rule per line (10 000
 * rules stay 10 000 lines, and a diff shows one rule a line). Canonical, so a document read back
 * gives the same text, and a projection compares equal to the one computed from its keyset.
 */
export function serializeKeyset(doc: KeysetDocument): string {
  const { revocations, ...rest } = doc
  const text = JSON.stringify(rest, null, 2)
  if (revocations === undefined) return `${text}\n`
  const rules = revocations.length === 0 ? '[]' : `[\n${revocations.map((rule) => `    ${JSON.stringify(rule)}`).join(',\n')}\n  ]`
  return `${text.slice(0, -2)},\n  "revocations": ${rules}\n}\n`
}
