/** The fraction of a second of an RFC 3339 time (`…:00.0009Z` → `0009`). */
const FRACTION = /:\d{2}\.(\d+)/

/**
 * Milliseconds since the epoch of an RFC 3339 time, never earlier than the time written.
 * `Date.parse` keeps three digits of a fraction and drops the rest, so `…:00.0009Z` reads as
 * `…:00Z`: as a revocation boundary ("issued before"), a token whose `iat` is `…:00`, issued
 * before it, would pass. A time with non-zero digits past the millisecond is taken up to the
 * next millisecond instead, so an `iat` (whole seconds, or a fraction no finer than a
 * millisecond) earlier than the written time stays earlier. NaN where `Date.parse` is NaN.
 */
export function rfc3339CeilMs(text: string): number {
  const ms = Date.parse(text)
  const beyondMs = FRACTION.exec(text)?.[1]?.slice(3) ?? ''
  return /[1-9]/.test(beyondMs) ? ms + 1 : ms
}
