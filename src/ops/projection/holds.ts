import { createPublicKey, type JsonWebKey } from 'node:crypto'
import type { KeysetBackend } from '../../lib/backends/backend.js'
import type { KeyEntry, KeysetDocument } from '../../lib/keyset/document.js'
import { validDocument } from './interim.js'
import { projectionOf, type ProjectionState, readProjections } from './publish.js'

/**
 * Where a verifier reading the projection does not verify with `key` (an entry of the keyset
 * `doc`): one phrase per target, its location first. A staged key is timed from its
 * `created_at` (rotate's propagation window, --compromised's standby "on every replica
 * already"), which holds only while the projection has published it since: one that lacks it
 * — its write failed, it was edited outside cbc-jwt — would have the next write
 * publish it milliseconds before the key signs. Empty when every target holds it, and when
 * `doc` has no projection (HS* keys: its verifiers read the keyset itself).
 *
 * A target that does not exist lacks nothing: no verifier can have lost the key by it. Its
 * verifiers keep the last projection they loaded (a read that finds nothing never drops keys),
 * which held every key written before it went; one started since has no keys at all, whatever
 * is promoted; and a deployment whose verifiers read the private keyset itself has never had
 * one. The promoting write publishes it again, first.
 */
export function projectionsLacking(states: readonly ProjectionState[], doc: KeysetDocument, key: KeyEntry, nowMs: number): string[] {
  if (!('text' in projectionOf(doc))) return []
  return states.flatMap((s) => {
    const why = lacks(s.stored?.text, key, nowMs)
    return why === undefined ? [] : [`${s.target.location} ${why}`]
  })
}

function lacks(text: string | undefined, key: KeyEntry, nowMs: number): string | undefined {
  if (text === undefined) return undefined
  // As a verifier takes it: a projection it would not load leaves it on the keys it had.
  const published = validDocument(text, nowMs)
  if (published === null) return 'is not a keyset its verifiers would load'
  const there = published.keys.find((k) => k.kid === key.kid)
  if (there === undefined) return 'lacks it'
  if (there.alg !== key.alg || !samePublicKey(there.jwk, key.jwk)) return 'holds another key under that kid'
  if (there.not_after !== undefined && !(Date.parse(there.not_after) > nowMs)) return `cuts it off (not_after ${there.not_after})`
  return undefined
}

/** Whether two JWKs (one may be private) hold the same public key; false when either is unusable. */
function samePublicKey(a: JsonWebKey, b: JsonWebKey): boolean {
  try {
    return createPublicKey({ key: a, format: 'jwk' }).equals(createPublicKey({ key: b, format: 'jwk' }))
  } catch {
    return false
  }
}

/** What a change may ask of the verification projection before anything is written. */
export interface ProjectionView {
  /** `projectionsLacking` for `kid` of `doc`, the targets read on first use (once per view). */
  lacking(doc: KeysetDocument, kid: string): Promise<string[]>
}

/** A view of `targets` as they are now; no target (a keyset on stdin) lacks anything. */
export function projectionView(targets: readonly KeysetBackend[], now: () => number): ProjectionView {
  let states: Promise<ProjectionState[]> | undefined
  return {
    async lacking(doc, kid) {
      const key = doc.keys.find((k) => k.kid === kid)
      if (key === undefined || targets.length === 0) return []
      states ??= readProjections(targets)
      return projectionsLacking(await states, doc, key, now())
    },
  }
}
