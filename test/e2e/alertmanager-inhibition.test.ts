/**
 * End to end: the shipped rules, evaluated by a real Prometheus against two real replicas,
 * feed a real Alertmanager running the shipped configuration; its receivers are a loopback
 * webhook. Time is compressed 60× on both sides alike (the rules' `for:` and windows, the
 * routes' group_wait and group_interval: test/support/time-compression.ts), so a cause and its
 * symptoms reach Alertmanager in the order they would in production. Each condition is caused
 * for real: a replica whose only key passes its not_after (it has no key left, counts every
 * token it rejects, then cannot read its keyset either), an unreadable keyset on the other,
 * forged tokens on both. Seen through the webhook (what was delivered) and Alertmanager's API
 * (what is inhibited, and by which alert).
 *
 * JWTMetricsAbsent silencing JWTTargetDown, and JWTKeysetObjectGone its symptoms, are
 * exercised on a real Alertmanager by test/deploy/alertmanager.test.ts: the waits they need
 * here would double this test's time.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { startAlertWebhook, type AlertWebhook } from '../support/alert-webhook.js'
import { startAlertmanager, type AlertmanagerAlert, type RunningAlertmanager } from '../support/alertmanager.js'
import { makeKey, makeKeyset, signToken, validClaims } from '../support/keys.js'
import { KubeletVolume } from '../support/kubelet-volume.js'
import { startPrometheus, type RunningPrometheus } from '../support/prometheus.js'
import { PROJECT_ROOT, SERVER_MAIN, startService, type RunningService } from '../support/service.js'
import YAML from 'yaml'
import { compressedAlertmanagerConfig, compressedRules } from '../support/time-compression.js'
import { waitFor } from '../support/wait.js'

type RouteTimings = { group_wait?: string; group_interval?: string }

const RULES_FILE = path.join(PROJECT_ROOT, 'deploy/prometheus/cbc-jwt.rules.yml')
const CONFIG_FILE = path.join(PROJECT_ROOT, 'deploy/alertmanager/cbc-jwt.alertmanager.yml')

describe('the shipped alerts through a real Alertmanager: the cause pages, its symptoms are silenced', { timeout: 120_000 }, () => {
  let dir: string
  let webhook: AlertWebhook | undefined
  let am: RunningAlertmanager | undefined
  let prom: RunningPrometheus | undefined
  let serviceA: RunningService | undefined
  /** Its only key passes its not_after soon after the start: then it has none. */
  let serviceB: RunningService | undefined
  let volumeA: KubeletVolume
  let volumeB: KubeletVolume
  let instanceA: string
  let instanceB: string
  const keyA = makeKey('ES256', 'k-am-a')
  const keyB = makeKey('ES256', 'k-am-b')

  const is = (labels: Record<string, string>, alertname: string, instance?: string) =>
    labels.alertname === alertname && (instance === undefined || labels.instance === instance)
  /** Whether a notification to `receiver` carried `alertname` (on `instance`) firing. */
  const delivered = (receiver: string, alertname: string, instance?: string) =>
    webhook!.notifications().some((n) => n.receiver === receiver && n.alerts.some((a) => a.status === 'firing' && is(a.labels, alertname, instance)))
  const waitForDelivery = (receiver: string, alertname: string, instance?: string) =>
    waitFor(() => delivered(receiver, alertname, instance), {
      timeoutMs: 30_000,
      intervalMs: 200,
      what: `${alertname}${instance ? ` on ${instance}` : ''} delivered to ${receiver}; delivered so far: ${JSON.stringify(webhook!.notifications().map((n) => [n.receiver, n.alerts.map((a) => `${a.labels.alertname} ${a.labels.instance ?? ''}`)]))}\n--- alertmanager ---\n${am!.output().slice(-1000)}`,
    })
  /** A time at which Alertmanager held the alert (one not yet through its pipeline is not held): at the latest, now. */
  const heldSince = async (alertname: string, instance?: string) => {
    await waitFor(async () => (await am!.alerts()).some((a) => is(a.labels, alertname, instance) && a.status.state !== 'unprocessed'), {
      timeoutMs: 30_000,
      intervalMs: 200,
      what: `${alertname}${instance ? ` on ${instance}` : ''} in Alertmanager\n--- prometheus ---\n${prom?.output().slice(-1000)}`,
    })
    return Date.now()
  }
  /** Waits until the alert is suppressed by one that `causes` accepts, and returns that one. */
  async function silencedBy(alertname: string, instance: string, causes: (cause: AlertmanagerAlert) => boolean): Promise<AlertmanagerAlert> {
    let seen: AlertmanagerAlert[] = []
    try {
      return await waitFor(
        async () => {
          seen = await am!.alerts()
          const alert = seen.find((a) => is(a.labels, alertname, instance))
          if (alert?.status.state !== 'suppressed') return undefined
          return seen.find((c) => alert.status.inhibitedBy.includes(c.fingerprint) && causes(c))
        },
        { timeoutMs: 30_000, intervalMs: 200, what: `${alertname} on ${instance} inhibited by its cause` },
      )
    } catch (err) {
      const held = seen.map((a) => `${a.labels.alertname} ${a.labels.instance ?? ''} ${a.status.state} ${a.status.inhibitedBy.join(',')} (${a.fingerprint})`)
      throw new Error(`${(err as Error).message}\nAlertmanager holds:\n${held.join('\n')}`)
    }
  }
  /**
   * Waits until an alert held since `since` has been held longer than the ticket route's
   * group_wait plus one group_interval (the test's copy): had it not been silenced, it would
   * have been delivered by then. The twin of "not delivered", tied to Alertmanager's own timers.
   */
  async function pastDelivery(since: number): Promise<void> {
    const seconds = (d: string) => Number.parseInt(d, 10)
    await sleep(Math.max(0, since + (seconds(ticketRoute.group_wait) + seconds(ticketRoute.group_interval) + 1) * 1000 - Date.now()))
  }
  let ticketRoute: { group_wait: string; group_interval: string }

  before(async () => {
    assert.ok(fs.existsSync(SERVER_MAIN), `${SERVER_MAIN} is missing: run npm run build first`)
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-e2e-am-'))
    volumeA = new KubeletVolume(path.join(dir, 'secret-a'))
    volumeA.writeKeyset(makeKeyset([keyA]))
    // A replica that never loaded a keyset answers 503 not_ready and counts no rejection; one
    // whose keys all passed their not_after is the one that rejects, and counts, every token.
    // Its key must still be valid when it starts (a keyset whose current key is past its
    // not_after is refused), and pass soon after.
    volumeB = new KubeletVolume(path.join(dir, 'secret-b'))
    volumeB.writeKeyset(makeKeyset([{ key: keyB, opts: { createdAt: new Date(), notAfter: new Date(Date.now() + 8000) } }]))
    webhook = await startAlertWebhook()
    const config = compressedAlertmanagerConfig(fs.readFileSync(CONFIG_FILE, 'utf8'), webhook.urlFor)
    const subtree = (YAML.parse(config) as { route: { routes: Array<RouteTimings & { routes: Array<RouteTimings & { receiver: string }> }> } }).route.routes[0]!
    const ticket = subtree.routes.find((r) => r.receiver === 'cbc-jwt-ticket')!
    ticketRoute = { group_wait: ticket.group_wait ?? subtree.group_wait!, group_interval: ticket.group_interval ?? subtree.group_interval! }
    const env = (volume: KubeletVolume) => ({ CBC_JWT_BACKEND: 'file', CBC_JWT_KEYSET_FILE: volume.file(), CBC_JWT_REFRESH_INTERVAL_SECONDS: '1' })
    ;[serviceA, serviceB, am] = await Promise.all([
      startService({ env: env(volumeA) }),
      startService({ env: env(volumeB) }),
      startAlertmanager(path.join(dir, 'alertmanager'), config),
    ])
    instanceA = `127.0.0.1:${serviceA.port}`
    instanceB = `127.0.0.1:${serviceB.port}`
    const rules = path.join(dir, 'rules.yml')
    fs.writeFileSync(rules, compressedRules(fs.readFileSync(RULES_FILE, 'utf8')))
    prom = await startPrometheus({
      dir: path.join(dir, 'prometheus'),
      job: 'cbc-jwt',
      targets: [instanceA, instanceB],
      labels: { namespace: 'cbc' },
      ruleFiles: [rules],
      alertmanager: am.url,
    })
  })

  after(async () => {
    await Promise.all([serviceA?.stop(), serviceB?.stop()])
    await prom?.stop()
    await am?.stop()
    await webhook?.close()
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
  })

  test("a replica without keys pages once; its rejections and failed reads are silenced, the other replica's are not", async (t) => {
    await waitForDelivery('cbc-jwt-page', 'JWTNoKeysLoaded', instanceB)
    t.diagnostic('JWTNoKeysLoaded paged for B once its key passed not_after')
    // Replica A keeps its keys but cannot read the keyset any more: its backend errors are not
    // B's to silence, and its staleness is its backend errors' to silence. B cannot read its
    // keyset either now: still the one page, JWTNoKeysLoaded (the first inhibition rule that
    // applies is the one Alertmanager names).
    volumeA.writeKeyset('{"version": 1, "current": ')
    volumeB.writeKeyset('{"version": 1, "current": ')
    // Forged tokens (A's kid, another key) to both: A rejects them as bad_signature, B — with
    // no key left — as unknown_kid. Each spikes on its own replica.
    const forged = signToken(makeKey('ES256', keyA.kid), validClaims())
    let stop = false
    const reasons = { a: new Set<string>(), b: new Set<string>() }
    const load = (async () => {
      const deadline = Date.now() + 60_000
      while (!stop && Date.now() < deadline) {
        const [a, b] = await Promise.all([
          Promise.all(Array.from({ length: 5 }, () => serviceA!.get('/v1/whoami', { authorization: `Bearer ${forged}` }))),
          Promise.all(Array.from({ length: 5 }, () => serviceB!.get('/v1/whoami', { authorization: `Bearer ${forged}` }))),
        ])
        for (const r of a) reasons.a.add(`${r.status} ${r.json?.reason}`)
        for (const r of b) reasons.b.add(`${r.status} ${r.json?.reason}`)
        await sleep(250)
      }
    })()
    try {
      await silencedBy('JWTAuthFailureSpike', instanceB, (c) => is(c.labels, 'JWTNoKeysLoaded', instanceB))
      await silencedBy('JWTSecretsBackendErrors', instanceB, (c) => is(c.labels, 'JWTNoKeysLoaded', instanceB))
      await silencedBy('JWTKeysetStale', instanceB, (c) => is(c.labels, 'JWTNoKeysLoaded', instanceB))
      await silencedBy('JWTKeysetStale', instanceA, (c) => is(c.labels, 'JWTSecretsBackendErrors', instanceA))
      // The same symptoms on A, whose cause is not B's, are delivered (in the groups B's are in).
      await waitForDelivery('cbc-jwt-ticket', 'JWTSecretsBackendErrors', instanceA)
      await waitForDelivery('cbc-jwt-ticket', 'JWTAuthFailureSpike', instanceA)
      const onA = await am!.alerts()
      assert.equal(onA.find((a) => is(a.labels, 'JWTSecretsBackendErrors', instanceA))?.status.state, 'active')
      assert.equal(onA.find((a) => is(a.labels, 'JWTAuthFailureSpike', instanceA))?.status.state, 'active')
      // Past the ticket route's group_wait and an interval for every silenced alert: still
      // not delivered, anywhere.
      const silenced: Array<[string, string]> = [
        ['JWTAuthFailureSpike', instanceB],
        ['JWTSecretsBackendErrors', instanceB],
        ['JWTKeysetStale', instanceB],
        ['JWTKeysetStale', instanceA],
      ]
      const heldAll = Math.max(...(await Promise.all(silenced.map(([alertname, instance]) => heldSince(alertname, instance)))))
      await pastDelivery(heldAll)
      const reached = (alertname: string, instance: string) => webhook!.notifications().some((n) => n.alerts.some((a) => is(a.labels, alertname, instance)))
      assert.deepEqual(
        silenced.filter(([alertname, instance]) => reached(alertname, instance)),
        [],
        'silenced alerts that reached a receiver',
      )
    } finally {
      stop = true
      await load
    }
    assert.deepEqual([...reasons.a], ['401 bad_signature'])
    assert.deepEqual([...reasons.b], ['401 unknown_kid'])
  })
})
