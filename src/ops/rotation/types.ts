import type { Alg } from '../../lib/keyset/algorithms.js'
import type { KeyEntry, KeysetDocument } from '../../lib/keyset/document.js'
import { generateKeyEntry } from '../../lib/keyset/generate.js'

/** Makes a new key entry; injected so tests (and future HSM-backed keys) can supply their own. */
export type KeyFactory = (alg: Alg, opts: { now: Date; taken: ReadonlySet<string> }) => Promise<KeyEntry>

/**
 * Where a staged key is not published to verifiers: one phrase per verification projection that
 * does not hold it (`ProjectionView.lacking`), empty when every one does. A staged key's
 * `created_at` stands for its publication only when this is empty.
 */
export type Unpublished = (kid: string) => Promise<readonly string[]>

/** The default factory: fresh material from `generateKeyEntry`, a readable unique kid. */
export const generateKey: KeyFactory = (alg, opts) => generateKeyEntry(alg, opts)

/** What a rotation operation made of a document. `doc` is a new object; the input is untouched. */
export interface RotationResult {
  doc: KeysetDocument
  /** Human notes on what was decided and why (printed by the CLI). */
  notes: string[]
}

export function cloneDocument(doc: KeysetDocument): KeysetDocument {
  return structuredClone(doc)
}

export function currentEntry(doc: KeysetDocument): KeyEntry {
  const entry = doc.keys.find((k) => k.kid === doc.current)
  // loadKeyset guarantees it; a caller that skipped validation gets a clear TypeError.
  if (!entry) throw new TypeError(`current key "${doc.current}" is not in the keyset`)
  return entry
}

export function createdAtMs(entry: KeyEntry): number {
  return Date.parse(entry.created_at)
}

export function kidsOf(doc: KeysetDocument): Set<string> {
  return new Set(doc.keys.map((k) => k.kid))
}
