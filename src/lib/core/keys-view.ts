import type { JsonWebKey } from 'node:crypto'
import type { Keyring } from '../keyring/keyring.js'
import type { KeyStatus } from '../keyset/document.js'
import { toRfc3339 } from '../keyset/generate.js'
import type { LoadedKeyset } from '../keyset/load.js'
import { TRUSTED_KEY_STATUS, type TrustedIssuerKeyState } from '../metrics/key-state.js'
import { OPTIONS } from '../options-table.js'

/** One key of the JWK Set: public members only, with `kid`, `alg` and `use: "sig"`. */
export type PublicJwk = JsonWebKey & { kid: string; alg: string; use: 'sig' }

/** The body of `GET /.well-known/jwks.json` (RFC 7517 §5). */
export interface JwksBody {
  keys: PublicJwk[]
}

/** One key as `GET /v1/keys` and `cbc-jwt status` show it: metadata, never material. */
export interface KeyRow {
  /** Whose key: the keyset's own issuer, or a trusted issuer. */
  issuer?: string
  kid: string
  alg: string
  /**
   * As the document declares it; a key past `not_after` keeps its status and `verifies` is false.
   * A trusted issuer's key is `trusted`: it verifies, never signs, and its issuer retires it.
   */
  status: KeyStatus | typeof TRUSTED_KEY_STATUS
  /** A trusted issuer's key: when this replica first read it. */
  created_at: string
  age_seconds: number
  not_after: string | null
  /** false once past `not_after` (the key is still listed until a rotation prunes it). */
  verifies: boolean
}

/** The body of `GET /v1/keys`: metadata of every key of the keyset in force, never material. */
export interface KeysBody {
  /** The keyset's own issuer: its keys carry it as `issuer`; any other `issuer` is a trusted issuer's key. */
  issuer: string
  current: string
  revoked_before: string | null
  /** How many `revocations` rules (by client, subject or token id) are in force; 0 when none. */
  revocation_rules: number
  /**
   * `created_at` of the newest rule in force (RFC 3339); null when none. A replica showing the
   * time a `revoke --client-id/--subject/--jti` wrote, or a later one, has that rule in force.
   */
  revocations_newest: string | null
  keys: KeyRow[]
}

/**
 * The public halves of the asymmetric keys that verify at `now`. HMAC keys have no public half
 * and are never listed; private members are never copied (`publicJwk` holds none).
 */
export function jwksBody(keyring: Pick<Keyring, 'verifyingKeys'>, now: number): JwksBody {
  return {
    keys: keyring
      .verifyingKeys(now)
      .filter((k) => k.publicJwk !== undefined)
      .map((k) => ({ ...k.publicJwk, kid: k.kid, alg: k.alg, use: 'sig' as const })),
  }
}

/**
 * Key metadata, or undefined before the first keyset is loaded: the keyset's keys, then each
 * trusted issuer's (kid, alg, first seen — never material).
 */
export function keysBody(
  keyring: Pick<Keyring, 'keyset'>,
  now: number,
  issuer: string = OPTIONS.issuer.default,
  trustedIssuers: readonly TrustedIssuerKeyState[] = [],
): KeysBody | undefined {
  const keyset = keyring.keyset()
  if (!keyset) return undefined
  const trusted: KeyRow[] = trustedIssuers.flatMap((t) =>
    [...(t.keys()?.values() ?? [])].map((key) => ({
      issuer: t.issuer,
      kid: key.kid,
      alg: key.alg,
      status: TRUSTED_KEY_STATUS,
      created_at: new Date(key.createdAt).toISOString(),
      age_seconds: Math.max(0, Math.floor((now - key.createdAt) / 1000)),
      not_after: null,
      verifies: true,
    })),
  )
  const own = keyRows(keyset, now).map((row) => ({ issuer, ...row }))
  const { size, newestCreatedAt } = keyset.revocations
  return {
    issuer,
    current: keyset.current.kid,
    revoked_before: keyset.document.revoked_before ?? null,
    revocation_rules: size,
    revocations_newest: size === 0 ? null : toRfc3339(new Date(newestCreatedAt * 1000)),
    keys: [...own, ...trusted],
  }
}

/** Every key of a loaded keyset at `now`, in document order: the one view of a key's state. */
export function keyRows(keyset: LoadedKeyset, now: number): KeyRow[] {
  return keyset.document.keys.map((entry) => {
    const key = keyset.keys.get(entry.kid)!
    return {
      kid: entry.kid,
      alg: entry.alg,
      status: key.status,
      created_at: entry.created_at,
      age_seconds: Math.max(0, Math.floor((now - key.createdAt) / 1000)),
      not_after: entry.not_after ?? null,
      verifies: key.notAfter === undefined || now < key.notAfter,
    }
  })
}
