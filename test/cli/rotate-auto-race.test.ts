/**
 * Two (here four) CronJob runs at once — a manual `kubectl create job --from=cronjob/…` while
 * the schedule fires, or a retried Job — must make exactly one change. Real `cbc-jwt rotate
 * --auto` processes against the Kubernetes API test double; the double holds every write until
 * all of them have read the Secret, so the race is the worst one every time: all four send
 * their change with the same resourceVersion.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { startKubeDouble, type KubeDouble } from '../support/kube-double.js'
import { makeKey, makeKeyset } from '../support/keys.js'
import { waitFor } from '../support/wait.js'
import { cbcJwt, tempDir } from './cli.js'

const NS = 'cbc'
const DAY = 86_400_000
const RUNS = 4

describe('rotate --auto: runs started at once make exactly one change (Kubernetes backend)', () => {
  const tmp = tempDir('auto-race')
  let double: KubeDouble
  let env: Record<string, string>

  before(async () => {
    double = await startKubeDouble()
    env = { CBC_JWT_BACKEND: 'kubernetes', KUBECONFIG: double.writeKubeconfig(tmp.file('kubeconfig'), { namespace: NS }), HOME: tmp.dir, USER: 'cronjob' }
  })
  after(async () => {
    await double.close()
    tmp.cleanup()
  })

  it(`${RUNS} runs, one due current key: one key staged, one keyset_changed line, the losers re-read and find nothing to do`, async () => {
    const old = makeKey('ES256', 'k-race-old')
    // Six days old: due under --every 6d, so each run on its own would stage a successor.
    const doc = makeKeyset([{ key: old, opts: { createdAt: new Date(Date.now() - 6 * DAY) } }])
    double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': JSON.stringify(doc) })
    let release!: () => void
    double.writeGate = new Promise((resolve) => (release = resolve))
    const gets = () => double.calls.filter((c) => c.verb === 'get').length

    const runs = Array.from({ length: RUNS }, () => cbcJwt(['rotate', '--auto', '--every', '6d'], { env }))
    await waitFor(() => gets() >= RUNS, { timeoutMs: 60_000, what: `all ${RUNS} runs to read the Secret` })
    release()
    double.writeGate = undefined
    const results = await Promise.all(runs)

    for (const r of results) assert.equal(r.code, 0, r.stderr)
    const updates = double.calls.filter((c) => c.verb === 'update')
    assert.equal(updates.filter((c) => c.status === 200).length, 1, 'exactly one write was applied')
    assert.equal(updates.filter((c) => c.status === 409).length, RUNS - 1, 'every other run was refused by the resourceVersion check')

    const stored = JSON.parse(Buffer.from(double.secret(NS, 'cbc-secrets')!.data['jwt-keyset']!, 'base64').toString()) as {
      current: string
      keys: Array<{ kid: string }>
    }
    assert.equal(stored.current, old.kid, 'staging does not change the current key')
    assert.equal(stored.keys.length, 2, `one key staged, not ${stored.keys.length - 1}`)

    const changes = results.flatMap((r) => r.stderr.split('\n').filter((l) => l.includes('"keyset_changed"')))
    assert.equal(changes.length, 1, 'one audit line for one change')
    const staged = stored.keys.find((k) => k.kid !== old.kid)!.kid
    assert.deepEqual(JSON.parse(changes[0]!).added, [staged])
  })
})
