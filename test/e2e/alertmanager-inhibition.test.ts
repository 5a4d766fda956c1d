/**
 * End to end: the shipped rules, evaluated by a real Prometheus against two real replicas,
 * feed a real Alertmanager running the shipped configuration; its receivers are a loopback
 * webhook (test/support/alert-pipeline.ts). Time is compressed 60× on both sides alike (the
 * rules' `for:` and windows, the routes' group_wait and group_interval:
 * test/support/time-compression.ts), so a cause and its
 * symptoms reach Alertmanager in the order they would in production. Each condition is caused
 * for real: a replica whose only key passes its not_after (it has no key left, counts every
 * token it rejects, then cannot read its keyset either), an unreadable keyset on the other,
 * forged tokens on both. Seen through the webhook (what was delivered) and Alertmanager's API
 * (what is inhibited, and by which alert).
 *
 * JWTMetricsAbsent silencing JWTTargetDown, and JWTKeysetObjectGone its symptoms, are
 * caused for real in test/e2e/alertmanager-fleet-causes.test.ts.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { matches, startAlertPipeline, type AlertPipeline } from '../support/alert-pipeline.js'
import { makeKey, makeKeyset, signToken, validClaims } from '../support/keys.js'
import { KubeletVolume } from '../support/kubelet-volume.js'
import { SERVER_MAIN, startService, type RunningService } from '../support/service.js'

describe('the shipped alerts through a real Alertmanager: the cause pages, its symptoms are silenced', { timeout: 120_000 }, () => {
  let dir: string
  let p: AlertPipeline | undefined
  let serviceA: RunningService | undefined
  /** Its only key passes its not_after soon after the start: then it has none. */
  let serviceB: RunningService | undefined
  let volumeA: KubeletVolume
  let volumeB: KubeletVolume
  let instanceA: string
  let instanceB: string
  const keyA = makeKey('ES256', 'k-am-a')
  const keyB = makeKey('ES256', 'k-am-b')

  const on = (alertname: string, instance: string) => ({ alertname, instance })

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
    const env = (volume: KubeletVolume) => ({ CBC_JWT_BACKEND: 'file', CBC_JWT_KEYSET_FILE: volume.file(), CBC_JWT_REFRESH_INTERVAL_SECONDS: '1' })
    ;[serviceA, serviceB] = await Promise.all([startService({ env: env(volumeA) }), startService({ env: env(volumeB) })])
    instanceA = `127.0.0.1:${serviceA.port}`
    instanceB = `127.0.0.1:${serviceB.port}`
    p = await startAlertPipeline({ dir: path.join(dir, 'pipeline'), targets: [instanceA, instanceB], labels: { namespace: 'cbc' } })
  })

  after(async () => {
    await Promise.all([serviceA?.stop(), serviceB?.stop()])
    await p?.stop()
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
  })

  test("a replica without keys pages once; its rejections and failed reads are silenced, the other replica's are not", async (t) => {
    await p!.waitForDelivery('cbc-jwt-page', on('JWTNoKeysLoaded', instanceB))
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
      await p!.silencedBy(on('JWTAuthFailureSpike', instanceB), (c) => matches(c.labels, on('JWTNoKeysLoaded', instanceB)))
      await p!.silencedBy(on('JWTSecretsBackendErrors', instanceB), (c) => matches(c.labels, on('JWTNoKeysLoaded', instanceB)))
      await p!.silencedBy(on('JWTKeysetStale', instanceB), (c) => matches(c.labels, on('JWTNoKeysLoaded', instanceB)))
      await p!.silencedBy(on('JWTKeysetStale', instanceA), (c) => matches(c.labels, on('JWTSecretsBackendErrors', instanceA)))
      // The same symptoms on A, whose cause is not B's, are delivered (in the groups B's are in).
      await p!.waitForDelivery('cbc-jwt-ticket', on('JWTSecretsBackendErrors', instanceA))
      await p!.waitForDelivery('cbc-jwt-ticket', on('JWTAuthFailureSpike', instanceA))
      const onA = await p!.am.alerts()
      assert.equal(onA.find((a) => matches(a.labels, on('JWTSecretsBackendErrors', instanceA)))?.status.state, 'active')
      assert.equal(onA.find((a) => matches(a.labels, on('JWTAuthFailureSpike', instanceA)))?.status.state, 'active')
      // Past the ticket route's group_wait and an interval for every silenced alert: still
      // not delivered, anywhere.
      const silenced: Array<[string, string]> = [
        ['JWTAuthFailureSpike', instanceB],
        ['JWTSecretsBackendErrors', instanceB],
        ['JWTKeysetStale', instanceB],
        ['JWTKeysetStale', instanceA],
      ]
      const heldAll = Math.max(...(await Promise.all(silenced.map(([alertname, instance]) => p!.heldSince(on(alertname, instance))))))
      await p!.pastDelivery('cbc-jwt-ticket', heldAll)
      const reached = (alertname: string, instance: string) =>
        p!.webhook.notifications().some((n) => n.alerts.some((a) => matches(a.labels, on(alertname, instance))))
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
