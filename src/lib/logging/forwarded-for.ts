/** At most this many hops of an X-Forwarded-For chain are logged: the nearest ones. */
export const MAX_FORWARDED_HOPS = 10
const HOP = /^[0-9A-Fa-f.:[\]]{1,47}$/

/**
 * The `X-Forwarded-For` chain of a request, for the rejection log line — only when the
 * operator says a proxy in front is trusted (`CBC_JWT_TRUST_PROXY`); otherwise a client can
 * write any address there. Each hop must look like an address (IPv4, IPv6, optional port),
 * else it is logged as `invalid`; the last 10 hops are kept (the nearest, added by your own
 * proxies; the leftmost are whatever the client sent).
 *
 * @example
 * forwardedChain('203.0.113.7, 10.0.0.2') // ['203.0.113.7', '10.0.0.2']
 */
export function forwardedChain(header: string | readonly string[] | undefined): string[] | undefined {
  if (header === undefined) return undefined
  const joined = typeof header === 'string' ? header : header.join(',')
  // Read from the end: the nearest hops are the ones your proxies added, and whatever a client
  // writes before them (however long) neither hides them nor costs more than one pass.
  const hops: string[] = []
  let end = joined.length
  while (end > 0 && hops.length < MAX_FORWARDED_HOPS) {
    const comma = joined.lastIndexOf(',', end - 1)
    const hop = joined.slice(comma + 1, end).trim()
    if (hop !== '') hops.push(HOP.test(hop) ? hop : 'invalid')
    end = comma
  }
  return hops.length === 0 ? undefined : hops.reverse()
}
