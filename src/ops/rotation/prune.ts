import type { KeysetDocument } from '../../lib/keyset/document.js'

/**
 * Removes every key (never the current one) whose `not_after` is strictly in the past.
 * Mutates `doc`; returns the kids removed. A key whose `not_after` is exactly `nowMs` has
 * just stopped verifying and is removed by the next operation, so an operation that retires
 * a key "now" still shows it in its output.
 */
export function pruneExpired(doc: KeysetDocument, nowMs: number): string[] {
  const removed: string[] = []
  doc.keys = doc.keys.filter((k) => {
    const expired = k.kid !== doc.current && k.not_after !== undefined && Date.parse(k.not_after) < nowMs
    if (expired) removed.push(k.kid)
    return !expired
  })
  return removed
}
