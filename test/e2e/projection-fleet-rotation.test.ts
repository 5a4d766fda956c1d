/**
 * The rotation across two namespaces with verifiers on the verification projection only:
 * four real service replicas, two in `cbc` and two in `orders`, each on a kubelet-style volume
 * of the Secret `cbc-jwt-verification` of its own namespace (the Kubernetes API test double
 * holds the Secrets; no replica ever sees `cbc-secrets`). The CLI runs as the CronJob does,
 * through the API: every write publishes the projection into both namespaces
 * (CBC_JWT_KUBERNETES_PUBLIC_NAMESPACES) before `cbc-secrets`, and promotion is gated by a real
 * Prometheus on both namespaces at once (`--selector` once per namespace). One `orders` node is
 * held back: the promotion is refused naming it, then done once it syncs — while a client sends
 * tokens of the current key to every replica, and not one gets a 401. `verify-rotation
 * --projection` then reports the projections in sync, and drift once one is changed by hand.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { KeysetDocument } from '../../src/lib/keyset/document.js'
import { projectionOf } from '../../src/ops/projection/publish.js'
import { assertNoPrivateMaterial } from '../lib/keyset/fixtures.js'
import { cbcJwtProcess } from '../ops/cli/cli.js'
import { startKubeDouble, type KubeDouble } from '../support/kube-double.js'
import { makeKey, makeKeyset } from '../support/keys.js'
import { KubeletSync } from '../support/kubelet-sync.js'
import { startPrometheus, type RunningPrometheus } from '../support/prometheus.js'
import { SERVER_MAIN, startService, type RunningService } from '../support/service.js'
import { startTokenClient } from '../support/token-client.js'
import { waitFor } from '../support/wait.js'

const JOB = 'cbc-jwt-namespaces'
const NAMESPACES = ['cbc', 'orders'] as const
const SELECTORS = NAMESPACES.map((ns) => `job="${JOB}",namespace="${ns}"`)
const PROJECTION = 'cbc-jwt-verification'
const DAY = 86_400_000

describe('rotation with verifiers on the projection only, in two namespaces, gated on both (real Prometheus)', { timeout: 300_000 }, () => {
  let dir: string
  let double: KubeDouble
  let kubeconfig: string
  let prom: RunningPrometheus
  const nodes: Array<{ ns: string; sync: KubeletSync }> = []
  const replicas: RunningService[] = []
  const oldKey = makeKey('ES256', 'k-ns-old')
  const text = (ns: string, name: string) => {
    const data = double.secret(ns, name)?.data['jwt-keyset']
    return data === undefined ? undefined : Buffer.from(data, 'base64').toString()
  }
  const readPrivate = () => JSON.parse(text('cbc', 'cbc-secrets')!) as KeysetDocument
  const instance = (r: RunningService) => `127.0.0.1:${r.port}`
  const cli = (args: string[]) =>
    cbcJwtProcess(args, { env: { CBC_JWT_BACKEND: 'kubernetes', KUBECONFIG: kubeconfig, CBC_JWT_KUBERNETES_PUBLIC_NAMESPACES: NAMESPACES.join(',') } })
  const gate = (selectors = SELECTORS) => ['--prometheus', prom.url, ...selectors.flatMap((s) => ['--selector', s])]

  /** Replicas (instance) whose cbc_jwt_key_info has `kid`, as Prometheus sees them now. */
  async function holding(kid: string, status?: string): Promise<string[]> {
    const result = await prom.query(`cbc_jwt_key_info{job="${JOB}", kid="${kid}"${status ? `, status="${status}"` : ''}} == 1`)
    return result.map((r) => r.metric.instance!).sort()
  }

  before(async () => {
    assert.ok(fs.existsSync(SERVER_MAIN), `${SERVER_MAIN} is missing: run npm run build first`)
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-namespaces-'))
    double = await startKubeDouble()
    kubeconfig = double.writeKubeconfig(path.join(dir, 'kubeconfig'), { namespace: 'cbc' })
    // The current key is 6 days old: the first --auto run stages its successor. The projections
    // hold what a previous write published (the same text the CLI writes).
    const doc = makeKeyset([{ key: oldKey, opts: { createdAt: new Date(Date.now() - 6 * DAY) } }]) as unknown as KeysetDocument
    double.setSecret('cbc', 'cbc-secrets', { 'jwt-keyset': JSON.stringify(doc, null, 2) })
    const projected = projectionOf(doc)
    assert.ok('text' in projected)
    for (const ns of NAMESPACES) double.setSecret(ns, PROJECTION, { 'jwt-keyset': projected.text })
    // Two nodes per namespace; each volume follows its own namespace's projection Secret.
    for (const [i, [ns, lagMs]] of (
      [
        ['cbc', 200],
        ['cbc', 500],
        ['orders', 300],
        ['orders', 700],
      ] as const
    ).entries()) {
      nodes.push({ ns, sync: new KubeletSync(path.join(dir, `node-${i}`), () => text(ns, PROJECTION), lagMs) })
    }
    for (const { sync } of nodes) {
      replicas.push(
        await startService({
          env: { CBC_JWT_KEYSET_FILE: sync.volume.file(), CBC_JWT_REFRESH_INTERVAL_SECONDS: '1', CBC_JWT_LOG_LEVEL: 'warn' },
        }),
      )
    }
    const of = (ns: string) => replicas.filter((_, i) => nodes[i]!.ns === ns).map(instance)
    prom = await startPrometheus({
      dir: path.join(dir, 'prometheus'),
      job: JOB,
      targets: of('cbc'),
      labels: { namespace: 'cbc' },
      groups: [{ targets: of('orders'), labels: { namespace: 'orders' } }],
    })
    await waitFor(async () => (await holding(oldKey.kid, 'current')).length === 4, {
      timeoutMs: 30_000,
      intervalMs: 200,
      what: 'every replica exports the current key',
    })
  })

  after(async () => {
    for (const { sync } of nodes) sync.stop()
    await Promise.all(replicas.map((r) => r.stop()))
    await prom?.stop()
    await double?.close()
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
  })

  test('rotate --auto gated on cbc and orders: refused while an orders replica lags, promoted once it syncs, zero false 401s', async (t) => {
    const auto = (selectors = SELECTORS) => cli(['rotate', '--auto', '--every', '6d', ...gate(selectors)])
    const client = startTokenClient(replicas, readPrivate)

    // Node 3 (orders) is slow: it does not sync until resumed.
    nodes[3]!.sync.pause()
    const staging = await auto()
    assert.equal(staging.code, 0, staging.stderr)
    const stagedKid = readPrivate().keys.find((k) => k.kid !== oldKey.kid)!.kid
    for (const ns of NAMESPACES) {
      const published = text(ns, PROJECTION)!
      assert.ok(published.includes(stagedKid), `the staged key is published in ${ns}`)
      assertNoPrivateMaterial(published, readPrivate(), `the projection in ${ns}`)
      assert.match(staging.stdout, new RegExp(`wrote the verification projection kubernetes:${ns}/${PROJECTION}#jwt-keyset`))
    }
    await waitFor(async () => (await holding(stagedKid)).length === 3, { timeoutMs: 30_000, intervalMs: 200, what: 'three replicas export the staged key' })

    const rv = double.secret('cbc', 'cbc-secrets')!.metadata.resourceVersion
    // A selector that matches nothing (a namespace not scraped) refuses: it never shrinks the fleet.
    const typo = await auto([...SELECTORS, `job="${JOB}",namespace="payments"`])
    assert.equal(typo.code, 1, typo.stderr)
    assert.match(typo.stderr, /\{job="cbc-jwt-namespaces",namespace="payments"\}: the selector matches no scraped target/)
    const refused = await auto()
    assert.equal(refused.code, 1, refused.stdout + refused.stderr)
    assert.match(
      refused.stderr,
      new RegExp(
        `refusing to promote ${stagedKid}: 1 of 4 replicas do not verify with it yet: ${instance(replicas[3]!).replace(/\./g, '\\.')} \\(has ${oldKey.kid} current\\)`,
      ),
    )
    assert.equal(double.secret('cbc', 'cbc-secrets')!.metadata.resourceVersion, rv, 'a refused run writes nothing')
    // Gated on cbc alone, the same promotion would have gone ahead with an orders replica lacking the key.
    const cbcOnly = await cli(['rotate', '--promote', '--dry-run', ...gate([SELECTORS[0]!])])
    assert.equal(cbcOnly.code, 0, cbcOnly.stderr)

    nodes[3]!.sync.resume()
    let runs = 0
    await waitFor(
      async () => {
        runs++
        const r = await auto()
        assert.ok(r.code === 0 || r.code === 1, r.stderr)
        return readPrivate().current === stagedKid
      },
      { timeoutMs: 90_000, intervalMs: 300, what: 'an --auto run promotes the staged key' },
    )
    t.diagnostic(`promoted after ${runs} --auto run(s) once the orders node caught up`)
    await waitFor(async () => (await holding(stagedKid, 'current')).length === 4, {
      timeoutMs: 30_000,
      intervalMs: 200,
      what: 'every replica of both namespaces signs with the new key',
    })
    const verified = await cli(['verify-rotation', ...gate(), '--previous-kid', oldKey.kid, '--projection', '--wait', '10s'])
    assert.equal(verified.code, 0, verified.stdout + verified.stderr)
    assert.match(verified.stdout, /✓ \d+\. one current key: current .* on all 4 replicas/)
    assert.match(
      verified.stdout,
      /✓ \d+\. projection in sync: kubernetes:cbc\/cbc-jwt-verification#jwt-keyset, kubernetes:orders\/cbc-jwt-verification#jwt-keyset match/,
    )

    const { sent, failures, kids } = await client.stop()
    t.diagnostic(`${sent} requests, kids ${[...kids].join(', ')}, ${failures.length} rejected`)
    assert.ok(kids.has(stagedKid) && kids.has(oldKey.kid), 'tokens of both keys were sent')
    assert.deepEqual(failures, [], 'no false 401 across the rotation')
    for (const { ns, sync } of nodes) assertNoPrivateMaterial(fs.readFileSync(sync.volume.file(), 'utf8'), readPrivate(), `a replica's volume in ${ns}`)
  })

  test('verify-rotation --projection reports a projection changed by hand (exit 1, naming it); the next --auto run repairs it', async () => {
    const orders = JSON.parse(text('orders', PROJECTION)!) as KeysetDocument
    double.setSecret('orders', PROJECTION, { 'jwt-keyset': `${JSON.stringify({ ...orders, revoked_before: '2020-01-01T00:00:00Z' }, null, 2)}\n` })
    const drift = await cli(['verify-rotation', ...gate(), '--projection'])
    assert.equal(drift.code, 1, drift.stdout)
    assert.match(drift.stdout, /✗ \d+\. projection in sync: kubernetes:orders\/cbc-jwt-verification#jwt-keyset differs from the private keyset/)
    assert.doesNotMatch(drift.stdout, /kubernetes:cbc\/cbc-jwt-verification#jwt-keyset differs/)
    const repair = await cli(['rotate', '--auto', '--every', '6d', ...gate()])
    assert.equal(repair.code, 0, repair.stderr)
    assert.match(repair.stdout, /(wrote|repaired) the verification projection kubernetes:orders\/cbc-jwt-verification#jwt-keyset/)
    const again = await cli(['verify-rotation', ...gate(), '--projection'])
    assert.match(again.stdout, /✓ \d+\. projection in sync/)
  })
})
