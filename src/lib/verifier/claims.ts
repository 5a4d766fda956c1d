import { MAX_REVOCATION_VALUE_CHARS } from '../keyset/document.js'
import { printable } from '../logging/sanitize.js'

/** The registered and service claims the verifier reads; any other claim is passed through. */
export interface JwtClaims {
  iss?: unknown
  aud?: unknown
  sub?: unknown
  exp: number
  iat: number
  nbf?: unknown
  client_id?: unknown
  azp?: unknown
  scope?: unknown
  jti?: unknown
  [claim: string]: unknown
}

const KID_GRAMMAR = /^[A-Za-z0-9._:-]{1,128}$/
const CLIENT_ID_SAFE = /^[\x21-\x7e]{1,128}$/

/**
 * A kid fit for a log line: it matches the keyset's kid grammar (bounded, printable), or it is
 * dropped. A forged 10 000-character or control-character kid never reaches a log.
 */
export function loggableKid(kid: unknown): string | undefined {
  return typeof kid === 'string' && KID_GRAMMAR.test(kid) ? kid : undefined
}

/**
 * The kid grammar of a trusted issuer's keys: printable ASCII without `"`, `\` or space, at most
 * 128 characters. Wider than the keyset's: identity providers name keys in base64 (`+`, `/`, `=`:
 * AWS Cognito), and such a kid is still safe as a metric label or a log field. A published key
 * whose kid does not match it is not loaded (jwks-document.ts).
 */
export const ISSUER_KID_GRAMMAR = /^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/

/** A kid of a token routed to a trusted issuer, fit for a log line and an unknown-kid re-read: its issuer's grammar, or dropped. */
export function loggableIssuerKid(kid: unknown): string | undefined {
  return typeof kid === 'string' && ISSUER_KID_GRAMMAR.test(kid) ? kid : undefined
}

/** The claims a token's client id is read from, in order. */
export type ClientIdClaim = 'client_id' | 'azp' | 'sub'
const CLIENT_ID_CLAIMS: readonly ClientIdClaim[] = ['client_id', 'azp', 'sub']

/**
 * Which claim names the client a token belongs to: `client_id`, else `azp`, else `sub` (the
 * first that is a string). A revocation rule by client reads `client_id` and `azp` only, so a
 * log line says when the id is the `sub` (`client_id_claim`): cutting that one off takes
 * `revoke --subject`.
 */
export function clientIdClaim(claims: JwtClaims): ClientIdClaim | undefined {
  return CLIENT_ID_CLAIMS.find((name) => typeof claims[name] === 'string')
}

/**
 * The client a token belongs to, for logs: `client_id`, else `azp`, else `sub` — only from a
 * token whose signature verified, and only when it is short printable ASCII.
 */
export function loggableClientId(claims: JwtClaims): string | undefined {
  const claim = clientIdClaim(claims)
  const value = claim === undefined ? undefined : (claims[claim] as string)
  return value !== undefined && CLIENT_ID_SAFE.test(value) ? value : undefined
}

const JTI_SAFE = new RegExp(`^[\\x21-\\x7e]{1,${MAX_REVOCATION_VALUE_CHARS}}$`)

/**
 * A token's id (`jti`) fit for a log line, so that a token seen in the success log can be revoked
 * by it (`cbc-jwt revoke --jti`): printable ASCII, at most as long as a revocation rule's id;
 * anything else is left out.
 */
export function loggableJti(claims: JwtClaims): string | undefined {
  return typeof claims.jti === 'string' && JTI_SAFE.test(claims.jti) ? claims.jti : undefined
}

/** At most this many `aud` elements are logged, each at most `AUDIENCE_CHARS` (escaped) characters. */
const AUDIENCE_ELEMENTS = 8
const AUDIENCE_CHARS = 128

/**
 * A token's `aud` fit for a log line, so that a wrong-audience rejection says what was received:
 * a string, or an array of at most 8 strings, each escaped (nothing outside printable ASCII
 * reaches the line) and bounded; an element that is not a string is shown by its type, further
 * elements by their number. Undefined when the token has no `aud`.
 */
export function loggableAudience(aud: unknown): string | string[] | undefined {
  if (aud === undefined) return undefined
  if (typeof aud === 'string') return printable(aud, { max: AUDIENCE_CHARS })
  if (!Array.isArray(aud)) return `(${aud === null ? 'null' : typeof aud})`
  const shown = aud
    .slice(0, AUDIENCE_ELEMENTS)
    .map((e: unknown) => (typeof e === 'string' ? printable(e, { max: AUDIENCE_CHARS }) : `(${e === null ? 'null' : typeof e})`))
  if (aud.length > AUDIENCE_ELEMENTS) shown.push(`...(${aud.length - AUDIENCE_ELEMENTS} more)`)
  return shown
}
