/**
 * Least privilege in the shipped manifests, as `kubectl kustomize` renders each layout: no pod
 * that verifies (the API Deployment, the forward-auth sidecar, on a volume or on the API
 * watch) can read `cbc-secrets` — not by a volume, an environment variable, the Kubernetes
 * backend, nor RBAC bound to its ServiceAccount. They read the verification projection
 * `cbc-jwt-verification`; only the rotation CronJob reads `cbc-secrets`. Where the rotator is
 * part of a layout, every namespace with a verifier gets the projection from it (published
 * there, shipped there, writable by it there) and is covered by its promotion gate.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { describe, test } from 'node:test'
import YAML from 'yaml'
import { KUBERNETES_DEFAULTS } from '../../src/lib/backends/kubernetes/options.js'
import { LAST_GOOD_DEFAULTS } from '../../src/ops/last-good/targets.js'
import { PROJECTION_DEFAULTS } from '../../src/ops/projection/targets.js'
import { accessTo, isRotator, podSecretAccess, rotateCommand, type PodAccess } from '../support/manifest-access.js'
import { PROJECT_ROOT } from '../support/service.js'

type Obj = Record<string, any>
const PRIVATE = KUBERNETES_DEFAULTS.secret
const PROJECTION = PROJECTION_DEFAULTS.kubernetesSecret
const LAST_GOOD = LAST_GOOD_DEFAULTS.kubernetesSecret
const LAYOUTS = ['deploy/kubernetes', 'deploy/kubernetes-api-watch', 'deploy/kubernetes/sidecar', 'deploy/kubernetes-multi-namespace']
const kubectl = spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0

function render(layout: string): Obj[] {
  const r = spawnSync('kubectl', ['kustomize', path.join(PROJECT_ROOT, layout)], { encoding: 'utf8', timeout: 60_000 })
  assert.equal(r.status, 0, r.stderr)
  return YAML.parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj)
}

const show = (p: PodAccess, name: string) =>
  accessTo(p, name)
    .map((a) => `${a.how} (${a.namespace}/${a.name})`)
    .join('; ')

/** Every way `objects` lets a verifier pod read cbc-secrets, one line each (empty: none). */
function verifierLeaks(objects: Obj[]): string[] {
  return podSecretAccess(objects)
    .filter((p) => !isRotator(p))
    .flatMap((p) => (accessTo(p, PRIVATE).length > 0 ? [`${p.workload}: ${show(p, PRIVATE)}`] : []))
}

/** The rotator's updates allowed by RBAC in `namespace` on the Secret `name`. */
function rotatorMayUpdate(objects: Obj[], rotator: PodAccess, namespace: string, name: string): boolean {
  return objects
    .filter((b) => b.kind === 'RoleBinding' && b.metadata.namespace === namespace)
    .filter((b) => b.subjects.some((s: Obj) => s.kind === 'ServiceAccount' && s.name === rotator.serviceAccount && s.namespace === rotator.namespace))
    .map((b) => objects.find((r) => r.kind === 'Role' && r.metadata.namespace === namespace && r.metadata.name === b.roleRef.name))
    .some((role) =>
      (role?.rules ?? []).some(
        (r: Obj) => r.resources.includes('secrets') && r.verbs.includes('update') && (r.resourceNames === undefined || r.resourceNames.includes(name)),
      ),
    )
}

describe('no verifier pod can read cbc-secrets (the rendered manifests)', { skip: kubectl ? false : 'kubectl is not installed' }, () => {
  for (const layout of LAYOUTS) {
    test(`${layout}: every verifier reads the projection only; only the rotator reads cbc-secrets`, () => {
      const objects = render(layout)
      const pods = podSecretAccess(objects)
      const verifiers = pods.filter((p) => !isRotator(p))
      assert.ok(verifiers.length > 0, 'a verifier pod')
      assert.deepEqual(verifierLeaks(objects), [])
      for (const v of verifiers) {
        const reads = v.access.filter((a) => a.name === PROJECTION && !a.how.startsWith('RBAC'))
        assert.equal(reads.length, 1, `${v.workload} reads the projection ${PROJECTION} (volume or API): ${JSON.stringify(v.access)}`)
        // And nothing else: the only Secret it holds or may read is the projection.
        assert.deepEqual(
          v.access.filter((a) => a.name !== PROJECTION),
          [],
          v.workload,
        )
      }
      for (const r of pods.filter(isRotator)) assert.ok(accessTo(r, PRIVATE).length > 0, `${r.workload} reads ${PRIVATE}`)
    })
  }

  for (const layout of ['deploy/kubernetes', 'deploy/kubernetes-api-watch', 'deploy/kubernetes-multi-namespace']) {
    test(`${layout}: the rotator publishes the projection to, and gates on, every namespace with a verifier`, () => {
      const objects = render(layout)
      const pods = podSecretAccess(objects)
      const [rotator, ...others] = pods.filter(isRotator)
      assert.ok(rotator && others.length === 0, 'one rotator')
      const env = rotator.env.find((e) => e.CBC_JWT_BACKEND === 'kubernetes')!
      const published = (env.CBC_JWT_KUBERNETES_PUBLIC_NAMESPACES ?? rotator.namespace).split(',').map((n) => n.trim())
      const args = rotateCommand(rotator)!
      const cron = objects.find((o) => o.kind === 'CronJob')!.spec.jobTemplate.spec.template.spec.containers[0]
      const selectors = (cron.args as string[]).flatMap((a, i, all) => (all[i - 1] === '--selector' ? [a] : []))
      assert.ok(args.includes('--selector'))
      // Its last good copy (private keys) is shipped beside the keyset, empty, and only the rotator may write it.
      assert.ok(
        objects.some((o) => o.kind === 'Secret' && o.metadata.name === LAST_GOOD && o.metadata.namespace === rotator.namespace),
        `${LAST_GOOD} is shipped`,
      )
      assert.ok(rotatorMayUpdate(objects, rotator, rotator.namespace, LAST_GOOD), `the rotator may update ${LAST_GOOD}`)
      for (const ns of new Set(pods.filter((p) => !isRotator(p)).map((p) => p.namespace))) {
        assert.ok(published.includes(ns), `the rotator publishes the projection to ${ns} (CBC_JWT_KUBERNETES_PUBLIC_NAMESPACES: ${published})`)
        assert.ok(
          objects.some((o) => o.kind === 'Secret' && o.metadata.name === PROJECTION && o.metadata.namespace === ns),
          `${PROJECTION} is shipped in ${ns}`,
        )
        assert.ok(rotatorMayUpdate(objects, rotator, ns, PROJECTION), `the rotator may update ${ns}/${PROJECTION}`)
        assert.ok(
          selectors.some((s) => s.includes(`namespace="${ns}"`) || !s.includes('namespace')),
          `a --selector covers the replicas of ${ns}: ${selectors.join(' ')}`,
        )
      }
    })
  }

  test('deploy/kubernetes-multi-namespace renders objects valid against the Kubernetes OpenAPI schema', async () => {
    for (const obj of render('deploy/kubernetes-multi-namespace')) {
      const mod = obj.apiVersion.startsWith('monitoring.coreos.com/')
        ? await import(`@kubernetes-models/prometheus-operator/${obj.apiVersion}/${obj.kind}`)
        : await import(`kubernetes-models/${obj.apiVersion}/${obj.kind}`)
      assert.doesNotThrow(() => new mod[obj.kind](obj).validate(), `${obj.kind} ${obj.metadata.namespace}/${obj.metadata.name}`)
    }
  })

  describe('the check can fail: each way a verifier could reach cbc-secrets is caught', () => {
    const base = kubectl ? render('deploy/kubernetes-api-watch') : []
    const apiPod = (objects: Obj[]) => objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'cbc-jwt')!.spec.template
    const variants: Array<[string, (objects: Obj[]) => void, RegExp]> = [
      [
        'a volume of cbc-secrets',
        (o) => void apiPod(o).spec.volumes.push({ name: 'old', secret: { secretName: PRIVATE } }),
        /Deployment cbc\/cbc-jwt: volume old \(cbc\/cbc-secrets\)/,
      ],
      [
        'an envFrom of cbc-secrets',
        (o) => void (apiPod(o).spec.containers[0].envFrom = [{ secretRef: { name: PRIVATE } }]),
        /envFrom of cbc-jwt \(cbc\/cbc-secrets\)/,
      ],
      [
        'the API backend left on its default Secret',
        (o) => void (apiPod(o).spec.containers[0].env = apiPod(o).spec.containers[0].env.filter((e: Obj) => e.name !== 'CBC_JWT_KUBERNETES_SECRET')),
        /API backend of cbc-jwt \(cbc\/cbc-secrets\)/,
      ],
      [
        'a Role on every Secret bound to its ServiceAccount',
        (o) => void (o.find((r) => r.kind === 'Role' && r.metadata.name === 'cbc-jwt-reader')!.rules[0].resourceNames = undefined),
        /RBAC Role cbc-jwt-reader via RoleBinding cbc\/cbc-jwt-reader \(cbc\/\*\)/,
      ],
      [
        'a ClusterRole bound to every service account of its namespace',
        (o) =>
          void o.push(
            { kind: 'ClusterRole', metadata: { name: 'secret-reader' }, rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['list'] }] },
            {
              kind: 'ClusterRoleBinding',
              metadata: { name: 'ns-readers' },
              roleRef: { kind: 'ClusterRole', name: 'secret-reader' },
              subjects: [{ kind: 'Group', name: 'system:serviceaccounts:cbc' }],
            },
          ),
        /RBAC ClusterRole secret-reader via ClusterRoleBinding \/ns-readers \(\*\/\*\)/,
      ],
    ]
    for (const [name, change, caught] of variants) {
      test(name, () => {
        const objects = structuredClone(base)
        assert.deepEqual(verifierLeaks(objects), [])
        change(objects)
        assert.match(verifierLeaks(objects).join('\n'), caught)
      })
    }
  })
})
