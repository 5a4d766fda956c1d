import { RefusedError } from '../../lib/errors.js'
import type { Alg } from '../../lib/keyset/algorithms.js'
import { keyStatus, type KeyEntry, type KeysetDocument } from '../../lib/keyset/document.js'
import { toRfc3339 } from '../../lib/keyset/generate.js'
import { formatDuration } from '../../lib/duration.js'
import { pruneExpired } from './prune.js'
import { retire } from './rotate.js'
import { cloneDocument, createdAtMs, currentEntry, generateKey, kidsOf, type KeyFactory, type RotationResult } from './types.js'

/** Staged keys, newest first. A staged key's publication time is its `created_at`. */
export function stagedKeys(doc: KeysetDocument): KeyEntry[] {
  return doc.keys.filter((k) => keyStatus(doc, k) === 'staged').sort((a, b) => createdAtMs(b) - createdAtMs(a))
}

export interface StageOptions {
  now: number
  /** @default the current key's */
  alg?: Alg
  newKey?: KeyFactory
}

/**
 * First half of a two-phase rotation: publish a new key that verifies but does not sign
 * (no `not_after`, not `current`), and prune expired keys. Refused while a key is already
 * staged: promote or drop that one first, so there is never a question which one is next.
 */
export async function stageKey(input: KeysetDocument, opts: StageOptions): Promise<RotationResult> {
  const doc = cloneDocument(input)
  pruneExpired(doc, opts.now)
  const already = stagedKeys(doc)[0]
  if (already) {
    throw new RefusedError(`${already.kid} is already staged (since ${already.created_at}); promote it with rotate --promote before staging another`)
  }
  const entry = await (opts.newKey ?? generateKey)(opts.alg ?? currentEntry(doc).alg, { now: new Date(opts.now), taken: kidsOf(doc) })
  doc.keys.push(entry)
  return { doc, notes: [`${entry.kid} is published but does not sign yet; promote it once every replica has loaded it`] }
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
}

/**
 * Second half: the staged key becomes `current`, the old current key turns verify-only until
 * `now + grace`, expired keys are pruned. Refused (RefusedError) until the staged key has been
 * published for the propagation window — a replica that has not loaded it yet would reject
 * its tokens — unless `force`.
 */
export function promoteStaged(input: KeysetDocument, opts: PromoteOptions): RotationResult {
  const doc = cloneDocument(input)
  pruneExpired(doc, opts.now)
  const target = pickStaged(doc, opts.kid)
  const publishedFor = opts.now - createdAtMs(target)
  const notes: string[] = []
  if (publishedFor < opts.propagationWindowMs) {
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
  notes.push(`${old.kid} keeps verifying for ${formatDuration(opts.graceMs)}, until ${old.not_after}`)
  return { doc, notes }
}

/** The staged key to promote: `kid`, or the only staged key. Throws `RefusedError` otherwise. */
export function pickStaged(doc: KeysetDocument, kid: string | undefined): KeyEntry {
  const staged = stagedKeys(doc)
  if (kid !== undefined) {
    const entry = doc.keys.find((k) => k.kid === kid)
    if (!entry) throw new RefusedError(`no key has kid "${kid}"`)
    if (keyStatus(doc, entry) !== 'staged') throw new RefusedError(`${kid} is ${keyStatus(doc, entry)}, not staged`)
    return entry
  }
  if (staged.length === 0) throw new RefusedError('no staged key to promote; publish one first with rotate --stage')
  if (staged.length > 1) throw new RefusedError(`several keys are staged (${staged.map((k) => k.kid).join(', ')}); name one with --kid`)
  return staged[0]!
}

export interface AutoOptions {
  now: number
  /** Rotation period: the current key is due at age `every − window`. */
  everyMs: number
  propagationWindowMs: number
  graceMs: number
  /** Algorithm of a newly staged key. @default the current key's */
  alg?: Alg
  newKey?: KeyFactory
  /**
   * The replica gate (CONTRACT §9): with it, the newest fresh staged key is promoted when the
   * gate resolves — no time window — and the gate's `RefusedError` (naming the replicas that
   * lack the key) ends the run with nothing changed. Resolves with a note for the report.
   */
  gate?: (kid: string) => Promise<string>
}

/**
 * One step of scheduled rotation, for a CronJob; idempotent (a second run at the same time
 * changes nothing):
 *
 * 1. prune keys past `not_after`;
 * 2. a staged key that has waited longer than `every − window` is too old to become current
 *    (it would start life near the SLA): it is retired (`not_after = now`; it never signed);
 * 3. the newest remaining staged key that has been published for the window is promoted
 *    (with a `gate`: the newest fresh staged key, once every replica verifies with it);
 * 4. otherwise, when the current key is due (age ≥ every − window) and nothing is staged, a
 *    new key is staged — so it is ready to promote by the time the current key is `every` old.
 */
export async function autoRotate(input: KeysetDocument, opts: AutoOptions): Promise<RotationResult> {
  if (!(opts.everyMs > 2 * opts.propagationWindowMs)) throw new RangeError('everyMs must be more than twice the propagation window')
  const doc = cloneDocument(input)
  const notes: string[] = []
  pruneExpired(doc, opts.now)
  const freshLimit = opts.everyMs - opts.propagationWindowMs
  const staged = stagedKeys(doc)
  for (const k of staged.filter((s) => opts.now - createdAtMs(s) >= freshLimit)) {
    retire(k, opts.now)
    notes.push(`staged key ${k.kid} waited ${formatDuration(opts.now - createdAtMs(k))}, too long to become current: retired`)
  }
  const fresh = staged.filter((s) => opts.now - createdAtMs(s) < freshLimit)
  const ready = opts.gate ? fresh[0] : fresh.find((s) => opts.now - createdAtMs(s) >= opts.propagationWindowMs)
  if (ready) {
    const seen = opts.gate ? [await opts.gate(ready.kid)] : []
    const window = opts.gate ? 0 : opts.propagationWindowMs
    const promoted = promoteStaged(doc, { now: opts.now, graceMs: opts.graceMs, propagationWindowMs: window, kid: ready.kid })
    return { doc: promoted.doc, notes: [...notes, ...seen, `promoted ${ready.kid}`, ...promoted.notes] }
  }
  const current = currentEntry(doc)
  const dueAt = createdAtMs(current) + freshLimit
  if (fresh.length > 0) {
    const next = fresh[0]!
    notes.push(`${next.kid} is staged; it can be promoted from ${toRfc3339(new Date(createdAtMs(next) + opts.propagationWindowMs))}`)
  } else if (opts.now >= dueAt) {
    const entry = await (opts.newKey ?? generateKey)(opts.alg ?? current.alg, { now: new Date(opts.now), taken: kidsOf(doc) })
    doc.keys.push(entry)
    notes.push(
      `${current.kid} is ${formatDuration(opts.now - createdAtMs(current))} old: staged ${entry.kid}; ` +
        `a run from ${toRfc3339(new Date(opts.now + opts.propagationWindowMs))} promotes it`,
    )
  } else {
    notes.push(`${current.kid} is due for rotation at ${toRfc3339(new Date(dueAt))}`)
  }
  return { doc, notes }
}
