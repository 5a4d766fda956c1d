import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createKubernetesBackend, kubernetesOptionsFromEnv } from '../../../../src/lib/backends/kubernetes/index.js'
import { serializeKeyset } from '../../../../src/lib/keyset/serialize.js'
import { startKubeDouble, type KubeDouble } from '../../../support/kube-double.js'
import { makeKey, makeKeyset } from '../../../support/keys.js'
import { runChild } from '../../../support/run-child.js'
import { selfSignedCert } from '../../../support/test-tls.js'
import { waitFor } from '../../../support/wait.js'

const NS = 'cbc'
const kubectlInstalled = spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0
const cert = selfSignedCert()
const skip = !kubectlInstalled ? 'kubectl is not installed' : !cert ? 'openssl is not installed: no certificate for the TLS API double' : false

/**
 * The API double checked against a real client, not only ours: Debian's kubectl, over TLS
 * (the double's CA in the kubeconfig) with a bearer token, for what operators and the runbook
 * do with Secrets — `get` (server-side printing and JSON), `apply` (create, then a strategic
 * merge patch), `get --watch` — on the same store cbc-jwt reads and writes.
 */
describe('the real kubectl against the Kubernetes API double', { skip }, () => {
  let double: KubeDouble
  let dir: string
  let env: Record<string, string>
  // Never spawnSync: the double answers from this very process.
  const kubectl = async (...args: string[]) => {
    const r = await runChild('kubectl', args, { env, timeoutMs: 60_000, what: `kubectl ${args.join(' ')}` })
    return { status: r.code, stdout: r.stdout, stderr: r.stderr }
  }
  const keyset = (kid: string) => serializeKeyset(makeKeyset([makeKey('ES256', kid)]) as never)

  before(async () => {
    double = await startKubeDouble({ tls: { key: cert!.key, cert: cert!.cert } })
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-kubectl-'))
    env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: dir,
      KUBECONFIG: double.writeKubeconfig(path.join(dir, 'kubeconfig'), { namespace: NS, ca: cert!.cert }),
    }
  })
  after(async () => {
    await double?.close()
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
    if (cert) fs.rmSync(cert.dir, { recursive: true, force: true })
  })

  it('kubectl get secret prints the server-side table; -o jsonpath reads what cbc-jwt wrote through its backend', async () => {
    const backend = createKubernetesBackend(kubernetesOptionsFromEnv(env), { env })
    const text = keyset('k-kubectl-1')
    await backend.write(text, null) // creates cbc-secrets through the API, as keyset init does
    await backend.close()
    const table = await kubectl('get', 'secret', 'cbc-secrets')
    assert.equal(table.status, 0, table.stderr)
    assert.match(table.stdout, /^NAME\s+TYPE\s+DATA\s+AGE\n/)
    assert.match(table.stdout, /^cbc-secrets\s+Opaque\s+1\s+\d+s$/m, 'the keyset (its last good copy is a Secret of its own)')
    const data = await kubectl('get', 'secret', 'cbc-secrets', '-o', 'jsonpath={.data.jwt-keyset}')
    assert.equal(data.status, 0, data.stderr)
    assert.equal(Buffer.from(data.stdout, 'base64').toString(), text)
    const rv = await kubectl('get', 'secret', 'cbc-secrets', '-o', 'jsonpath={.metadata.resourceVersion}')
    assert.equal(rv.stdout, double.secret(NS, 'cbc-secrets')!.metadata.resourceVersion)
  })

  it('kubectl apply creates a Secret and then patches it; cbc-jwt reads each state', async () => {
    const manifest = path.join(dir, 'secret.yaml')
    const write = (kid: string) =>
      fs.writeFileSync(
        manifest,
        JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'applied', namespace: NS }, stringData: { 'jwt-keyset': keyset(kid) } }),
      )
    const backend = createKubernetesBackend(kubernetesOptionsFromEnv({ ...env, CBC_JWT_KUBERNETES_SECRET: 'applied' }), { env })
    write('k-applied-1')
    const created = await kubectl('apply', '-f', manifest)
    assert.equal(created.status, 0, created.stderr)
    assert.match(created.stdout, /secret\/applied created/)
    assert.match((await backend.read()).text, /k-applied-1/)
    write('k-applied-2')
    const configured = await kubectl('apply', '-f', manifest)
    assert.equal(configured.status, 0, configured.stderr)
    assert.match(configured.stdout, /secret\/applied configured/)
    assert.match((await backend.read()).text, /k-applied-2/)
    assert.ok(
      double.calls.some((c) => c.verb === 'patch' && c.path.endsWith('/secrets/applied') && c.status === 200),
      'the second apply is a PATCH',
    )
    await backend.close()
  })

  it('kubectl get --watch sees the events of the double (field selector on the name)', async () => {
    double.setSecret(NS, 'watched', { 'jwt-keyset': keyset('k-watched-1') })
    const child = spawn('kubectl', ['get', 'secret', 'watched', '--watch', '--output-watch-events', '-o', 'jsonpath={.type} {.object.metadata.name}{"\\n"}'], {
      env,
    })
    let out = ''
    child.stdout.on('data', (c: Buffer) => (out += c.toString()))
    try {
      await waitFor(() => double.watches.open() > 0, { what: 'kubectl to open its watch', timeoutMs: 20_000 })
      assert.equal(double.watches.requests.at(-1)!.name, 'watched')
      double.setSecret(NS, 'watched', { 'jwt-keyset': keyset('k-watched-2') })
      await waitFor(() => out.includes('MODIFIED watched'), { what: 'MODIFIED from kubectl', timeoutMs: 10_000 })
      double.deleteSecret(NS, 'watched')
      await waitFor(() => out.includes('DELETED watched'), { what: 'DELETED from kubectl', timeoutMs: 10_000 })
    } finally {
      child.kill()
    }
  })

  it('a wrong bearer token: kubectl reports Unauthorized', async () => {
    const wrong = double.writeKubeconfig(path.join(dir, 'wrong'), { namespace: NS, ca: cert!.cert, token: 'not-the-token' })
    const r = await runChild('kubectl', ['get', 'secret', 'cbc-secrets'], {
      env: { ...env, KUBECONFIG: wrong },
      timeoutMs: 60_000,
      what: 'kubectl with a wrong token',
    })
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /Unauthorized|provide credentials/)
  })
})
