/**
 * End to end, what the on-call receives for the fleet-wide causes: real replicas scraped by a
 * real Prometheus running the shipped rules, feeding a real Alertmanager running the shipped
 * routes and inhibitions, whose receivers are a loopback webhook (test/support/alert-pipeline.ts).
 * Durations are compressed 60× on both sides alike (the rules' `for:` and windows, the routes'
 * group_wait), so a cause and its symptoms reach Alertmanager in the order they would in
 * production; one timing field more is shortened in the test's copy of the configuration,
 * group_interval (5 s compressed) to 1 s: it only sets how soon a group already looked at is
 * looked at again, so a lapse of an inhibition shows sooner and "never delivered" takes
 * 4 s less to establish in each case. Two fleets of two replicas under the job `cbc-jwt`:
 * `cbc`, whose replicas read one keyset object (as they do through the API watch or Vault),
 * and `orders`, with its own.
 *
 * - The keyset object of `cbc` is deleted while its replicas run: one page, JWTKeysetObjectGone,
 *   with what its runbook section promises; the backend errors and staleness it explains
 *   never reach a receiver.
 * - At the same time, `orders`' keyset turns unreadable on both replicas: their backend errors
 *   are grouped into one ticket, sent once the route's group_wait has passed, and not
 *   silenced by the other fleet's cause.
 * - Every replica stops: one page, JWTMetricsAbsent; the targets down it explains never reach
 *   a receiver.
 *
 * What it caught: at a warning group_wait of 6m the backend-error tickets went out beside the
 * JWTKeysetObjectGone page (the cause starts its `for:` only once the last replica's failure
 * is evaluated); and once the replicas stopped, JWTKeysetObjectGone resolved while the backend
 * errors it silences still fired, and they went out as tickets.
 * test/e2e/alertmanager-inhibition.test.ts covers the per-replica causes the same way.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { matches, startAlertPipeline, type AlertMatch, type AlertPipeline } from '../support/alert-pipeline.js'
import type { Notification } from '../support/alert-webhook.js'
import { makeKey, makeKeyset, signToken, validClaims } from '../support/keys.js'
import { anchors } from '../support/markdown.js'
import { readRunbook, runbookSection } from '../support/runbook.js'
import { SERVER_MAIN, startService, type RunningService } from '../support/service.js'

const RUNBOOK_URL = 'https://github.com/cbc-omega2/cbc-jwt/blob/main/docs/runbook.md'

/** Writes `text` to `file` whole (a rename), so that no read sees half of it. */
function publish(file: string, text: string): void {
  fs.writeFileSync(`${file}.tmp`, text)
  fs.renameSync(`${file}.tmp`, file)
}

/** The one firing alert of `notification` with these labels. */
function firing(notification: Notification, match: AlertMatch) {
  const found = notification.alerts.filter((a) => a.status === 'firing' && matches(a.labels, match))
  assert.equal(found.length, 1, JSON.stringify(notification.alerts.map((a) => a.labels)))
  return found[0]!
}

/** What the runbook section of `alertname` promises: its anchor exists and its severity is the label's. */
function assertRunbookPromise(alert: { labels: Record<string, string>; annotations: Record<string, string> }) {
  const alertname = alert.labels.alertname!
  const anchor = alertname.toLowerCase()
  assert.equal(alert.annotations.runbook_url, `${RUNBOOK_URL}#${anchor}`)
  const runbook = readRunbook()
  assert.equal(anchors(runbook).get(anchor), alertname, `docs/runbook.md has a section for ${alertname}`)
  const severity = /Severity\s+`(\w+)`/.exec(runbookSection(runbook, alertname))?.[1]
  assert.equal(alert.labels.severity, severity, `the severity docs/runbook.md gives ${alertname}`)
}

describe('fleet-wide causes through a real Prometheus and Alertmanager: what the on-call receives', { timeout: 120_000 }, () => {
  let dir: string
  let p: AlertPipeline | undefined
  const services: RunningService[] = []
  /** The `cbc` fleet's one keyset object, read by both of its replicas. */
  let cbcKeyset: string
  let ordersKeyset: string
  let cbc: string[]
  let orders: string[]
  const keyCbc = makeKey('ES256', 'k-fleet-cbc')
  const keyOrders = makeKey('ES256', 'k-fleet-orders')

  before(async () => {
    assert.ok(fs.existsSync(SERVER_MAIN), `${SERVER_MAIN} is missing: run npm run build first`)
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-e2e-fleet-alerts-'))
    cbcKeyset = path.join(dir, 'cbc-secrets', 'jwt-keyset')
    ordersKeyset = path.join(dir, 'orders-secrets', 'jwt-keyset')
    fs.mkdirSync(path.dirname(cbcKeyset))
    fs.mkdirSync(path.dirname(ordersKeyset))
    publish(cbcKeyset, JSON.stringify(makeKeyset([keyCbc])))
    publish(ordersKeyset, JSON.stringify(makeKeyset([keyOrders])))
    const env = (file: string) => ({ CBC_JWT_BACKEND: 'file', CBC_JWT_KEYSET_FILE: file, CBC_JWT_REFRESH_INTERVAL_SECONDS: '1' })
    services.push(...(await Promise.all([cbcKeyset, cbcKeyset, ordersKeyset, ordersKeyset].map((file) => startService({ env: env(file) })))))
    const instances = services.map((s) => `127.0.0.1:${s.port}`)
    cbc = instances.slice(0, 2)
    orders = instances.slice(2)
    p = await startAlertPipeline({
      dir: path.join(dir, 'pipeline'),
      targets: cbc,
      labels: { namespace: 'cbc' },
      groups: [{ targets: orders, labels: { namespace: 'orders' } }],
      groupInterval: '1s',
    })
  })

  after(async () => {
    await Promise.all(services.map((s) => s.stop()))
    await p?.stop()
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
  })

  describe('while both fleets run', { concurrency: true }, () => {
    test('the keyset object gone: one page for the fleet, as its runbook section says; its backend errors and staleness never arrive', async (t) => {
      const t0 = Date.now()
      fs.rmSync(cbcKeyset)
      const page = await p!.waitForDelivery('cbc-jwt-page', { alertname: 'JWTKeysetObjectGone', namespace: 'cbc' })
      t.diagnostic(`JWTKeysetObjectGone paged ${((page.receivedAt - t0) / 1000).toFixed(1)} s after the keyset object was deleted`)
      // One alert for the fleet, not one per replica.
      const alert = firing(page, { alertname: 'JWTKeysetObjectGone' })
      assert.equal(page.alerts.length, 1)
      assert.deepEqual(alert.labels, { alertname: 'JWTKeysetObjectGone', job: 'cbc-jwt', namespace: 'cbc', severity: 'critical' })
      assertRunbookPromise(alert)
      assert.equal(alert.annotations.summary, 'The keyset object is gone: every cbc-jwt replica serves its last good keyset.')
      assert.match(
        alert.annotations.description!,
        /^Every replica of cbc-jwt with keys has failed to read the keyset with not_found for 5 minutes \(2 replicas\)\. They keep serving the keys in memory; a restarted pod would load nothing\. Restore the keyset \(cbc-jwt keyset restore\) before anything restarts\.$/,
      )
      // What it says holds: the replicas still accept the fleet's tokens.
      const token = signToken(keyCbc, validClaims())
      for (const s of services.slice(0, 2)) assert.equal((await s.get('/v1/whoami', { authorization: `Bearer ${token}` })).status, 200)

      const objectGone = (c: { labels: Record<string, string> }) => matches(c.labels, { alertname: 'JWTKeysetObjectGone', namespace: 'cbc' })
      const symptoms: AlertMatch[] = []
      for (const instance of cbc) {
        const errors = { alertname: 'JWTSecretsBackendErrors', instance }
        await p!.silencedBy(errors, objectGone)
        // Alertmanager names one cause: here the replica's own backend errors come first.
        const stale = { alertname: 'JWTKeysetStale', instance }
        await p!.silencedBy(stale, (c) => objectGone(c) || matches(c.labels, errors))
        symptoms.push(errors, stale)
      }
      await p!.pastDelivery('cbc-jwt-ticket', Math.max(...(await Promise.all(symptoms.map((m) => p!.heldSince(m))))))
      const reached = p!.webhook
        .notifications()
        .flatMap((n) =>
          n.alerts.filter((a) => symptoms.some((m) => matches(a.labels, m))).map((a) => `${n.receiver}: ${a.labels.alertname} ${a.labels.instance}`),
        )
      assert.deepEqual(reached, [], 'symptoms of the deleted keyset object that reached a receiver')
    })

    test("backend errors on both replicas of a fleet: one ticket naming both, once the route's group_wait has passed", async () => {
      const t0 = Date.now()
      publish(ordersKeyset, '{"version": 1, "current": ')
      const ticket = await p!.waitForDelivery('cbc-jwt-ticket', { alertname: 'JWTSecretsBackendErrors', namespace: 'orders' })
      assert.deepEqual(ticket.groupLabels, { alertname: 'JWTSecretsBackendErrors', namespace: 'orders', job: 'cbc-jwt' })
      assert.deepEqual(
        ticket.alerts.map((a) => [a.status, a.labels.instance]).sort(),
        orders.map((i) => ['firing', i]).sort(),
        'both replicas, in the first notification',
      )
      for (const instance of orders) {
        const alert = firing(ticket, { instance })
        assertRunbookPromise(alert)
        assert.match(alert.annotations.description!, new RegExp(`^${instance} is failing to load key material \\(reason invalid_json\\)`))
      }
      // Not before the group_wait (it counts from when the first of them reached Alertmanager,
      // after t0): the symptom waits for a cause that could silence it.
      const { groupWaitMs } = p!.timingsOf('cbc-jwt-ticket')
      assert.ok(ticket.receivedAt - t0 >= groupWaitMs, `sent ${ticket.receivedAt - t0} ms after the keyset broke, group_wait ${groupWaitMs} ms`)
    })
  })

  test('metrics absent: one page for the job; the targets down it explains never arrive', async (t) => {
    const t0 = Date.now()
    await Promise.all(services.map((s) => s.stop()))
    const page = await p!.waitForDelivery('cbc-jwt-page', { alertname: 'JWTMetricsAbsent' })
    t.diagnostic(`JWTMetricsAbsent paged ${((page.receivedAt - t0) / 1000).toFixed(1)} s after every replica stopped`)
    const alert = firing(page, { alertname: 'JWTMetricsAbsent' })
    assert.deepEqual(alert.labels, { alertname: 'JWTMetricsAbsent', job: 'cbc-jwt', severity: 'critical' })
    assertRunbookPromise(alert)
    assert.equal(alert.annotations.summary, 'Prometheus receives no cbc-jwt metrics.')
    assert.match(
      alert.annotations.description!,
      /^No series of cbc_jwt_keys_loaded\{job="cbc-jwt"\} for 5 minutes\. The JWT alerts cannot fire while this lasts/,
    )

    const down = [...cbc, ...orders].map((instance) => ({ alertname: 'JWTTargetDown', instance }))
    for (const m of down) await p!.silencedBy(m, (c) => matches(c.labels, { alertname: 'JWTMetricsAbsent', job: 'cbc-jwt' }))
    await p!.pastDelivery('cbc-jwt-ticket', Math.max(...(await Promise.all(down.map((m) => p!.heldSince(m))))))
    assert.deepEqual(
      down.filter((m) => p!.delivered(m)),
      [],
      'targets down that reached a receiver',
    )
    // Everything the on-call received, firing: the three causes' notifications, nothing else.
    const received = [
      ...new Set(
        p!.webhook
          .notifications()
          .flatMap((n) =>
            n.alerts
              .filter((a) => a.status === 'firing')
              .map((a) => `${n.receiver} ${a.labels.alertname} ${a.labels.namespace ?? ''} ${a.labels.instance ?? ''}`.trim()),
          ),
      ),
    ].sort()
    assert.deepEqual(
      received,
      [
        'cbc-jwt-page JWTKeysetObjectGone cbc',
        'cbc-jwt-page JWTMetricsAbsent',
        ...orders.map((i) => `cbc-jwt-ticket JWTSecretsBackendErrors orders ${i}`),
      ].sort(),
    )
  })
})
