import { type KeyEntry, type KeysetDocument, MAX_REVOCATION_RULES } from '../../lib/keyset/document.js'
import { loadKeyset, parseKeysetText } from '../../lib/keyset/load.js'
import { projectionOf } from './publish.js'

/** A stored keyset's document when it is one the service would load (in force), else null. */
export function validDocument(text: string | undefined, now: number): KeysetDocument | null {
  if (text === undefined) return null
  try {
    return loadKeyset(parseKeysetText(text), now).document
  } catch {
    return null
  }
}

/**
 * The projection to publish first when a write replaces the keyset in force (`before`) with a
 * document that does not hold the key `before` signs with: `keyset init --force`, or `keyset
 * restore` of a copy older than that key. `after`'s own projection, published first as every
 * write does, would lack that key from then until the keyset write lands — and for good when
 * that write fails or the CLI is killed in between: every verifier would refuse every token
 * the keyset in force still signs.
 *
 * So the interim projection is `before` with `after`'s keys added (its current one as staged):
 * the keys of both verify, `before`'s current stays current, and every cut-off either holds is
 * in force — the earlier `not_after` of a key both hold, the later `revoked_before`, the rules
 * of both. Once the keyset write has landed, the stored keyset's own projection replaces it.
 *
 * Undefined when `after` holds `before`'s current key (a successor, or a write that retires that
 * key on purpose: its own projection is safe first), or when the union would hold more rules
 * than a keyset may (then `after`'s projection is published as it stands).
 */
export function interimProjection(before: KeysetDocument, after: KeysetDocument): { text: string } | undefined {
  if (after.keys.some((k) => k.kid === before.current)) return undefined
  const revocations = unionBy([...(before.revocations ?? []), ...(after.revocations ?? [])], (rule) => JSON.stringify(rule))
  if (revocations.length > MAX_REVOCATION_RULES) return undefined
  const fromAfter = new Map(after.keys.map((k) => [k.kid, k]))
  const keys: KeyEntry[] = before.keys.map((k) => withEarlierNotAfter(k, fromAfter.get(k.kid)))
  const held = new Set(keys.map((k) => k.kid))
  for (const k of after.keys) if (!held.has(k.kid)) keys.push(k)
  const revokedBefore = later(before.revoked_before, after.revoked_before)
  const merged: KeysetDocument = {
    version: 1,
    current: before.current,
    ...(revokedBefore === undefined ? {} : { revoked_before: revokedBefore }),
    keys,
    ...(revocations.length === 0 ? {} : { revocations }),
  }
  const projected = projectionOf(merged)
  return 'text' in projected ? projected : undefined
}

function withEarlierNotAfter(key: KeyEntry, other: KeyEntry | undefined): KeyEntry {
  const notAfter = earlier(key.not_after, other?.not_after)
  return notAfter === key.not_after ? key : { ...key, not_after: notAfter! }
}

function earlier(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined || b === undefined) return a ?? b
  return Date.parse(b) < Date.parse(a) ? b : a
}

function later(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined || b === undefined) return a ?? b
  return Date.parse(b) > Date.parse(a) ? b : a
}

function unionBy<T>(items: readonly T[], key: (item: T) => string): T[] {
  const seen = new Map<string, T>()
  for (const item of items) if (!seen.has(key(item))) seen.set(key(item), item)
  return [...seen.values()]
}
