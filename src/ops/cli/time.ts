/** RFC 3339 date-time: `2026-11-25T21:16:00Z`, `2026-11-25T22:16:00.5+01:00`. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/

/** ms since the epoch of an RFC 3339 time (or `now` when allowed), else `undefined`. */
export function parseTime(text: string, nowMs: number, { allowNow = true } = {}): number | undefined {
  const t = text.trim()
  if (allowNow && t === 'now') return nowMs
  if (!RFC3339.test(t)) return undefined
  const ms = Date.parse(t.replace(' ', 'T'))
  return Number.isNaN(ms) ? undefined : ms
}
