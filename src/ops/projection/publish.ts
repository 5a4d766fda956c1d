import type { KeysetBackend } from '../../lib/backends/backend.js'
import { BackendError, CasConflictError, codedError, ERROR_CODES, RefusedError } from '../../lib/errors.js'
import type { KeysetDocument } from '../../lib/keyset/document.js'
import { loadKeyset, parseKeysetText } from '../../lib/keyset/load.js'
import { hasPrivateMembers, keysetKind, toVerificationKeyset } from '../../lib/keyset/projection.js'
import { serializeKeyset } from '../../lib/keyset/serialize.js'

/**
 * The verification projection's text for `doc`, or why there is none: a keyset with HS* keys
 * has no public form (its secret signs), and a verification keyset is its own projection.
 */
export function projectionOf(doc: KeysetDocument): { text: string } | { skipped: string } {
  if (doc.keys.some((k) => k.jwk.kty === 'oct')) {
    return {
      skipped:
        'no verification projection written: HS* (oct) keys cannot be made public (whoever verifies with them can sign); use an asymmetric algorithm for least privilege',
    }
  }
  if (keysetKind(doc) === 'verification') return { skipped: 'no verification projection written: this keyset is itself a verification keyset' }
  return { text: serializeKeyset(toVerificationKeyset(doc)) }
}

const hasHmacKey = (doc: KeysetDocument) => doc.keys.some((k) => k.jwk.kty === 'oct')

/**
 * Refuses a write that would bring the first HS* key into a keyset whose projection is
 * published: such a keyset has no projection, so the published one would stay as it is from
 * then on — its verifiers keeping the replaced keys and missing every later revocation.
 * `before`: the keyset the write replaces, when known (one that already had HS* keys left any
 * projection behind long ago). `action` names the write in the message.
 */
export function refuseStaleProjection(states: readonly ProjectionState[], after: KeysetDocument, before: KeysetDocument | undefined, action: string): void {
  const published = states.filter((s) => s.stored !== undefined).map((s) => s.target.location)
  if (published.length === 0 || !hasHmacKey(after) || (before !== undefined && hasHmacKey(before))) return
  throw new RefusedError(
    `refusing to ${action}: the verification projection ${published.join(', ')} is published, and a keyset with HS* keys has none, so it would go stale (its verifiers would keep the old keys and miss every later revocation); use an asymmetric --alg (ES256, EdDSA, RS256, PS256), or move the verifiers off it and delete it first; nothing was written`,
  )
}

/** One projection target as read before a write: its version is the check-and-set token. */
export interface ProjectionState {
  target: KeysetBackend
  /** Stored text and version; undefined when absent (created on write). */
  stored: { text: string; version: string } | undefined
}

/** Reads every target's current projection (absent is fine; other failures throw). */
export async function readProjections(targets: readonly KeysetBackend[]): Promise<ProjectionState[]> {
  return Promise.all(
    targets.map(async (target) => {
      try {
        return { target, stored: await target.read() }
      } catch (err) {
        if (err instanceof BackendError && err.reason === 'not_found') return { target, stored: undefined }
        throw err
      }
    }),
  )
}

/** A projection write that failed part-way: says what was and was not written. */
export class ProjectionWriteError extends codedError(ERROR_CODES.BACKEND) {}

/**
 * Writes `text` to every target that does not hold it already, each with check-and-set on the
 * version read in `states`. Returns the locations written. A `CasConflictError` (another writer
 * meanwhile) is passed on for the caller to re-read and retry; any other failure becomes a
 * `ProjectionWriteError` naming the targets written before it.
 */
export async function writeProjections(states: readonly ProjectionState[], text: string): Promise<string[]> {
  const written: string[] = []
  for (const { target, stored } of states) {
    if (stored?.text === text) continue
    try {
      await target.write(text, stored ? stored.version : null)
    } catch (err) {
      if (err instanceof CasConflictError) throw err
      const done = written.length > 0 ? `; already written: ${written.join(', ')}` : ''
      throw new ProjectionWriteError(`cannot write the verification projection ${target.location}: ${(err as Error).message}${done}`, { cause: err })
    }
    written.push(target.location)
  }
  return written
}

/** Every location whose stored projection differs from `text` (drift), or is absent. */
export function driftOf(states: readonly ProjectionState[], text: string): string[] {
  return states
    .filter((s) => s.stored?.text !== text)
    .map((s) => {
      if (s.stored === undefined) return `${s.target.location} is absent`
      // Worse than stale: whoever can read it (verifiers, anyone on a 0644 file) can sign.
      if (holdsSecretKeys(s.stored.text))
        return `${s.target.location} holds private or secret keys: every reader of it can sign with them — run the command again to replace it, and treat those keys as leaked (rotate --compromised)`
      return `${s.target.location} differs from the private keyset`
    })
}

/** The kids a stored projection publishes (as written there, whatever their type); none when it cannot be read. */
export function storedKids(text: string | undefined): Set<unknown> {
  try {
    const keys = (JSON.parse(text ?? '{}') as { keys?: unknown }).keys
    return new Set(Array.isArray(keys) ? keys.map((k) => (k as { kid?: unknown } | null)?.kid) : [])
  } catch {
    return new Set()
  }
}

/** Whether a keyset text (a stored projection, a document about to be printed) holds any key that can sign (a private member, or `oct`). */
export function holdsSecretKeys(text: string): boolean {
  try {
    const keys = (JSON.parse(text) as { keys?: unknown }).keys
    return (
      Array.isArray(keys) &&
      keys.some((k) => {
        const jwk = (k as { jwk?: unknown } | null)?.jwk
        return typeof jwk === 'object' && jwk !== null && ((jwk as { kty?: unknown }).kty === 'oct' || hasPrivateMembers(jwk))
      })
    )
  } catch {
    return false
  }
}

/**
 * Drift between a keyset and its published projections, the one comparison `keyset validate
 * --projection` and `verify-rotation --projection` report: each target whose stored text is
 * not exactly the keyset's projection. A keyset with HS* keys has none, so a projection still
 * published there is stale (its verifiers get none of the keyset's changes). Empty when in
 * sync, for a verification keyset (its own projection), and when the keyset does not load (its
 * own check says why).
 */
export async function projectionDrift(keysetText: string, targets: readonly KeysetBackend[], now: number): Promise<string[]> {
  let doc: KeysetDocument
  try {
    doc = loadKeyset(parseKeysetText(keysetText), now).document
  } catch {
    return []
  }
  const projected = projectionOf(doc)
  if ('skipped' in projected) {
    if (!hasHmacKey(doc)) return []
    return (await readProjections(targets))
      .filter((s) => s.stored !== undefined)
      .map(
        (s) =>
          `${s.target.location} is stale: the keyset holds HS* (oct) keys, which have no verification form, so its verifiers get none of the keyset's changes (use an asymmetric algorithm, or move the verifiers off it and delete it)`,
      )
  }
  return driftOf(await readProjections(targets), projected.text)
}
