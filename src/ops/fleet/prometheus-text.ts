import { printable } from '../../lib/logging/sanitize.js'

/** One sample of the Prometheus text exposition format. */
export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/**
 * One `name="value"` of a label set, read where the previous one ended (sticky) until one does not
 * parse. Searched for anywhere instead, a label set of letters without `=` cost each position a
 * scan to its end: quadratic in a page whose size the answering server chooses.
 */
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/y

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
    const set = m[2] ?? ''
    LABEL.lastIndex = 0
    for (let kv = LABEL.exec(set); kv !== null; kv = LABEL.exec(set)) {
      labels[kv[1]!] = printable(kv[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c)))
    }
    const raw = m[3]!
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw)
    samples.push({ name: m[1]!, labels, value })
  }
  return samples
}
