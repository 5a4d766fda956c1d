import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import { after, before, describe, it } from 'node:test'
import { type ContainedState, describeContainment, waitForContainment } from '../../../src/ops/fleet/containment.js'
import type { FleetSource, ReplicaState } from '../../../src/ops/fleet/fleet.js'
import { createPrometheusFleet } from '../../../src/ops/fleet/prometheus.js'
import { createReplicaFleet } from '../../../src/ops/fleet/replicas.js'
import { freePort } from '../../support/free-port.js'

/** A /v1/keys body: `current` current, `leaked` still verifying when given, that revoked_before. */
const keysBody = (o: { current: string; leaked?: string; revokedBefore: string }) =>
  JSON.stringify({
    current: o.current,
    revoked_before: o.revokedBefore,
    revocation_rules: 0,
    revocations_newest: null,
    keys: [
      { kid: o.current, alg: 'ES256', status: 'current', verifies: true },
      ...(o.leaked ? [{ kid: o.leaked, alg: 'ES256', status: 'verify-only', verifies: true }] : []),
    ],
  })
const CONTAINED = keysBody({ current: 'k-new', revokedBefore: '2026-11-25T20:00:00Z' })
const OLD = keysBody({ current: 'k-leaked', leaked: 'k-new', revokedBefore: '2026-11-20T00:00:00Z' })
const WANT = { current: 'k-new', gone: ['k-leaked'], revokedBefore: Date.parse('2026-11-25T20:00:00Z') / 1000 }

/** Real loopback servers, each answering /v1/keys its own way. */
describe('waiting for containment (--wait) on replicas asked directly', () => {
  const closers: Array<() => void> = []
  const serve = async (answer: (res: http.ServerResponse) => void): Promise<string> => {
    const server = http.createServer((_req, res) => answer(res))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    closers.push(() => server.closeAllConnections())
    closers.push(() => server.close())
    return `http://127.0.0.1:${(server.address() as { port: number }).port}`
  }
  let good: string[]
  let hung: string
  before(async () => {
    good = [await serve((res) => res.writeHead(200).end(CONTAINED)), await serve((res) => res.writeHead(200).end(CONTAINED))]
    // Accepts the connection, reads the request, never answers: a replica stuck under load.
    const sockets: net.Socket[] = []
    const server = net.createServer((s) => {
      sockets.push(s)
      s.on('data', () => {})
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    closers.push(() => server.close())
    closers.push(() => {
      for (const s of sockets) s.destroy()
    })
    hung = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  })
  after(() => {
    for (const close of closers) close()
  })

  it('a replica that never answers neither delays the times of the others nor stretches the wait', async () => {
    const started = Date.now()
    const report = await waitForContainment(createReplicaFleet({ urls: [...good, hung] }), WANT, { waitMs: 2000, intervalMs: 50 })
    const took = Date.now() - started
    assert.deepEqual(
      report.lagging.map((r) => r.name),
      [hung],
    )
    assert.deepEqual(report.contained.map((c) => c.name).sort(), [...good].sort())
    for (const c of report.contained) assert.ok(c.afterMs < 1000, `${c.name} contained after ${c.afterMs} ms, the time of the hung replica's timeout`)
    assert.ok(took < 3500, `--wait 2s took ${took} ms`)
    const { ok, lines } = describeContainment(report, 2000)
    assert.equal(ok, false)
    assert.match(lines.at(-1)!, /^NOT contained after 2s on 1 replica\(s\): .*no answer within/)
  })

  it('a replica that shows the new state, then the old one again (a restart onto an older keyset), is not contained', async () => {
    let asked = 0
    const flapping = await serve((res) => res.writeHead(200).end(asked++ === 0 ? CONTAINED : OLD))
    // Follows only after 400 ms (a volume that syncs late): the flapping one has reverted by then.
    const since = Date.now()
    const late = await serve((res) => res.writeHead(200).end(Date.now() - since < 400 ? OLD : CONTAINED))
    const report = await waitForContainment(createReplicaFleet({ urls: [good[0]!, flapping, late] }), WANT, { waitMs: 1500, intervalMs: 50 })
    assert.deepEqual(
      report.lagging.map((r) => r.name),
      [flapping],
    )
    assert.deepEqual(report.contained.map((c) => c.name).sort(), [good[0]!, late].sort())
    assert.match(describeContainment(report, 1500).lines.at(-1)!, /NOT contained after 1s on 1 replica\(s\): .* \(has k-leaked current, k-new verify-only\)/)
  })

  it('every replica in the new state: contained on each, then on every replica', async () => {
    const report = await waitForContainment(createReplicaFleet({ urls: good }), WANT, { waitMs: 5000, intervalMs: 50 })
    assert.equal(report.lagging.length, 0)
    const { ok, lines } = describeContainment(report, 5000)
    assert.equal(ok, true)
    assert.match(lines.at(-1)!, /^contained on every replica \(2, seen through --replica http/)
  })

  it('a global revoke names a lagging replica by its revoked_before, and what it may still accept: the revoked tokens', async () => {
    const stale = await serve((res) => res.writeHead(200).end(OLD))
    const lagging = await waitForContainment(
      createReplicaFleet({ urls: [stale] }),
      { gone: [], revokedBefore: WANT.revokedBefore },
      { waitMs: 300, intervalMs: 50 },
    )
    const line = describeContainment(lagging, 300, { kind: 'revoked_before' }).lines.at(-1)!
    assert.match(
      line,
      new RegExp(`on 1 replica\\(s\\): ${stale} \\(revoked_before 2026-11-20T00:00:00Z\\) — they may still accept the revoked tokens: restart those pods$`),
    )
  })

  it('a fleet that cannot be seen at all (Prometheus down) is not confirmed, never called a replica, and nothing says "nothing is promoted"', async () => {
    const prometheus = `http://127.0.0.1:${await freePort()}`
    const report = await waitForContainment(createPrometheusFleet({ url: prometheus }), WANT, { waitMs: 300, intervalMs: 50 })
    const { ok, lines } = describeContainment(report, 300)
    assert.equal(ok, false)
    assert.equal(lines.length, 1)
    assert.match(
      lines[0]!,
      /^NOT confirmed after 300ms: cannot ask Prometheus http:\/\/127\.0\.0\.1:\d+ \{job="cbc-jwt"\}: ECONNREFUSED; nothing can be known about the replicas — the change is written: confirm it on each replica/,
    )
    assert.doesNotMatch(lines[0]!, /promoted|replica\(s\)|restart those pods/)
  })
})

/**
 * What counts as contained on one replica, on views built by hand (a source whose read gives
 * the same view every time, so the wait ends at its first look).
 */
describe('containment: what a replica must show', () => {
  const LEAKED_AT = Date.parse('2026-11-25T20:00:00Z') / 1000
  const replica = (keys: Record<string, 'current' | 'staged' | 'verify-only'>, more: Partial<ReplicaState> = {}): ReplicaState => ({
    name: 'http://10.0.0.7:8000',
    reachable: true,
    keys: new Map(Object.entries(keys)),
    revokedBefore: LEAKED_AT,
    revocationsNewest: LEAKED_AT,
    ...more,
  })
  const contained = async (r: ReplicaState, want: ContainedState) => {
    const source: FleetSource = { description: 'by hand', read: async () => ({ source: 'by hand', replicas: [r] }) }
    const report = await waitForContainment(source, want, { waitMs: 0 })
    return report.lagging.length === 0
  }

  it('the new key loaded but only staged is not contained: the replica still signs with another', async () => {
    assert.equal(await contained(replica({ 'k-new': 'current' }), { current: 'k-new', gone: ['k-leaked'] }), true)
    assert.equal(await contained(replica({ 'k-new': 'staged', 'k-other': 'current' }), { current: 'k-new', gone: ['k-leaked'] }), false)
  })

  it('attack: any one of the cut-off kids still verifying is not contained', async () => {
    const want = { current: 'k-new', gone: ['k-leaked-1', 'k-leaked-2'] }
    assert.equal(await contained(replica({ 'k-new': 'current', 'k-leaked-2': 'verify-only' }), want), false)
  })

  it('a replica that cannot be seen is never contained, even when it shows none of the cut-off kids', async () => {
    const unseen = replica({}, { reachable: false, problem: 'down: connection refused', revokedBefore: undefined, revocationsNewest: undefined })
    assert.equal(await contained(unseen, { gone: ['k-leaked'] }), false)
  })

  it('a view of no replica at all confirms nothing', async () => {
    const empty: FleetSource = { description: 'by hand', read: async () => ({ source: 'by hand', replicas: [] }) }
    const report = await waitForContainment(empty, { gone: ['k-leaked'] }, { waitMs: 0 })
    const { lines, ok } = describeContainment(report, 0)
    assert.equal(ok, false)
    assert.match(lines.at(-1) ?? '', /^NOT confirmed after 0s: no replica was seen through by hand/)
  })

  it('a view of no replica is asked again until the wait ends: replicas that show up later are confirmed', async () => {
    let reads = 0
    const late: FleetSource = {
      description: 'by hand',
      read: async () => ({ source: 'by hand', replicas: reads++ === 0 ? [] : [replica({ 'k-new': 'current' })] }),
    }
    const report = await waitForContainment(late, { current: 'k-new', gone: ['k-leaked'] }, { waitMs: 10_000, intervalMs: 1 })
    assert.equal(describeContainment(report, 10_000).ok, true)
    assert.equal(reads, 2)
  })

  it('revoked_before and the newest rule: the same second is contained, one second earlier is not, unknown is not', async () => {
    assert.equal(await contained(replica({}), { gone: [], revokedBefore: LEAKED_AT }), true)
    assert.equal(await contained(replica({}, { revokedBefore: LEAKED_AT - 1 }), { gone: [], revokedBefore: LEAKED_AT }), false)
    assert.equal(await contained(replica({}, { revokedBefore: undefined }), { gone: [], revokedBefore: LEAKED_AT }), false)
    assert.equal(await contained(replica({}), { gone: [], rulesCreatedAt: LEAKED_AT }), true)
    assert.equal(await contained(replica({}, { revocationsNewest: LEAKED_AT - 1 }), { gone: [], rulesCreatedAt: LEAKED_AT }), false)
    assert.equal(await contained(replica({}, { revocationsNewest: undefined }), { gone: [], rulesCreatedAt: LEAKED_AT }), false)
  })
})
