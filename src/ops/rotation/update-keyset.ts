import type { KeysetBackend } from '../../lib/backends/backend.js'
import { CasConflictError, KeysetInvalidError, RefusedError, problemsInLine } from '../../lib/errors.js'
import { ruleTarget, type KeysetDocument, type RevocationRule } from '../../lib/keyset/document.js'
import { loadKeyset, parseKeysetText, type LoadedKeyset } from '../../lib/keyset/load.js'
import {
  driftOf,
  projectionOf,
  type ProjectionState,
  ProjectionWriteError,
  readProjections,
  refuseStaleProjection,
  storedKids,
  writeProjections,
} from '../projection/publish.js'
import { projectionView, type ProjectionView } from '../projection/holds.js'
import { diffKeysets, type KeysetChange } from './diff.js'
import { DEFAULT_RULE_LIFETIME, pruneRevocations, type RuleLifetime } from './revocations.js'
import { serializeKeyset } from '../../lib/keyset/serialize.js'
import type { RotationResult } from './types.js'

/**
 * A change to a keyset: gets the validated document, returns the next one. May be called twice.
 * `projection` answers what the verification projection holds before anything is written (a
 * staged key it lacks is not published, whatever its `created_at` says).
 */
export type KeysetMutation = (doc: KeysetDocument, keyset: LoadedKeyset, projection: ProjectionView) => RotationResult | Promise<RotationResult>

export interface UpdateOptions {
  /** Clock for validation (ms since the epoch). @default Date.now */
  now?: () => number
  /** Compute and validate the change, write nothing. */
  dryRun?: boolean
  /**
   * Accept a stored keyset whose only fault is a current key past its `not_after` (every
   * token is failing; a pod restarted now would load nothing), for changes that replace the
   * current key. The result is still validated in full.
   */
  acceptExpiredCurrent?: boolean
  /**
   * How long a revocation rule can still match a valid token: every write drops the rules
   * past it. @default 24 h max token TTL, 30 s clock tolerance
   */
  ruleLifetime?: RuleLifetime
  /**
   * Where the verification projection (the keyset without private keys) is published. It is
   * written before the private keyset, so a key verifies everywhere before anything can sign
   * with it and a revocation reaches verifiers first; a projection that drifted is repaired
   * even when the change itself has nothing to do.
   */
  projections?: readonly KeysetBackend[]
}

/** What happened to the verification projection. */
export interface ProjectionOutcome {
  /** Locations written (empty: all already held it, or a dry run). */
  written: string[]
  /** Locations that would be written on a dry run, or that were repaired without a change. */
  drift: string[]
  /** Why none was written (HS* keys, a verification keyset), when so. */
  skipped?: string
}

export interface UpdateOutcome {
  before: KeysetDocument
  /** The stored text the change was computed from. */
  beforeText: string
  after: KeysetDocument
  /** The text written (or that would be written); equals `beforeText` when nothing changed. */
  text: string
  changes: KeysetChange[]
  notes: string[]
  /** False when nothing changed or on a dry run. */
  written: boolean
  /** 1, or 2 when a concurrent write forced a re-read. */
  attempts: number
  projection: ProjectionOutcome
}

/**
 * What a failed private write adds to its message when the projection was written first (§10: a
 * failure between the two writes names what was and was not written); empty when none was.
 */
export function projectionAhead(written: readonly string[]): string {
  return written.length > 0
    ? `; the verification projection (${written.join(', ')}) already holds the change — run the same command again to bring the private keyset level with it`
    : ''
}

/**
 * The same, when the projection written first was an interim one (projection/interim.ts): the
 * keyset in force still verifies there, beside the new keys.
 */
export function interimAhead(written: readonly string[]): string {
  return written.length > 0
    ? `; the verification projection (${written.join(', ')}) already publishes the new keys beside the keyset in force, whose keys still verify there — run the same command again`
    : ''
}

/**
 * The one way the CLI changes a stored keyset: read (text + version) → validate → mutate →
 * validate the result → write with check-and-set. Nothing that fails validation is ever
 * written; an unchanged result writes nothing. If another writer got in between
 * (`CasConflictError`), the document is read again and the change applied once more to the
 * fresh document; a second conflict fails with `CasConflictError` and nothing written.
 *
 * Throws `KeysetInvalidError` when the stored keyset is invalid (nothing to build on),
 * `RefusedError` when the result would be invalid, and whatever the mutation throws.
 *
 * @example
 * await updateKeyset(createFileBackend('keyset.json'), (doc) => setRevokedBefore(doc, { issuedBeforeMs: Date.now() }))
 */
export async function updateKeyset(backend: KeysetBackend, mutate: KeysetMutation, opts: UpdateOptions = {}): Promise<UpdateOutcome> {
  return oneChangeAtATime(backend, () => update(backend, mutate, opts), opts.dryRun === true)
}

/**
 * Runs `work`, a whole change of `backend`'s keyset (read, projection, keyset, copy), as the only
 * change of it: a file has no check-and-set spanning the keyset and its projection (`exclusive`,
 * the file backend's update lock). Every command that writes a keyset runs its change here; a
 * dry run writes nothing and waits for no one.
 */
export function oneChangeAtATime<T>(backend: KeysetBackend, work: () => Promise<T>, dryRun = false): Promise<T> {
  return backend.exclusive && !dryRun ? backend.exclusive(work) : work()
}

async function update(backend: KeysetBackend, mutate: KeysetMutation, opts: UpdateOptions): Promise<UpdateOutcome> {
  const progress = { published: false, keepAhead: false }
  try {
    const outcome = await applyChange(backend, mutate, opts, progress)
    if (!outcome.written) return outcome
    const level = await levelAfterWrite(backend, opts.projections ?? [], opts.now ?? Date.now)
    return level === undefined ? outcome : { ...outcome, notes: [...outcome.notes, level] }
  } catch (err) {
    // A projection this call wrote was computed from its own read, which a concurrent writer may
    // have overtaken: a change stored since (a revoke that exited 0) can be missing from it.
    // Failing now, this call sets it back to the stored keyset. Not when the private write
    // itself failed (the projection then holds a change that is safe ahead: run again).
    if (progress.published && !progress.keepAhead && err instanceof Error) {
      err.message += await settleProjection(backend, opts.projections ?? [], opts.now ?? Date.now)
    }
    throw err
  }
}

async function applyChange(
  backend: KeysetBackend,
  mutate: KeysetMutation,
  opts: UpdateOptions,
  progress: { published: boolean; keepAhead: boolean },
): Promise<UpdateOutcome> {
  const now = opts.now ?? Date.now
  for (let attempt = 1; ; attempt++) {
    const snapshot = await backend.read()
    const loaded = locate(backend.location, () => loadStored(snapshot.text, now(), opts.acceptExpiredCurrent === true))
    const before = loaded.document
    // Every write drops the rules no valid token can match any more, before the change is
    // made: a list near its bound makes room first.
    const working = structuredClone(before)
    pruneRevocations(working, now(), opts.ruleLifetime ?? DEFAULT_RULE_LIFETIME)
    const { doc: after, notes } = await mutate(working, loaded, projectionView(opts.projections ?? [], now))
    const unchanged = JSON.stringify(after) === JSON.stringify(before)
    const text = unchanged ? snapshot.text : serializeKeyset(after)
    const states = await readProjections(opts.projections ?? [])
    const projected = projectionOf(after)
    const drift = 'text' in projected ? driftOf(states, projected.text) : []
    const projection: ProjectionOutcome = { written: [], drift, ...('skipped' in projected && states.length > 0 ? { skipped: projected.skipped } : {}) }
    const outcome: UpdateOutcome = {
      before,
      beforeText: snapshot.text,
      after,
      text,
      changes: diffKeysets(before, after),
      notes,
      written: false,
      attempts: attempt,
      projection,
    }
    if (!unchanged) {
      try {
        loadKeyset(parseKeysetText(text), now())
      } catch (err) {
        if (!(err instanceof KeysetInvalidError)) throw err
        throw new RefusedError(`refusing to write an invalid keyset: ${problemsInLine(err.problems)}`)
      }
    }
    refuseStaleProjection(states, after, before, 'add an HS* (oct) key')
    if (opts.dryRun) return outcome
    // A projection holding a key this change does not know was published by another writer; if
    // the keyset moved too, this change was computed from a replaced version: its projection
    // would take away the key the keyset signs with now, and its keyset write cannot land.
    // Applied again to the new version instead, as after a lost keyset write.
    const overtaken = async (seen: readonly ProjectionState[]) => othersKeys(seen, before, after) && (await backend.read()).version !== snapshot.version
    try {
      if (await overtaken(states)) throw new Overtaken()
      // The projection first: verifiers learn a new key, and a revocation, before signers do.
      if ('text' in projected) projection.written = await publish(opts.projections ?? [], states, projected.text, overtaken)
      if (projection.written.length > 0) progress.published = true
    } catch (err) {
      if (err instanceof Overtaken) {
        if (attempt >= 2) throw lostTwice(backend)
        continue
      }
      if (err instanceof CasConflictError) {
        throw new CasConflictError(
          `${err.message}: the verification projection was changed by another writer twice or more while this change was being made; nothing was written to ${backend.location} — check the keyset and run again`,
          { cause: err },
        )
      }
      progress.keepAhead = true
      throw new ProjectionWriteError(`${(err as Error).message}; the private keyset ${backend.location} was not changed — run the same command again`, {
        cause: err,
      })
    }
    if (unchanged) return outcome
    try {
      const stored = await backend.write(text, snapshot.version)
      // A write that landed in an unexpected way (kubernetes-backend.ts) is reported, not hidden.
      return { ...outcome, written: true, notes: stored.notice === undefined ? notes : [...notes, stored.notice] }
    } catch (err) {
      const ahead = projectionAhead(projection.written)
      if (!(err instanceof CasConflictError)) {
        progress.keepAhead = true
        if (err instanceof Error && ahead) err.message = `${err.message}${ahead}`
        throw err
      }
      if (attempt >= 2) throw lostTwice(backend, err)
    }
  }
}

const lostTwice = (backend: KeysetBackend, cause?: unknown) =>
  new CasConflictError(
    `${backend.location} was changed by another writer twice while this change was being made; nothing was written to it — check the keyset and run again`,
    { cause },
  )

/** Whether a stored projection holds a key neither `before` nor `after` has: another writer's. */
function othersKeys(states: readonly ProjectionState[], before: KeysetDocument, after: KeysetDocument): boolean {
  const known = new Set([...before.keys, ...after.keys].map((k) => k.kid))
  return states.some((s) => [...storedKids(s.stored?.text)].some((kid) => !known.has(kid as string)))
}

/**
 * After a change that published and then failed: writes the stored keyset's projection, read
 * afresh (again after a concurrent projection write). Returns what to add to the error.
 */
export async function settleProjection(backend: KeysetBackend, targets: readonly KeysetBackend[], now: () => number): Promise<string> {
  const level = await levelProjection(backend, targets, now)
  if ('failed' in level)
    return `; the verification projection may lack a change stored by another writer and could not be set back (${level.failed}) — run keyset validate --projection`
  return level.written.length === 0 ? '' : `; the verification projection (${level.written.join(', ')}) was set back to the stored keyset`
}

/**
 * After a keyset write that replaced the keyset in force and published an interim projection
 * first (projection/interim.ts: the replaced keyset's keys still verify there): the stored
 * keyset's own projection replaces it. Returns what is left when it could not be written.
 */
export async function replaceInterimProjection(backend: KeysetBackend, targets: readonly KeysetBackend[], now: () => number): Promise<string | undefined> {
  const level = await levelProjection(backend, targets, now)
  if (!('failed' in level)) return undefined
  return `the verification projection still verifies the replaced keyset's keys as well, and could not be set to the new keyset (${level.failed}); the next write levels it — run keyset validate --projection`
}

/**
 * After a keyset write that landed: a concurrent writer that computed its projection from the
 * version this write replaced may have published it over this one between the two writes — its
 * projection lacks the key the keyset now signs with (a false 401 on every verifier that loads
 * it) and the revocation it now holds. So the writer that landed levels it before it is done,
 * rather than leaving it to the other writer's retry (which may never come: killed, or slow).
 * Only a projection behind the keyset (`projectionBehind`) is written: one that only holds more
 * is a writer's that read this version, publishing before its own keyset write. Not where
 * `exclusive` made the whole change the only one. Returns a note when it did anything.
 */
export async function levelAfterWrite(backend: KeysetBackend, targets: readonly KeysetBackend[], now: () => number): Promise<string | undefined> {
  if (backend.exclusive || targets.length === 0) return undefined
  const level = await levelProjection(backend, targets, now, true)
  if ('failed' in level)
    return `the verification projection may have been replaced by another writer's, without this change, and could not be checked (${level.failed}) — run keyset validate --projection`
  if (level.written.length === 0) return undefined
  return `the verification projection (${level.written.join(', ')}) was replaced by another writer's meanwhile, computed from an older keyset; it was set back to the stored keyset`
}

/**
 * The one way the projection is levelled with the stored keyset outside a change: the projections
 * are read first, then the keyset, then each is written with check-and-set on the version read
 * (again, from the top, after a conflict). Reading the projection before the keyset is what
 * makes the writers converge: whoever writes the keyset after that read levels the projection
 * after its own write, so its projection write either conflicts with this one or reads it; the
 * last levelling always computes from the last keyset.
 */
async function levelProjection(
  backend: KeysetBackend,
  targets: readonly KeysetBackend[],
  now: () => number,
  onlyBehind = false,
): Promise<{ written: string[] } | { failed: string }> {
  try {
    for (let attempt = 1; ; attempt++) {
      const states = await readProjections(targets)
      const stored = loadStored((await backend.read()).text, now(), true).document
      const projected = projectionOf(stored)
      if (!('text' in projected)) return { written: [] }
      try {
        return { written: await writeProjections(onlyBehind ? states.filter((s) => projectionBehind(s.stored?.text, stored, now())) : states, projected.text) }
      } catch (err) {
        if (!(err instanceof CasConflictError) || attempt >= PROJECTION_ATTEMPTS) throw err
      }
    }
  } catch (err) {
    return { failed: (err as Error).message }
  }
}

/**
 * Whether a stored projection is behind `keyset` (the keyset as stored): it lacks a key the
 * keyset can still verify with or a revocation it holds, verifies a key longer than the
 * keyset's `not_after` for it, or, under another current key, still holds a key the keyset no
 * longer has that is older than its current key (removed: pruned, or compromised). Not when it
 * only holds more — a newer key, as a writer that read this keyset publishes before its own
 * keyset write: levelling that away would take from it the key it is about to sign with.
 */
function projectionBehind(text: string | undefined, keyset: KeysetDocument, nowMs: number): boolean {
  if (text === undefined) return true
  let published: Partial<KeysetDocument>
  try {
    published = JSON.parse(text) as Partial<KeysetDocument>
    if (!Array.isArray(published.keys)) return true
  } catch {
    return true
  }
  const publishedKeys = new Map(published.keys.map((k) => [k?.kid, k]))
  for (const k of keyset.keys) {
    const cutOff = k.not_after === undefined ? Number.POSITIVE_INFINITY : Date.parse(k.not_after)
    const there = publishedKeys.get(k.kid)
    if (there === undefined) {
      if (cutOff > nowMs) return true
      continue
    }
    // A key the keyset cuts off (a promotion's grace, which adds no key) that the projection
    // verifies for longer: no newer writer lengthens a not_after, so this one is older.
    if (cutOff !== Number.POSITIVE_INFINITY && !(Date.parse(there.not_after ?? '') <= cutOff)) return true
  }
  // An older key the keyset dropped, under another current key: a version before a rotation,
  // a --compromised or an init --force. Under the keyset's own current key, holding all the
  // checks above ask for, it is a `keyset restore`'s interim projection computed from this very
  // keyset (projection/interim.ts: its copy's older keys beside it), published before that
  // restore's keyset write: set back now, that write would land over a projection without the
  // key it signs with. A write that keeps the current key never drops a key that still verifies
  // but a restore of such a copy, whose own projection is written first; anything else a
  // projection holds beyond the keyset goes with the next change, which publishes it whole.
  if (published.current !== keyset.current) {
    const current = keyset.keys.find((k) => k.kid === keyset.current)
    const known = new Set(keyset.keys.map((k) => k.kid))
    const currentFrom = current ? Date.parse(current.created_at) : Number.POSITIVE_INFINITY
    if (published.keys.some((k) => !known.has(k?.kid) && !(Date.parse(k?.created_at) >= currentFrom))) return true
  }
  // A rule is in force there when one for the same client, subject or token reaches at least
  // as far: a newer writer may have moved it forward (revoke keeps the later time), never back.
  const reach = new Map<string, number>()
  for (const rule of Array.isArray(published.revocations) ? published.revocations : []) {
    if (typeof rule !== 'object' || rule === null) return true
    const at = ruleReach(rule)
    if (at !== undefined) reach.set(ruleKey(rule), Math.max(at, reach.get(ruleKey(rule)) ?? at))
  }
  if ((keyset.revocations ?? []).some((r) => !((reach.get(ruleKey(r)) ?? Number.NaN) >= (ruleReach(r) ?? Number.NaN)))) return true
  return keyset.revoked_before !== undefined && !(Date.parse(published.revoked_before ?? '') >= Date.parse(keyset.revoked_before))
}

/** Which client, subject or token a rule names (a rule from a foreign document may be anything). */
function ruleKey(rule: RevocationRule): string {
  const { kind, value } = ruleTarget(rule)
  return JSON.stringify([kind, value])
}

/** How far a rule reaches: its `issued_before`, or for a token its `expires_at`; undefined if unreadable. */
function ruleReach(rule: RevocationRule): number | undefined {
  const at = Date.parse('jti' in rule ? rule.expires_at : rule.issued_before)
  return Number.isNaN(at) ? undefined : at
}

function loadStored(text: string, now: number, acceptExpiredCurrent: boolean): LoadedKeyset {
  const data = parseKeysetText(text)
  try {
    return loadKeyset(data, now)
  } catch (err) {
    if (!acceptExpiredCurrent || !(err instanceof KeysetInvalidError)) throw err
    // The only time-dependent check is "current past not_after": if the document loads at the
    // beginning of time, that was its only problem.
    try {
      return loadKeyset(data, Number.NEGATIVE_INFINITY)
    } catch {
      throw err
    }
  }
}

/** Runs `load`; a `KeysetInvalidError` it throws is given the location in its message. */
export function locate<T>(location: string, load: () => T): T {
  try {
    return load()
  } catch (err) {
    if (err instanceof KeysetInvalidError && !err.message.startsWith(`${location}: `)) err.message = `${location}: ${err.message}`
    throw err
  }
}

/**
 * Writes the projection with check-and-set; a concurrent projection write (another CLI) makes
 * it read the projection again and retry, without re-running the change: the private
 * keyset's own check-and-set decides which change wins; the next write (or its retry) repairs
 * a projection another writer computed from an older version. Unless that read shows the
 * change `overtaken` (another writer's key published, the keyset moved): it throws `Overtaken`,
 * and the change is applied again to the new version.
 */
const PROJECTION_ATTEMPTS = 5

async function publish(
  targets: readonly KeysetBackend[],
  states: readonly ProjectionState[],
  text: string,
  overtaken: (states: readonly ProjectionState[]) => Promise<boolean>,
): Promise<string[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await writeProjections(states, text)
    } catch (err) {
      // Each round lets at least one concurrent writer through: a handful suffices for any real race.
      if (!(err instanceof CasConflictError) || attempt >= PROJECTION_ATTEMPTS) throw err
      states = await readProjections(targets)
      if (await overtaken(states)) throw new Overtaken()
    }
  }
}

/** The change was computed from a keyset version another writer has replaced: apply it again. */
class Overtaken extends Error {}
