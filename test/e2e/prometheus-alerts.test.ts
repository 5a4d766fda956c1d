/**
 * End to end: a real Prometheus scrapes two real replicas of the service (each with its
 * keyset on a Kubernetes-style secret volume) every second and evaluates the shipped alert rules, with time compressed
 * 60× (`for:` and range windows shortened; thresholds unchanged). Each condition is caused for
 * real — a replica that never loaded a keyset, forged tokens, one replica rejecting all
 * legitimate tokens, an unreadable keyset, an 8-day-old current key, a rotation, the
 * service going away — and seen through Prometheus's own API. The dashboard's queries run
 * against the same Prometheus.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import YAML from 'yaml'
import { freePort } from '../support/free-port.js'
import { makeKey, makeKeyset, signToken, validClaims } from '../support/keys.js'
import { KubeletVolume } from '../support/kubelet-volume.js'
import { PROJECT_ROOT, SERVER_MAIN, startService, type RunningService } from '../support/service.js'
import { compressedRules } from '../support/time-compression.js'
import { waitFor } from '../support/wait.js'

const RULES_FILE = path.join(PROJECT_ROOT, 'deploy/prometheus/cbc-jwt.rules.yml')
const DASHBOARD_FILE = path.join(PROJECT_ROOT, 'deploy/grafana/cbc-jwt-dashboard.json')
const DAY = 86_400_000

interface PromAlert {
  labels: Record<string, string>
  annotations: Record<string, string>
  state: 'pending' | 'firing'
  value: string
}

describe('alerts on a real Prometheus scraping the real service', { timeout: 180_000 }, () => {
  let dir: string
  let volume: KubeletVolume
  let volumeB: KubeletVolume
  let service: RunningService | undefined
  /** The second replica: starts with no keyset at all. */
  let serviceB: RunningService | undefined
  let instanceB: string
  let prometheus: ChildProcess | undefined
  let promOutput = ''
  let promUrl: string
  let instance: string
  const keyA = makeKey('ES256', 'k-e2e-a')
  const keyOld = makeKey('ES256', 'k-e2e-8days')
  const keyNew = makeKey('ES256', 'k-e2e-new')
  const keyOther = makeKey('ES256', 'k-e2e-other')

  async function prom<T>(route: string): Promise<T> {
    const res = await fetch(promUrl + route, { signal: AbortSignal.timeout(5000) })
    const body = (await res.json()) as { status: string; data: T; error?: string }
    assert.equal(body.status, 'success', `${route}: ${body.error ?? res.status}`)
    return body.data
  }
  const query = async (q: string) =>
    (await prom<{ result: Array<{ metric: Record<string, string>; value: [number, string] }> }>(`/api/v1/query?query=${encodeURIComponent(q)}`)).result
  const alerts = async () => (await prom<{ alerts: PromAlert[] }>('/api/v1/alerts')).alerts
  async function waitForAlert(name: string, what: string, timeoutMs = 20_000, labels: Record<string, string> = {}): Promise<PromAlert> {
    return waitFor(
      async () =>
        (await alerts()).find((a) => a.labels.alertname === name && a.state === 'firing' && Object.entries(labels).every(([k, v]) => a.labels[k] === v)),
      { timeoutMs, intervalMs: 250, what: `${name} firing (${what})\n--- prometheus ---\n${promOutput.slice(-1500)}` },
    )
  }
  /**
   * Waits until Prometheus has evaluated every rule group `n` more times: an alert that would
   * fire by then has fired. The twin of "nothing fired", tied to the rule engine's own clock
   * rather than a fixed wait (a loaded machine slows both alike).
   */
  async function evaluations(n: number): Promise<void> {
    const stamps = async () =>
      new Map((await prom<{ groups: Array<{ name: string; lastEvaluation: string }> }>('/api/v1/rules')).groups.map((g) => [g.name, g.lastEvaluation]))
    let last = await stamps()
    const advanced = new Map([...last.keys()].map((g) => [g, 0]))
    await waitFor(
      async () => {
        const now = await stamps()
        for (const [g, at] of now) if (at !== last.get(g)) advanced.set(g, (advanced.get(g) ?? 0) + 1)
        last = now
        return [...advanced.values()].every((count) => count >= n)
      },
      { timeoutMs: 20_000 + n * 2000, intervalMs: 200, what: `${n} more rule evaluations` },
    )
  }
  /** Waits until no alert `name` (with these labels) is pending or firing any more. */
  async function waitForResolved(name: string, what: string, timeoutMs = 20_000, labels: Record<string, string> = {}): Promise<void> {
    const matches = (a: PromAlert) => a.labels.alertname === name && Object.entries(labels).every(([k, v]) => a.labels[k] === v)
    await waitFor(async () => !(await alerts()).some(matches), {
      timeoutMs,
      intervalMs: 250,
      what: `${name} resolved (${what})`,
    })
  }
  const since = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(1)} s`

  before(async () => {
    assert.ok(fs.existsSync(SERVER_MAIN), `${SERVER_MAIN} is missing: run npm run build first`)
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-e2e-prom-'))
    volume = new KubeletVolume(path.join(dir, 'secret'))
    volume.writeKeyset(makeKeyset([keyA]))
    service = await startService({
      env: { CBC_JWT_BACKEND: 'file', CBC_JWT_KEYSET_FILE: volume.file(), CBC_JWT_REFRESH_INTERVAL_SECONDS: '1' },
    })
    instance = `127.0.0.1:${service.port}`
    volumeB = new KubeletVolume(path.join(dir, 'secret-b'))
    serviceB = await startService({
      env: { CBC_JWT_BACKEND: 'file', CBC_JWT_KEYSET_FILE: volumeB.file(), CBC_JWT_REFRESH_INTERVAL_SECONDS: '1' },
      waitFor: 'alive',
    })
    instanceB = `127.0.0.1:${serviceB.port}`

    fs.writeFileSync(path.join(dir, 'rules.yml'), compressedRules(fs.readFileSync(RULES_FILE, 'utf8')))
    fs.writeFileSync(
      path.join(dir, 'prometheus.yml'),
      YAML.stringify({
        global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
        rule_files: [path.join(dir, 'rules.yml')],
        scrape_configs: [{ job_name: 'cbc-jwt', static_configs: [{ targets: [instance, instanceB] }] }],
      }),
    )
    const port = await freePort()
    promUrl = `http://127.0.0.1:${port}`
    try {
      prometheus = spawn(
        'prometheus',
        [
          `--config.file=${path.join(dir, 'prometheus.yml')}`,
          `--storage.tsdb.path=${path.join(dir, 'data')}`,
          `--web.listen-address=127.0.0.1:${port}`,
          '--log.level=warn',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      )
    } catch (err) {
      assert.fail(`cannot start prometheus (${(err as Error).message}): install the Debian package \`prometheus\``)
    }
    const spawned = await new Promise<Error | undefined>((resolve) => {
      prometheus!.once('error', resolve)
      prometheus!.once('spawn', () => resolve(undefined))
    })
    if (spawned) assert.fail(`cannot start prometheus (${spawned.message}): install the Debian package \`prometheus\` (apt-get install -y prometheus)`)
    prometheus.stdout!.on('data', (d: Buffer) => (promOutput += d))
    prometheus.stderr!.on('data', (d: Buffer) => (promOutput += d))
    await waitFor(async () => (await fetch(`${promUrl}/-/ready`)).status === 200, { timeoutMs: 15_000, intervalMs: 200, what: 'prometheus ready' })
    const groups = (await prom<{ groups: Array<{ rules: unknown[] }> }>('/api/v1/rules')).groups
    const shipped = (YAML.parse(fs.readFileSync(RULES_FILE, 'utf8')) as { groups: Array<{ rules: unknown[] }> }).groups.flatMap((g) => g.rules)
    assert.ok(shipped.length >= 8, 'the shipped rules file holds the alerts')
    assert.equal(groups.flatMap((g) => g.rules).length, shipped.length, 'the compressed rules are loaded')
    await waitFor(async () => (await query('up{job="cbc-jwt"} == 1')).length === 2, { timeoutMs: 10_000, intervalMs: 200, what: 'both targets up' })
  })

  after(async () => {
    await Promise.all([service?.stop(), serviceB?.stop()])
    if (prometheus && prometheus.exitCode === null && prometheus.signalCode === null) {
      const exited = new Promise((resolve) => prometheus!.once('exit', resolve))
      prometheus.kill('SIGTERM')
      const timer = setTimeout(() => prometheus!.kill('SIGKILL'), 3000)
      await exited
      clearTimeout(timer)
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
  })

  test('the compressed rules differ from the shipped ones only in durations', () => {
    const shipped = fs.readFileSync(RULES_FILE, 'utf8')
    const squash = (text: string) =>
      (YAML.parse(text) as { groups: Array<{ rules: Array<Record<string, unknown>> }> }).groups.flatMap((g) =>
        g.rules.map((r) => ({ ...r, for: r.for ? 'D' : undefined, expr: String(r.expr).replace(/\b\d+[smhdwy]\b/g, 'D') })),
      )
    assert.deepEqual(squash(compressedRules(shipped)), squash(shipped))
    assert.match(compressedRules(shipped), /rate\(cbc_jwt_auth_failures_total\[60s\] offset 5s\)/)
  })

  // The drill: such a replica was paged "keeps using the last good keyset … 20787d ago".
  test('a replica that never loaded a keyset fires JWTNoKeysLoaded, not JWTKeysetStale', async (t) => {
    const t0 = Date.now()
    const noKeys = await waitForAlert('JWTNoKeysLoaded', 'replica B has no keyset', 15_000, { instance: instanceB })
    t.diagnostic(`JWTNoKeysLoaded firing for the replica without a keyset ${since(t0)} after the test began`)
    assert.equal(noKeys.labels.severity, 'critical')
    // Both conditions hold from B's first scrape and both wait 2 s: had JWTKeysetStale
    // counted the never-set timestamp (0), it would be firing by now, a margin (three
    // evaluations of every rule) later.
    await evaluations(3)
    const active = await alerts()
    assert.deepEqual(
      active.filter((a) => a.labels.alertname === 'JWTKeysetStale'),
      [],
      'JWTKeysetStale for a replica that never read its keyset',
    )
    assert.ok(!active.some((a) => a.labels.instance === instance), `the healthy replica raises nothing: ${JSON.stringify(active.map((a) => a.labels))}`)
    // B gets the same keyset as A and is restarted on the same address (same instance), so
    // its error counter starts again from 0: both healthy from here on.
    volumeB.writeKeyset(makeKeyset([keyA]))
    await serviceB!.stop()
    serviceB = await startService({
      env: { CBC_JWT_BACKEND: 'file', CBC_JWT_KEYSET_FILE: volumeB.file(), CBC_JWT_REFRESH_INTERVAL_SECONDS: '1', PORT: String(serviceB!.port) },
      timeoutMs: 40_000,
    })
  })

  test('a healthy service raises no alert', async () => {
    // JWTMetricsAbsent may be pending from before the first scrape, and replica B's alerts
    // of the test before take 5 s to resolve; they must all clear.
    await waitFor(async () => (await alerts()).length === 0, { timeoutMs: 20_000, intervalMs: 250, what: 'no active alert' })
    await evaluations(2)
    assert.deepEqual(
      (await alerts()).map((a) => a.labels.alertname),
      [],
    )
  })

  test('a burst of forged tokens fires JWTAuthFailureSpike for bad_signature', async (t) => {
    const forger = makeKey('ES256', keyA.kid) // right kid, wrong key
    const forged = signToken(forger, validClaims())
    let stop = false
    let sent = 0
    const reasons = new Set<string>()
    const load = (async () => {
      const deadline = Date.now() + 25_000
      while (!stop && Date.now() < deadline) {
        const answers = await Promise.all(Array.from({ length: 10 }, () => service!.get('/v1/whoami', { authorization: `Bearer ${forged}` })))
        for (const a of answers) reasons.add(`${a.status} ${a.json?.reason}`)
        sent += answers.length
        await sleep(250)
      }
    })()
    const t0 = Date.now()
    try {
      const alert = await waitForAlert('JWTAuthFailureSpike', 'forged tokens', 25_000)
      t.diagnostic(`JWTAuthFailureSpike firing ${since(t0)} after the burst began (${sent} forged tokens)`)
      assert.equal(alert.labels.reason, 'bad_signature')
      assert.equal(alert.labels.job, 'cbc-jwt')
      assert.equal(alert.labels.instance, instance, 'the page names the replica')
      assert.equal(alert.labels.severity, 'warning')
      assert.equal(alert.annotations.runbook_url, 'https://github.com/cbc-omega2/cbc-jwt/blob/main/docs/runbook.md#jwtauthfailurespike')
      assert.match(alert.annotations.summary!, new RegExp(`reason bad_signature on ${instance}`))
      assert.match(alert.annotations.description!, new RegExp(`^${instance} rejects [\\d.]+ tokens/s with reason \`bad_signature\` \\(the job: [\\d.]+/s\\)`))
    } finally {
      stop = true
      await load
    }
    assert.deepEqual([...reasons], ['401 bad_signature'])
    const spikes = (await alerts()).filter((a) => a.labels.alertname === 'JWTAuthFailureSpike')
    assert.deepEqual(
      spikes.map((a) => [a.labels.instance, a.labels.reason]),
      [[instance, 'bad_signature']],
      'no other reason or replica spikes',
    )
    const t1 = Date.now()
    await waitForResolved('JWTAuthFailureSpike', 'the burst stopped', 25_000)
    t.diagnostic(`JWTAuthFailureSpike resolved ${since(t1)} after the burst stopped`)
  })

  // The drill: "one replica rejects all legitimate traffic" was invisible in a page summed
  // over the job. Replica B gets a keyset without A's key; legitimate tokens go to both.
  test('one replica rejecting every legitimate token is paged with its instance, the other is not', async (t) => {
    volumeB.writeKeyset(makeKeyset([keyOther]))
    await waitFor(async () => (await serviceB!.get('/readyz')).json?.current === keyOther.kid, { timeoutMs: 10_000, what: 'replica B on the other keyset' })
    const legit = signToken(keyA, validClaims())
    let stop = false
    const answers = { a: new Set<string>(), b: new Set<string>() }
    const load = (async () => {
      const deadline = Date.now() + 25_000
      while (!stop && Date.now() < deadline) {
        const [a, b] = await Promise.all([
          Promise.all(Array.from({ length: 5 }, () => service!.get('/v1/whoami', { authorization: `Bearer ${legit}` }))),
          Promise.all(Array.from({ length: 5 }, () => serviceB!.get('/v1/whoami', { authorization: `Bearer ${legit}` }))),
        ])
        for (const r of a) answers.a.add(`${r.status} ${r.json?.reason ?? ''}`.trim())
        for (const r of b) answers.b.add(`${r.status} ${r.json?.reason ?? ''}`.trim())
        await sleep(250)
      }
    })()
    const t0 = Date.now()
    try {
      const alert = await waitForAlert('JWTAuthFailureSpike', 'legitimate tokens rejected on replica B', 25_000, { instance: instanceB })
      t.diagnostic(`JWTAuthFailureSpike for replica B firing ${since(t0)} after the traffic began`)
      assert.equal(alert.labels.reason, 'unknown_kid')
      assert.match(alert.annotations.description!, new RegExp(`^${instanceB} rejects`))
    } finally {
      stop = true
      await load
    }
    assert.deepEqual([...answers.a], ['200'], 'replica A accepts them')
    assert.deepEqual([...answers.b], ['401 unknown_kid'], 'replica B rejects them')
    const spikes = (await alerts()).filter((a) => a.labels.alertname === 'JWTAuthFailureSpike')
    assert.deepEqual(
      spikes.map((a) => a.labels.instance),
      [instanceB],
      'only replica B is paged',
    )
    volumeB.writeKeyset(makeKeyset([keyA]))
    await waitForResolved('JWTAuthFailureSpike', 'replica B has the keyset again', 25_000, { instance: instanceB })
  })

  test('an unreadable keyset fires JWTSecretsBackendErrors, then JWTKeysetStale; the last good keyset stays in force', async (t) => {
    const t0 = Date.now()
    volume.writeKeyset('{"version": 1, "current": ')
    const alert = await waitForAlert('JWTSecretsBackendErrors', 'invalid JSON in the volume', 15_000, { instance })
    t.diagnostic(`JWTSecretsBackendErrors firing ${since(t0)} after the keyset broke`)
    assert.equal(alert.labels.reason, undefined, 'summed over reasons')
    assert.equal(alert.labels.severity, 'warning')
    // One incident, named by its reason; the count of failed reads is not a number of incidents.
    assert.match(
      alert.annotations.description!,
      new RegExp(
        `^${instance} is failing to load key material \\(reason invalid_json\\): its keyset, or a trusted issuer's JWK Set; .*not how many incidents there are`,
      ),
    )
    const errors = await query(`cbc_jwt_backend_errors_total{job="cbc-jwt", reason="invalid_json"} > 0`)
    assert.equal(errors.length, 1)
    const whoami = await service!.get('/v1/whoami', { authorization: `Bearer ${signToken(keyA, validClaims())}` })
    assert.equal(whoami.status, 200, 'tokens of the last good keyset still verify')
    const stale = await waitForAlert('JWTKeysetStale', 'no successful read for 5 × 1 s', 20_000, { instance })
    t.diagnostic(`JWTKeysetStale firing ${since(t0)} after the keyset broke`)
    assert.equal(stale.labels.severity, 'warning')
    // "last read … ago": a few seconds, not decades.
    assert.match(stale.annotations.description!, new RegExp(`^${instance} last read its secrets backend successfully [\\d.]+s ago\\.`))
  })

  test('a current key created 8 days ago fires JWTKeyAgeExceeded', async (t) => {
    const t0 = Date.now()
    volume.writeKeyset(makeKeyset([{ key: keyOld, opts: { createdAt: new Date(Date.now() - 8 * DAY) } }, keyA]))
    const alert = await waitForAlert('JWTKeyAgeExceeded', 'an 8-day-old current key', 20_000, { kid: keyOld.kid })
    t.diagnostic(`JWTKeyAgeExceeded firing ${since(t0)} after the old key became current`)
    assert.ok(Number(alert.value) > 8 * 86_400 - 60, `value ${alert.value}`)
    assert.equal(alert.annotations.runbook_url, 'https://github.com/cbc-omega2/cbc-jwt/blob/main/docs/runbook.md#jwtkeyageexceeded')
    assert.match(alert.annotations.summary!, new RegExp(keyOld.kid))
  })

  test('a rotation resolves JWTKeyAgeExceeded: the new kid on the gauge, the old series gone', async (t) => {
    const t0 = Date.now()
    const rotationsBefore = Number((await query(`cbc_jwt_key_rotations_total{job="cbc-jwt",instance="${instance}"}`))[0]!.value[1])
    volume.writeKeyset(
      makeKeyset([
        { key: keyNew, opts: { createdAt: new Date() } },
        { key: keyOld, opts: { createdAt: new Date(Date.now() - 8 * DAY), notAfter: new Date(Date.now() + DAY) } },
      ]),
    )
    await waitFor(async () => !(await alerts()).some((a) => a.labels.alertname === 'JWTKeyAgeExceeded'), {
      timeoutMs: 15_000,
      intervalMs: 250,
      what: 'JWTKeyAgeExceeded resolved',
    })
    t.diagnostic(`JWTKeyAgeExceeded resolved ${since(t0)} after the rotation`)
    const ages = await query(`cbc_jwt_active_key_age_seconds{job="cbc-jwt",instance="${instance}"}`)
    assert.deepEqual(
      ages.map((s) => s.metric.kid),
      [keyNew.kid],
    )
    assert.ok(Number(ages[0]!.value[1]) < 60, `age ${ages[0]!.value[1]}`)
    assert.deepEqual(await query(`cbc_jwt_active_key_age_seconds{kid="${keyOld.kid}"}`), [])
    await waitFor(async () => Number((await query(`cbc_jwt_key_rotations_total{job="cbc-jwt",instance="${instance}"}`))[0]!.value[1]) === rotationsBefore + 1, {
      timeoutMs: 5000,
      what: 'cbc_jwt_key_rotations_total +1',
    })
    assert.equal((await query(`cbc_jwt_keys_loaded{job="cbc-jwt",instance="${instance}"}`))[0]!.value[1], '2')
    const legacy = await service!.get('/v1/whoami', { authorization: `Bearer ${signToken(keyOld, validClaims())}` })
    assert.equal(legacy.status, 200, 'the retired key still verifies until not_after')
    // The valid keyset also ended the backend errors of the test before: those alerts resolve too.
    await waitForResolved('JWTSecretsBackendErrors', 'a valid keyset is back', 20_000)
    t.diagnostic(`JWTSecretsBackendErrors resolved ${since(t0)} after the valid keyset was published`)
    await waitForResolved('JWTKeysetStale', 'reads succeed again', 20_000)
  })

  test('every Grafana dashboard query runs on the real Prometheus and finds series', async () => {
    const dashboard = JSON.parse(fs.readFileSync(DASHBOARD_FILE, 'utf8')) as {
      panels: Array<{ title: string; targets?: Array<{ expr: string }>; panels?: unknown[] }>
      templating: { list: Array<{ name: string; type: string; definition?: string }> }
    }
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })))
    assert.ok(exprs.length >= 8)
    for (const { panel, expr } of exprs) {
      const q = expr.replaceAll('$__rate_interval', '5s').replaceAll('$__range', '1m').replaceAll('$job', 'cbc-jwt').replaceAll('$instance', '.*')
      const result = await query(q)
      // These services trust no other issuer, so the per-issuer panels have no series here:
      // the query must still run (a PromQL error throws); the trusted-issuer tests fill them.
      if (q.includes('cbc_jwt_trusted_issuer_')) continue
      assert.ok(result.length > 0, `${panel}: ${q} returned nothing`)
    }
    for (const v of dashboard.templating.list.filter((v) => v.type === 'query')) {
      const m = /^label_values\((.+),\s*(\w+)\)$/.exec(v.definition!)!
      const selector = m[1]!.replaceAll('$job', 'cbc-jwt')
      const values = await prom<string[]>(`/api/v1/label/${m[2]}/values?match[]=${encodeURIComponent(selector)}`)
      assert.ok(values.includes(m[2] === 'job' ? 'cbc-jwt' : instance), `variable ${v.name}: ${values.join(', ')}`)
    }
  })

  test('when the service goes away, JWTTargetDown and JWTMetricsAbsent fire', async (t) => {
    const t0 = Date.now()
    await service!.stop()
    const down = await waitForAlert('JWTTargetDown', 'service stopped', 15_000, { instance })
    t.diagnostic(`JWTTargetDown firing ${since(t0)} after the service stopped`)
    assert.equal(down.labels.severity, 'warning')
    assert.deepEqual(
      (await query('up{job="cbc-jwt"} == 1')).map((s) => s.metric.instance),
      [instanceB],
      'the other replica is still up',
    )
    await serviceB!.stop()
    const absent = await waitForAlert('JWTMetricsAbsent', 'service stopped', 15_000, { job: 'cbc-jwt' })
    t.diagnostic(`JWTMetricsAbsent firing ${since(t0)} after the service stopped`)
    assert.equal(absent.labels.severity, 'critical')
  })
})
