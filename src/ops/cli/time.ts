import { rfc3339CeilMs } from '../../lib/keyset/rfc3339-ceil.js'

/** RFC 3339 date-time: `2026-11-25T21:16:00Z`, `2026-11-25T22:16:00.5+01:00`. */
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/

/**
 * ms since the epoch of an RFC 3339 time (or `now` when allowed), else `undefined`. Digits past the
 * millisecond round up, never down: `--issued-before …:00.0009Z` must still revoke an `iat` of `…:00`.
 */
export function parseTime(text: string, nowMs: number, { allowNow = true } = {}): number | undefined {
  const t = text.trim()
  if (allowNow && t === 'now') return nowMs
  const m = RFC3339.exec(t)
  if (!m) return undefined
  // Date.parse rolls a day the month lacks (02-30) or hour 24 over into the next day: refused.
  const [year, month, day, hour] = m.slice(1, 5).map(Number) as [number, number, number, number]
  if (day < 1 || day > new Date(Date.UTC(year, month, 0)).getUTCDate() || hour > 23) return undefined
  const ms = rfc3339CeilMs(t.replace(' ', 'T'))
  return Number.isNaN(ms) ? undefined : ms
}
