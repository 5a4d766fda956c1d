/**
 * The drill, re-run with docs/runbook.md as written: routine rotation, an auth failure spike
 * (stolen tokens), backend errors (a bad write), a key compromise — against two real
 * replicas reading one Kubernetes-style secret volume.
 *
 * Each step is the runbook's own ```bash block, run by bash after the runbook's Setup block
 * (its functions: pods, pod_port, keyset_update, …), with the real `cbc-jwt`, `jq`, `curl`
 * and `base64`. `kubectl` is a TEST DOUBLE (test/support/kubectl-double.mjs) of kubectl and
 * the API server: the secret with resourceVersion check-and-set, pod logs with kubectl's
 * `--prefix`/`--tail` rules, and port-forward as a real TCP proxy to each replica. A
 * "kubelet" here copies the secret's `jwt-keyset` into the replicas' volume, as the kubelet
 * does. Placeholders the operator fills in (a time, a kid, the local port) are filled in.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { freePort } from '../support/free-port.js'
import { KubeletVolume } from '../support/kubelet-volume.js'
import { makeKey, makeKeyset, signToken, validClaims } from '../support/keys.js'
import { bashBlocks, readRunbook } from '../support/runbook.js'
import { CLI_MAIN, PROJECT_ROOT, SERVER_MAIN, startService, type RunningService } from '../support/service.js'
import { waitFor } from '../support/wait.js'

const RUNBOOK = readRunbook()
const DAY = 86_400_000

interface Step {
  code: number | null
  stdout: string
  stderr: string
}

describe('the runbook drill, against two real replicas', { timeout: 600_000 }, () => {
  let dir: string
  let stateDir: string
  let volume: KubeletVolume
  let kubelet: NodeJS.Timeout | undefined
  let syncedVersion = ''
  let port: number
  const replicas: Record<string, RunningService> = {}
  const initialKey = makeKey('ES256', 'k-drill-initial')

  const secret = () => JSON.parse(fs.readFileSync(path.join(stateDir, 'secret.json'), 'utf8')) as { resourceVersion: string; data: Record<string, string> }
  const keysetInSecret = () => JSON.parse(Buffer.from(secret().data['jwt-keyset']!, 'base64').toString()) as { current: string; keys: Array<{ kid: string }> }
  const both = () => Object.values(replicas)
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
  const cli = (args: string[], input: string, env: Record<string, string> = {}) =>
    new Promise<Step>((resolve) => {
      const child = spawn(process.execPath, [CLI_MAIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (d: Buffer) => (stdout += d))
      child.stderr.on('data', (d: Buffer) => (stderr += d))
      child.on('close', (code) => resolve({ code, stdout, stderr }))
      child.stdin.end(input)
    })
  const currentDoc = () => Buffer.from(secret().data['jwt-keyset']!, 'base64').toString()

  /**
   * Runs one runbook block in bash after the Setup block; the variables an operator keeps
   * between steps (PREV, LEGACY, LEAKED) are kept between runs. The replicas' logs are
   * flushed to the files the kubectl double reads, as the container runtime would.
   */
  async function step(block: string, env: Record<string, string> = {}): Promise<Step> {
    for (const [name, service] of Object.entries(replicas)) fs.writeFileSync(path.join(dir, `${name}.log`), service.output())
    const setup = bashBlocks(RUNBOOK, 'Setup')[0]!
    const script = `${setup}\n[ -f vars.sh ] && source vars.sh\n${block.replaceAll('18000', String(port))}\n__rc=$?\ndeclare -p PREV LEGACY LEAKED > vars.sh 2>/dev/null\nexit $__rc`
    return new Promise((resolve, reject) => {
      const child = spawn('bash', ['-c', script], {
        cwd: dir,
        env: { PATH: `${path.join(dir, 'bin')}:${process.env.PATH ?? ''}`, HOME: dir, KUBECTL_DOUBLE_STATE: stateDir, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (d: Buffer) => (stdout += d))
      child.stderr.on('data', (d: Buffer) => (stderr += d))
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
        reject(new Error(`runbook step did not finish in 180 s:\n${block}\n${stdout}\n${stderr}`))
      }, 180_000)
      child.on('close', (code) => {
        clearTimeout(timer)
        resolve({ code, stdout, stderr })
      })
    })
  }

  /** Waits until every replica serves `kid` as current (the kubelet synced, the replica reloaded). */
  async function everyReplicaOn(kid: string) {
    for (const r of both()) await waitFor(async () => (await r.get('/readyz')).json?.current === kid, { timeoutMs: 15_000, what: `current ${kid} on ${r.url}` })
  }

  before(async () => {
    assert.ok(fs.existsSync(SERVER_MAIN) && fs.existsSync(CLI_MAIN), 'run npm run build first')
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-drill-'))
    stateDir = path.join(dir, 'state')
    fs.mkdirSync(stateDir)
    fs.mkdirSync(path.join(dir, 'bin'))
    fs.writeFileSync(path.join(dir, 'bin/kubectl'), `#!/bin/sh\nexec "${process.execPath}" "${path.join(PROJECT_ROOT, 'test/support/kubectl-double.mjs')}" "$@"\n`, { mode: 0o755 })
    fs.writeFileSync(path.join(dir, 'bin/cbc-jwt'), `#!/bin/sh\nexec "${process.execPath}" "${CLI_MAIN}" "$@"\n`, { mode: 0o755 })
    const initial = JSON.stringify(makeKeyset([{ key: initialKey, opts: { createdAt: new Date(Date.now() - 6 * DAY) } }]))
    fs.writeFileSync(path.join(stateDir, 'secret.json'), JSON.stringify({ resourceVersion: '1', data: { 'jwt-keyset': Buffer.from(initial).toString('base64') } }))
    volume = new KubeletVolume(path.join(dir, 'volume'))
    // The kubelet: a changed secret reaches the volume within a sync period (here 200 ms).
    const sync = () => {
      const s = secret()
      if (s.resourceVersion === syncedVersion) return
      syncedVersion = s.resourceVersion
      volume.writeKeyset(Buffer.from(s.data['jwt-keyset'] ?? '', 'base64').toString())
    }
    sync()
    kubelet = setInterval(sync, 200)
    const env = { CBC_JWT_KEYSET_FILE: volume.file(), CBC_JWT_REFRESH_INTERVAL_SECONDS: '1' }
    const [a, b] = await Promise.all([startService({ env, timeoutMs: 40_000 }), startService({ env, timeoutMs: 40_000 })])
    replicas['cbc-jwt-a'] = a
    replicas['cbc-jwt-b'] = b
    fs.writeFileSync(
      path.join(stateDir, 'pods.json'),
      JSON.stringify(Object.fromEntries(Object.entries(replicas).map(([name, r]) => [name, { port: r.port, log: path.join(dir, `${name}.log`) }]))),
    )
    port = await freePort()
  })

  after(async () => {
    if (kubelet) clearInterval(kubelet)
    await Promise.all(both().map((r) => r.stop()))
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

  it('routine rotation: before-steps, stage, promote, then the checklist passes on every replica', async () => {
    const [keep, stage, promote] = bashBlocks(RUNBOOK, 'Routine Rotation')
    const kept = await step(keep!)
    assert.equal(kept.code, 0, kept.stderr)
    assert.match(fs.readFileSync(path.join(dir, 'vars.sh'), 'utf8'), new RegExp(`PREV="${initialKey.kid}"`))

    const staged = await step(stage!)
    assert.equal(staged.code, 0, staged.stderr)
    assert.match(staged.stdout, /secret\/cbc-secrets patched/)
    assert.equal(secret().data['jwt-keyset-last-good'], secret().data['jwt-keyset'], 'the last good copy is what was written')
    const stagedKid = keysetInSecret().keys.find((k) => k.kid !== initialKey.kid)!.kid
    for (const r of both()) {
      await waitFor(async () => (await r.get('/v1/keys')).json?.keys?.some((k: { kid: string; status: string }) => k.kid === stagedKid && k.status === 'staged'), {
        timeoutMs: 15_000,
        what: `staged ${stagedKid} on ${r.url}`,
      })
    }
    const early = await step(promote!)
    assert.notEqual(early.code, 0, 'promotion before the propagation window is refused')
    assert.match(early.stderr, /propagat/)
    // The window is 2 × refresh + 90 s; instead of waiting it out, the CLI's clock is pinned
    // past it (CBC_JWT_NOW, the CLI's documented testing aid). The replicas keep real time.
    const promoted = await step(promote!, { CBC_JWT_NOW: new Date(Date.now() + 5 * 60_000).toISOString() })
    assert.equal(promoted.code, 0, promoted.stderr)
    await everyReplicaOn(stagedKid)

    const verify = await step(bashBlocks(RUNBOOK, 'Verification Checklist After Rotation')[0]!)
    assert.equal(verify.code, 0, verify.stderr)
    assert.equal(verify.stdout.match(/^rotation verified$/gm)?.length, 2, verify.stdout)
    assert.doesNotMatch(verify.stdout, /NOT VERIFIED/)
  })

  it('auth failure spike: failures names the spike and its start; revoking there rejects the stolen token everywhere', async () => {
    const doc = currentDoc()
    const current = JSON.parse(doc).current as string
    // A token stolen earlier (issued two minutes ago), replayed during the spike; forged
    // tokens with the right kid and a claimed client id hit both replicas.
    const stolen = (await cli(['token', 'issue', '--sub', 'victim', '--client-id', 'acme-batch', '-'], doc, { CBC_JWT_NOW: new Date(Date.now() - 120_000).toISOString() })).stdout.trim()
    const forged = signToken(makeKey('ES256', current), validClaims({ client_id: 'acme-batch' }))
    const rejectedSoFar = (r: RunningService) => r.logs().filter((l) => l.event === 'auth_rejected').length
    for (const r of both()) {
      const before = rejectedSoFar(r)
      const answers = await Promise.all(Array.from({ length: 20 }, () => r.get('/v1/whoami', bearer(forged))))
      // The log line may reach stdout a moment after the answer.
      await waitFor(() => rejectedSoFar(r) >= before + 20, { what: '20 auth_rejected lines' })
      assert.deepEqual([...new Set(answers.map((x) => x.json?.reason))], ['bad_signature'])
      assert.equal((await r.get('/v1/whoami', bearer(stolen))).status, 200, 'the stolen token is accepted before the revocation')
    }

    const [triage, revoke] = bashBlocks(RUNBOOK, 'JWTAuthFailureSpike')
    const seen = await step(triage!)
    assert.equal(seen.code, 0, seen.stderr)
    // The forger is visible: the id its tokens claim, marked unverified, on both replicas.
    assert.match(seen.stdout, /^ +40 +bad_signature +acme-batch \(unverified\) +\S+ +\S+ +2 +127\.0\.0\.1$/m, seen.stdout)
    const start = /spike start for "cbc-jwt revoke --issued-before": (\S+)/.exec(seen.stdout)?.[1]
    assert.ok(start, seen.stdout)

    const revoked = await step(revoke!.replace(/--issued-before \S+/, `--issued-before ${start}`))
    assert.equal(revoked.code, 0, revoked.stderr)
    assert.equal(keysetInSecret().current, current, 'revocation does not rotate')
    const fresh = (await cli(['token', 'issue', '--sub', 'victim', '--client-id', 'acme-batch', '-'], currentDoc(), { CBC_JWT_NOW: new Date(Date.now() + 2000).toISOString() })).stdout.trim()
    for (const r of both()) {
      await waitFor(async () => (await r.get('/v1/whoami', bearer(stolen))).json?.reason === 'revoked', { timeoutMs: 15_000, what: `stolen token revoked on ${r.url}` })
      const ok = await r.get('/v1/whoami', bearer(fresh))
      assert.equal(ok.status, 200, `a token issued after the revocation: ${ok.body}`)
    }
  })

  it('backend errors: a bad write outside keyset_update; replicas keep serving; the last good keyset is restored', async () => {
    const good = currentDoc()
    const current = JSON.parse(good).current as string
    const token = (await cli(['token', 'issue', '--sub', 'drill', '-'], good, { CBC_JWT_NOW: new Date(Date.now() + 2000).toISOString() })).stdout.trim()
    // What the drill saw: someone wrote a truncated document straight into the secret.
    const s = secret()
    s.data['jwt-keyset'] = Buffer.from('{"version": 1, "current": ').toString('base64')
    s.resourceVersion = String(Number(s.resourceVersion) + 1)
    fs.writeFileSync(path.join(stateDir, 'secret.json'), JSON.stringify(s))
    for (const r of both()) await waitFor(() => r.logs().some((l) => l.event === 'backend_error' && l.reason === 'invalid_json'), { timeoutMs: 15_000, what: `backend_error on ${r.url}` })

    const [triage, restore, postmortem] = bashBlocks(RUNBOOK, 'JWTSecretsBackendErrors')
    const seen = await step(triage!)
    assert.equal(seen.code, 1, 'keyset validate fails on the broken document')
    assert.match(seen.stdout, /^\[pod\/cbc-jwt-[ab]\/cbc-jwt\] \{.*"event":"backend_error".*"reason":"invalid_json"/m)
    assert.match(seen.stderr, /invalid keyset/)
    for (const r of both()) assert.equal((await r.get('/v1/whoami', bearer(token))).status, 200, 'the last good keyset stays in force')

    const restored = await step(restore!)
    assert.equal(restored.code, 0, restored.stderr)
    assert.match(restored.stdout, /secret\/cbc-secrets patched/)
    assert.equal(currentDoc(), good)
    await everyReplicaOn(current)
    for (const r of both()) {
      await waitFor(() => r.logs().filter((l) => l.event === 'keyset_loaded').length >= 2 && r.logs().at(-1), { timeoutMs: 15_000, what: 'reloaded' })
    }

    const data = await step(postmortem!)
    assert.equal(data.code, 0, data.stderr)
    const metrics = fs.readFileSync(path.join(dir, 'metrics.txt'), 'utf8')
    for (const pod of Object.keys(replicas)) assert.match(metrics, new RegExp(`== pod/${pod}\\n`))
    assert.match(metrics, /^cbc_jwt_backend_errors_total\{reason="invalid_json"\} [1-9]/m)
  })

  it('key compromise: emergency rotation, confirmed on every replica, scoped by the leaked kid', async () => {
    const leaked = keysetInSecret().current
    const [note, rotate, confirm, scope] = bashBlocks(RUNBOOK, 'Key Compromise')
    // The attacker used the leaked key while it was accepted: a client nobody knows.
    const minted = (await cli(['token', 'issue', '--sub', 'intruder', '--client-id', 'unknown-tool', '-'], currentDoc(), { CBC_JWT_NOW: new Date(Date.now() + 2000).toISOString() })).stdout.trim()
    for (const r of both()) {
      assert.equal((await r.get('/v1/whoami', bearer(minted))).status, 200)
      await waitFor(() => r.logs().some((l) => l.event === 'auth_accepted' && l.client_id === 'unknown-tool'), { what: 'the first use logged' })
    }
    const noted = await step(note!.replace(/^LEAKED=\S+/m, `LEAKED=${leaked}`))
    assert.equal(noted.code, 0, noted.stderr)
    const legacy = /LEGACY="([^"]+)"/.exec(fs.readFileSync(path.join(dir, 'vars.sh'), 'utf8'))![1]!

    const rotated = await step(rotate!)
    assert.equal(rotated.code, 0, rotated.stderr)
    assert.match(rotated.stderr, /EMERGENCY/)
    const fresh = keysetInSecret().current
    assert.notEqual(fresh, leaked)
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
    assert.match(scoped.stdout, new RegExp(`^\\S+Z\tunknown-tool\t127\\.0\\.0\\.1\t\\S+Z$`, 'm'))
    // The last good copy is the clean keyset: restoring it never brings the leaked key back.
    assert.equal(JSON.parse(Buffer.from(secret().data['jwt-keyset-last-good']!, 'base64').toString()).current, fresh)
  })
})
