import type { RevocationRule } from '../keyset/document.js'
import { rfc3339CeilMs } from '../keyset/rfc3339-ceil.js'

/** The claims a revocation rule can name; the rest of a token is not read. */
export interface RevocableClaims {
  iat?: unknown
  client_id?: unknown
  azp?: unknown
  sub?: unknown
  jti?: unknown
}

/**
 * The `revocations` rules of one keyset, indexed for the request path. Built once when a
 * keyset loads; `isRevoked` then costs at most three `Map` lookups, whatever the number of
 * rules (no scan of the list per request).
 *
 * The same matcher serves every issuer's tokens: a rule names a client, a subject or a token
 * id, not a key or an issuer.
 */
export class RevocationMatcher {
  /** client id → `issued_before` in seconds (exact, may be fractional). */
  private readonly clients: ReadonlyMap<string, number>
  /** subject → `issued_before` in seconds. */
  private readonly subjects: ReadonlyMap<string, number>
  private readonly tokenIds: ReadonlySet<string>
  /** The number of rules. */
  readonly size: number
  /**
   * `created_at` of the newest rule, Unix seconds; 0 when there is none. Each replica exports
   * it (metric and `/v1/keys`) so that `revoke --wait` can see that a rule is in force there.
   */
  readonly newestCreatedAt: number

  constructor(rules: readonly RevocationRule[] = []) {
    const clients = new Map<string, number>()
    const subjects = new Map<string, number>()
    const tokenIds = new Set<string>()
    let newest = 0
    for (const rule of rules) {
      newest = Math.max(newest, Date.parse(rule.created_at) / 1000 || 0)
      if ('jti' in rule) tokenIds.add(rule.jti)
      else if ('client_id' in rule) latest(clients, rule.client_id, rule.issued_before)
      else latest(subjects, rule.sub, rule.issued_before)
    }
    this.clients = clients
    this.subjects = subjects
    this.tokenIds = tokenIds
    this.size = rules.length
    this.newestCreatedAt = newest
  }

  /**
   * True when a rule revokes a token with these (verified) claims:
   * - its client (`client_id`, else `azp`) has a rule and its `iat` is earlier than the rule's
   *   `issued_before` — exactly, with no clock tolerance ("issued before the spike" means that);
   * - likewise for its `sub`;
   * - its `jti` has a rule (kept until no token with that id can still be valid).
   * A token without a numeric `iat` (an issuer allowed to omit it) cannot show that it was
   * issued after the rule's time, so a client or subject rule naming it revokes it.
   */
  isRevoked(claims: RevocableClaims): boolean {
    if (this.size === 0) return false
    const iat = claims.iat
    if (this.clients.size > 0) {
      const client = typeof claims.client_id === 'string' ? claims.client_id : claims.azp
      if (typeof client === 'string') {
        const before = this.clients.get(client)
        if (before !== undefined && issuedBefore(iat, before)) return true
      }
    }
    if (this.subjects.size > 0 && typeof claims.sub === 'string') {
      const before = this.subjects.get(claims.sub)
      if (before !== undefined && issuedBefore(iat, before)) return true
    }
    return this.tokenIds.size > 0 && typeof claims.jti === 'string' && this.tokenIds.has(claims.jti)
  }
}

/** The matcher of a keyset without rules: `isRevoked` answers false at once. */
export const NO_REVOCATIONS = new RevocationMatcher()

/** Builds the matcher of a keyset's `revocations` (validated), sharing `NO_REVOCATIONS` when there are none. */
export function buildRevocationMatcher(rules: readonly RevocationRule[] | undefined): RevocationMatcher {
  return rules === undefined || rules.length === 0 ? NO_REVOCATIONS : new RevocationMatcher(rules)
}

function issuedBefore(iat: unknown, beforeSeconds: number): boolean {
  return typeof iat === 'number' && Number.isFinite(iat) ? iat < beforeSeconds : true
}

/** Two rules for one client or subject (a hand-edited document): the later time revokes more, and wins. */
function latest(map: Map<string, number>, name: string, issuedBeforeText: string): void {
  const at = rfc3339CeilMs(issuedBeforeText) / 1000
  const known = map.get(name)
  if (known === undefined || at > known) map.set(name, at)
}
