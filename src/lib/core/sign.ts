import crypto from 'node:crypto'
import { CbcJwtError, ERROR_CODES, RefusedError } from '../errors.js'
import type { LoadedKeyset } from '../keyset/load.js'
import { signingKeyOf } from '../keyset/projection.js'
import { formatDuration, parseDuration } from '../duration.js'
import { MAX_CLAIMS_DEPTH, nestsTooDeep } from '../verifier/claims-cost.js'
import { grantedScopes } from './scope.js'

/** Options of `cbc.sign()`. */
export interface SignOptions {
  /**
   * Lifetime: seconds, or a duration as the CLI takes it (`15m`, `1h30m`). At most the max
   * token TTL (`CBC_JWT_MAX_TOKEN_TTL`).
   * @default '15m'
   */
  ttl?: number | string | undefined
}

/** The one default token lifetime, for `cbc.sign()` and `cbc-jwt token issue`. */
export const DEFAULT_TTL_SECONDS = 15 * 60

/**
 * The one refusal of a lifetime over the max token TTL (code `ERR_REFUSED`): the rotation
 * grace is sized for the max, so a longer token could outlive its key's grace.
 */
export class TtlTooLongError extends RefusedError {}

/** Seconds of a `ttl` option; `TypeError`/`RangeError` naming the option when it is not one. */
export function ttlSeconds(ttl: number | string | undefined): number {
  if (ttl === undefined) return DEFAULT_TTL_SECONDS
  const seconds = typeof ttl === 'number' ? ttl : typeof ttl === 'string' ? (parseDuration(ttl) ?? Number.NaN) / 1000 : Number.NaN
  // A number as String() writes it: JSON.stringify would say null for NaN and Infinity.
  const given = typeof ttl === 'number' ? String(ttl) : JSON.stringify(ttl)
  if (Number.isNaN(seconds)) {
    // "900" reads as seconds to a person, not to the duration syntax the CLI shares: say what to write.
    const digits =
      typeof ttl === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(ttl) ? ` (a string of digits: give ${ttl.trim()} as a number, or "${ttl.trim()}s")` : ''
    throw new TypeError(`sign(): ttl must be seconds (a number) or a duration like "15m", got ${given}${digits}`)
  }
  if (!Number.isFinite(seconds)) throw new RangeError(`sign(): ttl must be a finite number of seconds, got ${given}`)
  if (!(seconds >= 1)) throw new RangeError(`sign(): ttl must be at least 1 second, got ${given}`)
  return Math.floor(seconds)
}

/** How messages name the lifetime and its limit; the CLI names its flags. */
export interface TtlNames {
  ttl: string
  maxTokenTtl: string
}

/**
 * Seconds of a `ttl` option within the max token TTL: the one check of a token's lifetime.
 * Over the max: `TtlTooLongError`; not a lifetime: `TypeError`/`RangeError`.
 */
export function checkedTtlSeconds(
  ttl: number | string | undefined,
  maxTokenTtlSeconds: number,
  names: TtlNames = { ttl: 'sign(): ttl', maxTokenTtl: 'CBC_JWT_MAX_TOKEN_TTL' },
): number {
  const seconds = ttlSeconds(ttl)
  if (seconds > maxTokenTtlSeconds) {
    // The lifetime as it was written (25h), and as the limit is written (1d1h) when they differ.
    const exact = exactDuration(seconds)
    const written = typeof ttl === 'string' && ttl !== exact ? `${ttl} (${exact})` : exact
    throw new TtlTooLongError(
      `${names.ttl} ${written} is longer than the max token TTL ${exactDuration(maxTokenTtlSeconds)}: the rotation grace would not cover it (raise ${names.maxTokenTtl} and the grace together)`,
    )
  }
  return seconds
}

/** `formatDuration` when it says exactly these seconds (it keeps two units), else `86401s`. */
function exactDuration(seconds: number): string {
  const text = formatDuration(seconds * 1000)
  return parseDuration(text) === seconds * 1000 ? text : `${seconds}s`
}

/**
 * Signs `claims` with the current key of `keyset`: header `alg` (the key's), `kid`, `typ`;
 * claims `iat`, `exp`, `jti`, and `iss`/`aud` unless the caller gave them.
 */
export async function signWith(
  keyset: LoadedKeyset | undefined,
  claims: Record<string, unknown>,
  options: SignOptions,
  settings: {
    issuer: string
    audience: string
    maxTokenTtlSeconds: number
    nowMs: number
    names?: TtlNames
  },
): Promise<string> {
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) throw new TypeError('sign(claims): claims must be an object')
  for (const name of ['iat', 'exp'] as const) {
    if (claims[name] !== undefined) throw new TypeError(`sign(claims): set the lifetime with the ttl option, not claims.${name}`)
  }
  // An array element holding a space would be one scope to requireScope and two to a gateway
  // reading X-Auth-Scope: such a claim is never signed.
  if (claims.scope !== undefined && grantedScopes(claims) === undefined) {
    throw new TypeError(
      `sign(claims): claims.scope must be RFC 6749 scope-tokens, a string separated by single spaces or an array of them (no spaces inside an element, no quotes), got ${JSON.stringify(claims.scope).slice(0, 200)}`,
    )
  }
  // The verifier answers deeper claims `malformed`: a token it would refuse is never signed.
  if (nestsTooDeep(claims)) throw new TypeError(`sign(claims): claims nest deeper than ${MAX_CLAIMS_DEPTH} levels (the claims object is the first)`)
  const ttl = checkedTtlSeconds(options.ttl, settings.maxTokenTtlSeconds, settings.names)
  if (!keyset) throw new CbcJwtError(ERROR_CODES.NOT_READY, 'sign(): no keyset loaded yet (wait for start() and ready())')
  const key = keyset.current
  const signingKey = signingKeyOf(key, settings.nowMs)
  // jose is loaded on the first signature only: a verifying API never pays for it.
  const { SignJWT } = await import('jose')
  const iat = Math.floor(settings.nowMs / 1000)
  // A claim set to undefined is not given (as for iat/exp above): it must not erase a default.
  const given = Object.fromEntries(Object.entries(claims).filter(([, value]) => value !== undefined))
  return new SignJWT({ jti: crypto.randomUUID(), iss: settings.issuer, aud: settings.audience, ...given })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
    .setIssuedAt(iat)
    .setExpirationTime(iat + ttl)
    .sign(signingKey)
}
