/**
 * Durations as operators write them: `90s`, `15m`, `24h`, `6d`, `1w`, `500ms`, combined
 * (`1h30m`) or fractional (`1.5h`). A bare `0` is zero. Units are required otherwise, so
 * `--grace 24` (hours? seconds?) is an error rather than a guess.
 */
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const

/**
 * Longer than any duration an operator means (a flag or a variable): added to now, a longer one
 * would leave the range of a date, and a timer cannot hold it.
 */
export const MAX_DURATION_MS = 100 * 365.25 * 86_400_000

const WHOLE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$/
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g

/** Milliseconds, or `undefined` when `text` is not a duration. */
export function parseDuration(text: string): number | undefined {
  const t = text.trim()
  if (t === '0') return 0
  if (!WHOLE.test(t)) return undefined
  let ms = 0
  for (const [, n, unit] of t.matchAll(PART)) ms += Number(n) * UNIT_MS[unit as keyof typeof UNIT_MS]
  return Number.isFinite(ms) ? Math.round(ms) : undefined
}

/** `93784000` → `1d2h`; at most two units, rounded down; `0s` for zero or less. */
export function formatDuration(ms: number): string {
  let s = Math.max(0, Math.floor(ms / 1000))
  if (s === 0) return ms > 0 ? `${Math.max(0, Math.floor(ms))}ms` : '0s'
  const parts: string[] = []
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    const n = Math.floor(s / size)
    s -= n * size
    if (n > 0 || parts.length > 0) parts.push(`${n}${unit}`)
    if (parts.length === 2) break
  }
  return parts.filter((p) => !p.startsWith('0')).join('') || '0s'
}
