import { setTimeout as sleep } from 'node:timers/promises'
import { CbcJwtError, UsageError } from '../../errors.js'
import { fleetChecklist, type CheckItem } from '../../fleet/checklist.js'
import type { FleetSource } from '../../fleet/fleet.js'
import { METRIC_NAMES } from '../../metrics/names.js'
import { formatDuration } from '../../rotation/duration.js'
import { durationFlag, parseCommandArgs } from '../args.js'
import { println, type CliContext } from '../context.js'
import { FLEET_HELP, FLEET_OPTIONS, fleetFromFlags } from '../fleet-flags.js'
import { parseSamples, type Sample } from '../prometheus-text.js'
import { parseTime } from '../time.js'
import type { Command } from './command.js'

const OPTIONS = {
  url: { type: 'string' },
  'previous-kid': { type: 'string', multiple: true },
  'legacy-token': { type: 'string' },
  compromised: { type: 'boolean' },
  'revoked-before': { type: 'string' },
  ...FLEET_OPTIONS,
  wait: { type: 'string' },
  'max-age': { type: 'string' },
  json: { type: 'boolean' },
} as const

const DEFAULT_MAX_AGE_MS = 10 * 60_000
const REQUEST_TIMEOUT_MS = 5000
const RETRY_INTERVAL_MS = 1000

export type { CheckItem }

export const verifyRotationCommand: Command = {
  name: 'verify-rotation',
  summary: "run the runbook's post-rotation checklist against a live instance",
  help: `Usage: cbc-jwt verify-rotation (--url URL | --prometheus URL [--selector S] | --replica URL...)
                               [--previous-kid KID...] [--legacy-token T] [--compromised [--revoked-before TIME]]
                               [--wait DUR] [--max-age DUR] [--json]

Runs the runbook's "Verification Checklist After Rotation" against one instance (point URL
at a single pod, e.g. through kubectl port-forward: /metrics and /v1/keys must come from
the same process):
  1. active key:     /metrics has exactly one cbc_jwt_active_key_age_seconds series, its kid
                     is not --previous-kid, its age <= --max-age
  2. keys loaded:    cbc_jwt_keys_loaded equals the verifying keys of /v1/keys (>= 2, the
                     previous kid among them, when --previous-kid is given)
  3. legacy token:   --legacy-token (signed by the previous key) gets 200 from /v1/whoami
                     (skipped when not given)
  4. backend errors: cbc_jwt_backend_errors_total sums to 0
  5. rotations:      cbc_jwt_key_rotations_total >= 1 (runbook JWTKeyAgeExceeded step 3;
                     skipped without --previous-kid)
Each item is printed with ✓ (pass), ✗ (fail) or - (skipped) and the figure seen.

With --prometheus or --replica, every replica is checked as well (CONTRACT §9):
  replicas up:       every target of the selector is up / every replica answers /v1/keys
  one current key:   the same current kid on every replica, not a --previous-kid
  previous key verifies everywhere   (routine: legacy tokens keep working on every replica)
  previous keys verify nowhere       (--compromised: none of the --previous-kid anywhere)
  same revoked_before everywhere     (--compromised: in force, >= --revoked-before, everywhere)
With --replica, the legacy token is also sent to every replica's /v1/whoami (200 expected;
401 with --compromised).

Options:
  --url URL          base URL of the instance, e.g. http://localhost:8000 (required)
  --previous-kid KID the kid that was current before the rotation (repeatable: with
                     --compromised, give every kid of the old keyset)
  --legacy-token T   a token signed before the rotation, still within its lifetime
  --compromised      check an emergency rotation: previous keys no longer verify, legacy
                     tokens are rejected, revoked_before is in force
  --revoked-before T with --compromised: the revoked_before expected at least (RFC 3339)
${FLEET_HELP}
  --wait DUR         retry until every item passes or DUR is up (default 0: check once)
  --max-age DUR      "age close to 0" means at most this (default 10m). The age is the key's
                     since created_at: after "rotate --promote" or the CronJob the key was
                     created at --stage, at least the propagation window earlier (days with
                     the CronJob), so 10m fails by design — pass the key's age (cbc-jwt status)
  --json             print {"ok": bool, "items": [{"name", "result", "detail"}]}
  -h, --help         this help

Exit status: 0 every item passed (or was skipped), 1 an item failed, 2 bad usage.`,

  async run(ctx: CliContext, args: string[]): Promise<number> {
    const { values } = parseCommandArgs('verify-rotation', args, OPTIONS)
    const fleet = fleetFromFlags(ctx.env, values)
    if (values.url === undefined && !fleet) throw new UsageError('verify-rotation: --url URL is required (or --prometheus URL, or --replica URL for every replica)')
    let base: URL | undefined
    if (values.url !== undefined) {
      try {
        base = new URL(values.url)
      } catch {
        throw new UsageError(`--url: "${values.url}" is not a URL (e.g. http://localhost:8000)`)
      }
      if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new UsageError('--url must be http or https')
    }
    const compromised = values.compromised === true
    const previousKids = values['previous-kid'] ?? []
    if (compromised && previousKids.length === 0) throw new UsageError('verify-rotation --compromised needs --previous-kid (every kid of the old keyset)')
    let revokedAtLeast: number | undefined
    if (values['revoked-before'] !== undefined) {
      if (!compromised) throw new UsageError('--revoked-before applies to --compromised')
      const at = parseTime(values['revoked-before'], ctx.now())
      if (at === undefined) throw new UsageError(`--revoked-before: "${values['revoked-before']}" is not an RFC 3339 time`)
      revokedAtLeast = at / 1000
    }
    const waitMs = durationFlag('wait', values.wait) ?? 0
    const maxAgeMs = durationFlag('max-age', values['max-age']) ?? DEFAULT_MAX_AGE_MS
    const legacyToken = values['legacy-token']
    const check = async (): Promise<CheckItem[]> => [
      ...(base ? await runChecklist({ base: base.href.replace(/\/+$/, ''), previousKids, legacyToken, maxAgeMs, compromised }) : []),
      ...(fleet ? await runFleetChecklist(fleet, { previousKids, compromised, legacyToken, ...(revokedAtLeast !== undefined ? { revokedAtLeast } : {}) }, values.replica ?? []) : []),
    ]
    // Wall-clock deadline: CBC_JWT_NOW pins keyset time, not how long to keep asking.
    const deadline = Date.now() + waitMs
    let items = await check()
    while (items.some((i) => i.result === 'fail') && Date.now() + RETRY_INTERVAL_MS <= deadline) {
      await sleep(RETRY_INTERVAL_MS)
      items = await check()
    }
    const failed = items.filter((i) => i.result === 'fail')
    if (values.json) {
      println(ctx.stdout, JSON.stringify({ ok: failed.length === 0, url: base?.href.replace(/\/+$/, '') ?? null, fleet: fleet?.description ?? null, items }, null, 2))
    } else {
      items.forEach((item, i) => println(ctx.stdout, `${item.result === 'pass' ? '✓' : item.result === 'fail' ? '✗' : '-'} ${i + 1}. ${item.name}: ${item.detail}`))
      println(ctx.stdout, failed.length === 0 ? 'rotation verified' : `rotation NOT verified: ${failed.map((f) => f.name).join(', ')} failed`)
    }
    return failed.length === 0 ? 0 : 1
  },
}

interface ChecklistOptions {
  base: string
  previousKids: readonly string[]
  legacyToken: string | undefined
  maxAgeMs: number
  /** Compromise mode: previous kids must no longer verify and the legacy token must be rejected. */
  compromised?: boolean
}

/** The fleet items; a fleet that cannot be read at all fails the first item (and is retried with --wait). */
async function runFleetChecklist(
  fleet: FleetSource,
  o: { previousKids: readonly string[]; compromised: boolean; legacyToken: string | undefined; revokedAtLeast?: number },
  replicaUrls: readonly string[],
): Promise<CheckItem[]> {
  let items: CheckItem[]
  try {
    items = fleetChecklist(await fleet.read(), o)
  } catch (err) {
    if (!(err instanceof CbcJwtError)) throw err
    return [{ name: 'replicas up', result: 'fail', detail: err.message }]
  }
  if (o.legacyToken !== undefined && replicaUrls.length > 0) {
    const expected = o.compromised ? 401 : 200
    const answers = await Promise.all(
      replicaUrls.map(async (u) => ({ u, r: await get(`${u.replace(/\/+$/, '')}/v1/whoami`, { authorization: `Bearer ${o.legacyToken}` }) })),
    )
    const wrong = answers.filter(({ r }) => !r.ok || r.status !== expected).map(({ u, r }) => `${u} ${r.ok ? `${r.status}${reasonOf(r.body)}` : r.error}`)
    const name = o.compromised ? 'legacy token rejected everywhere' : 'legacy token accepted everywhere'
    items.push(wrong.length === 0 ? { name, result: 'pass', detail: `${expected} from all ${replicaUrls.length} replicas` } : { name, result: 'fail', detail: `expected ${expected}: ${wrong.join('; ')}` })
  }
  return items
}

/** One pass over the checklist; never throws — an unreachable instance fails the items. */
export async function runChecklist(o: ChecklistOptions): Promise<CheckItem[]> {
  const [metrics, keys, whoami] = await Promise.all([
    get(`${o.base}/metrics`),
    get(`${o.base}/v1/keys`),
    o.legacyToken === undefined ? undefined : get(`${o.base}/v1/whoami`, { authorization: `Bearer ${o.legacyToken}` }),
  ])
  const samples = metrics.ok && metrics.status === 200 ? parseSamples(metrics.body) : undefined
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
        items.push(fail(name, `${seen} > ${formatDuration(o.maxAgeMs)}: not a fresh key (after a two-phase or CronJob promotion the key is as old as its --stage: pass --max-age covering that)`))
      }
      else items.push(pass(name, `${seen} <= ${formatDuration(o.maxAgeMs)}`))
    }
  }

  // 2. keys loaded = verifying keys listed
  {
    const name = 'keys loaded'
    const loaded = samples ? single(samples, METRIC_NAMES.keysLoaded) : undefined
    const listed = keys.ok && keys.status === 200 ? verifyingKids(keys.body) : undefined
    if (!samples) items.push(fail(name, metricsProblem))
    else if (loaded === undefined) items.push(fail(name, `${METRIC_NAMES.keysLoaded} missing from /metrics`))
    else if (!listed) items.push(fail(name, `cannot read /v1/keys: ${keys.ok ? `HTTP ${keys.status}` : keys.error}`))
    else {
      const seen = `${METRIC_NAMES.keysLoaded} ${loaded}, verifying keys in /v1/keys ${listed.length} (${listed.join(', ')})`
      const stillThere = o.previousKids.filter((k) => listed.includes(k))
      const gone = o.previousKids.filter((k) => !listed.includes(k))
      if (loaded !== listed.length) items.push(fail(name, `${seen}: they differ`))
      else if (o.compromised && stillThere.length > 0) items.push(fail(name, `${seen}: ${stillThere.join(', ')} still verifies after an emergency rotation`))
      else if (!o.compromised && o.previousKids.length > 0 && loaded < 2) items.push(fail(name, `${seen}: expected at least 2 (new and previous) after a rotation`))
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
      if (whoami.status === 401) items.push(pass(name, `/v1/whoami answered 401${reasonOf(whoami.body)}: rejected, as it must be after an emergency rotation`))
      else items.push(fail(name, `/v1/whoami answered ${whoami.status}${kidOf(whoami.body)}: the legacy token must be rejected after an emergency rotation`))
    } else if (whoami.status === 200) items.push(pass(name, `/v1/whoami answered 200${kidOf(whoami.body)}`))
    else items.push(fail(name, `/v1/whoami answered ${whoami.status}${reasonOf(whoami.body)}`))
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
      else items.push(fail(name, `${METRIC_NAMES.rotations} ${count}: this instance has not seen a rotation`))
    }
  }
  return items
}

type Fetched = { ok: true; status: number; body: string; date: string | undefined } | { ok: false; error: string }

async function get(url: string, headers: Record<string, string> = {}): Promise<Fetched> {
  try {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS), redirect: 'manual' })
    return { ok: true, status: res.status, body: await res.text(), date: res.headers.get('date') ?? undefined }
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code
    return { ok: false, error: cause ?? (err as Error).name ?? 'request failed' }
  }
}

function single(samples: Sample[], name: string): number | undefined {
  return samples.find((s) => s.name === name)?.value
}

function verifyingKids(body: string): string[] | undefined {
  try {
    const doc = JSON.parse(body) as { keys?: Array<{ kid?: unknown; verifies?: unknown; not_after?: unknown }> }
    if (!Array.isArray(doc.keys)) return undefined
    return doc.keys
      .filter((k) => (typeof k.verifies === 'boolean' ? k.verifies : k.not_after == null || Date.parse(String(k.not_after)) > Date.now()))
      .map((k) => String(k.kid))
  } catch {
    return undefined
  }
}

function kidOf(body: string): string {
  try {
    const kid = (JSON.parse(body) as { kid?: unknown }).kid
    return typeof kid === 'string' ? ` (kid ${kid})` : ''
  } catch {
    return ''
  }
}

function reasonOf(body: string): string {
  try {
    const reason = (JSON.parse(body) as { reason?: unknown }).reason
    return typeof reason === 'string' ? ` (reason ${reason})` : ''
  } catch {
    return ''
  }
}
