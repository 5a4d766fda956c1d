import { RefusedError } from '../../lib/errors.js'
import type { KeysetDocument } from '../../lib/keyset/document.js'
import { toRfc3339 } from '../../lib/keyset/generate.js'
import { cloneDocument, type RotationResult } from './types.js'

export interface RevokeOptions {
  /** Tokens whose `iat` is earlier than this instant (ms) are rejected; seconds precision, rounded down. */
  issuedBeforeMs: number
  /** Allow moving an existing `revoked_before` earlier (which un-revokes tokens). */
  force?: boolean
}

/**
 * Sets `revoked_before`. Moving it earlier would make tokens valid again that are rejected
 * now, so that is refused unless `force`. (Whether a future time is sensible is the caller's
 * check: it needs the clock.)
 */
export function setRevokedBefore(input: KeysetDocument, opts: RevokeOptions): RotationResult {
  const doc = cloneDocument(input)
  const at = toRfc3339(new Date(opts.issuedBeforeMs))
  const existing = doc.revoked_before
  if (existing !== undefined && Date.parse(existing) > Date.parse(at) && !opts.force) {
    throw new RefusedError(
      `revoked_before is already ${existing}; moving it back to ${at} would accept tokens that are revoked now (use --force to do it anyway)`,
    )
  }
  doc.revoked_before = at
  return { doc, notes: existing === at ? [] : [`tokens issued before ${at} are rejected with reason "revoked"`] }
}
