import { printable } from '../../lib/logging/sanitize.js'

/** One sample of the Prometheus text exposition format. */
export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/**
 * Reads the samples of a Prometheus text exposition (format 0.0.4): enough for
 * `verify-rotation`, which looks at a handful of cbc_jwt_* series. Comments, HELP and TYPE
 * lines are skipped; label values are unescaped, then made `printable`: they come from whatever
 * answers on the URL, and are shown on a terminal (a kid of the keyset is unchanged).
 */
export function parseSamples(text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line)
    if (!m) continue
    const labels: Record<string, string> = {}
    for (const kv of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[kv[1]!] = printable(kv[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c)))
    }
    const raw = m[3]!
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw)
    samples.push({ name: m[1]!, labels, value })
  }
  return samples
}
