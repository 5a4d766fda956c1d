import { RefusedError, UsageError } from '../../lib/errors.js'
import { KEY_STATUSES, type KeyStatus } from '../../lib/keyset/document.js'
import { printable } from '../../lib/logging/sanitize.js'
import { METRIC_NAMES } from '../../lib/metrics/names.js'
import { loggableKid } from '../../lib/verifier/claims.js'
import type { FleetSource, FleetView, ReplicaState } from './fleet.js'
import { fleetUrl } from './fleet-url.js'
import { getText } from './http-get.js'

export interface PrometheusFleetOptions {
  /** Base URL of the Prometheus HTTP API, e.g. `http://prometheus.monitoring:9090` (a path prefix is kept). */
  url: string
  /**
   * PromQL label matchers naming the service's targets; several (one per namespace that
   * verifies, say) are combined: every target any of them matches is a replica, and each must
   * match at least one target. @default 'job="cbc-jwt"'
   */
  selector?: string | readonly string[]
  /** Per request. @default 5000 */
  timeoutMs?: number
}

export const DEFAULT_SELECTOR = 'job="cbc-jwt"'
/** A fleet's worth of series; far more is not an answer to these queries. */
const MAX_ANSWER_BYTES = 16 * 1024 * 1024
const TARGET_ONLY = new Set(['__name__'])
const KEY_LABELS = new Set(['__name__', 'issuer', 'kid', 'alg', 'status'])

interface VectorSample {
  metric: Record<string, string>
  value: number
}

/**
 * The fleet as Prometheus sees it: every target of `up{selector}` (of any selector) is a replica, reachable
 * when `up` is 1; its keys are its `cbc_jwt_key_info` series, its revocation
 * `cbc_jwt_revoked_before_timestamp_seconds`, its newest revocation rule
 * `cbc_jwt_revocations_newest_timestamp_seconds`. A target is matched to its series by its
 * target labels (everything Prometheus attached, i.e. the series' labels minus the metric's own).
 *
 * @example
 * const view = await createPrometheusFleet({ url: 'http://localhost:9090', selector: ['job="cbc-jwt",namespace="cbc"', 'job="cbc-jwt",namespace="orders"'] }).read()
 */
export function createPrometheusFleet(opts: PrometheusFleetOptions): FleetSource {
  const given = opts.selector === undefined ? [DEFAULT_SELECTOR] : typeof opts.selector === 'string' ? [opts.selector] : [...opts.selector]
  const selectors = [...new Set(given.map((s) => s.trim()))]
  for (const selector of selectors) {
    if (selector === '' || /[{}]/.test(selector)) {
      throw new UsageError(
        `--selector must be PromQL label matchers without braces, like job="cbc-jwt",namespace="cbc" (got "${printable(selector, { max: 200 })}")`,
      )
    }
  }
  if (selectors.length === 0) throw new UsageError('--selector needs at least one set of label matchers')
  const base = fleetUrl('--prometheus', opts.url.endsWith('/') ? opts.url : `${opts.url}/`, 'http://prometheus:9090')
  const timeoutMs = opts.timeoutMs ?? 5000
  const server = `Prometheus ${base.href.replace(/\/$/, '')}`
  const description = `${server} ${selectors.map((s) => `{${s}}`).join(' + ')}`

  async function query(promql: string, selector: string, deadline: number): Promise<VectorSample[]> {
    const url = new URL('api/v1/query', base)
    url.searchParams.set('query', promql)
    const res = await getText(url, { timeoutMs: deadline, maxBytes: MAX_ANSWER_BYTES })
    if (!res.ok) throw new RefusedError(`cannot ask ${description}: ${res.error}; nothing can be known about the replicas`)
    let body: unknown
    try {
      body = JSON.parse(res.text)
    } catch {
      body = undefined
    }
    const envelope = body as { status?: unknown; errorType?: unknown; error?: unknown; data?: { resultType?: unknown; result?: unknown } }
    if (envelope?.status === 'error' && envelope.errorType === 'bad_data') {
      const why = typeof envelope.error === 'string' ? printable(envelope.error) : 'no message'
      throw new UsageError(`Prometheus rejected the query for --selector ${selector}: ${why}`)
    }
    if (res.status !== 200 || envelope?.status !== 'success' || envelope.data?.resultType !== 'vector' || !Array.isArray(envelope.data.result)) {
      throw new RefusedError(`${description} answered HTTP ${res.status} without a query result; nothing can be known about the replicas`)
    }
    // Labels are foreign text (any target or relabeling made them) shown in refusals, their names
    // too (a target without pod or instance is named by all of them): escaped here, once; a kid of
    // the keyset and a target's address are unchanged. Label and sample values are text in every
    // Prometheus answer: anything else is never turned into text (an object without a callable
    // toString, or an array nested deep, throws).
    return envelope.data.result.flatMap((r: unknown) => {
      if (typeof r !== 'object' || r === null) return []
      const s = r as { metric?: unknown; value?: unknown }
      if (typeof s.metric !== 'object' || s.metric === null || !Array.isArray(s.value)) return []
      const labels = Object.entries(s.metric)
      if (!labels.every(([, v]) => typeof v === 'string')) return []
      const metric = Object.fromEntries(labels.map(([k, v]) => [printable(k), printable(v as string)]))
      return [{ metric, value: typeof s.value[1] === 'string' ? Number(s.value[1]) : Number.NaN }]
    })
  }

  return {
    description,
    async read(o = {}): Promise<FleetView> {
      const deadline = Math.min(timeoutMs, o.timeoutMs ?? timeoutMs)
      // Each selector on its own, so that one matching nothing (a namespace misspelt, or not
      // scraped) refuses instead of shrinking the fleet; a target two selectors match is one replica.
      const answers = await Promise.all(
        selectors.map(async (selector) => {
          const [up, info, revoked, rules] = await Promise.all([
            query(`up{${selector}}`, selector, deadline),
            query(`${METRIC_NAMES.keyInfo}{${selector}}`, selector, deadline),
            query(`${METRIC_NAMES.revokedBefore}{${selector}}`, selector, deadline),
            query(`${METRIC_NAMES.revocationsNewest}{${selector}}`, selector, deadline),
          ])
          if (up.length === 0) {
            throw new RefusedError(`${server} {${selector}}: the selector matches no scraped target, so no replica can be seen`)
          }
          return { up, info, revoked, rules }
        }),
      )
      const up = answers.flatMap((a) => a.up)
      const info = answers.flatMap((a) => a.info)
      const revoked = answers.flatMap((a) => a.revoked)
      const rules = answers.flatMap((a) => a.rules)
      const replicas = new Map<string, ReplicaState & { keys: Map<string, KeyStatus> }>()
      for (const t of up) {
        const id = targetId(t.metric, TARGET_ONLY)
        // Label values arrive escaped (query): a name made of them reaches a terminal as it is.
        const name = t.metric.pod ? `${t.metric.pod} (${t.metric.instance ?? '?'})` : (t.metric.instance ?? id)
        const reachable = t.value === 1
        replicas.set(id, { name, reachable, ...(reachable ? {} : { problem: 'down: Prometheus cannot scrape it' }), keys: new Map(), revokedBefore: undefined })
      }
      for (const s of info) {
        const r = replicas.get(targetId(s.metric, KEY_LABELS))
        const status = s.metric.status as KeyStatus
        const kid = loggableKid(s.metric.kid)
        if (r?.reachable && s.value === 1 && kid !== undefined && KEY_STATUSES.includes(status)) r.keys.set(kid, status)
      }
      for (const s of revoked) {
        const r = replicas.get(targetId(s.metric, TARGET_ONLY))
        if (r?.reachable && Number.isFinite(s.value)) r.revokedBefore = s.value
      }
      for (const s of rules) {
        const r = replicas.get(targetId(s.metric, TARGET_ONLY))
        if (r?.reachable && Number.isFinite(s.value)) r.revocationsNewest = s.value
      }
      return { source: description, replicas: [...replicas.values()].sort((a, b) => a.name.localeCompare(b.name)) }
    },
  }
}

/** The target's identity: its labels without the metric's own, in a stable order. */
function targetId(labels: Record<string, string>, drop: ReadonlySet<string>): string {
  return JSON.stringify(
    Object.entries(labels)
      .filter(([k]) => !drop.has(k))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  )
}
