import type { IncomingHttpHeaders } from 'node:http'

/**
 * The shortest background refresh an issuer's `Cache-Control` can ask for. Keycloak sends
 * `no-cache` on its certificates and Auth0 `max-age=15`: honoured as written, every replica
 * would read the JWK Set every few seconds. A minute keeps a withdrawn key's life short
 * without turning a fleet into load on the identity provider.
 */
export const MIN_REFRESH_SECONDS = 60

/** Longer than any real directive; a longer header is ignored rather than parsed. */
const MAX_HEADER_CHARS = 1024

/**
 * How long a response may be used, in seconds, from its `Cache-Control` and `Age` headers
 * (RFC 9111 §4.2: `max-age` less the age it already has; `no-store` and `no-cache` mean 0).
 * Undefined when the response says nothing usable: a missing, oversized or malformed header,
 * or `max-age` given twice (§4.2.1: a conflicting directive is not trusted).
 */
export function freshnessSeconds(headers: IncomingHttpHeaders): number | undefined {
  const cacheControl = headers['cache-control']
  if (typeof cacheControl !== 'string' || cacheControl.length > MAX_HEADER_CHARS) return undefined
  let maxAge: number | undefined
  let seen = 0
  for (const directive of cacheControl.toLowerCase().split(',')) {
    const [name, value] = directive.trim().split('=', 2) as [string, string | undefined]
    if (name === 'no-store' || name === 'no-cache') return 0
    if (name !== 'max-age') continue
    seen += 1
    maxAge = value !== undefined && /^"?\d{1,10}"?$/.test(value) ? Number(value.replaceAll('"', '')) : undefined
  }
  if (seen !== 1 || maxAge === undefined) return undefined
  const ageHeader = headers.age
  const age = typeof ageHeader === 'string' && /^\d{1,10}$/.test(ageHeader) ? Number(ageHeader) : 0
  return Math.max(0, maxAge - age)
}

/**
 * When to read an issuer's JWK Set again: its configured interval, or sooner when the issuer
 * said its document goes stale sooner — never sooner than `MIN_REFRESH_SECONDS` (unless the
 * configured interval itself is shorter). A longer `max-age` never stretches the interval: the
 * operator's setting is the longest a withdrawn key can stay in force. After a failed read nothing
 * is fresh (`freshness` 0): the next comes at the floor. The keyring schedules its own interval
 * read by the same rule.
 */
export function nextRefreshSeconds(intervalSeconds: number, freshness: number | undefined): number {
  if (freshness === undefined) return intervalSeconds
  return Math.min(intervalSeconds, Math.max(MIN_REFRESH_SECONDS, freshness))
}
