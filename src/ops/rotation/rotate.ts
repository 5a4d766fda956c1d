import type { Alg } from '../../lib/keyset/algorithms.js'
import { keyStatus, type KeyEntry, type KeysetDocument } from '../../lib/keyset/document.js'
import { toRfc3339 } from '../../lib/keyset/generate.js'
import { formatDuration } from '../../lib/duration.js'
import { pruneExpired } from './prune.js'
import { cloneDocument, currentEntry, generateKey, kidsOf, type KeyFactory, type RotationResult, type Unpublished } from './types.js'

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
  notes.push(retirementNote(old, opts.now, opts.graceMs))
  return { doc, notes }
}

export interface CompromisedOptions {
  now: number
  alg?: Alg
  newKey?: KeyFactory
  /**
   * Never promote the standby: a fresh key becomes current. For a leak of the private
   * document itself (the standby's private half went with it), not of one signing key.
   */
  freshKey?: boolean
  /**
   * Where a staged key is not published: such a key is no standby (no verifier has it, whatever
   * its `created_at`), and is cut off with the rest; a fresh key signs instead.
   */
  unpublished?: Unpublished
}

/**
 * The emergency path (runbook, `JWTAuthFailureSpike`). The new current key is the **standby**
 * when there is one — a staged key, published on every replica already, so tokens it signs
 * verify everywhere at once even where the keyset arrives late (a slow secret volume) —
 * else a freshly generated key. Every other key gets `not_after = now`, so it stops
 * verifying now, and `revoked_before = now`, so no token issued before this instant is
 * accepted. A fresh standby is staged for the next emergency.
 *
 * Why every key and not only the old current one: whoever has one private key of a keyset
 * may have them all, and `revoked_before` does not stop a forger who writes a fresh `iat`.
 * Nothing legitimate is lost: every token issued before now is revoked anyway. The standby is
 * the exception by design (it never signed, so no token of it is out there); when the private
 * document itself leaked, `freshKey` (`--fresh-key`) skips it. A staged key a verification
 * projection lacks (`unpublished`) is no standby: no verifier has it, whatever its
 * `created_at`. The retired keys stay in the document (as expired) until the next operation
 * prunes them, so the output shows what was cut off.
 */
export async function rotateCompromised(input: KeysetDocument, opts: CompromisedOptions): Promise<RotationResult> {
  const doc = cloneDocument(input)
  pruneExpired(doc, opts.now)
  const old = currentEntry(doc)
  // The standby: the staged key published longest (the most likely to be on every replica),
  // among those every verification projection holds.
  const candidates = opts.freshKey
    ? []
    : doc.keys
        .filter((k) => keyStatus(doc, k) === 'staged' && (opts.alg === undefined || k.alg === opts.alg))
        .sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at))
  let standby: KeyEntry | undefined
  const passedOver: string[] = []
  for (const k of candidates) {
    const lacking = (await opts.unpublished?.(k.kid)) ?? []
    if (lacking.length === 0) {
      standby = k
      break
    }
    passedOver.push(`the standby ${k.kid} is not in the verification projection (${lacking.join('; ')})`)
  }
  const make = () => (opts.newKey ?? generateKey)(opts.alg ?? old.alg, { now: new Date(opts.now), taken: kidsOf(doc) })
  const next = standby ?? (await make())
  for (const k of doc.keys) if (k !== next) retire(k, opts.now)
  if (!standby) doc.keys.unshift(next)
  doc.current = next.kid
  // The next emergency's standby: verifies from now on, signs nothing yet.
  const successor = await make()
  doc.keys.push(successor)
  // Seconds precision, rounded down: a token the new key signs within this second is not revoked.
  const revokedAt = toRfc3339(new Date(opts.now))
  if (doc.revoked_before === undefined || Date.parse(doc.revoked_before) < Date.parse(revokedAt)) doc.revoked_before = revokedAt
  const unused = passedOver.length > 0 ? `${passedOver.join('; ')}: not promoted; ` : ''
  return {
    doc,
    notes: [
      `every previous key stops verifying now (${revokedAt}); tokens issued before it are revoked`,
      standby
        ? `${unused}promoted the standby ${next.kid}: every replica that loaded it already verifies its tokens`
        : `${unused || `${opts.freshKey ? 'standby skipped (--fresh-key)' : 'no standby was staged'}: `}${next.kid} is new, and a replica verifies its tokens only once it has loaded this keyset`,
      `staged ${successor.kid} as the next standby`,
      `publish this keyset at once, then issue new tokens with ${next.kid}`,
    ],
  }
}

/** Gives a key `not_after = at` (seconds precision), never extending an earlier one. */
export function retire(entry: KeyEntry, atMs: number): void {
  const at = toRfc3339(new Date(atMs))
  if (entry.not_after === undefined || Date.parse(entry.not_after) > Date.parse(at)) entry.not_after = at
}

/**
 * What `retire(entry, nowMs + graceMs)` left: the key keeps verifying for the grace, or less when
 * its own `not_after` came first (`retire` never extends one), or it has already stopped.
 */
export function retirementNote(entry: KeyEntry, nowMs: number, graceMs: number): string {
  const notAfter = Date.parse(entry.not_after ?? '')
  if (!(notAfter > nowMs)) return `${entry.kid} stopped verifying at ${entry.not_after} (past its not_after before this change); pruned by the next operation`
  const left = notAfter >= Date.parse(toRfc3339(new Date(nowMs + graceMs))) ? graceMs : notAfter - nowMs
  return `${entry.kid} keeps verifying for ${formatDuration(left)}, until ${entry.not_after}`
}
