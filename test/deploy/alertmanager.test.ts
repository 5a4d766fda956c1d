/**
 * The shipped Alertmanager configuration (deploy/alertmanager/cbc-jwt.alertmanager.yml):
 * `amtool check-config` accepts it; every alert of the rules file, at either severity, lands
 * at the receiver the runbook names (`amtool config routes test`); and each inhibition the
 * runbook states holds on a real Alertmanager — the cause silences its symptoms where it
 * concerns them, and nothing else: not the same symptom on another replica or another fleet,
 * not a page; and each silenced warning is held (group_wait) until its cause can be there.
 *
 * amtool and Alertmanager are required, not optional: CI installs the Debian package
 * `prometheus-alertmanager`.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import YAML from 'yaml'
import { OPTIONS } from '../../src/lib/options-table.js'
import { amtool, startAlertmanager, type RunningAlertmanager } from '../support/alertmanager.js'
import { PROJECT_ROOT } from '../support/service.js'
import { waitFor } from '../support/wait.js'

const CONFIG_FILE = path.join(PROJECT_ROOT, 'deploy/alertmanager/cbc-jwt.alertmanager.yml')
const RULES_FILE = path.join(PROJECT_ROOT, 'deploy/prometheus/cbc-jwt.rules.yml')
const RUNBOOK = fs.readFileSync(path.join(PROJECT_ROOT, 'docs/runbook.md'), 'utf8')

const SEVERITY_OF = new Map(
  (YAML.parse(fs.readFileSync(RULES_FILE, 'utf8')) as { groups: Array<{ rules: Array<{ alert?: string; labels?: { severity?: string } }> }> }).groups
    .flatMap((g) => g.rules)
    .filter((r) => r.alert)
    .map((r) => [r.alert!, r.labels?.severity ?? ''] as const),
)
const ALERTS = [...SEVERITY_OF.keys()]

/** Where each severity goes (the runbook: page the platform team; warnings are its chat). */
const RECEIVER_OF_SEVERITY: Record<string, string[]> = { critical: ['cbc-jwt-page'], warning: ['cbc-jwt-ticket'] }
/** The Key Compromise section: Security Operations is paged too, first. */
const ALSO_PAGED: Record<string, string[]> = { JWTCompromiseNotContained: ['cbc-jwt-secops-page'] }

/**
 * What silences what, from each alert's section of docs/runbook.md, and over which labels
 * the cause and the symptom must agree: `instance` where the cause is one replica's, the
 * fleet (`namespace`, `job`) where the rule counts every replica, `job` alone where the cause
 * has no other label.
 */
const SILENCES: Array<{ cause: string; symptom: string; reason?: string; equal: string[] }> = [
  { cause: 'JWTNoKeysLoaded', symptom: 'JWTAuthFailureSpike', equal: ['namespace', 'job', 'instance'] },
  { cause: 'JWTNoKeysLoaded', symptom: 'JWTSecretsBackendErrors', equal: ['namespace', 'job', 'instance'] },
  { cause: 'JWTNoKeysLoaded', symptom: 'JWTKeysetStale', equal: ['namespace', 'job', 'instance'] },
  { cause: 'JWTSecretsBackendErrors', symptom: 'JWTKeysetStale', equal: ['namespace', 'job', 'instance'] },
  { cause: 'JWTSecretsBackendErrors', symptom: 'JWTAuthFailureSpike', reason: 'unknown_kid', equal: ['namespace', 'job', 'instance'] },
  { cause: 'JWTKeysetStale', symptom: 'JWTAuthFailureSpike', reason: 'unknown_kid', equal: ['namespace', 'job', 'instance'] },
  { cause: 'JWTKeysetObjectGone', symptom: 'JWTSecretsBackendErrors', equal: ['namespace', 'job'] },
  { cause: 'JWTKeysetObjectGone', symptom: 'JWTKeysetStale', equal: ['namespace', 'job'] },
  { cause: 'JWTMetricsAbsent', symptom: 'JWTTargetDown', equal: ['job'] },
]

/** The labels each alert carries besides alertname and severity, as its rule's expression keeps them. */
const LABELS_KEPT: Record<string, string[]> = {
  JWTKeyAgeExceeded: ['namespace', 'job', 'kid'],
  JWTMetricsAbsent: ['job'],
  JWTKeysetDiverged: ['namespace', 'job', 'issuer', 'kid', 'status'],
  JWTKeysetObjectGone: ['namespace', 'job'],
}
const REPLICA: Record<string, string> = { namespace: 'cbc', instance: '10.1.0.1:8000', kid: 'k-1', issuer: 'https://cbc.example', status: 'current' }

describe('amtool', () => {
  test('check-config accepts the shipped file, with its receivers and inhibitions', () => {
    const { status, out } = amtool(['check-config', CONFIG_FILE])
    assert.equal(status, 0, out)
    const shipped = YAML.parse(fs.readFileSync(CONFIG_FILE, 'utf8')) as { inhibit_rules: unknown[]; receivers: unknown[] }
    assert.match(out, new RegExp(`- ${shipped.inhibit_rules.length} inhibit rules\\n - ${shipped.receivers.length} receivers`))
  })

  test('the check can fail: a route to a receiver that does not exist is refused', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-amtool-'))
    try {
      const broken = path.join(dir, 'broken.yml')
      fs.writeFileSync(broken, fs.readFileSync(CONFIG_FILE, 'utf8').replace('receiver: cbc-jwt-ticket', 'receiver: cbc-jwt-nowhere'))
      const { status, out } = amtool(['check-config', broken])
      assert.notEqual(status, 0, out)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  /** The receivers `amtool config routes test` resolves for an alert with these labels. */
  const routedTo = (labels: Record<string, string>) => {
    const { status, out } = amtool(['config', 'routes', 'test', `--config.file=${CONFIG_FILE}`, ...Object.entries(labels).map(([k, v]) => `${k}=${v}`)])
    assert.equal(status, 0, out)
    const line = out.split('\n').find((l) => l.trim() !== '' && !l.startsWith('Warning:'))
    return (line ?? '').trim().split(',')
  }

  // Read from the rules file: a new alert the route's matcher does not name fails here.
  test('every alert of the rules file, at either severity, reaches the receiver of its severity', () => {
    assert.ok(ALERTS.length >= 10, ALERTS.join(', '))
    for (const alertname of ALERTS) {
      for (const severity of Object.keys(RECEIVER_OF_SEVERITY)) {
        assert.deepEqual(
          routedTo({ alertname, severity, namespace: 'cbc', job: 'cbc-jwt' }),
          [...(ALSO_PAGED[alertname] ?? []), ...RECEIVER_OF_SEVERITY[severity]!],
          `${alertname} severity=${severity}`,
        )
      }
    }
  })

  test("an alert that is not cbc-jwt's stays on the operator's own route; one without a severity pages", () => {
    assert.deepEqual(routedTo({ alertname: 'JWTSomethingElse', severity: 'critical' }), ['operator-default'])
    assert.deepEqual(routedTo({ alertname: 'JWTKeysetStale' }), ['cbc-jwt-page'])
  })

  test('no deprecated matcher syntax (match, match_re, source_match, target_match)', () => {
    const deprecated: string[] = []
    const walk = (node: unknown, at: string) => {
      if (Array.isArray(node)) node.forEach((n, i) => walk(n, `${at}[${i}]`))
      else if (node && typeof node === 'object')
        for (const [k, v] of Object.entries(node)) {
          if (/^(source_|target_)?match(_re)?$/.test(k)) deprecated.push(`${at}.${k}`)
          walk(v, `${at}.${k}`)
        }
    }
    walk(YAML.parse(fs.readFileSync(CONFIG_FILE, 'utf8')), '')
    assert.deepEqual(deprecated, [])
  })
})

/** A Prometheus duration (`30s`, `5m`, `1h`) in seconds. */
function seconds(duration: string): number {
  const m = /^(\d+)([smh])$/.exec(duration)
  assert.ok(m, `unexpected duration ${duration}`)
  return Number(m[1]) * { s: 1, m: 60, h: 3600 }[m[2] as 's' | 'm' | 'h']
}

describe('group_wait: a silenced warning is held until its cause can be there', () => {
  // A fleet-wide cause (JWTKeysetObjectGone: every replica with keys fails; JWTMetricsAbsent:
  // every target is down) starts its `for:` only once the last replica's failure has been
  // read, scraped and evaluated; its symptom (JWTSecretsBackendErrors has no `for:`) fires on
  // the first replica's. They can be apart by one keyset refresh (the replicas poll the
  // backend each at its own time: CBC_JWT_REFRESH_INTERVAL_SECONDS' default), one scrape
  // (the shipped ServiceMonitor's interval) and one rule evaluation (Prometheus's default
  // evaluation_interval, 1m). A group_wait within that lets the ticket out before the page
  // that silences it: the end-to-end test saw it at 6m.
  test("each silenced warning's route waits longer than its cause's for: plus those intervals", () => {
    const REFRESH_S = OPTIONS.refreshIntervalSeconds.default
    const EVALUATION_S = 60
    const monitor = YAML.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'deploy/kubernetes/servicemonitor.yaml'), 'utf8')) as {
      spec: { endpoints: Array<{ interval: string }> }
    }
    const skew = REFRESH_S + seconds(monitor.spec.endpoints[0]!.interval) + EVALUATION_S
    const forOf = new Map(
      (YAML.parse(fs.readFileSync(RULES_FILE, 'utf8')) as { groups: Array<{ rules: Array<{ alert?: string; for?: string }> }> }).groups
        .flatMap((g) => g.rules)
        .map((r) => [r.alert, seconds(r.for ?? '0s')]),
    )
    type Route = { matchers?: string[]; group_wait?: string; routes?: Route[] }
    const subtree = (YAML.parse(fs.readFileSync(CONFIG_FILE, 'utf8')) as { route: { routes: Route[] } }).route.routes[0]!
    const groupWaitOf = (severity: string) =>
      seconds(subtree.routes!.find((r) => r.matchers?.includes(`severity="${severity}"`))?.group_wait ?? subtree.group_wait!)
    const short = SILENCES.filter((s) => groupWaitOf(SEVERITY_OF.get(s.symptom)!) <= forOf.get(s.cause)! + skew).map(
      (s) => `${s.symptom} (group_wait ${groupWaitOf(SEVERITY_OF.get(s.symptom)!)} s) before ${s.cause} (for ${forOf.get(s.cause)} s + ${skew} s)`,
    )
    assert.deepEqual(short, [])
  })
})

describe('inhibitions on a real Alertmanager', { timeout: 60_000 }, () => {
  let dir: string
  let am: RunningAlertmanager | undefined

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-am-'))
    // The shipped file as is: its placeholder receivers are never reached before the
    // notifications' group_wait, and nothing here depends on them.
    am = await startAlertmanager(dir, fs.readFileSync(CONFIG_FILE, 'utf8'))
  })
  after(async () => {
    await am?.stop()
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
  })

  test('only warnings are ever silenced: no page hides behind another', () => {
    for (const { symptom } of SILENCES) assert.equal(SEVERITY_OF.get(symptom), 'warning', symptom)
  })

  // For each alert as the cause, each other alert beside it: on the same replica, on another
  // replica of the fleet and in another namespace. Exactly the
  // symptoms the runbook names are suppressed, each by that cause, and only where `equal` holds.
  test('each cause silences exactly its symptoms, where they share its replica or fleet', async () => {
    const labelsOf = (alertname: string, where: Record<string, string>, reason?: string) => {
      const kept = LABELS_KEPT[alertname] ?? ['namespace', 'job', 'instance']
      return {
        alertname,
        severity: SEVERITY_OF.get(alertname)!,
        ...Object.fromEntries(kept.map((k) => [k, where[k]!])),
        ...(reason ? { reason } : {}),
      }
    }
    // Each pair in a job of its own: no other alert there can silence the candidate (Alertmanager
    // names only the first inhibiting alert it finds).
    const posted: Array<{ cause: Record<string, string>; candidate: Record<string, string> }> = []
    for (const cause of ALERTS)
      for (const symptom of ALERTS.filter((a) => a !== cause)) {
        const home = { ...REPLICA, job: `cbc-jwt-${posted.length}` }
        const elsewhere = [home, { ...home, instance: '10.1.0.2:8000' }, { ...home, namespace: 'orders' }]
        for (const where of elsewhere)
          for (const reason of symptom === 'JWTAuthFailureSpike' ? ['unknown_kid', 'bad_signature'] : [undefined])
            posted.push({ cause: labelsOf(cause, home), candidate: labelsOf(symptom, where, reason) })
      }
    const causes = [...new Map(posted.map((p) => [JSON.stringify(p.cause), p.cause])).values()]
    const candidates = [...new Map(posted.map((p) => [JSON.stringify(p.candidate), p.candidate])).values()]
    await am!.post([...causes, ...candidates].map((labels) => ({ labels })))
    const key = (labels: Record<string, string>) => JSON.stringify(Object.entries(labels).sort())
    const listed = await waitFor(
      async () => {
        const alerts = await am!.alerts()
        return alerts.length >= causes.length + candidates.length && alerts.every((a) => a.status.state !== 'unprocessed') && alerts
      },
      { timeoutMs: 20_000, intervalMs: 200, what: 'every posted alert listed and processed' },
    )
    const byKey = new Map(listed.map((a) => [key(a.labels), a]))
    const problems: string[] = []
    for (const { cause, candidate } of posted) {
      const expected = SILENCES.some(
        (s) =>
          s.cause === cause.alertname &&
          s.symptom === candidate.alertname &&
          (s.reason === undefined || s.reason === candidate.reason) &&
          s.equal.every((l) => cause[l] === candidate[l]),
      )
      const seen = byKey.get(key(candidate))
      const causeFingerprint = byKey.get(key(cause))?.fingerprint
      assert.ok(seen && causeFingerprint, `not listed: ${key(candidate)} or ${key(cause)}`)
      const inhibited = seen.status.state === 'suppressed' && seen.status.inhibitedBy.includes(causeFingerprint)
      if (inhibited !== expected) problems.push(`${cause.alertname} ${expected ? 'does not silence' : 'silences'} ${key(candidate)}`)
    }
    assert.deepEqual(problems, [])
    // The causes themselves are never silenced by anything in their own job (a page is never hidden).
    const silencedCritical = listed.filter((a) => a.labels.severity === 'critical' && a.status.state === 'suppressed')
    assert.deepEqual(
      silencedCritical.map((a) => a.labels),
      [],
    )
  })
})

describe('docs/runbook.md: Routing and inhibition', () => {
  test('its table names each cause with exactly the symptoms it silences', () => {
    const start = RUNBOOK.indexOf('\n## Routing and inhibition\n')
    assert.ok(start >= 0, 'the runbook has a section "Routing and inhibition"')
    const rows = RUNBOOK.slice(start, RUNBOOK.indexOf('\n## ', start + 1))
      .split('\n')
      .filter((l) => /^\| `JWT/.test(l))
    const documented = new Map(
      rows.map((r) => r.split('|').map((c) => c.trim())).map((cells) => [cells[1]!, [...cells[2]!.matchAll(/`(JWT\w+)`/g)].map((m) => m[1]!)]),
    )
    const expected = new Map<string, string[]>()
    for (const s of SILENCES) expected.set(`\`${s.cause}\``, [...new Set([...(expected.get(`\`${s.cause}\``) ?? []), s.symptom])])
    assert.deepEqual(documented, expected)
  })
})
