import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { pino } from 'pino'
import YAML from 'yaml'
import { createKubernetesBackend, kubernetesOptionsFromEnv } from '../../src/lib/backends/kubernetes/index.js'
import { serviceConfigFromEnv } from '../../src/lib/config.js'
import { serializeKeyset } from '../../src/lib/keyset/serialize.js'
import { createService } from '../../src/server/service.js'
import { startKubeDouble, type KubeDouble } from '../support/kube-double.js'
import { makeKey, makeKeyset } from '../support/keys.js'
import { PROJECT_ROOT } from '../support/service.js'
import { selfSignedCert } from '../support/test-tls.js'
import { waitFor } from '../support/wait.js'

type Obj = Record<string, any>
const OVERLAY = path.join(PROJECT_ROOT, 'deploy/kubernetes-api-watch')
const kubectl = spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0
const cert = selfSignedCert()

/** The overlay as kubectl renders it (the real kustomize built into kubectl). */
function render(): Obj[] {
  const r = spawnSync('kubectl', ['kustomize', OVERLAY], { encoding: 'utf8', timeout: 60_000 })
  assert.equal(r.status, 0, r.stderr)
  return YAML.parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj)
}

describe('deploy/kubernetes-api-watch: the API pods read and watch the Secret with least RBAC', { skip: kubectl ? false : 'kubectl is not installed' }, () => {
  const objects = kubectl ? render() : []
  const find = (kind: string, name: string): Obj => objects.find((o) => o.kind === kind && o.metadata.name === name)!
  const deployment = find('Deployment', 'cbc-jwt')
  const pod = deployment?.spec.template
  const container = pod?.spec.containers.find((c: Obj) => c.name === 'cbc-jwt')
  const env = Object.fromEntries((container?.env ?? []).map((e: Obj) => [e.name, e.value])) as Record<string, string>

  test('every rendered object validates against the Kubernetes OpenAPI schema', async () => {
    for (const obj of objects) {
      const mod = obj.apiVersion.startsWith('monitoring.coreos.com/')
        ? await import(`@kubernetes-models/prometheus-operator/${obj.apiVersion}/${obj.kind}`)
        : await import(`kubernetes-models/${obj.apiVersion}/${obj.kind}`)
      assert.doesNotThrow(() => new mod[obj.kind](obj).validate(), `${obj.kind} ${obj.metadata.name}`)
    }
  })

  test('the Deployment uses the Kubernetes backend on the Secret, with no volume of it', () => {
    const config = serviceConfigFromEnv(env)
    assert.equal(config.backend, 'kubernetes')
    assert.equal(config.keysetFile, undefined)
    const k8s = kubernetesOptionsFromEnv(env)
    assert.equal(k8s.secret, 'cbc-jwt-verification', 'the verification projection, never the private Secret')
    assert.equal(k8s.key, 'jwt-keyset')
    assert.ok(!pod.spec.volumes?.some((v: Obj) => v.secret), 'no secret volume: nothing of the Secret on the node')
    assert.ok(!container.volumeMounts?.some((m: Obj) => m.mountPath.startsWith('/var/run/secrets/cbc-jwt')))
    assert.equal(pod.spec.automountServiceAccountToken, true, 'the token is the pod’s only API credential')
  })

  test('its ServiceAccount may get, list and watch that one Secret and nothing else', () => {
    const sa = pod.spec.serviceAccountName
    const binding = objects.find((o) => o.kind === 'RoleBinding' && o.subjects.some((s: Obj) => s.kind === 'ServiceAccount' && s.name === sa))
    assert.ok(binding, `no RoleBinding for ${sa}`)
    const role = find('Role', binding.roleRef.name)
    assert.deepEqual(role.rules, [
      { apiGroups: [''], resources: ['secrets'], resourceNames: [kubernetesOptionsFromEnv(env).secret], verbs: ['get', 'list', 'watch'] },
    ])
  })

  describe('the service with this environment, in-cluster, against the API double with exactly that Role', {
    skip: cert ? false : 'openssl is not installed',
  }, () => {
    let double: KubeDouble
    let dir: string
    before(async () => {
      double = await startKubeDouble({ tls: { key: cert!.key, cert: cert!.cert } })
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-api-watch-'))
      // The service account volume as the kubelet projects it.
      fs.writeFileSync(path.join(dir, 'token'), double.token)
      fs.writeFileSync(path.join(dir, 'ca.crt'), cert!.cert)
      fs.writeFileSync(path.join(dir, 'namespace'), deployment.metadata.namespace)
    })
    after(async () => {
      await double?.close()
      if (dir) fs.rmSync(dir, { recursive: true, force: true })
      if (cert) fs.rmSync(cert.dir, { recursive: true, force: true })
    })

    test('loads, watches and follows a change with no call the Role refuses', async () => {
      const ns = deployment.metadata.namespace
      const keyset = (kid: string) => serializeKeyset(makeKeyset([makeKey('ES256', kid)]) as never)
      const watched = kubernetesOptionsFromEnv(env).secret
      double.setSecret(ns, watched, { 'jwt-keyset': keyset('k-api-watch-1') })
      double.setSecret(ns, 'cbc-secrets', { 'jwt-keyset': 'the private keyset: no right on it' })
      // The Role, applied by the double: resourceNames [the projection], and only get/list/watch.
      double.restrictNames = new Set([watched])
      for (const verb of ['create', 'update', 'patch', 'delete'] as const) double.deny.add(verb)
      const port = new URL(double.url).port
      const podEnv = { ...env, HOME: dir, KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: port }
      const config = serviceConfigFromEnv(podEnv)
      const backend = createKubernetesBackend(kubernetesOptionsFromEnv(podEnv), { env: podEnv, serviceAccountDir: dir })
      const service = createService({ config, backend, logger: pino({ level: 'silent' }) })
      try {
        await service.keyring.start()
        assert.equal(service.keyring.keyset()?.current.kid, 'k-api-watch-1')
        await waitFor(() => double.watches.open() === 1, { what: 'the watch' })
        double.setSecret(ns, watched, { 'jwt-keyset': keyset('k-api-watch-2') })
        await waitFor(() => service.keyring.keyset()?.current.kid === 'k-api-watch-2', { what: 'the change through the watch' })
        assert.deepEqual(
          double.calls.filter((c) => c.status >= 400),
          [],
          'nothing refused',
        )
        assert.deepEqual([...new Set(double.calls.map((c) => c.verb))].sort(), ['get', 'list', 'watch'])
        assert.equal(backend.location, `kubernetes:${ns}/${watched}#jwt-keyset`)
      } finally {
        await service.close()
      }
    })
  })
})
