/**
 * The credential of a request, from its `Authorization` header(s) (RFC 6750 §2.1, RFC 7235).
 * The rules, decided once for every adapter:
 *
 * - no header (`undefined`, or `null` from the Fetch API's `Headers.get()`), or an empty one → `missing`;
 * - another scheme (`Basic …`, `Digest …`) → `missing`: no bearer credential was presented
 *   (RFC 6750 §3.1: a request without authentication information gets no error code);
 * - the scheme is matched case-insensitively (`bearer`, `BEARER`);
 * - `Bearer` without a token, or with more than one (`Bearer a b`) → `malformed`;
 * - more than one `Authorization` header → `malformed`, never one of them picked: two proxies
 *   that pick differently (first vs last) would authorise one request as two identities.
 *
 * The token itself (size, then the JWS compact alphabet and shape) is the verifier's to judge.
 */
export type BearerCredential = { token: string } | { reason: 'missing' | 'malformed' }

/**
 * A header value as Node and the frameworks give it: a string, several, or none — `undefined`,
 * or `null` as the Fetch API's `Headers.get()` says it.
 */
export type AuthorizationHeader = string | readonly string[] | null | undefined

const MISSING = { reason: 'missing' } as const
const MALFORMED = { reason: 'malformed' } as const

export function bearerCredential(header: AuthorizationHeader): BearerCredential {
  let value: string | undefined
  if (typeof header === 'string') value = header
  else if (header !== undefined && header !== null) {
    if (header.length > 1) return MALFORMED
    value = header[0]
  }
  if (value === undefined) return MISSING
  // Leading and trailing whitespace is not part of a field value (RFC 9110 §5.5).
  const trimmed = value.trim()
  if (trimmed === '') return MISSING
  // indexOf rather than a regular expression: this runs on every request, over the whole token.
  const space = firstBlank(trimmed, 0)
  const scheme = space === -1 ? trimmed : trimmed.slice(0, space)
  if (scheme.length !== 6 || scheme.toLowerCase() !== 'bearer') return MISSING
  if (space === -1) return MALFORMED
  let start = space + 1
  while (trimmed.charCodeAt(start) === 0x20 || trimmed.charCodeAt(start) === 0x09) start++
  // Trimmed, so a blank after `start` is one inside the credential: `Bearer a b`.
  if (firstBlank(trimmed, start) !== -1) return MALFORMED
  return { token: trimmed.slice(start) }
}

/** The first space or tab at or after `from`, or -1. */
function firstBlank(text: string, from: number): number {
  const space = text.indexOf(' ', from)
  const tab = text.indexOf('\t', from)
  return space === -1 ? tab : tab === -1 ? space : Math.min(space, tab)
}

/**
 * `rawHeaders` entries Node's HTTP parser keeps by default (`server.maxHeadersCount` unset: 1000
 * headers, name and value each; it stops between chunks of 32, so a few more may come). Past it,
 * the rest of the request's headers are dropped without a word.
 */
export const NODE_RAW_HEADERS_CAP = 2000

/** What a request whose headers Node may have cut answers: more than one value, so `malformed`. */
const UNKNOWN_COUNT: readonly string[] = Object.freeze(['', ''])

/**
 * Every `Authorization` value of a request, from Node's `rawHeaders` (name, value, name,
 * value, …). Node's parsed `headers` keep only the first `authorization` and drop the rest,
 * so a request carrying two would look like one carrying the first: adapters read the raw list.
 * A list that reaches Node's cap may have lost headers after it — a second `Authorization`
 * among them — so it answers as several values (`malformed`), never the ones it happens to hold.
 *
 * @returns undefined (none), the one value, or every value when there are several.
 */
export function authorizationFromRawHeaders(rawHeaders: readonly string[]): AuthorizationHeader {
  if (rawHeaders.length >= NODE_RAW_HEADERS_CAP) return UNKNOWN_COUNT
  let found: string | undefined
  let all: string[] | undefined
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!
    if (name.length !== 13 || name.toLowerCase() !== 'authorization') continue
    const value = rawHeaders[i + 1]!
    if (found === undefined) found = value
    else {
      all ??= [found]
      all.push(value)
    }
  }
  return all ?? found
}
