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
 * The client a token belongs to, for logs: `client_id`, else `azp`, else `sub` — only from a
 * token whose signature verified, and only when it is short printable ASCII.
 */
export function loggableClientId(claims: JwtClaims): string | undefined {
  for (const value of [claims.client_id, claims.azp, claims.sub]) {
    if (typeof value === 'string') return CLIENT_ID_SAFE.test(value) ? value : undefined
  }
  return undefined
}
