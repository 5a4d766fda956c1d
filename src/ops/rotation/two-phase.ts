import { printable } from '../../lib/logging/sanitize.js'
import { RefusedError } from '../../lib/errors.js'
import type { Alg } from '../../lib/keyset/algorithms.js'
import { keyStatus, type KeyEntry, type KeysetDocument } from '../../lib/keyset/document.js'
import { toRfc3339 } from '../../lib/keyset/generate.js'
import { formatDuration } from '../../lib/duration.js'
import { ROTATION_POLICY } from './policy.js'
import { pruneExpired } from './prune.js'
import { retire, retirementNote } from './rotate.js'
import { cloneDocument, createdAtMs, currentEntry, generateKey, kidsOf, type KeyFactory, type RotationResult, type Unpublished } from './types.js'

/** Staged keys, newest first. A staged key's publication time is its `created_at`. */
export function stagedKeys(doc: KeysetDocument): KeyEntry[] {
  return doc.keys.filter((k) => keyStatus(doc, k) === 'staged').sort((a, b) => createdAtMs(b) - createdAtMs(a))
}

export interface StageOptions {
  now: number
  /** @default the current key's */
  alg?: Alg
  newKey?: KeyFactory
  /** Where a staged key is not published: such a key is retired and the new one takes its place. */
  unpublished?: Unpublished
}

/**
 * First half of a two-phase rotation: publish a new key that verifies but does not sign
 * (no `not_after`, not `current`), and prune expired keys. Refused while a key is already
 * staged: promote or drop that one first, so there is never a question which one is next —
 * unless that key is past the key-age SLA: promoted, it would break the SLA from its first
 * signature (`JWTKeyAgeExceeded` would keep firing after the rotation meant to clear it), so
 * it is retired (`not_after = now`; it never signed) and the new key takes its place. So is a
 * staged key a verification projection lacks (`unpublished`): its `created_at` would time its
 * promotion from a publication no verifier got; the new key is published by this write.
 */
export async function stageKey(input: KeysetDocument, opts: StageOptions): Promise<RotationResult> {
  const doc = cloneDocument(input)
  pruneExpired(doc, opts.now)
  const notes: string[] = []
  for (const old of stagedKeys(doc).filter((k) => tooOldToSign(k, opts.now))) {
    retire(old, opts.now)
    notes.push(`staged key ${old.kid} waited ${formatDuration(opts.now - createdAtMs(old))}, past the 7-day key-age SLA: retired (it never signed)`)
  }
  await retireUnpublished(doc, opts.now, opts.unpublished, notes)
  const already = stagedKeys(doc)[0]
  if (already) {
    throw new RefusedError(`${already.kid} is already staged (since ${already.created_at}); promote it with rotate --promote before staging another`)
  }
  const entry = await (opts.newKey ?? generateKey)(opts.alg ?? currentEntry(doc).alg, { now: new Date(opts.now), taken: kidsOf(doc) })
  doc.keys.push(entry)
  notes.push(`${entry.kid} is published but does not sign yet; promote it once every replica has loaded it`)
  return { doc, notes }
}

/**
 * Retires (`not_after = now`; a staged key never signed) every staged key of `doc` that
 * `unpublished` names a projection lacking, saying so in `notes`. Returns the staged keys left.
 */
async function retireUnpublished(doc: KeysetDocument, nowMs: number, unpublished: Unpublished | undefined, notes: string[]): Promise<KeyEntry[]> {
  const left: KeyEntry[] = []
  for (const key of stagedKeys(doc)) {
    const lacking = (await unpublished?.(key.kid)) ?? []
    if (lacking.length === 0) {
      left.push(key)
      continue
    }
    retire(key, nowMs)
    notes.push(
      `staged key ${key.kid} is not in the verification projection (${lacking.join('; ')}): retired (it never signed), as its created_at does not tell when verifiers got it`,
    )
  }
  return left
}

/** A key whose age is past the key-age SLA: as the current key it would break the SLA at once. */
function tooOldToSign(key: KeyEntry, nowMs: number): boolean {
  return nowMs - createdAtMs(key) >= ROTATION_POLICY.keyAgeSlaMs
}

export interface PromoteOptions {
  now: number
  graceMs: number
  /** How long a staged key must have been published before it may sign, in ms. */
  propagationWindowMs: number
  /** Promote even if the key was published less than the window ago. */
  force?: boolean
  /** Which staged key; needed only when there are several. */
  kid?: string
  /**
   * Where the key is not published (`Unpublished`, for this key): it is then taken as published
   * now, not at its `created_at` — refused, unless `force`.
   */
  unpublished?: readonly string[]
}

/**
 * Second half: the staged key becomes `current`, the old current key turns verify-only until
 * `now + grace`, expired keys are pruned. Refused (RefusedError) until the staged key has been
 * published for the propagation window — a replica that has not loaded it yet would reject
 * its tokens — and when it is already past the key-age SLA, unless `force`. A key that a
 * verification projection lacks (`unpublished`) has been published for no time at all, whatever
 * its `created_at`: refused the same way, unless `force` (the write that promotes it publishes
 * it first, as every write publishes the projection before the keyset).
 */
export function promoteStaged(input: KeysetDocument, opts: PromoteOptions): RotationResult {
  const doc = cloneDocument(input)
  pruneExpired(doc, opts.now)
  const target = pickStaged(doc, opts.kid)
  const publishedFor = opts.now - createdAtMs(target)
  const notes: string[] = []
  if (tooOldToSign(target, opts.now)) {
    if (!opts.force) {
      throw new RefusedError(
        `${target.kid} was staged ${formatDuration(publishedFor)} ago: as the current key it would be past the 7-day key-age SLA at once; ` +
          'stage a fresh key with rotate --stage (it retires this one), or use --force',
      )
    }
    notes.push(`forced: ${target.kid} is ${formatDuration(publishedFor)} old, past the 7-day key-age SLA`)
  }
  const lacking = opts.unpublished ?? []
  if (lacking.length > 0) {
    if (!opts.force) {
      throw new RefusedError(
        `refusing to promote ${target.kid}: the verification projection does not hold it (${lacking.join('; ')}), so no verifier has it and every token it signs would be refused until they have loaded it; nothing changed: ` +
          'stage a fresh key with rotate --stage (it retires this one, which never signed) and promote that one after the propagation window, or use --force (this promotion publishes it first)',
      )
    }
    notes.push(
      `forced: ${target.kid} was not in the verification projection (${lacking.join('; ')}); published now, just before it signs: verifiers refuse its tokens until they have loaded it`,
    )
  } else if (publishedFor < opts.propagationWindowMs) {
    if (!opts.force) {
      throw new RefusedError(
        `${target.kid} was published ${formatDuration(publishedFor)} ago; a replica may not have loaded it yet. ` +
          `Promote it in ${formatDuration(opts.propagationWindowMs - publishedFor)} ` +
          `(propagation window ${formatDuration(opts.propagationWindowMs)}), or use --force`,
      )
    }
    notes.push(`forced: ${target.kid} was published only ${formatDuration(publishedFor)} ago`)
  }
  const old = currentEntry(doc)
  retire(old, opts.now + opts.graceMs)
  doc.current = target.kid
  notes.push(retirementNote(old, opts.now, opts.graceMs))
  return { doc, notes }
}

/** The staged key to promote: `kid`, or the only staged key. Throws `RefusedError` otherwise. */
export function pickStaged(doc: KeysetDocument, kid: string | undefined): KeyEntry {
  const staged = stagedKeys(doc)
  if (kid !== undefined) {
    const entry = doc.keys.find((k) => k.kid === kid)
    if (!entry) throw new RefusedError(`no key has kid "${printable(kid, { max: 200 })}"`)
    if (keyStatus(doc, entry) !== 'staged') throw new RefusedError(`${kid} is ${keyStatus(doc, entry)}, not staged`)
    return entry
  }
  if (staged.length === 0) throw new RefusedError('no staged key to promote; publish one first with rotate --stage')
  if (staged.length > 1) throw new RefusedError(`several keys are staged (${staged.map((k) => k.kid).join(', ')}); name one with --kid`)
  return staged[0]!
}

export interface AutoOptions {
  now: number
  /** Rotation period: a key lives `every − window` at most, half as the standby, half as current. */
  everyMs: number
  propagationWindowMs: number
  graceMs: number
  /** Algorithm of a newly staged key. @default the current key's */
  alg?: Alg
  newKey?: KeyFactory
  /**
   * The replica gate (docs/rotation.md, "Promotion gated on every replica"): with it, a staged
   * key due for promotion is promoted when the gate resolves — no time window — and the gate's
   * `RefusedError` (naming the replicas that lack the key) ends the run with nothing changed.
   * Resolves with a note for the report.
   */
  gate?: (kid: string) => Promise<string>
  /**
   * Where a staged key is not published: such a key is no standby (its `created_at` does not
   * tell when verifiers got it, and the gate would wait for it in vain): retired, and a fresh
   * standby staged — published by this very write, so its time starts now.
   */
  unpublished?: Unpublished
}

/**
 * One step of scheduled rotation, for a CronJob; idempotent (a second run at the same time
 * changes nothing). It keeps a **standby** staged at all times — a key published on every
 * replica that does not sign yet — so that `rotate --compromised` can promote a key every
 * replica already verifies with. A key lives `every − window` at most: the first half as the
 * standby, the second half as current.
 *
 * 1. prune keys past `not_after`;
 * 2. a staged key that has waited `every − window` or longer is retired (`not_after = now`;
 *    it never signed): as current it would start life near the SLA; so is one a verification
 *    projection lacks (`unpublished`);
 * 3. the oldest remaining staged key is promoted once it has been the standby for half of
 *    `every − window`, or at once when the current key is due (age ≥ `every − window`); either
 *    way only once it is published — for the window, or, with a `gate`, on every replica;
 * 4. when no key is staged (none yet, or the standby was just promoted), a new one is staged.
 */
export async function autoRotate(input: KeysetDocument, opts: AutoOptions): Promise<RotationResult> {
  if (!(opts.everyMs > 2 * opts.propagationWindowMs)) throw new RangeError('everyMs must be more than twice the propagation window')
  const doc = cloneDocument(input)
  const notes: string[] = []
  pruneExpired(doc, opts.now)
  const lifeMs = opts.everyMs - opts.propagationWindowMs
  const halfMs = lifeMs / 2
  for (const k of stagedKeys(doc).filter((s) => opts.now - createdAtMs(s) >= lifeMs)) {
    retire(k, opts.now)
    notes.push(`staged key ${k.kid} waited ${formatDuration(opts.now - createdAtMs(k))}, too long to become current: retired`)
  }
  const fresh = await retireUnpublished(doc, opts.now, opts.unpublished, notes)
  const standby = fresh.at(-1) // the oldest: the one every replica has had longest
  const current = currentEntry(doc)
  const dueAt = createdAtMs(current) + lifeMs
  if (standby) {
    const standbyFor = opts.now - createdAtMs(standby)
    const published = opts.gate !== undefined || standbyFor >= opts.propagationWindowMs
    if ((standbyFor >= halfMs || opts.now >= dueAt) && published) {
      const seen = opts.gate ? [await opts.gate(standby.kid)] : []
      const window = opts.gate ? 0 : opts.propagationWindowMs
      const promoted = promoteStaged(doc, { now: opts.now, graceMs: opts.graceMs, propagationWindowMs: window, kid: standby.kid })
      notes.push(...seen, `promoted ${standby.kid}`, ...promoted.notes)
      return stageStandby(promoted.doc, opts, notes)
    }
    notes.push(`${standby.kid} is the standby; it becomes current from ${toRfc3339(new Date(promotionTime(createdAtMs(standby), dueAt, opts)))}`)
    return { doc, notes }
  }
  return stageStandby(doc, opts, notes)
}

/** Stages a new standby key (the current key's algorithm unless `alg`). */
async function stageStandby(doc: KeysetDocument, opts: AutoOptions, notes: string[]): Promise<RotationResult> {
  const current = currentEntry(doc)
  const entry = await (opts.newKey ?? generateKey)(opts.alg ?? current.alg, { now: new Date(opts.now), taken: kidsOf(doc) })
  doc.keys.push(entry)
  const dueAt = createdAtMs(current) + opts.everyMs - opts.propagationWindowMs
  notes.push(
    `staged ${entry.kid} as the standby: published now, it signs from ${toRfc3339(new Date(promotionTime(opts.now, dueAt, opts)))} (or at once after rotate --compromised)`,
  )
  return { doc, notes }
}

/**
 * When `autoRotate` promotes a standby staged at `stagedAtMs`: half a life later, or sooner when
 * the current key is due at `dueAtMs` — never before it is published (the window, or the gate).
 */
function promotionTime(stagedAtMs: number, dueAtMs: number, opts: AutoOptions): number {
  const halfMs = (opts.everyMs - opts.propagationWindowMs) / 2
  return Math.max(stagedAtMs + (opts.gate ? 0 : opts.propagationWindowMs), Math.min(stagedAtMs + halfMs, dueAtMs))
}
