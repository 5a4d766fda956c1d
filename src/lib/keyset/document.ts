import type { JsonWebKey } from 'node:crypto'
import type { Alg } from './algorithms.js'

/** The keyset document of CONTRACT §1, as stored in the backend. */
export interface KeysetDocument {
  version: 1
  /** kid of the active signing key. */
  current: string
  /** RFC 3339; tokens whose `iat` is earlier are rejected with reason `revoked`. */
  revoked_before?: string
  keys: KeyEntry[]
}

export interface KeyEntry {
  /** 1–128 chars of `[A-Za-z0-9._:-]`, unique in the document. */
  kid: string
  alg: Alg
  /** RFC 3339 creation time; the active key's age is measured from it. */
  created_at: string
  /** RFC 3339; after it the key no longer verifies and is pruned. */
  not_after?: string
  jwk: JsonWebKey
}

/** A key's role, derived from the document (never stored). */
export type KeyStatus = 'current' | 'staged' | 'verify-only'

export const KEY_STATUSES = ['current', 'staged', 'verify-only'] as const satisfies readonly KeyStatus[]

/** current: named by `current`; verify-only: has `not_after` (retiring); staged: any other. */
export function keyStatus(doc: Pick<KeysetDocument, 'current'>, entry: Pick<KeyEntry, 'kid' | 'not_after'>): KeyStatus {
  if (entry.kid === doc.current) return 'current'
  return entry.not_after === undefined ? 'staged' : 'verify-only'
}

/** The largest keyset document accepted, checked before parsing. */
export const MAX_KEYSET_BYTES = 1024 * 1024
