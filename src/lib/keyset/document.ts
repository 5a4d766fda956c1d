import type { JsonWebKey } from 'node:crypto'
import type { Alg } from './algorithms.js'

/** The keyset document (schema/keyset.schema.json), as stored in the backend. */
export interface KeysetDocument {
  version: 1
  /** kid of the active signing key. */
  current: string
  /** RFC 3339; tokens whose `iat` is earlier are rejected with reason `revoked`. */
  revoked_before?: string
  keys: KeyEntry[]
  /** Narrower revocations: one client, one subject, one token (at most `MAX_REVOCATION_RULES`). */
  revocations?: RevocationRule[]
}

/**
 * One revocation rule. Each names exactly one thing and carries its own time:
 * - `client_id` + `issued_before`: that client's tokens (`client_id`, else `azp`) whose `iat`
 *   is earlier;
 * - `sub` + `issued_before`: that subject's tokens whose `iat` is earlier;
 * - `jti` + `expires_at`: that one token; `expires_at` is when no token with that id can still
 *   be valid, after which the rule is dropped by the next write.
 * `created_at` is when the rule was made (for the audit trail and `revoke --list`).
 */
export type RevocationRule =
  | { client_id: string; issued_before: string; created_at: string }
  | { sub: string; issued_before: string; created_at: string }
  | { jti: string; expires_at: string; created_at: string }

/** What a rule names: `client_id`, `sub` or `jti`. */
export type RevocationKind = 'client_id' | 'sub' | 'jti'

export const REVOCATION_KINDS = ['client_id', 'sub', 'jti'] as const satisfies readonly RevocationKind[]

/** The most rules a keyset holds: past it a write is refused (revoke a client or subject instead). */
export const MAX_REVOCATION_RULES = 10_000

/** The longest client id, subject or token id a rule can name (the service logs no longer one). */
export const MAX_REVOCATION_VALUE_CHARS = 256

/** What a rule names and the value it names. */
export function ruleTarget(rule: RevocationRule): { kind: RevocationKind; value: string } {
  if ('client_id' in rule) return { kind: 'client_id', value: rule.client_id }
  if ('sub' in rule) return { kind: 'sub', value: rule.sub }
  return { kind: 'jti', value: rule.jti }
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

/**
 * The largest keyset document accepted, checked before parsing: room for the keys and
 * `MAX_REVOCATION_RULES` rules naming values of the longest length (about 3.4 MB).
 */
export const MAX_KEYSET_BYTES = 4 * 1024 * 1024
