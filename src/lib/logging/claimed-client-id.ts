/** Longest payload segment decoded for a log line; a token is size-checked before this anyway. */
const MAX_PAYLOAD_CHARS = 4096
/** Longest claimed client id logged. */
export const MAX_CLAIMED_ID_CHARS = 64

/**
 * The client id a token *claims* (`client_id`, else `azp`, else `sub`), read for the
 * rejection log line only — never for a decision — from a token whose signature did not
 * verify. Anyone can claim any id: the log field is `client_id_unverified`. Sanitized to the
 * kid grammar plus `@` (every other character becomes `_`, so no control character, quote or
 * line break reaches a log or a terminal) and cut to 64 characters.
 *
 * @example
 * claimedClientId('eyJ….eyJjbGllbnRfaWQiOiJhY21lIn0.c2ln') // 'acme'
 */
export function claimedClientId(token: string): string | undefined {
  const dot1 = token.indexOf('.')
  const dot2 = dot1 < 0 ? -1 : token.indexOf('.', dot1 + 1)
  if (dot2 < 0 || dot2 - dot1 - 1 > MAX_PAYLOAD_CHARS) return undefined
  let claims: unknown
  try {
    claims = JSON.parse(Buffer.from(token.slice(dot1 + 1, dot2), 'base64url').toString('utf8'))
  } catch {
    return undefined
  }
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) return undefined
  const c = claims as Record<string, unknown>
  for (const value of [c.client_id, c.azp, c.sub]) {
    if (typeof value !== 'string') continue
    const clean = [...value]
      .slice(0, MAX_CLAIMED_ID_CHARS)
      .join('')
      .replace(/[^A-Za-z0-9._:@-]/g, '_')
    return clean === '' ? undefined : clean
  }
  return undefined
}
