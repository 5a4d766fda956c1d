import YAML from 'yaml'

/**
 * Time compressed for the end-to-end alert tests: one second of the test stands for a minute
 * of production (5m → 5s, 1h → 60s). Thresholds are never changed, only durations.
 */
export const TIME_COMPRESSION = 60

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800, y: 31_536_000 }

/** A Prometheus duration (`5m`, `24h`) divided by TIME_COMPRESSION, at least `1s`. */
export function compress(duration: string): string {
  const m = /^(\d+)([smhdwy])$/.exec(duration)
  if (!m) throw new Error(`cannot compress the duration "${duration}"`)
  return `${Math.max(1, Math.round((Number(m[1]) * UNITS[m[2]!]!) / TIME_COMPRESSION))}s`
}

/**
 * The shipped rules with `for:` and the range and offset windows of every expression divided
 * by TIME_COMPRESSION. Names, thresholds, labels and annotations are untouched.
 */
export function compressedRules(source: string): string {
  const doc = YAML.parse(source) as { groups: Array<{ rules: Array<{ expr: string; for?: string }> }> }
  for (const group of doc.groups) {
    for (const rule of group.rules) {
      rule.expr = rule.expr
        .replace(/\[([^\]]+)\]/g, (_, d: string) => `[${compress(d)}]`)
        .replace(/\boffset\s+(\S+?)(?=[\s)]|$)/g, (_, d: string) => `offset ${compress(d)}`)
      if (rule.for) rule.for = compress(rule.for)
    }
  }
  return YAML.stringify(doc)
}

interface AlertmanagerRoute {
  group_wait?: string
  group_interval?: string
  repeat_interval?: string
  routes?: AlertmanagerRoute[]
}

/**
 * An Alertmanager configuration with the timings of every route (group_wait, group_interval,
 * repeat_interval) divided by TIME_COMPRESSION, as the rules' `for:` are: the order in which a
 * cause and its symptoms reach a receiver stays the shipped one. `receiverUrl` replaces each
 * webhook receiver's URL (given the receiver's name). Routes, matchers and inhibitions are
 * untouched.
 */
export function compressedAlertmanagerConfig(source: string, receiverUrl: (receiver: string) => string): string {
  const doc = YAML.parse(source) as {
    route: AlertmanagerRoute
    receivers: Array<{ name: string; webhook_configs?: Array<{ url: string }> }>
  }
  const walk = (route: AlertmanagerRoute) => {
    for (const key of ['group_wait', 'group_interval', 'repeat_interval'] as const) if (route[key]) route[key] = compress(route[key])
    for (const child of route.routes ?? []) walk(child)
  }
  walk(doc.route)
  for (const receiver of doc.receivers) for (const webhook of receiver.webhook_configs ?? []) webhook.url = receiverUrl(receiver.name)
  return YAML.stringify(doc)
}
