/**
 * Containment in seconds, end to end: three real service processes — two on the Kubernetes
 * API watch (CBC_JWT_BACKEND=kubernetes against the API double), reading the verification
 * projection `cbc-jwt-verification` as the shipped api-watch overlay does, and one on a
 * kubelet-style secret volume of that projection that syncs VOLUME_LAG_MS (60 s, as a real
 * kubelet) behind the Secret — a standby key staged, a client sending valid tokens to all
 * three all along, and `cbc-jwt rotate --compromised` run by the real CLI through the API.
 * The watches are cut and their resourceVersion expired (410) just as the emergency write
 * lands. Measured from the moment the command returns:
 *
 * - leaked-key tokens — one cached on every replica before, fresh ones signed after — are
 *   rejected by both watching replicas within 2 s;
 * - the volume replica follows its lag: it rejects them once its volume syncs, VOLUME_LAG_MS
 *   after the write, plus one read;
 * - no valid token is refused on any replica at any time: the old key's before the command,
 *   the replacement key's (the standby, already loaded everywhere) after — the volume
 *   replica included, all through its 60 s behind.
 */
import assert from 'node:assert/strict'
import type crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { toVerificationKeyset } from '../../src/lib/keyset/projection.js'
import { cbcJwt } from '../ops/cli/cli.js'
import { startKubeDouble, type KubeDouble } from '../support/kube-double.js'
import { KubeletSync } from '../support/kubelet-sync.js'
import { makeKey, makeKeyset, signerOf, signToken, validClaims, type TestKey } from '../support/keys.js'
import { startService, type RunningService } from '../support/service.js'
import { waitFor } from '../support/wait.js'

const NS = 'cbc'
const VOLUME_LAG_MS = 60_000
/** The revoke --wait test's lag: the 60 s one is proven above; this one only needs to be seen. */
const SHORT_LAG_MS = 4000
const CONTAINED_WITHIN_MS = 2000
const HOUR = 3600_000

interface KeysetDoc {
  current: string
  revoked_before?: string
  keys: Array<{ kid: string; alg: string; jwk: crypto.JsonWebKey; not_after?: string }>
}

describe('containment: rotate --compromised on three replicas (two on the API watch, one on a lagging volume)', () => {
  let double: KubeDouble
  let dir: string
  let kubeEnv: Record<string, string>
  let node: KubeletSync
  const replicas: Array<{ name: string; service: RunningService }> = []
  const leaked = makeKey('ES256', 'k-leaked')
  const standby = makeKey('ES256', 'k-standby')

  const textOf = (name: string) => {
    const data = double.secret(NS, name)?.data['jwt-keyset']
    return data === undefined ? undefined : Buffer.from(data, 'base64').toString('utf8')
  }
  const secretText = () => textOf('cbc-secrets')
  const secretDoc = () => JSON.parse(secretText()!) as KeysetDoc
  const signerFor = (kid: string): TestKey => signerOf(secretDoc(), kid)
  /** A token issued now: iat is this second, so a revocation "before now" does not cover it once issued after. */
  const fresh = (key: TestKey) => signToken(key, validClaims({ iat: Math.floor(Date.now() / 1000) }))
  const status = async (r: RunningService, token: string) => (await r.get('/v1/whoami', { authorization: `Bearer ${token}` })).status

  before(async () => {
    double = await startKubeDouble()
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-containment-'))
    const kubeconfig = double.writeKubeconfig(path.join(dir, 'kubeconfig'), { namespace: NS })
    kubeEnv = { CBC_JWT_BACKEND: 'kubernetes', KUBECONFIG: kubeconfig, HOME: dir }
    // The current key (a day old) and the standby rotate --auto keeps (staged an hour ago).
    const doc = makeKeyset([
      { key: leaked, opts: { createdAt: new Date(Date.now() - 24 * HOUR) } },
      { key: standby, opts: { createdAt: new Date(Date.now() - HOUR) } },
    ])
    double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': JSON.stringify(doc) })
    // What every cbc-jwt write keeps up to date, as the manifests ship them: the projection the
    // replicas read, and the (empty) last good copy.
    double.setSecret(NS, 'cbc-jwt-verification', { 'jwt-keyset': JSON.stringify(toVerificationKeyset(doc as never)) })
    double.setSecret(NS, 'cbc-jwt-last-good', {})
    node = new KubeletSync(path.join(dir, 'node-c'), () => textOf('cbc-jwt-verification'), VOLUME_LAG_MS)
    // Long refresh intervals: what arrives in seconds arrived through the watch.
    const common = { CBC_JWT_REFRESH_INTERVAL_SECONDS: '30', CBC_JWT_UNKNOWN_KID_COOLDOWN_SECONDS: '10' }
    const watch = { ...common, ...kubeEnv, CBC_JWT_KUBERNETES_SECRET: 'cbc-jwt-verification' }
    for (const name of ['a', 'b']) replicas.push({ name: `watch-${name}`, service: await startService({ env: watch }) })
    replicas.push({
      name: 'volume-c',
      service: await startService({ env: { ...common, CBC_JWT_BACKEND: 'file', CBC_JWT_KEYSET_FILE: path.join(node.volume.dir, 'jwt-keyset') } }),
    })
  })

  after(async () => {
    await Promise.all(replicas.map((r) => r.service.stop()))
    node?.stop()
    await double?.close()
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
  })

  test('leaked-key tokens rejected on the watching replicas within 2 s, the volume follows its lag, no valid token refused', async (t) => {
    for (const r of replicas) {
      const keys = (await r.service.get('/v1/keys')).json as { keys: Array<{ kid: string; status: string }> }
      assert.deepEqual(keys.keys.map((k) => `${k.kid} ${k.status}`).sort(), ['k-leaked current', 'k-standby staged'], r.name)
    }
    const load = os.loadavg()[0]!
    // A leaked-key token every replica has verified, so it sits in each one's token cache.
    const cached = signToken(leaked, validClaims())
    for (const r of replicas) for (let i = 0; i < 3; i++) assert.equal(await status(r.service, cached), 200, `${r.name} accepts it before`)

    // The client: every request a token issued that instant by the key the Secret says signs.
    const refused: string[] = []
    let sent = 0
    let running = true
    // From the moment the emergency command starts, a leaked-key token is not a valid token: the
    // projection, which the replicas read, is written before the private keyset the client reads.
    let rotating = false
    const client = (async () => {
      for (let i = 0; running; i++) {
        const kid = secretDoc().current
        const token = fresh(signerFor(kid))
        const r = replicas[i % replicas.length]!
        const code = await status(r.service, token)
        sent++
        // Once the command started, a token of the leaked key is no longer valid (not a false 401);
        // anything else refused is.
        if (code !== 200 && !(kid === leaked.kid && rotating)) refused.push(`${r.name} ${code} kid ${kid}`)
        await sleep(5)
      }
    })()
    await sleep(500)

    // Just as the emergency write lands, every watch is cut and its resourceVersion is
    // expired: the replicas must resume, get 410, list again — and still contain in time.
    double.beforeWrite = () => {
      double.setSecret(NS, 'unrelated', { moved: String(Date.now()) }) // the cluster moves on
      double.watches.compact()
      double.watches.disconnectAll()
    }
    rotating = true
    const wroteAt = Date.now()
    const rotation = await cbcJwt(['rotate', '--compromised', '--reason', 'containment drill: k-leaked'], { env: kubeEnv })
    const returnedAt = Date.now()
    double.beforeWrite = undefined
    assert.equal(rotation.code, 0, rotation.stderr)
    assert.match(rotation.stdout, /promoted the standby k-standby/)
    assert.equal(secretDoc().current, standby.kid)

    // Poll each replica until both leaked-key tokens are refused; record how long it took (every
    // 20 ms for the first 3 s, then every 100 ms: the volume's minute needs no finer grain).
    const containedAfter = new Map<string, number>()
    await Promise.all(
      replicas.map(async (r) => {
        const deadline = returnedAt + VOLUME_LAG_MS + 15_000
        for (;;) {
          const [c, f] = await Promise.all([status(r.service, cached), status(r.service, fresh(leaked))])
          if (c === 401 && f === 401) return void containedAfter.set(r.name, Date.now() - returnedAt)
          if (Date.now() > deadline) return void containedAfter.set(r.name, Infinity)
          await sleep(Date.now() - returnedAt < 3000 ? 20 : 100)
        }
      }),
    )
    running = false
    await client
    t.diagnostic(
      `command ran ${returnedAt - wroteAt} ms; contained after it returned: ${[...containedAfter].map(([n, ms]) => `${n} ${ms} ms`).join(', ')}; ${sent} valid requests, ${refused.length} refused; load average ${load.toFixed(1)} → ${os.loadavg()[0]!.toFixed(1)}`,
    )
    for (const name of ['watch-a', 'watch-b'])
      assert.ok(containedAfter.get(name)! <= CONTAINED_WITHIN_MS, `${name} contained in ${containedAfter.get(name)} ms`)
    // The volume replica follows the volume: not before the kubelet synced, and one read after.
    const volume = containedAfter.get('volume-c')!
    assert.ok(volume >= VOLUME_LAG_MS - (returnedAt - wroteAt) - 500, `volume-c contained in ${volume} ms: before its volume could have synced?`)
    assert.ok(volume <= VOLUME_LAG_MS + CONTAINED_WITHIN_MS, `volume-c contained in ${volume} ms, more than its lag + 2 s`)
    assert.deepEqual(refused, [], 'no valid token refused on any replica')
    assert.ok(sent > 30, `the client kept sending (${sent})`)
    // The watches did go through the cut and the relist.
    assert.ok(double.calls.filter((c) => c.verb === 'list').length >= 4, 'both watching replicas listed again after the 410')
  })

  test('revoke --replica … --wait: prints how long each replica took; a replica that does not follow in time is named, exit 1', async (t) => {
    await waitFor(() => node.inSync(), { timeoutMs: VOLUME_LAG_MS + 20_000, what: 'the volume to catch up with the compromise rotation' })
    node.lagMs = SHORT_LAG_MS
    const fleet = replicas.flatMap((r) => ['--replica', r.service.url])
    const short = await cbcJwt(['revoke', '--issued-before', 'now', ...fleet, '--wait', '1s', '--reason', 'drill'], { env: kubeEnv })
    assert.equal(short.code, 1, short.stdout + short.stderr)
    const volumeUrl = replicas[2]!.service.url
    assert.match(short.stderr, new RegExp(`NOT contained after 1s on 1 replica\\(s\\): ${volumeUrl.replace(/\./g, '\\.')} `))
    for (const r of replicas.slice(0, 2)) assert.match(short.stdout, new RegExp(`contained on ${r.service.url.replace(/\./g, '\\.')} after \\d+\\.\\ds`))
    await sleep(1100) // the next revocation is a later second
    const long = await cbcJwt(['revoke', '--issued-before', 'now', ...fleet, '--wait', '20s', '--reason', 'drill'], { env: kubeEnv })
    assert.equal(long.code, 0, long.stdout + long.stderr)
    const after = (url: string) => Number(new RegExp(`contained on ${url.replace(/\./g, '\\.')} after (\\d+\\.\\d)s`).exec(long.stdout)?.[1])
    t.diagnostic(
      long.stdout
        .split('\n')
        .filter((l) => l.startsWith('contained'))
        .join('; '),
    )
    assert.ok(after(volumeUrl) >= (SHORT_LAG_MS - 1500) / 1000, `the volume replica followed its lag: ${after(volumeUrl)} s`)
    for (const r of replicas.slice(0, 2)) assert.ok(after(r.service.url) <= CONTAINED_WITHIN_MS / 1000, `${r.name}: ${after(r.service.url)} s`)
    assert.match(long.stdout, /contained on every replica \(3, seen through --replica http/)
  })
})
