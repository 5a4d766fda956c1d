import type { Alg } from '../../lib/keyset/algorithms.js'
import { keyStatus, type KeyEntry, type KeysetDocument } from '../../lib/keyset/document.js'
import { toRfc3339 } from '../../lib/keyset/generate.js'
import { formatDuration } from '../../lib/duration.js'
import { pruneExpired } from './prune.js'
import { cloneDocument, currentEntry, generateKey, kidsOf, type KeyFactory, type RotationResult } from './types.js'

export interface RotateOptions {
  /** ms since the epoch */
  now: number
  /** How long the retiring key keeps verifying, in ms. The CLI enforces ≥ 24 h and ≥ the max token TTL. */
  graceMs: number
  /** Algorithm of the new key. @default the current key's */
  alg?: Alg
  newKey?: KeyFactory
}

/**
 * One-step rotation: a new key becomes `current` at once; the old current key turns
 * verify-only until `now + grace`; keys past `not_after` are pruned. Any staged key is
 * superseded: it never signed a token, so it gets `not_after = now` (stops verifying, pruned
 * by the next operation) instead of being promoted later by `rotate --auto` — which would
 * rotate a second time right after this one.
 */
export async function rotateNow(input: KeysetDocument, opts: RotateOptions): Promise<RotationResult> {
  if (!(opts.graceMs >= 0)) throw new RangeError('graceMs must be ≥ 0')
  const doc = cloneDocument(input)
  const notes: string[] = []
  pruneExpired(doc, opts.now)
  const old = currentEntry(doc)
  const entry = await (opts.newKey ?? generateKey)(opts.alg ?? old.alg, { now: new Date(opts.now), taken: kidsOf(doc) })
  for (const k of doc.keys) {
    if (keyStatus(doc, k) === 'staged') {
      k.not_after = toRfc3339(new Date(opts.now))
      notes.push(`staged key ${k.kid} superseded: it never signed, so it stops verifying now`)
    }
  }
  retire(old, opts.now + opts.graceMs)
  doc.keys.unshift(entry)
  doc.current = entry.kid
  notes.push(`${old.kid} keeps verifying for ${formatDuration(opts.graceMs)}, until ${old.not_after}`)
  return { doc, notes }
}

export interface CompromisedOptions {
  now: number
  alg?: Alg
  newKey?: KeyFactory
}

/**
 * The emergency path (runbook, `JWTAuthFailureSpike`): a freshly generated key becomes
 * `current` at once (a staged key is never promoted here: it sat in the same, possibly
 * leaked, document). Every previous key gets `not_after = now`, so it stops verifying now,
 * and `revoked_before = now`, so no token issued before this instant is accepted.
 *
 * Why every key and not only the old current one: the keyset is stored whole, so whoever
 * has one private key of it may have them all, and `revoked_before` does not stop a forger
 * who writes a fresh `iat`. Nothing legitimate is lost: every token issued before now is
 * revoked anyway. The retired keys stay in the document (as expired) until the next
 * operation prunes them, so the output shows what was cut off.
 */
export async function rotateCompromised(input: KeysetDocument, opts: CompromisedOptions): Promise<RotationResult> {
  const doc = cloneDocument(input)
  pruneExpired(doc, opts.now)
  const old = currentEntry(doc)
  const entry = await (opts.newKey ?? generateKey)(opts.alg ?? old.alg, { now: new Date(opts.now), taken: kidsOf(doc) })
  for (const k of doc.keys) retire(k, opts.now)
  doc.keys.unshift(entry)
  doc.current = entry.kid
  // Seconds precision, rounded down: a token the new key signs within this second is not revoked.
  const revokedAt = toRfc3339(new Date(opts.now))
  if (doc.revoked_before === undefined || Date.parse(doc.revoked_before) < Date.parse(revokedAt)) doc.revoked_before = revokedAt
  return {
    doc,
    notes: [
      `every previous key stops verifying now (${revokedAt}); tokens issued before it are revoked`,
      `publish this keyset at once, then issue new tokens with ${entry.kid}`,
    ],
  }
}

/** Gives a key `not_after = at` (seconds precision), never extending an earlier one. */
export function retire(entry: KeyEntry, atMs: number): void {
  const at = toRfc3339(new Date(atMs))
  if (entry.not_after === undefined || Date.parse(entry.not_after) > Date.parse(at)) entry.not_after = at
}
