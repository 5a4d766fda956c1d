/**
 * The shipped alert rules pass `promtool check rules` (lint included) and their unit tests,
 * every alert has a firing and a silent case, and the unit tests can fail: an alert whose
 * expression never fires makes them fail.
 *
 * promtool is required, not optional: CI installs the Debian package `prometheus`.
 */
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import YAML from 'yaml'
import { PROJECT_ROOT } from '../support/service.js'

const PROM_DIR = path.join(PROJECT_ROOT, 'deploy/prometheus')
const RULES_FILE = path.join(PROM_DIR, 'cbc-jwt.rules.yml')
const TESTS_DIR = path.join(PROM_DIR, 'tests')
const RUNBOOK_BASE = 'https://github.com/cbc-omega2/cbc-jwt/blob/main/docs/runbook.md#'
/** The runbook's three alerts (CONTRACT §5) and the ones added for no-data and staleness. */
const REQUIRED_ALERTS = ['JWTSecretsBackendErrors', 'JWTAuthFailureSpike', 'JWTKeyAgeExceeded', 'JWTNoKeysLoaded', 'JWTMetricsAbsent', 'JWTKeysetStale']

interface AlertRule {
  alert: string
  expr: string
  for?: string
  labels?: Record<string, string>
  annotations?: Record<string, string>
}

function promtool(args: string[], cwd = PROJECT_ROOT) {
  const r = spawnSync('promtool', args, { cwd, encoding: 'utf8', timeout: 30_000 })
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
    assert.fail('promtool is not installed: install the Debian package `prometheus` (apt-get install -y prometheus), as CI does')
  }
  if (r.error) throw r.error
  return { status: r.status, out: `${r.stdout}${r.stderr}` }
}

function promtoolAsync(args: string[], cwd: string): Promise<{ status: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 })
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d))
    child.stderr.on('data', (d: Buffer) => (out += d))
    child.on('error', reject)
    child.on('close', (status) => resolve({ status, out }))
  })
}

function alertRules(file = RULES_FILE): AlertRule[] {
  const doc = YAML.parse(fs.readFileSync(file, 'utf8')) as { groups: Array<{ rules: AlertRule[] }> }
  return doc.groups.flatMap((g) => g.rules).filter((r) => r.alert)
}

function testFiles(): string[] {
  return fs
    .readdirSync(TESTS_DIR)
    .filter((f) => f.endsWith('.test.yml'))
    .sort()
    .map((f) => path.join(TESTS_DIR, f))
}

describe('promtool', () => {
  test('promtool is installed (Debian package `prometheus`)', () => {
    const { status, out } = promtool(['--version'])
    assert.equal(status, 0, out)
    assert.match(out, /promtool, version 2\./)
  })

  test('check rules --lint=all --lint-fatal passes and finds every rule', () => {
    const { status, out } = promtool(['check', 'rules', '--lint=all', '--lint-fatal', RULES_FILE])
    assert.equal(status, 0, out)
    const doc = YAML.parse(fs.readFileSync(RULES_FILE, 'utf8')) as { groups: Array<{ rules: unknown[] }> }
    const count = doc.groups.reduce((n, g) => n + g.rules.length, 0)
    assert.match(out, new RegExp(`SUCCESS: ${count} rules found`))
  })

  test('test rules: every unit-test file runs and succeeds', () => {
    const files = testFiles()
    assert.ok(files.length >= 3, `expected the unit tests in ${TESTS_DIR}`)
    const { status, out } = promtool(['test', 'rules', ...files])
    assert.equal(status, 0, out)
    // promtool prints "Unit Testing:  <file>" then SUCCESS or FAILED for each file it ran.
    const ran = [...out.matchAll(/Unit Testing:\s+(\S+)\s*\n\s*SUCCESS/g)].map((m) => path.resolve(PROJECT_ROOT, m[1]!))
    assert.deepEqual(ran.sort(), files, out)
  })

  test('every unit-test file tests the shipped rules file, not a copy', () => {
    for (const file of testFiles()) {
      const doc = YAML.parse(fs.readFileSync(file, 'utf8')) as { rule_files: string[] }
      assert.deepEqual(
        doc.rule_files.map((r) => path.resolve(path.dirname(file), r)),
        [RULES_FILE],
        path.basename(file),
      )
    }
  })

  test('every alert has a unit test where it fires and one where it stays silent', () => {
    const firing = new Set<string>()
    const silent = new Set<string>()
    for (const file of testFiles()) {
      const doc = YAML.parse(fs.readFileSync(file, 'utf8')) as {
        tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts?: unknown[] }> }>
      }
      for (const t of doc.tests) {
        for (const a of t.alert_rule_test ?? []) (a.exp_alerts?.length ? firing : silent).add(a.alertname)
      }
    }
    for (const { alert } of alertRules()) {
      assert.ok(firing.has(alert), `no unit test expects ${alert} to fire`)
      assert.ok(silent.has(alert), `no unit test expects ${alert} to stay silent`)
    }
  })
})

describe('alert rules', () => {
  test("the runbook's alerts are all there, each once", () => {
    const names = alertRules().map((r) => r.alert)
    assert.equal(new Set(names).size, names.length, `duplicate alert names: ${names.join(', ')}`)
    for (const name of REQUIRED_ALERTS) assert.ok(names.includes(name), `missing alert ${name}`)
  })

  test('every alert has severity, summary, description and a runbook_url to its own anchor', () => {
    for (const rule of alertRules()) {
      assert.ok(['critical', 'warning'].includes(rule.labels?.severity ?? ''), `${rule.alert}: severity`)
      assert.ok(rule.annotations?.summary?.trim(), `${rule.alert}: summary`)
      assert.ok(rule.annotations?.description?.trim(), `${rule.alert}: description`)
      assert.equal(rule.annotations?.runbook_url, RUNBOOK_BASE + rule.alert.toLowerCase(), `${rule.alert}: runbook_url`)
    }
  })

  test('the key age alert is the 7-day SLA and the no-data alert watches the job', () => {
    const byName = new Map(alertRules().map((r) => [r.alert, r]))
    assert.match(byName.get('JWTKeyAgeExceeded')!.expr, /cbc_jwt_active_key_age_seconds\)?\s*>\s*604800\b/)
    assert.match(byName.get('JWTMetricsAbsent')!.expr, /absent\(cbc_jwt_\w+\{job="cbc-jwt"\}\)/)
  })
})

describe('the unit tests can fail', () => {
  let dir: string
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-promtool-'))
  })
  after(() => fs.rmSync(dir, { recursive: true, force: true }))

  /** Runs the unit tests that name `alert` against `rules` (a mutant of the shipped file). */
  async function unitTestsOf(alert: string, rules: string, name: string) {
    const mutant = path.join(dir, name)
    fs.mkdirSync(path.join(mutant, 'tests'), { recursive: true })
    fs.writeFileSync(path.join(mutant, 'cbc-jwt.rules.yml'), rules)
    const files = testFiles()
      .filter((f) => fs.readFileSync(f, 'utf8').includes(`alertname: ${alert}\n`))
      .map((f) => {
        const copy = path.join(mutant, 'tests', path.basename(f))
        fs.copyFileSync(f, copy)
        return copy
      })
    assert.ok(files.length > 0, `no unit test names ${alert}`)
    return promtoolAsync(['test', 'rules', ...files], mutant)
  }

  // For each alert, a copy of the rules in which that alert can never fire: the unit tests
  // that name it must notice. This keeps a test from passing by expecting nothing.
  test('an alert that never fires makes its unit tests fail', async () => {
    const source = fs.readFileSync(RULES_FILE, 'utf8')
    await Promise.all(
      alertRules().map(async ({ alert }) => {
        const doc = YAML.parseDocument(source)
        for (const group of (doc.get('groups') as YAML.YAMLSeq<YAML.YAMLMap>).items) {
          for (const rule of (group.get('rules') as YAML.YAMLSeq<YAML.YAMLMap>).items) {
            if (rule.get('alert') === alert) rule.set('expr', 'vector(1) == 0')
          }
        }
        const { status, out } = await unitTestsOf(alert, doc.toString(), alert)
        assert.notEqual(status, 0, `the unit tests pass although ${alert} never fires`)
        assert.match(out, new RegExp(`alertname: ${alert}, time:`), `the failure names ${alert}`)
      }),
    )
  })

  // The thresholds the runbook states, each broken in turn: the unit tests must notice every
  // one (found by mutating the rules; each of these once passed every unit test).
  test('a threshold, window or filter of the runbook changed makes the unit tests fail', async () => {
    const source = fs.readFileSync(RULES_FILE, 'utf8')
    const mutants: Array<[string, string, (rules: string) => string]> = [
      ['JWTAuthFailureSpike', 'spike-2x', (r) => r.replaceAll('> 3 * (', '> 2 * (')],
      ['JWTAuthFailureSpike', 'spike-5x', (r) => r.replaceAll('> 3 * (', '> 5 * (')],
      ['JWTAuthFailureSpike', 'spike-no-offset', (r) => r.replaceAll('[1h] offset 5m', '[1h]')],
      [
        'JWTAuthFailureSpike',
        'spike-no-zero-baseline',
        (r) => r.replace(/\n\s*or\n\s*sum by \(namespace, job, instance, reason\) \(rate\(cbc_jwt_auth_failures_total\[5m\]\)\) \* 0/, ''),
      ],
      [
        'JWTKeysetObjectGone',
        'gone-any-reason',
        (r) => r.replaceAll('cbc_jwt_backend_errors_total{reason="not_found"}[5m]', 'cbc_jwt_backend_errors_total[5m]'),
      ],
      [
        'JWTAuthFailureSpike',
        'spike-job-floor-without-namespace',
        (r) =>
          r.replace(
            'sum by (namespace, job, reason) (rate(cbc_jwt_auth_failures_total[5m])) > 0.5',
            'sum by (job, reason) (rate(cbc_jwt_auth_failures_total[5m])) > 0.5',
          ),
      ],
      ['JWTKeysetObjectGone', 'gone-counting-keyless-replicas', (r) => r.replace(/(unless on \(namespace, job\)\n\s*\(\n\s*cbc_jwt_keys_loaded) > 0/, '$1')],
      ['JWTKeysetObjectGone', 'gone-for-1m', (r) => r.replace(/(\[5m\]\) > 0\n\s*\)\n\s*for: )5m/, '$11m')],
      // The fleet's failing replicas counted against those with keys now: once the replicas
      // stop being scraped the alert resolves under the backend errors it silences.
      [
        'JWTKeysetObjectGone',
        'gone-against-replicas-with-keys-now',
        (r) =>
          r.replace(
            /unless on \(namespace, job\)\n\s*\(\n\s*cbc_jwt_keys_loaded > 0\n\s*unless ignoring \(reason\)\n\s*increase\(cbc_jwt_backend_errors_total\{reason="not_found"\}\[5m\]\) > 0\n\s*\)/,
            '>= on (namespace, job) count by (namespace, job) (cbc_jwt_keys_loaded > 0)',
          ),
      ],
    ]
    await Promise.all(
      mutants.map(async ([alert, name, mutate]) => {
        const rules = mutate(source)
        assert.notEqual(rules, source, `${name}: the mutation no longer applies to the rules file`)
        const { status } = await unitTestsOf(alert, rules, name)
        assert.notEqual(status, 0, `the unit tests of ${alert} pass with the rule broken (${name})`)
      }),
    )
  })
})

/** docs/metrics.md's example queries: each line that starts a query, with its indented continuation lines. */
function exampleQueries(): string[] {
  const doc = fs.readFileSync(path.join(PROJECT_ROOT, 'docs/metrics.md'), 'utf8')
  const block = /```promql\n([\s\S]*?)```/.exec(doc)?.[1] ?? ''
  const queries: string[] = []
  for (const line of block.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue
    if (/^\s/.test(line) && queries.length > 0) queries[queries.length - 1] += ` ${line.trim()}`
    else queries.push(line.trim())
  }
  return queries
}

describe("docs/metrics.md's example queries", () => {
  let dir: string
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-promql-'))
  })
  after(() => fs.rmSync(dir, { recursive: true, force: true }))

  /** `promtool check rules` on the queries, each as a recording rule. */
  const check = (queries: string[]) => {
    const file = path.join(dir, 'queries.yml')
    const rules = queries.map((expr, i) => ({ record: `docs_metrics_example_${i}`, expr }))
    fs.writeFileSync(file, YAML.stringify({ groups: [{ name: 'docs', rules }] }))
    return promtool(['check', 'rules', file])
  }

  test('every query is valid PromQL (promtool check rules)', () => {
    const queries = exampleQueries()
    assert.ok(queries.length >= 15, queries.join('\n'))
    const { status, out } = check(queries)
    assert.equal(status, 0, out)
  })

  test('the check can fail: a query with a missing parenthesis is refused', () => {
    const { status } = check([...exampleQueries(), 'sum by (instance) (rate(cbc_jwt_auth_failures_total[5m])'])
    assert.notEqual(status, 0)
  })
})
