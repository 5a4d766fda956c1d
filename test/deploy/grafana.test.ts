/**
 * The Grafana dashboard: valid JSON, every panel has queries, every query names only
 * metrics the code exports and parses as PromQL (through promtool), and together the panels
 * cover every metric. test/e2e/prometheus-alerts.test.ts runs the same queries against a
 * real Prometheus scraping the real service.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, test } from 'node:test'
import YAML from 'yaml'
import { METRIC_NAMES } from '../../src/lib/metrics/names.js'
import { PROJECT_ROOT } from '../support/service.js'

const DASHBOARD_FILE = path.join(PROJECT_ROOT, 'deploy/grafana/cbc-jwt-dashboard.json')
const EXPORTED = new Set<string>(Object.values(METRIC_NAMES))
/** Series Prometheus itself adds for every target: `up` says whether the replica could be scraped. */
const QUERYABLE = new Set<string>([...EXPORTED, 'up'])

interface Panel {
  type: string
  title: string
  panels?: Panel[]
  targets?: Array<{ expr?: string; refId: string; datasource?: { uid?: string } }>
  datasource?: { uid?: string }
  fieldConfig?: { defaults?: { thresholds?: { steps: Array<{ value: number | null }> } } }
}

interface Dashboard {
  uid: string
  title: string
  panels: Panel[]
  templating: { list: Array<{ name: string; type: string; query?: string | { query: string }; definition?: string }> }
}

function loadDashboard(): Dashboard {
  return JSON.parse(fs.readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard
}

function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])])
}

/** Every query of the dashboard, with the panel it belongs to. */
function dashboardQueries(dashboard = loadDashboard()): Array<{ panel: string; expr: string }> {
  return allPanels(dashboard.panels).flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr ?? '' })))
}

/** Replaces Grafana's variables by values a plain Prometheus accepts. */
function substituteVariables(expr: string, values: { job: string; instance: string; rateInterval: string; range: string }): string {
  return expr
    .replaceAll('$__rate_interval', values.rateInterval)
    .replaceAll('$__range', values.range)
    .replaceAll('$job', values.job)
    .replaceAll('$instance', values.instance)
}

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'and', 'or', 'unless', 'inf', 'nan'])

/**
 * The metric names a PromQL expression selects: identifiers outside label matchers, strings,
 * ranges and grouping clauses that are neither functions (followed by `(`) nor keywords.
 */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
  const names = new Set<string>()
  for (const m of stripped.matchAll(/[a-zA-Z_:][\w:]*(?=\s*(\()?)/g)) {
    if (m[1] || KEYWORDS.has(m[0].toLowerCase())) continue
    const before = stripped[m.index - 1]
    if (before && /[\d.]/.test(before)) continue // the unit of a duration or exponent
    names.add(m[0])
  }
  return [...names]
}

describe('metricNames (the checker itself)', () => {
  test('finds selected metrics, not functions, labels, keywords or durations', () => {
    assert.deepEqual(metricNames('sum by (reason) (rate(cbc_jwt_auth_failures_total{job=~"$job", reason!="x"}[5m] offset 1h)) > 3 * foo_total or up'), [
      'cbc_jwt_auth_failures_total',
      'foo_total',
      'up',
    ])
    assert.deepEqual(metricNames('time() - cbc_jwt_keyset_last_success_timestamp_seconds'), ['cbc_jwt_keyset_last_success_timestamp_seconds'])
    assert.deepEqual(metricNames('vector(604800)'), [])
  })
})

describe('Grafana dashboard', () => {
  test('parses, with a uid, a title and the datasource as a variable', () => {
    const d = loadDashboard()
    assert.equal(d.uid, 'cbc-jwt')
    assert.ok(d.title)
    assert.ok(d.templating.list.some((v) => v.name === 'datasource' && v.type === 'datasource'))
    for (const p of allPanels(d.panels).filter((p) => p.type !== 'row')) {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, meant literally
      assert.equal(p.datasource?.uid, '${datasource}', `${p.title}: datasource`)
      assert.ok((p.targets ?? []).length > 0, `${p.title}: no query`)
      const refIds = p.targets!.map((t) => t.refId)
      assert.equal(new Set(refIds).size, refIds.length, `${p.title}: duplicate refId`)
    }
  })

  test('every query names only metrics the code exports, and at least one', () => {
    for (const { panel, expr } of dashboardQueries()) {
      const names = metricNames(expr)
      assert.ok(names.length > 0, `${panel}: ${expr} selects no metric`)
      for (const name of names) assert.ok(QUERYABLE.has(name), `${panel}: ${name} is not a metric of src/lib/metrics/names.ts (nor up)`)
    }
    for (const v of loadDashboard().templating.list.filter((v) => v.type === 'query')) {
      const q = typeof v.query === 'string' ? v.query : v.query!.query
      const m = /^label_values\((.+),\s*(\w+)\)$/.exec(q)
      assert.ok(m, `variable ${v.name}: ${q}`)
      for (const name of metricNames(m[1]!)) assert.ok(EXPORTED.has(name), `variable ${v.name}: ${name}`)
    }
  })

  test('the panels cover every exported metric', () => {
    const used = new Set(dashboardQueries().flatMap(({ expr }) => metricNames(expr)))
    for (const name of EXPORTED) assert.ok(used.has(name), `no panel shows ${name}`)
  })

  // The drill: failures and errors summed over instances, a rotations stat taking the max, no
  // current kid per instance and no `up` — one bad replica was invisible.
  test('shows each replica: failures and errors by instance, rotations not folded, up, current kid', () => {
    const queries = dashboardQueries()
    const of = (metric: string) => queries.filter(({ expr }) => expr.includes(metric))
    for (const metric of [METRIC_NAMES.authFailures, METRIC_NAMES.backendErrors]) {
      assert.ok(of(metric).length > 0)
      for (const { panel, expr } of of(metric)) assert.match(expr, /\bby \((instance, \w+|\w+, instance)\)/, `${panel}: ${expr} hides the replica`)
    }
    for (const { panel, expr } of of(METRIC_NAMES.rotations)) {
      assert.doesNotMatch(expr, /^\s*(max|min|sum|avg)\s*\(/, `${panel}: ${expr} folds the replicas into one number`)
    }
    assert.ok(
      queries.some(({ expr }) => /^up\{job=~"\$job"/.test(expr)),
      'no panel shows up per replica',
    )
    assert.ok(
      queries.some(({ expr }) => expr.includes(METRIC_NAMES.activeKeyAge) && /by \(instance, kid\)/.test(expr)),
      'no panel shows the current kid per replica',
    )
  })

  // A replica started after a rotation counts 0 (its first load is not a rotation) and holds
  // the new kid: a panel that calls every replica at 0 "missed it" sends the operator to delete
  // healthy pods. The runbook's test is the current kid per replica.
  test('the rotation panels say a replica started since counts 0 without having missed it', () => {
    const panels = allPanels(loadDashboard().panels).filter((p) => (p.targets ?? []).some((t) => t.expr?.includes(METRIC_NAMES.rotations)))
    assert.ok(panels.length > 0)
    for (const p of panels as Array<Panel & { description?: string }>) {
      assert.match(p.description ?? '', /started (since|after)[^.]*first load is not a rotation/, `${p.title}: ${p.description}`)
    }
  })

  test('key state is shown per replica, next to up (which replica has which key, which revocation)', () => {
    const perInstance = (metric: string) => dashboardQueries().some(({ expr }) => metricNames(expr).includes(metric) && /by \([^)]*\binstance\b/.test(expr))
    assert.ok(perInstance(METRIC_NAMES.keyInfo), 'no per-instance query of cbc_jwt_key_info')
    assert.ok(perInstance(METRIC_NAMES.revokedBefore), 'no per-instance query of the revoked_before in force')
    const keyTable = allPanels(loadDashboard().panels).find((p) => (p.targets ?? []).some((t) => t.expr?.includes(METRIC_NAMES.keyInfo)))
    assert.ok(
      keyTable?.targets?.some((t) => /\bup\{/.test(t.expr ?? '')),
      'the key-state panel does not show up beside the keys',
    )
    assert.ok(
      dashboardQueries().some(({ expr }) => /^up\{/.test(expr)),
      'no panel of up per replica',
    )
  })

  // The counter counts trusted issuers' JWK Set reads too: a panel that says "keyset reads"
  // sends the operator to a healthy keyset while an identity provider fails.
  test('the backend errors panel says trusted issuers count too, and where the log tells them apart', () => {
    const panels = allPanels(loadDashboard().panels).filter((p) => (p.targets ?? []).some((t) => t.expr?.includes(METRIC_NAMES.backendErrors)))
    assert.ok(panels.length > 0)
    for (const p of panels as Array<Panel & { description?: string }>) {
      assert.match(p.description ?? '', /trusted issuers' JWK Sets/, `${p.title}: ${p.description}`)
      assert.match(p.description ?? '', /backend_error, watch_failed or issuer_error/, `${p.title}: ${p.description}`)
    }
  })

  test('the key age panel draws the 7-day line', () => {
    const panel = allPanels(loadDashboard().panels).find(
      (p) => p.type === 'timeseries' && (p.targets ?? []).some((t) => t.expr?.includes(METRIC_NAMES.activeKeyAge)),
    )
    assert.ok(panel, 'no time series of the active key age')
    const steps = panel.fieldConfig?.defaults?.thresholds?.steps.map((s) => s.value)
    assert.ok(steps?.includes(604800), `thresholds: ${JSON.stringify(steps)}`)
    // The axis reaches past the line, softly: a hard `max` clips a key older than it off the
    // panel, in the very breach (JWTKeyAgeExceeded) the panel is there to show.
    const defaults = panel.fieldConfig?.defaults as { max?: number; custom?: { axisSoftMax?: number } }
    assert.equal(defaults.max, undefined, `a hard axis max (${defaults.max} s) hides a key older than it`)
    assert.ok((defaults.custom?.axisSoftMax ?? 0) > 604800, 'the 7-day line is not always in view')
  })

  // Found by an audit: the panel said a rotation starts the new kid "near 0", but the age counts
  // from the key's creation: a staged key (rotate --stage, the CronJob) is days old when promoted.
  test("the key age panel says the age counts from the key's creation, staging included", () => {
    const panel = allPanels(loadDashboard().panels).find(
      (p) => p.type === 'timeseries' && (p.targets ?? []).some((t) => t.expr?.includes(METRIC_NAMES.activeKeyAge)),
    ) as (Panel & { description?: string }) | undefined
    assert.ok(panel?.description, 'the key age panel has no description')
    assert.doesNotMatch(panel.description, /starting near 0\./)
    assert.match(panel.description, /the days it was staged/)
    assert.match(panel.description, /creation/)
  })

  // A replica that never read a trusted issuer's JWK Set exports 0 for it and holds none of
  // its keys: the panel of issuer reads filtered 0 out, so it looked like "no trusted issuer".
  test('the trusted issuers panel shows an issuer a replica never read', () => {
    const panel = allPanels(loadDashboard().panels).find((p) => (p.targets ?? []).some((t) => t.expr?.includes(METRIC_NAMES.issuerLastSuccess)))
    assert.ok(panel, 'no panel of the trusted issuers')
    const exprs = panel.targets!.map((t) => `(${substituteVariables(t.expr!, { job: 'cbc-jwt', instance: '.*', rateInterval: '1m', range: '1h' })})`)
    const series = (instance: string) => `${METRIC_NAMES.issuerLastSuccess}{job="cbc-jwt", instance="${instance}", issuer="https://idp.example"}`
    const tests = {
      rule_files: [],
      evaluation_interval: '1m',
      tests: [
        {
          interval: '1m',
          input_series: [
            { series: series('read:8000'), values: '60+60x10' },
            { series: series('never:8000'), values: '0x10' },
          ],
          promql_expr_test: [
            {
              expr: `count by (instance) (${exprs.join(' or ')})`,
              eval_time: '10m',
              exp_samples: [
                { labels: '{instance="never:8000"}', value: 1 },
                { labels: '{instance="read:8000"}', value: 1 },
              ],
            },
          ],
        },
      ],
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-grafana-'))
    try {
      const file = path.join(dir, 'issuers.test.yml')
      fs.writeFileSync(file, YAML.stringify(tests))
      const r = spawnSync('promtool', ['test', 'rules', file], { encoding: 'utf8', timeout: 30_000 })
      assert.equal(r.status, 0, `${r.stdout}${r.stderr}`)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  test('every query parses as PromQL (promtool check rules)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-grafana-'))
    try {
      const rules = dashboardQueries().map(({ expr }, i) => ({
        record: `cbc_jwt_dashboard:query_${i}`,
        expr: substituteVariables(expr, { job: 'cbc-jwt', instance: '.*', rateInterval: '1m', range: '1h' }),
      }))
      const file = path.join(dir, 'dashboard.rules.yml')
      fs.writeFileSync(file, YAML.stringify({ groups: [{ name: 'dashboard', rules }] }))
      const r = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8', timeout: 30_000 })
      if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
        assert.fail('promtool is not installed: install the Debian package `prometheus` (apt-get install -y prometheus), as CI does')
      }
      assert.equal(r.status, 0, `${r.stdout}${r.stderr}`)
      assert.match(r.stdout, new RegExp(`SUCCESS: ${rules.length} rules found`))
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
