/**
 * deploy/kubernetes-multi-namespace, as `kubectl kustomize` renders it: the rotation CronJob's
 * command, run with the built CLI against the Kubernetes API test double, publishes the
 * verification projection into `cbc` and `orders` (the Secrets shipped empty there) before it
 * writes `cbc-secrets`, makes no call the rendered RBAC does not grant its ServiceAccount in
 * that namespace, and gates a promotion on both namespaces' selectors.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import YAML from 'yaml'
import type { KeysetDocument } from '../../src/lib/keyset/document.js'
import { projectionOf } from '../../src/ops/projection/publish.js'
import { assertNoPrivateMaterial } from '../lib/keyset/fixtures.js'
import { freePort } from '../support/free-port.js'
import { startKubeDouble, type KubeDouble } from '../support/kube-double.js'
import { makeKey, makeKeyset } from '../support/keys.js'
import { runChild } from '../support/run-child.js'
import { CLI_MAIN, PROJECT_ROOT } from '../support/service.js'

type Obj = Record<string, any>
const kubectl = spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0
const DAY = 86_400_000

describe('deploy/kubernetes-multi-namespace: one CronJob publishes to and gates on cbc and orders', {
  skip: kubectl ? false : 'kubectl is not installed',
}, () => {
  let objects: Obj[] = []
  let double: KubeDouble
  let dir: string
  let closedPort: number
  const cron = () => objects.find((o) => o.kind === 'CronJob')!.spec.jobTemplate.spec.template.spec
  const text = (ns: string, name: string) => Buffer.from(double.secret(ns, name)!.data['jwt-keyset'] ?? '', 'base64').toString()

  /** `namespace/name verb` of every Secret call the rotator's ServiceAccount may make, from the rendered Roles. */
  function granted(): Set<string> {
    const sa = cron().serviceAccountName
    const out = new Set<string>()
    for (const b of objects.filter((o) => o.kind === 'RoleBinding')) {
      if (!b.subjects.some((s: Obj) => s.kind === 'ServiceAccount' && s.name === sa && s.namespace === 'cbc')) continue
      const role = objects.find((r) => r.kind === 'Role' && r.metadata.namespace === b.metadata.namespace && r.metadata.name === b.roleRef.name)!
      for (const rule of role.rules) for (const name of rule.resourceNames) for (const verb of rule.verbs) out.add(`${b.metadata.namespace}/${name} ${verb}`)
    }
    return out
  }

  before(async () => {
    const r = spawnSync('kubectl', ['kustomize', path.join(PROJECT_ROOT, 'deploy/kubernetes-multi-namespace')], { encoding: 'utf8', timeout: 60_000 })
    assert.equal(r.status, 0, r.stderr)
    objects = YAML.parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj)
    assert.ok(fs.existsSync(CLI_MAIN), `${CLI_MAIN} is missing: run npm run build first`)
    double = await startKubeDouble()
    for (const verb of ['create', 'patch', 'delete', 'list', 'watch'] as const) double.deny.add(verb)
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-multi-ns-'))
    closedPort = await freePort()
  })
  after(async () => {
    await double?.close()
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
  })

  /** The CronJob's container as rendered: its command, args and env, in an empty home. */
  async function runJob() {
    const container = cron().containers[0]
    const env = Object.fromEntries(container.env.map((e: Obj) => [e.name, e.value]))
    const home = fs.mkdtempSync(path.join(dir, 'pod-'))
    const kubeconfig = double.writeKubeconfig(path.join(dir, 'kubeconfig'), { namespace: 'cbc' })
    // args[0] is the CLI's path in the image (node is its entrypoint): here, the built one.
    const { code, stdout, stderr } = await runChild(process.execPath, [CLI_MAIN, ...container.args.slice(1)], {
      cwd: home,
      env: { PATH: process.env.PATH ?? '', HOME: home, TMPDIR: home, KUBECONFIG: kubeconfig, ...env, CBC_JWT_PROMETHEUS_URL: `http://127.0.0.1:${closedPort}` },
      timeoutMs: 60_000,
      what: 'the CronJob command',
    })
    return { code, out: `${stdout}${stderr}`, stdout }
  }

  test('a run publishes the projection into cbc and orders, then cbc-secrets, with only the calls its Roles grant', async () => {
    double.setSecret('cbc', 'cbc-secrets', { 'jwt-keyset': JSON.stringify(makeKeyset([makeKey('ES256', 'k-multi')]), null, 2) })
    // Shipped empty (verification-secret.yaml in each namespace, last-good-secret.yaml beside
    // the keyset): the rotator needs no create.
    for (const ns of ['cbc', 'orders']) double.setSecret(ns, 'cbc-jwt-verification', {})
    double.setSecret('cbc', 'cbc-jwt-last-good', {})
    const first = double.calls.length
    const run = await runJob()
    assert.equal(run.code, 0, run.out)
    assert.match(run.out, /as the standby/)
    assert.match(
      run.stdout,
      /wrote the verification projection kubernetes:cbc\/cbc-jwt-verification#jwt-keyset\nwrote the verification projection kubernetes:orders\/cbc-jwt-verification#jwt-keyset\n(.*\n)*wrote kubernetes:cbc\/cbc-secrets#jwt-keyset/,
      'both projections first, then the private keyset',
    )
    const doc = JSON.parse(text('cbc', 'cbc-secrets')) as KeysetDocument
    const projected = projectionOf(doc)
    assert.ok('text' in projected)
    for (const ns of ['cbc', 'orders']) {
      assert.equal(text(ns, 'cbc-jwt-verification'), projected.text, `the projection in ${ns}`)
      assertNoPrivateMaterial(text(ns, 'cbc-jwt-verification'), doc, `the projection in ${ns}`)
    }
    assert.equal(double.secret('orders', 'cbc-secrets'), undefined, 'no private keyset in orders')
    const allowed = granted()
    const made = double.calls.slice(first).map((c) => {
      const m = /^\/api\/v1\/namespaces\/([^/]+)\/secrets\/([^/?]+)/.exec(c.path)!
      return `${m[1]}/${m[2]} ${c.verb}`
    })
    assert.ok(made.length >= 6, made.join(', '))
    for (const call of made) assert.ok(allowed.has(call), `${call} is not granted by the rendered RBAC (${[...allowed].join(', ')})`)
  })

  test('a promotion is gated on both namespaces: the refusal names both selectors', async () => {
    double.setSecret('cbc', 'cbc-secrets', {
      'jwt-keyset': JSON.stringify(
        makeKeyset([{ key: makeKey('ES256', 'k-multi-due'), opts: { createdAt: new Date(Date.now() - 6 * DAY - 3600_000) } }]),
        null,
        2,
      ),
    })
    const staged = await runJob()
    assert.equal(staged.code, 0, staged.out)
    const rv = double.secret('cbc', 'cbc-secrets')!.metadata.resourceVersion
    const refused = await runJob()
    assert.equal(refused.code, 1, refused.out)
    assert.match(
      refused.out,
      /cannot ask Prometheus http:\/\/127\.0\.0\.1:\d+ \{job="cbc-jwt",namespace="cbc"\} \+ \{job="cbc-jwt",namespace="orders"\}: ECONNREFUSED/,
    )
    assert.equal(double.secret('cbc', 'cbc-secrets')!.metadata.resourceVersion, rv, 'nothing written')
  })
})
