/**
 * The drill, re-run with docs/runbook.md as written: routine rotation, an auth failure spike
 * (stolen tokens), backend errors (a bad write), a key compromise — against two real
 * replicas, each on its own kubelet-style secret volume, scraped by a real Prometheus.
 *
 * Each step is the runbook's own ```bash block, run by bash after the runbook's Setup block
 * (its exports and functions: CBC_JWT_BACKEND=kubernetes, pods, pod_port, promq), with the
 * real `cbc-jwt`, `jq`, `curl` and `base64`. `cbc-jwt` writes and reads the Secret through
 * the Kubernetes API — here the API TEST DOUBLE (test/support/kube-double.ts), over real
 * HTTP, found through $KUBECONFIG as kubectl finds it. `kubectl` is a TEST DOUBLE too
 * (test/support/kubectl-double.mjs): pod logs with kubectl's `--prefix`/`--tail` rules,
 * port-forward as a real TCP proxy to each replica, and `get secret`, which asks the API
 * double — one Secret state. A "kubelet" per replica copies the Secret's `jwt-keyset` into
 * that replica's volume, as the kubelet does (one can be held back). Placeholders the
 * operator fills in (a time, a kid, the local port, $PROM) are filled in.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { cbcJwtProcess } from '../ops/cli/cli.js'
import { freePort } from '../support/free-port.js'
import { startKubeDouble, type KubeDouble } from '../support/kube-double.js'
import { KubeletSync } from '../support/kubelet-sync.js'
import { makeKey, makeKeyset, signToken, validClaims } from '../support/keys.js'
import { startPrometheus, type RunningPrometheus } from '../support/prometheus.js'
import { runChild, type ChildResult } from '../support/run-child.js'
import { bashBlocks, readRunbook } from '../support/runbook.js'
import { CLI_MAIN, PROJECT_ROOT, SERVER_MAIN, startService, type RunningService } from '../support/service.js'
import { startTokenClient } from '../support/token-client.js'
import { waitFor } from '../support/wait.js'

const RUNBOOK = readRunbook()
const DAY = 86_400_000
const NS = 'cbc'
const SECRET = 'cbc-secrets'
const decode = (b64: string | undefined) => (b64 === undefined ? undefined : Buffer.from(b64, 'base64').toString())

type Step = ChildResult

describe('the runbook drill, against two real replicas, Prometheus and the Kubernetes API double', { timeout: 600_000 }, () => {
  let dir: string
  let stateDir: string
  let kubeconfig: string
  let double: KubeDouble
  let prom: RunningPrometheus
  let port: number
  const replicas: Record<string, RunningService> = {}
  const nodes: Record<string, KubeletSync> = {}
  const initialKey = makeKey('ES256', 'k-drill-initial')

  const secret = () => double.secret(NS, SECRET)!
  const currentDoc = () => decode(secret().data['jwt-keyset'])!
  /** The last good copy every cbc-jwt write keeps, in a Secret of its own. */
  const lastGoodDoc = () => decode(double.secret(NS, 'cbc-jwt-last-good')?.data['jwt-keyset'])
  const setLastGood = (text: string) => double.setSecret(NS, 'cbc-jwt-last-good', { 'jwt-keyset': text })
  const keysetInSecret = () => JSON.parse(currentDoc()) as { current: string; keys: Array<{ kid: string; alg: string; jwk: unknown }> }
  /** Replaces the Secret's data as `kubectl edit`/`apply` would: no validation, no last good copy. */
  const writeOutsideCbcJwt = (data: Record<string, string>) => double.setSecret(NS, SECRET, data)
  const writes = () => double.calls.filter((c) => c.verb !== 'get').length
  const both = () => Object.values(replicas)
  const instance = (r: RunningService) => `127.0.0.1:${r.port}`
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
  const cli = (args: string[], input: string, env: Record<string, string> = {}) => cbcJwtProcess(args, { env, input })

  /**
   * Runs one runbook block in bash after the Setup block; the variables an operator keeps
   * between steps (PREV, LEGACY, LEAKED) are kept between runs. The replicas' logs are
   * flushed to the files the kubectl double reads, as the container runtime would.
   */
  async function step(block: string, env: Record<string, string> = {}): Promise<Step> {
    for (const [name, service] of Object.entries(replicas)) fs.writeFileSync(path.join(dir, `${name}.log`), service.output())
    const setup = bashBlocks(RUNBOOK, 'Setup')[0]!
    const script = `${setup}\nPROM=${prom.url}\n[ -f vars.sh ] && source vars.sh\n${block.replaceAll('18000', String(port))}\n__rc=$?\ndeclare -p PREV LEGACY LEAKED > vars.sh 2>/dev/null\nexit $__rc`
    return runChild('bash', ['-c', script], {
      cwd: dir,
      env: {
        PATH: `${path.join(dir, 'bin')}:${process.env.PATH ?? ''}`,
        HOME: dir,
        USER: 'oncall',
        KUBECONFIG: kubeconfig,
        KUBECTL_DOUBLE_STATE: stateDir,
        ...env,
      },
      timeoutMs: 180_000,
      what: `runbook step\n${block}\n`,
    })
  }

  /** The keyset_changed lines a step printed. */
  const auditLines = (r: Step) =>
    r.stderr
      .split('\n')
      .filter((l) => l.startsWith('{"event":"keyset_changed"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)

  /** Waits until every replica serves `kid` as current (the kubelet synced, the replica reloaded). */
  async function everyReplicaOn(kid: string) {
    for (const r of both()) await waitFor(async () => (await r.get('/readyz')).json?.current === kid, { timeoutMs: 15_000, what: `current ${kid} on ${r.url}` })
  }

  /** The instances Prometheus sees exporting `kid` with `status`. */
  async function exporting(kid: string, status: string): Promise<string[]> {
    return (await prom.query(`cbc_jwt_key_info{job="cbc-jwt",namespace="cbc",kid="${kid}",status="${status}"} == 1`)).map((r) => r.metric.instance!).sort()
  }

  before(async () => {
    assert.ok(fs.existsSync(SERVER_MAIN) && fs.existsSync(CLI_MAIN), 'run npm run build first')
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-drill-'))
    stateDir = path.join(dir, 'state')
    fs.mkdirSync(stateDir)
    fs.mkdirSync(path.join(dir, 'bin'))
    fs.writeFileSync(
      path.join(dir, 'bin/kubectl'),
      `#!/bin/sh\nexec "${process.execPath}" "${path.join(PROJECT_ROOT, 'test/support/kubectl-double.mjs')}" "$@"\n`,
      { mode: 0o755 },
    )
    fs.writeFileSync(path.join(dir, 'bin/cbc-jwt'), `#!/bin/sh\nexec "${process.execPath}" "${CLI_MAIN}" "$@"\n`, { mode: 0o755 })
    double = await startKubeDouble()
    // The operator's kubeconfig: no namespace in the context, the runbook names it.
    kubeconfig = double.writeKubeconfig(path.join(dir, '.kube/config'))
    // The Secrets as the manifests create them: the keyset only, and the empty last good copy.
    double.setSecret(NS, 'cbc-jwt-last-good', {})
    writeOutsideCbcJwt({ 'jwt-keyset': JSON.stringify(makeKeyset([{ key: initialKey, opts: { createdAt: new Date(Date.now() - 6 * DAY) } }])) })
    // One kubelet per replica: a changed secret reaches its volume 100 ms later.
    for (const name of ['cbc-jwt-a', 'cbc-jwt-b'])
      nodes[name] = new KubeletSync(path.join(dir, `node-${name}`), () => decode(double.secret(NS, SECRET)?.data['jwt-keyset']), 100)
    // The replicas and Prometheus start together: the ports are chosen first (three distinct).
    let ports: number[] = []
    while (new Set(ports).size !== 3) ports = await Promise.all([freePort(), freePort(), freePort()])
    port = ports[2]!
    const [started, prometheus] = await Promise.all([
      Promise.all(
        Object.values(nodes).map((node, i) =>
          startService({ env: { PORT: String(ports[i]), CBC_JWT_KEYSET_FILE: node.volume.file(), CBC_JWT_REFRESH_INTERVAL_SECONDS: '1' }, timeoutMs: 40_000 }),
        ),
      ),
      // Its first scrape comes ~5 s after start: the tests wait for the series they need.
      startPrometheus({
        dir: path.join(dir, 'prometheus'),
        job: 'cbc-jwt',
        targets: ports.slice(0, 2).map((p) => `127.0.0.1:${p}`),
        labels: { namespace: NS },
        waitForTargets: false,
      }),
    ])
    prom = prometheus
    for (const [i, name] of Object.keys(nodes).entries()) replicas[name] = started[i]!
    fs.writeFileSync(
      path.join(stateDir, 'pods.json'),
      JSON.stringify(Object.fromEntries(Object.entries(replicas).map(([name, r]) => [name, { port: r.port, log: path.join(dir, `${name}.log`) }]))),
    )
  })

  after(async () => {
    for (const node of Object.values(nodes)) node.stop()
    await Promise.all(both().map((r) => r.stop()))
    await prom?.stop()
    await double?.close()
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
  })

  it('the Setup block is valid bash, and the checks read every pod', async () => {
    const keys = bashBlocks(RUNBOOK, 'Checks').find((b) => b.includes('/v1/keys'))!
    const r = await step(keys)
    assert.equal(r.code, 0, r.stderr)
    for (const pod of Object.keys(replicas)) assert.match(r.stdout, new RegExp(`^pod/${pod}\\n\\{.*"current":"${initialKey.kid}"`, 'm'))
    // A port already taken makes pod_port fail loudly rather than read another process.
    // (the port-forward of the step before may still be letting go of it)
    const blocker = await waitFor(
      () =>
        new Promise<net.Server | false>((resolve) => {
          const server = net.createServer()
          server.once('error', () => resolve(false))
          server.listen(port, '127.0.0.1', () => resolve(server))
        }),
      { timeoutMs: 10_000, what: `port ${port} free` },
    )
    try {
      const taken = await step(keys)
      assert.doesNotMatch(taken.stdout, /"current"/, 'nothing read from the process holding the port')
      assert.match(taken.stderr, /port-forward to pod\/cbc-jwt-a failed:/)
    } finally {
      blocker.close()
    }
  })

  it('routine rotation: stage, promotion refused while a replica lags, promoted once all have it; 0 false 401s; the checklist passes everywhere', async (t) => {
    const [keep, stage, wait, promote] = bashBlocks(RUNBOOK, 'Routine Rotation')
    const client = startTokenClient(both(), keysetInSecret, { pauseMs: 25 })
    const kept = await step(keep!)
    assert.equal(kept.code, 0, kept.stderr)
    assert.match(fs.readFileSync(path.join(dir, 'vars.sh'), 'utf8'), new RegExp(`PREV="${initialKey.kid}"`))

    // Node b is slow: it will not sync the Secret until resumed.
    nodes['cbc-jwt-b']!.pause()
    const staged = await step(stage!)
    assert.equal(staged.code, 0, staged.stderr)
    assert.deepEqual(
      auditLines(staged).map((e) => [e.command, e.actor, e.reason]),
      [['rotate --stage', 'oncall', 'routine rotation']],
    )
    assert.equal(lastGoodDoc(), currentDoc(), 'the last good copy is what was written')
    const stagedKid = keysetInSecret().keys.find((k) => k.kid !== initialKey.kid)!.kid
    const b = replicas['cbc-jwt-b']!
    await waitFor(async () => (await exporting(initialKey.kid, 'current')).length === 2, {
      timeoutMs: 20_000,
      intervalMs: 100,
      what: 'Prometheus scrapes both replicas',
    })
    const before = secret()
    const refused = await step(promote!)
    assert.equal(refused.code, 1, refused.stderr)
    assert.match(refused.stderr, new RegExp(`refusing to promote ${stagedKid}: [12] of 2 replicas do not verify with it yet: `))
    assert.ok(refused.stderr.includes(`${instance(b)} (has ${initialKey.kid} current)`), refused.stderr)
    assert.deepEqual(secret(), before, 'a refused promotion writes nothing')

    nodes['cbc-jwt-b']!.resume()
    await waitFor(async () => (await exporting(stagedKid, 'staged')).length === 2, {
      timeoutMs: 15_000,
      intervalMs: 100,
      what: `Prometheus sees ${stagedKid} on both`,
    })
    const seen = await step(wait!)
    assert.equal(seen.code, 0, seen.stderr)
    assert.deepEqual(
      seen.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(' ')[0])
        .sort(),
      both().map(instance).sort(),
    )
    assert.match(seen.stdout, new RegExp(`"kid":"${stagedKid}"`))
    const promoted = await step(promote!)
    assert.equal(promoted.code, 0, promoted.stderr)
    assert.equal(keysetInSecret().current, stagedKid)
    await everyReplicaOn(stagedKid)

    const verify = await step(bashBlocks(RUNBOOK, 'Verification Checklist After Rotation')[0]!)
    assert.equal(verify.code, 0, verify.stderr)
    assert.equal(verify.stdout.match(/^rotation verified$/gm)?.length, 2, verify.stdout)
    assert.doesNotMatch(verify.stdout, /NOT VERIFIED/)
    const { sent, failures, kids } = await client.stop()
    t.diagnostic(`${sent} requests across the rotation, ${failures.length} rejected`)
    assert.ok(kids.has(initialKey.kid) && kids.has(stagedKid), 'tokens of both keys were sent')
    assert.deepEqual(failures, [], 'no false 401 across the rotation')
  })

  it('auth failure spike: failures names the client and its own spike start; revoking that client cuts it off on every replica, cached tokens included, and no one else', async () => {
    const doc = currentDoc()
    const current = JSON.parse(doc).current as string
    const issueAt = async (client: string, ms: number, ttl = '15m') =>
      (
        await cli(['token', 'issue', '--sub', 'victim', '--client-id', client, '--ttl', ttl, '-'], doc, { CBC_JWT_NOW: new Date(ms).toISOString() })
      ).stdout.trim()
    // A token stolen earlier (issued two minutes ago), replayed during the spike; another
    // client's token of the same age must keep working. Forged tokens with the right kid and a
    // claimed client id hit both replicas.
    const stolen = await issueAt('acme-batch', Date.now() - 120_000)
    const bystander = await issueAt('billing', Date.now() - 120_000)
    const forged = signToken(makeKey('ES256', current), validClaims({ client_id: 'acme-batch' }))
    const rejectedSoFar = (r: RunningService) => r.logs().filter((l) => l.event === 'auth_rejected').length
    // An unrelated rejection before the spike (another client, another reason): it must not
    // move acme-batch's spike start back.
    const stray = replicas['cbc-jwt-a']!
    const strayBefore = rejectedSoFar(stray)
    const expired = await issueAt('billing', Date.now() - 600_000, '1m')
    assert.equal((await stray.get('/v1/whoami', bearer(expired))).json?.reason, 'expired')
    await waitFor(() => rejectedSoFar(stray) > strayBefore, { what: 'the stray rejection logged' })
    // The spike begins in a later second than the stray rejection, so the two starts differ when printed.
    const strayTime = stray
      .logs()
      .filter((l) => l.event === 'auth_rejected' && l.reason === 'expired')
      .at(-1)!.time as number
    await waitFor(() => Date.now() > Math.ceil(strayTime / 1000) * 1000, { intervalMs: 50, what: 'the next second' })
    for (const r of both()) {
      const before = rejectedSoFar(r)
      const answers = await Promise.all(Array.from({ length: 20 }, () => r.get('/v1/whoami', bearer(forged))))
      // The log line may reach stdout a moment after the answer.
      await waitFor(() => rejectedSoFar(r) >= before + 20, { what: '20 auth_rejected lines' })
      assert.deepEqual([...new Set(answers.map((x) => x.json?.reason))], ['bad_signature'])
      // Accepted, and so held by each replica's verified-token cache.
      for (const token of [stolen, stolen, bystander]) assert.equal((await r.get('/v1/whoami', bearer(token))).status, 200, 'accepted before the revocation')
    }

    const [triage, revokeClient, revokeEveryone] = bashBlocks(RUNBOOK, 'JWTAuthFailureSpike')
    assert.match(revokeEveryone!, /^cbc-jwt revoke --issued-before \S+ .*--reason /m, 'the global form is kept for "we don\'t know who"')
    const seen = await step(triage!)
    assert.equal(seen.code, 0, seen.stderr)
    // The forger is visible: the id its tokens claim, marked unverified, on both replicas.
    assert.match(seen.stdout, /^ +40 +bad_signature +acme-batch \(unverified\) +\S+ +\S+ +\S+ +2 +127\.0\.0\.1$/m, seen.stdout)
    const printed = /^ {2}cbc-jwt revoke --client-id acme-batch --issued-before (\S+) /m.exec(seen.stdout)
    assert.ok(printed, seen.stdout)
    const start = printed[1]!
    const firstForged = Math.min(
      ...both().flatMap((r) =>
        r
          .logs()
          .filter((l) => l.event === 'auth_rejected' && l.reason === 'bad_signature')
          .map((l) => l.time as number),
      ),
    )
    assert.equal(Date.parse(start), Math.ceil(firstForged / 1000) * 1000, "the spike start is acme-batch's own first rejection, rounded up to the second")
    assert.ok(Date.parse(start) > Math.ceil(strayTime / 1000) * 1000, 'not the stray rejection before it')

    const block = revokeClient!.replace(/--client-id \S+ --issued-before \S+/, `--client-id acme-batch --issued-before ${start}`)
    const revoked = await step(block)
    assert.equal(revoked.code, 0, revoked.stderr)
    // The block waits until Prometheus sees the rule on every replica, and says so per pod.
    for (const r of both())
      assert.match(revoked.stdout, new RegExp(`^contained on ${instance(r).replace(/\./g, '\\.')} after \\d+\\.\\ds$`, 'm'), revoked.stdout)
    const [event] = auditLines(revoked)
    assert.equal(event?.command, 'revoke --client-id')
    assert.equal('revoked_before' in event!, false, 'the global revocation is untouched')
    assert.deepEqual(
      (event?.revocations as { added: Array<Record<string, string>> }).added.map(({ client_id, issued_before }) => ({ client_id, issued_before })),
      [{ client_id: 'acme-batch', issued_before: start }],
    )
    assert.equal(keysetInSecret().current, current, 'revocation does not rotate')
    const fresh = await issueAt('acme-batch', Date.now() + 2000)
    for (const r of both()) {
      await waitFor(async () => (await r.get('/v1/whoami', bearer(stolen))).json?.reason === 'revoked', {
        timeoutMs: 15_000,
        what: `stolen token revoked on ${r.url}`,
      })
      assert.equal((await r.get('/v1/whoami', bearer(bystander))).status, 200, "another client's token of the same age is untouched")
      const ok = await r.get('/v1/whoami', bearer(fresh))
      assert.equal(ok.status, 200, `a token of the same client issued after the revocation: ${ok.body}`)
    }
  })

  it('backend errors: a bad write outside cbc-jwt; replicas keep serving; an invalid copy and a concurrent write are refused with nothing written; the last good keyset is restored', async () => {
    const good = currentDoc()
    assert.equal(lastGoodDoc(), good, 'every write through cbc-jwt kept the copy')
    const current = JSON.parse(good).current as string
    const token = (await cli(['token', 'issue', '--sub', 'drill', '-'], good, { CBC_JWT_NOW: new Date(Date.now() + 2000).toISOString() })).stdout.trim()
    // What the drill saw: someone wrote a truncated document straight into the secret.
    const truncated = '{"version": 1, "current": '
    writeOutsideCbcJwt({ 'jwt-keyset': truncated })
    for (const r of both())
      await waitFor(() => r.logs().some((l) => l.event === 'backend_error' && l.reason === 'invalid_json'), {
        timeoutMs: 15_000,
        what: `backend_error on ${r.url}`,
      })

    const [triage, restore, postmortem] = bashBlocks(RUNBOOK, 'JWTSecretsBackendErrors')
    // The refusals are the block's writing command alone (its --dry-run line refuses the same way).
    const restoreCommand = restore!.split('\n').find((l) => l.startsWith('cbc-jwt keyset restore --reason'))!
    const seen = await step(triage!)
    assert.equal(seen.code, 1, 'keyset validate fails on the broken document')
    assert.match(seen.stdout, /^\[pod\/cbc-jwt-[ab]\/cbc-jwt\] \{.*"event":"backend_error".*"reason":"invalid_json"/m)
    assert.match(seen.stderr, /kubernetes:cbc\/cbc-secrets#jwt-keyset: invalid keyset/)
    // kubectl reads the Secrets cbc-jwt writes (one state, in the API double): the copy is there.
    assert.match(seen.stdout, /^jwt-keyset\nlast good copy: jwt-keyset$/m)
    for (const r of both()) assert.equal((await r.get('/v1/whoami', bearer(token))).status, 200, 'the last good keyset stays in force')

    // If the copy was broken too (someone edited both keys), restore refuses and writes nothing.
    const invalidCopy = JSON.stringify({ ...JSON.parse(good), current: 'k-nowhere' })
    setLastGood(invalidCopy)
    const broken = secret()
    let writesBefore = writes()
    const refused = await step(restoreCommand)
    assert.equal(refused.code, 1, refused.stderr)
    assert.match(refused.stderr, /cbc-jwt-last-good#jwt-keyset is not a valid keyset \(current: .*\); nothing was written/)
    assert.equal(writes(), writesBefore, 'not even attempted')
    assert.deepEqual(secret(), broken)
    setLastGood(good)

    // Another writer gets in between restore's read and its write: 409, nothing half-written.
    let theirs: ReturnType<KubeDouble['setSecret']> | undefined
    double.beforeWrite = () => {
      theirs ??= writeOutsideCbcJwt({ 'jwt-keyset': `${truncated}"k-` })
    }
    writesBefore = writes()
    const raced = await step(restoreCommand).finally(() => (double.beforeWrite = undefined))
    assert.equal(raced.code, 1, raced.stderr)
    assert.match(raced.stderr, /was changed by another writer .*; nothing was written — look at the keyset again/)
    assert.deepEqual(auditLines(raced), [])
    assert.deepEqual(secret(), theirs, 'exactly what the other writer left')
    // Its last write was the refused one (it read the keyset once more after it, to level the copy: no write).
    assert.equal(double.calls.filter((c) => c.verb !== 'get').at(-1)?.status, 409)

    const restored = await step(restore!)
    assert.equal(restored.code, 0, restored.stderr)
    assert.match(
      restored.stdout,
      /^dry run, nothing written — kubernetes:cbc\/cbc-secrets#jwt-keyset restored from kubernetes:cbc\/cbc-jwt-last-good#jwt-keyset/m,
    )
    assert.match(restored.stdout, /^wrote kubernetes:cbc\/cbc-secrets#jwt-keyset$/m)
    assert.deepEqual(
      auditLines(restored).map((e) => [e.command, e.from, e.to]),
      [['keyset restore', null, current]],
    )
    assert.equal(currentDoc(), good)
    await everyReplicaOn(current)
    for (const r of both()) {
      await waitFor(() => r.logs().some((l) => l.event === 'backend_recovered'), { timeoutMs: 15_000, what: `backend_recovered on ${r.url}` })
    }

    const data = await step(postmortem!)
    assert.equal(data.code, 0, data.stderr)
    const metrics = fs.readFileSync(path.join(dir, 'metrics.txt'), 'utf8')
    for (const pod of Object.keys(replicas)) assert.match(metrics, new RegExp(`== pod/${pod}\\n`))
    assert.match(metrics, /^cbc_jwt_backend_errors_total\{reason="invalid_json"\} [1-9]/m)
  })

  it('the keyset Secret deleted: the replicas keep serving; the JWTKeysetObjectGone blocks put it back from the copy, which survived it', async () => {
    const good = currentDoc()
    assert.equal(lastGoodDoc(), good)
    const current = JSON.parse(good).current as string
    const token = (await cli(['token', 'issue', '--sub', 'drill', '-'], good, { CBC_JWT_NOW: new Date(Date.now() + 2000).toISOString() })).stdout.trim()
    assert.ok(double.deleteSecret(NS, SECRET))
    // The kubelets keep the volume as it was: the replicas serve on.
    for (const r of both()) assert.equal((await r.get('/v1/whoami', bearer(token))).status, 200)

    const [triage, restore] = bashBlocks(RUNBOOK, 'JWTKeysetObjectGone')
    const seen = await step(triage!)
    assert.match(seen.stderr, /^Error from server \(NotFound\): secrets "cbc-secrets" not found$/m)
    assert.match(seen.stdout, /^last good copy: jwt-keyset$/m)
    const restored = await step(restore!)
    assert.equal(restored.code, 0, restored.stderr)
    assert.match(restored.stdout, /^dry run, nothing written — .* \(there was no keyset: it is created again\)$/m)
    assert.match(restored.stdout, /^wrote kubernetes:cbc\/cbc-secrets#jwt-keyset$/m)
    assert.deepEqual(
      auditLines(restored).map((e) => [e.command, e.from, e.to, e.reason]),
      [['keyset restore', null, current, 'JWTKeysetObjectGone: cbc-secrets was deleted']],
    )
    assert.equal(currentDoc(), good, 'the Secret holds the last good keyset again')
    for (const r of both()) assert.equal((await r.get('/v1/whoami', bearer(token))).status, 200)
  })

  it('key compromise: emergency rotation, confirmed on every replica, scoped by the leaked kid', async () => {
    const leaked = keysetInSecret().current
    const [note, rotate, confirm, scope] = bashBlocks(RUNBOOK, 'Key Compromise')
    // The attacker used the leaked key while it was accepted: a client nobody knows.
    const minted = (
      await cli(['token', 'issue', '--sub', 'intruder', '--client-id', 'unknown-tool', '-'], currentDoc(), {
        CBC_JWT_NOW: new Date(Date.now() + 2000).toISOString(),
      })
    ).stdout.trim()
    for (const r of both()) {
      assert.equal((await r.get('/v1/whoami', bearer(minted))).status, 200)
      await waitFor(() => r.logs().some((l) => l.event === 'auth_accepted' && l.client_id === 'unknown-tool'), { what: 'the first use logged' })
    }
    const noted = await step(note!.replace(/^LEAKED=\S+/m, `LEAKED=${leaked}`))
    assert.equal(noted.code, 0, noted.stderr)
    const legacy = /LEGACY="([^"]+)"/.exec(fs.readFileSync(path.join(dir, 'vars.sh'), 'utf8'))![1]!
    // The CronJob keeps a standby (rotate --auto), staged days before any compromise: the
    // emergency rotation promotes it, so the new current key is days old, not seconds.
    const staging = await step('cbc-jwt rotate --stage --reason "standby (CronJob cbc-jwt-rotate)"', {
      CBC_JWT_NOW: new Date(Date.now() - 2 * DAY).toISOString(),
    })
    assert.equal(staging.code, 0, staging.stderr)
    const standby = (auditLines(staging)[0]?.added as string[])[0]!
    await waitFor(async () => (await exporting(standby, 'staged')).length === 2, { timeoutMs: 30_000, what: `the standby ${standby} on both replicas` })

    const rotated = await step(rotate!)
    assert.equal(rotated.code, 0, rotated.stderr)
    assert.match(rotated.stdout, /EMERGENCY/)
    // The command itself waited until Prometheus showed the new state on both replicas.
    for (const r of both()) assert.match(rotated.stdout, new RegExp(`^contained on ${instance(r).replace(/\./g, '\\.')} after \\d+\\.\\ds$`, 'm'))
    assert.match(rotated.stdout, /^contained on every replica \(2, seen through /m)
    assert.equal(auditLines(rotated)[0]?.reason, `key compromise: ${leaked}`)
    const fresh = keysetInSecret().current
    assert.equal(fresh, standby, 'the standby is promoted')
    await everyReplicaOn(fresh)

    const confirmed = await step(confirm!)
    assert.equal(confirmed.code, 0, confirmed.stderr)
    assert.equal(confirmed.stdout.match(/^rotation verified$/gm)?.length, 2, confirmed.stdout)
    assert.doesNotMatch(confirmed.stdout, /NOT CONFIRMED/)

    // Someone still presents a token of the leaked key: the scoping step names the client.
    for (const r of both()) {
      assert.equal((await r.get('/v1/whoami', bearer(legacy))).status, 401)
      await waitFor(() => r.logs().filter((l) => l.event === 'auth_rejected' && l.reason === 'unknown_kid').length >= 2, { what: 'the rejection logged' })
    }
    const scoped = await step(scope!)
    assert.equal(scoped.code, 0, scoped.stderr)
    // 2 of ours and the 2 of the confirmation's --legacy-token, on both replicas.
    assert.match(scoped.stdout, /^ +4 +unknown_kid +compromise-check \(unverified\) .* +2 /m)
    // The success lines name the intruder's client and address, with its tokens' iat.
    assert.match(scoped.stdout, /^\S+Z\tunknown-tool\t127\.0\.0\.1\t\S+Z$/m)
    // The last good copy is the clean keyset: restoring it never brings the leaked key back.
    assert.equal(JSON.parse(lastGoodDoc()!).current, fresh)
  })
})
