/**
 * Done-when of issue 10, end to end: three real service replicas, each on its own
 * kubelet-style secret volume of the verification projection (one node held back), scraped
 * by a real Prometheus every second. The rotation is driven only by `cbc-jwt rotate --auto --prometheus …` runs, as the
 * CronJob does: promotion is refused (exit 1, the lagging replica named, nothing written)
 * while one replica lacks the staged key, and done as soon as all have it — while a client
 * sends tokens from the current key to every replica the whole time, and not one gets a 401.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { KeysetDocument } from '../../src/lib/keyset/document.js'
import { projectionOf } from '../../src/ops/projection/publish.js'
import { cbcJwtProcess } from '../ops/cli/cli.js'
import { freePort } from '../support/free-port.js'
import { makeKey, makeKeyset } from '../support/keys.js'
import { KubeletSync } from '../support/kubelet-sync.js'
import { startPrometheus, type RunningPrometheus } from '../support/prometheus.js'
import { SERVER_MAIN, startService, type RunningService } from '../support/service.js'
import { startTokenClient } from '../support/token-client.js'
import { waitFor } from '../support/wait.js'

const JOB = 'cbc-jwt-fleet'
const SELECTOR = `job="${JOB}"`
const DAY = 86_400_000

describe('promotion gated on every replica (3 replicas, kubelet volumes, real Prometheus)', { timeout: 300_000 }, () => {
  let dir: string
  let master: string
  const nodes: KubeletSync[] = []
  const replicas: RunningService[] = []
  let prom: RunningPrometheus
  let garbage: http.Server
  let garbageUrl: string
  const oldKey = makeKey('ES256', 'k-fleet-old')
  const read = () => JSON.parse(fs.readFileSync(master, 'utf8')) as KeysetDocument
  const instance = (r: RunningService) => `127.0.0.1:${r.port}`

  /** Replicas (by index) whose cbc_jwt_key_info has `kid`, as Prometheus sees them now. */
  async function holding(kid: string, status?: string): Promise<string[]> {
    const result = await prom.query(`cbc_jwt_key_info{${SELECTOR}, kid="${kid}"${status ? `, status="${status}"` : ''}} == 1`)
    return result.map((r) => r.metric.instance!).sort()
  }

  before(async () => {
    assert.ok(fs.existsSync(SERVER_MAIN), `${SERVER_MAIN} is missing: run npm run build first`)
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-fleet-'))
    master = path.join(dir, 'secret.json')
    // The current key is 6 days old: the first --auto run stages its successor.
    fs.writeFileSync(master, JSON.stringify(makeKeyset([{ key: oldKey, opts: { createdAt: new Date(Date.now() - 6 * DAY) } }]), null, 2), { mode: 0o600 })
    // The replicas verify and never sign: their volumes carry the verification projection the
    // CLI writes beside the keyset on every change (secret.public.json), never the private keyset.
    const projection = projectionOf(read())
    assert.ok('text' in projection)
    fs.writeFileSync(path.join(dir, 'secret.public.json'), projection.text)
    const source = () => fs.readFileSync(path.join(dir, 'secret.public.json'), 'utf8')
    for (const [i, lagMs] of [200, 500, 800].entries()) nodes.push(new KubeletSync(path.join(dir, `node-${i}`), source, lagMs))
    for (const node of nodes) {
      replicas.push(
        await startService({
          env: {
            CBC_JWT_BACKEND: 'file',
            CBC_JWT_KEYSET_FILE: node.volume.file(),
            CBC_JWT_REFRESH_INTERVAL_SECONDS: '1',
            CBC_JWT_LOG_LEVEL: 'warn',
          },
        }),
      )
    }
    prom = await startPrometheus({ dir: path.join(dir, 'prometheus'), job: JOB, targets: replicas.map(instance) })
    garbage = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys": "surely"}'))
    await new Promise<void>((resolve) => garbage.listen(0, '127.0.0.1', resolve))
    garbageUrl = `http://127.0.0.1:${(garbage.address() as { port: number }).port}`
    await waitFor(async () => (await holding(oldKey.kid, 'current')).length === 3, {
      timeoutMs: 30_000,
      intervalMs: 200,
      what: 'every replica exports the current key',
    })
  })

  after(async () => {
    for (const n of nodes) n.stop()
    await Promise.all(replicas.map((r) => r.stop()))
    await prom?.stop()
    garbage?.close()
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
  })

  test('refuses when Prometheus is unreachable or the selector matches nothing; nothing changes', async () => {
    const before = fs.readFileSync(master, 'utf8')
    const closed = `http://127.0.0.1:${await freePort()}`
    const unreachable = await cbcJwtProcess(['rotate', '--promote', '--keyset-file', master, '--kid', oldKey.kid, '--prometheus', closed])
    // No staged key: refused before any question is asked. Stage-free checks via --auto below.
    assert.equal(unreachable.code, 1, unreachable.stderr)
    const withStaged = path.join(dir, 'staged.json')
    const staged = makeKey('ES256', 'k-fleet-probe')
    // Staged 4 days ago: past half of its life as the standby, so --auto would promote it.
    fs.writeFileSync(withStaged, JSON.stringify(makeKeyset([oldKey, { key: staged, opts: { createdAt: new Date(Date.now() - 4 * DAY) } }])))
    const stagedText = fs.readFileSync(withStaged, 'utf8')
    // Published, as the write that staged it would have: a standby no projection holds is
    // retired by --auto (a fresh one staged) before any replica is asked.
    const published = projectionOf(JSON.parse(stagedText) as KeysetDocument)
    assert.ok('text' in published)
    fs.writeFileSync(path.join(dir, 'staged.public.json'), published.text)
    const down = await cbcJwtProcess(['rotate', '--promote', '--keyset-file', withStaged, '--prometheus', closed])
    assert.equal(down.code, 1, down.stderr)
    assert.match(down.stderr, /cannot ask Prometheus .*ECONNREFUSED.*nothing is promoted/)
    const none = await cbcJwtProcess(['rotate', '--promote', '--keyset-file', withStaged, '--prometheus', prom.url, '--selector', 'job="no-such-job"'])
    assert.equal(none.code, 1, none.stderr)
    assert.match(none.stderr, /matches no scraped target/)
    const env = await cbcJwtProcess(['rotate', '--auto', '--keyset-file', withStaged], { env: { CBC_JWT_PROMETHEUS_URL: closed } })
    assert.equal(env.code, 1, env.stderr)
    assert.match(env.stderr, /ECONNREFUSED/)
    assert.equal(fs.readFileSync(withStaged, 'utf8'), stagedText, 'nothing written')
    assert.equal(fs.readFileSync(master, 'utf8'), before)
  })

  test('a rotation driven only by rotate --auto runs: refused while one replica lags, done when all have it, zero false 401s', async (t) => {
    const auto = () => cbcJwtProcess(['rotate', '--auto', '--every', '6d', '--keyset-file', master, '--prometheus', prom.url, '--selector', SELECTOR])
    // The client: tokens from whatever key is current in the secret right now, to every replica in turn.
    const client = startTokenClient(replicas, read)

    // Node 2 is slow: it will not sync the secret until resumed. The other two get the staged key.
    nodes[2]!.pause()
    const staging = await auto()
    assert.equal(staging.code, 0, staging.stderr)
    const stagedKid = read().keys.find((k) => k.kid !== oldKey.kid)!.kid
    assert.match(staging.stdout, new RegExp(`added +${stagedKid} +ES256 staged`))

    await waitFor(async () => (await holding(stagedKid)).length === 2, { timeoutMs: 30_000, intervalMs: 200, what: 'two replicas export the staged key' })
    {
      const before = fs.readFileSync(master, 'utf8')
      const refused = await auto()
      assert.equal(refused.code, 1, refused.stdout + refused.stderr)
      assert.match(
        refused.stderr,
        new RegExp(
          `refusing to promote ${stagedKid}: 1 of 3 replicas do not verify with it yet: ${instance(replicas[2]!).replace(/\./g, '\\.')} \\(has ${oldKey.kid} current\\)`,
        ),
      )
      assert.equal(fs.readFileSync(master, 'utf8'), before, 'a refused run writes nothing')
      // The same gate asked directly, with a replica that answers garbage among them.
      const direct = await cbcJwtProcess([
        'rotate',
        '--promote',
        '--keyset-file',
        master,
        ...replicas.flatMap((r) => ['--replica', r.url]),
        '--replica',
        garbageUrl,
      ])
      assert.equal(direct.code, 1, direct.stderr)
      assert.match(direct.stderr, /2 of 4 replicas do not verify with it yet/)
      assert.ok(direct.stderr.includes(`${garbageUrl} (/v1/keys answered something that is not the key list)`), direct.stderr)
      assert.ok(direct.stderr.includes(`${replicas[2]!.url} (has ${oldKey.kid} current)`), direct.stderr)
      assert.equal(fs.readFileSync(master, 'utf8'), before)
    }

    // The node catches up; the next runs of the "CronJob" promote as soon as Prometheus sees it.
    nodes[2]!.resume()
    let runs = 0
    await waitFor(
      async () => {
        runs++
        const r = await auto()
        assert.ok(r.code === 0 || r.code === 1, r.stderr)
        return read().current === stagedKid
      },
      { timeoutMs: 90_000, intervalMs: 300, what: 'an --auto run promotes the staged key' },
    )
    t.diagnostic(`promoted after ${runs} --auto run(s) once node 2 caught up`)
    const promoted = read()
    assert.ok(promoted.keys.find((k) => k.kid === oldKey.kid)!.not_after, 'the old key keeps verifying with a not_after (grace)')

    await waitFor(async () => (await holding(stagedKid, 'current')).length === 3, {
      timeoutMs: 30_000,
      intervalMs: 200,
      what: 'every replica signs with the new key',
    })
    const verified = await cbcJwtProcess(['verify-rotation', '--prometheus', prom.url, '--selector', SELECTOR, '--previous-kid', oldKey.kid, '--wait', '10s'])
    assert.equal(verified.code, 0, verified.stdout + verified.stderr)
    assert.match(verified.stdout, /✓ \d+\. one current key: current .* on all 3 replicas/)
    const { sent, failures, kids } = await client.stop()
    t.diagnostic(`${sent} requests, kids ${[...kids].join(', ')}, ${failures.length} rejected`)
    assert.ok(kids.has(stagedKid) && kids.has(oldKey.kid), 'tokens of both keys were sent')
    assert.deepEqual(failures, [], 'no false 401 across the rotation')
  })

  test('verify-rotation --compromised: fails while a replica still accepts the leaked keys, passes once every replica has the emergency keyset', async () => {
    const before = read()
    // The standby --auto keeps staged becomes current: it is not one of the keys cut off.
    const previous = before.keys.filter((k) => k.kid === before.current || k.not_after !== undefined).map((k) => k.kid)
    nodes[1]!.pause()
    const emergency = await cbcJwtProcess(['rotate', '--compromised', '--keyset-file', master])
    assert.equal(emergency.code, 0, emergency.stderr)
    const revokedBefore = read().revoked_before!
    const args = ['verify-rotation', '--compromised', '--prometheus', prom.url, '--selector', SELECTOR, ...previous.flatMap((k) => ['--previous-kid', k])]
    await waitFor(async () => nodes[0]!.inSync() && nodes[2]!.inSync(), { timeoutMs: 30_000, what: 'nodes 0 and 2 synced' })
    // What fails below is node 1 only: Prometheus has scraped nodes 0 and 2 with the emergency
    // keyset (its revoked_before, none of the previous keys) — no fixed wait for the scrapes.
    const synced = [instance(replicas[0]!), instance(replicas[2]!)]
    const revokedAt = Date.parse(revokedBefore) / 1000
    await waitFor(
      async () => {
        const inForce = await prom.query(`cbc_jwt_revoked_before_timestamp_seconds{${SELECTOR}} >= ${revokedAt}`)
        if (!synced.every((i) => inForce.some((r) => r.metric.instance === i))) return false
        for (const kid of previous) if ((await holding(kid)).some((i) => synced.includes(i))) return false
        return true
      },
      { timeoutMs: 30_000, what: 'Prometheus to see nodes 0 and 2 with the emergency keyset' },
    )
    const lagging = await cbcJwtProcess([...args, '--revoked-before', revokedBefore])
    assert.equal(lagging.code, 1, lagging.stdout)
    assert.match(
      lagging.stdout,
      new RegExp(`✗ \\d+\\. previous keys verify nowhere: still verifying \\(or unseen\\): ${instance(replicas[1]!).replace(/\./g, '\\.')}`),
    )
    nodes[1]!.resume()
    const done = await cbcJwtProcess([...args, '--revoked-before', revokedBefore, '--wait', '20s'])
    assert.equal(done.code, 0, done.stdout + done.stderr)
    assert.match(done.stdout, /✓ \d+\. revoked_before in force everywhere/)
  })
})
