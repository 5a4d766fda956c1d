import { METRIC_NAMES } from '../../lib/metrics/names.js'
import { formatDuration } from '../../lib/duration.js'
import { printable } from '../../lib/logging/sanitize.js'
import type { CheckItem } from './checklist.js'
import { getText, type GetResult } from './http-get.js'
import { parseSamples, type Sample } from './prometheus-text.js'

const REQUEST_TIMEOUT_MS = 5000
/** A /metrics page of a replica with 50 keys is ≈ 20 KiB; this bounds a wrong URL's answer. */
const MAX_ANSWER_BYTES = 8 * 1024 * 1024

export interface ChecklistOptions {
  /** Base URL of one instance, without a trailing slash. */
  base: string
  previousKids: readonly string[]
  legacyToken: string | undefined
  maxAgeMs: number
  /** Compromise mode: previous kids must no longer verify and the legacy token must be rejected. */
  compromised?: boolean
}

/**
 * The runbook's "Verification Checklist After Rotation" against one instance (its /metrics,
 * /v1/keys and, with a legacy token, /v1/whoami), as `cbc-jwt verify-rotation --url` runs it.
 * One pass; never throws — an unreachable instance fails the items. Whatever answers on the URL
 * is foreign (a failed port-forward leaves another process there): every kid, reason and label
 * value it sends is escaped with `printable` (the parsers do it for /metrics) before it is
 * compared or shown.
 */
export async function runInstanceChecklist(o: ChecklistOptions): Promise<CheckItem[]> {
  const [metrics, keys, whoami] = await Promise.all([
    get(`${o.base}/metrics`),
    get(`${o.base}/v1/keys`),
    o.legacyToken === undefined ? undefined : get(`${o.base}/v1/whoami`, { authorization: `Bearer ${o.legacyToken}` }),
  ])
  const samples = metrics.ok && metrics.status === 200 ? parseSamples(metrics.text) : undefined
  const metricsProblem = samples ? '' : `cannot read /metrics: ${metrics.ok ? `HTTP ${metrics.status}` : metrics.error}`
  const fail = (name: string, detail: string): CheckItem => ({ name, result: 'fail', detail })
  const pass = (name: string, detail: string): CheckItem => ({ name, result: 'pass', detail })
  const items: CheckItem[] = []

  // 1. a new kid on the age gauge, age close to 0
  {
    const name = 'active key'
    const series = samples?.filter((s) => s.name === METRIC_NAMES.activeKeyAge)
    if (!series) items.push(fail(name, metricsProblem))
    else if (series.length !== 1) items.push(fail(name, `${series.length} ${METRIC_NAMES.activeKeyAge} series, expected exactly 1`))
    else {
      const kid = series[0]!.labels.kid ?? '(no kid label)'
      const age = series[0]!.value * 1000
      const seen = `kid ${kid}${o.previousKids.length > 0 ? ` (previous ${o.previousKids.join(', ')})` : ''}, age ${formatDuration(age)}`
      if (o.previousKids.includes(kid)) items.push(fail(name, `${seen}: still the previous kid, the rotation is not loaded`))
      else if (!(age <= o.maxAgeMs)) {
        items.push(
          fail(
            name,
            `${seen} > ${formatDuration(o.maxAgeMs)}: not a fresh key (after a two-phase or CronJob promotion the key is as old as its --stage: pass --max-age covering that)`,
          ),
        )
      } else items.push(pass(name, `${seen} <= ${formatDuration(o.maxAgeMs)}`))
    }
  }

  // 2. keys loaded = verifying keys listed
  {
    const name = 'keys loaded'
    const loaded = samples ? single(samples, METRIC_NAMES.keysLoaded) : undefined
    const listed = keys.ok && keys.status === 200 ? verifyingKids(keys.text) : undefined
    if (!samples) items.push(fail(name, metricsProblem))
    else if (loaded === undefined) items.push(fail(name, `${METRIC_NAMES.keysLoaded} missing from /metrics`))
    else if (!listed) items.push(fail(name, `cannot read /v1/keys: ${keys.ok ? `HTTP ${keys.status}` : keys.error}`))
    else {
      const seen = `${METRIC_NAMES.keysLoaded} ${loaded}, verifying keys in /v1/keys ${listed.length} (${listed.join(', ')})`
      const stillThere = o.previousKids.filter((k) => listed.includes(k))
      const gone = o.previousKids.filter((k) => !listed.includes(k))
      if (loaded !== listed.length) items.push(fail(name, `${seen}: they differ`))
      else if (o.compromised && stillThere.length > 0) items.push(fail(name, `${seen}: ${stillThere.join(', ')} still verifies after an emergency rotation`))
      else if (!o.compromised && o.previousKids.length > 0 && loaded < 2)
        items.push(fail(name, `${seen}: expected at least 2 (new and previous) after a rotation`))
      else if (!o.compromised && gone.length > 0) items.push(fail(name, `${seen}: the previous kid ${gone.join(', ')} no longer verifies`))
      else items.push(pass(name, seen))
    }
  }

  // 3. legacy tokens keep validating
  {
    const name = 'legacy token'
    if (!whoami) items.push({ name, result: 'skip', detail: 'skipped (no --legacy-token)' })
    else if (!whoami.ok) items.push(fail(name, `cannot call /v1/whoami: ${whoami.error}`))
    else if (o.compromised) {
      if (legacyTokenCutOff(whoami))
        items.push(pass(name, `/v1/whoami answered 401${reasonOf(whoami.text)}: rejected, as it must be after an emergency rotation`))
      else items.push(fail(name, `/v1/whoami answered ${whoami.status}${reasonOf(whoami.text)}${kidOf(whoami.text)}: ${LEGACY_CUT_OFF}`))
    } else if (whoami.status === 200) items.push(pass(name, `/v1/whoami answered 200${kidOf(whoami.text)}`))
    else items.push(fail(name, `/v1/whoami answered ${whoami.status}${reasonOf(whoami.text)}`))
  }

  // 4. no backend errors
  {
    const name = 'backend errors'
    const series = samples?.filter((s) => s.name === METRIC_NAMES.backendErrors)
    if (!series) items.push(fail(name, metricsProblem))
    else if (series.length === 0) items.push(fail(name, `${METRIC_NAMES.backendErrors} missing from /metrics`))
    else {
      const total = series.reduce((sum, s) => sum + s.value, 0)
      const nonZero = series.filter((s) => s.value > 0).map((s) => `${s.labels.reason ?? 'total'}=${s.value}`)
      const seen = `${METRIC_NAMES.backendErrors} ${total} (${nonZero.join(', ')})`
      // The counter only grows: after an earlier incident, "remains 0" can only mean "no
      // failing reads now". The server's Date header is its clock: no skew with ours.
      const lastSuccess = single(samples!, METRIC_NAMES.lastSuccess)
      const interval = single(samples!, METRIC_NAMES.refreshInterval)
      const serverNow = metrics.ok ? Date.parse(metrics.date ?? '') / 1000 : Number.NaN
      const sinceRead = serverNow - (lastSuccess ?? 0)
      if (total === 0) items.push(pass(name, `${METRIC_NAMES.backendErrors} 0`))
      else if (lastSuccess && interval && sinceRead <= 2 * interval + 2) {
        items.push(pass(name, `${seen} from before; the last keyset read succeeded ${Math.max(0, Math.round(sinceRead))}s ago: not failing now`))
      } else items.push(fail(name, `${seen}${lastSuccess ? `; the last successful read was ${Math.round(sinceRead)}s ago` : '; no successful read yet'}`))
    }
  }

  // 5. the instance counted the rotation
  {
    const name = 'rotations'
    if (o.previousKids.length === 0) items.push({ name, result: 'skip', detail: 'skipped (no --previous-kid)' })
    else if (!samples) items.push(fail(name, metricsProblem))
    else {
      const count = single(samples, METRIC_NAMES.rotations)
      if (count === undefined) items.push(fail(name, `${METRIC_NAMES.rotations} missing from /metrics`))
      else if (count >= 1) items.push(pass(name, `${METRIC_NAMES.rotations} ${count} >= 1`))
      else {
        // 0 is no miss when the instance already signs with a new key: it started (or
        // restarted) after the promotion, and a process's first load is not a rotation.
        const kids = samples.filter((s) => s.name === METRIC_NAMES.activeKeyAge).map((s) => s.labels.kid)
        const current = kids.length === 1 ? kids[0] : undefined
        if (current !== undefined && !o.previousKids.includes(current)) {
          items.push(pass(name, `${METRIC_NAMES.rotations} 0, current ${current}: this instance started after the rotation (a first load is not a rotation)`))
        } else items.push(fail(name, `${METRIC_NAMES.rotations} ${count}: this instance has not seen a rotation`))
      }
    }
  }
  return items
}

/** One GET of the checklist: never throws, follows no redirect, gives up after 5 s. */
export function get(url: string, headers: Record<string, string> = {}): Promise<GetResult> {
  return getText(new URL(url), { timeoutMs: REQUEST_TIMEOUT_MS, maxBytes: MAX_ANSWER_BYTES, headers })
}

function single(samples: Sample[], name: string): number | undefined {
  return samples.find((s) => s.name === name)?.value
}

function verifyingKids(body: string): string[] | undefined {
  try {
    const doc = JSON.parse(body) as { issuer?: unknown; keys?: Array<{ issuer?: unknown; kid?: unknown; verifies?: unknown; not_after?: unknown }> }
    if (!Array.isArray(doc.keys)) return undefined
    return (
      doc.keys
        // The keyset's keys only: trusted issuers' keys are not counted in cbc_jwt_keys_loaded.
        .filter((k) => k.issuer === undefined || k.issuer === doc.issuer)
        .filter((k) => (typeof k.verifies === 'boolean' ? k.verifies : k.not_after == null || Date.parse(String(k.not_after)) > Date.now()))
        .map((k) => printable(String(k.kid)))
    )
  } catch {
    return undefined
  }
}

/** A member of an instance's JSON answer; undefined when the answer is not a JSON object. */
function answerField(body: string, name: 'kid' | 'reason'): unknown {
  try {
    return (JSON.parse(body) as Record<string, unknown> | null)?.[name]
  } catch {
    return undefined
  }
}

function kidOf(body: string): string {
  const kid = answerField(body, 'kid')
  return typeof kid === 'string' ? ` (kid ${printable(kid)})` : ''
}

/**
 * After an emergency rotation, the legacy token's answer shows the leaked key cut off only when
 * it is rejected for what the rotation did: its kid no longer verifies, or it is revoked. A
 * token rejected for anything else (mistyped, expired, another audience) shows nothing.
 */
export function legacyTokenCutOff(answer: { status: number; text: string }): boolean {
  if (answer.status !== 401) return false
  const reason = answerField(answer.text, 'reason')
  return reason === 'unknown_kid' || reason === 'revoked'
}

/** What `legacyTokenCutOff` asks for, for a failed checklist item. */
export const LEGACY_CUT_OFF =
  'after an emergency rotation the legacy token must be rejected 401 as unknown_kid or revoked (any other answer does not show the old key cut off: check --legacy-token)'

export function reasonOf(body: string): string {
  const reason = answerField(body, 'reason')
  return typeof reason === 'string' ? ` (reason ${printable(reason)})` : ''
}
