/** A minimal reader of the Prometheus text exposition format, for assertions. */
export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

export interface Exposition {
  types: Record<string, string>
  samples: Sample[]
}

export function parseExposition(text: string): Exposition {
  const types: Record<string, string> = {}
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line)
    if (type) {
      types[type[1]!] = type[2]!
      continue
    }
    if (!line || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line)
    if (!m) continue
    const labels: Record<string, string> = {}
    for (const kv of (m[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[kv[1]!] = kv[2]!
    samples.push({ name: m[1]!, labels, value: Number(m[4]) })
  }
  return { types, samples }
}

/** All samples of one metric. */
export function series(expo: Exposition, name: string): Sample[] {
  return expo.samples.filter((s) => s.name === name)
}

/** The value of a metric's sample matching `labels` (all of them), or undefined. */
export function valueOf(expo: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  return series(expo, name).find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value
}
