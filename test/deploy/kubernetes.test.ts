/**
 * The Kubernetes manifests in deploy/kubernetes:
 * - valid against the Kubernetes OpenAPI schemas (the `kubernetes-models` validators, and
 *   `@kubernetes-models/prometheus-operator` for the ServiceMonitor);
 * - strict: no unknown field (a typo such as `readOnlyRootFileSystem` is silently dropped by
 *   the API server), checked by type-checking each object against the same package's types;
 * - in agreement with the code: the Deployment's environment configures the real service to
 *   the port, probe paths, metrics path and keyset path the manifests name;
 * - the rotation CronJob's command, run for real with the built CLI against the Kubernetes
 *   API test double (test/support/kube-double.ts).
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { pino } from 'pino'
import YAML from 'yaml'
import type { KeysetBackend } from '../../src/lib/backends/backend.js'
import { serviceConfigFromEnv } from '../../src/lib/config.js'
import { serviceVariables } from '../../src/lib/options-table.js'
import { createService } from '../../src/server/service.js'
import { freePort } from '../support/free-port.js'
import { startKubeDouble, type KubeDouble } from '../support/kube-double.js'
import { makeKey, makeKeyset } from '../support/keys.js'
import { runChild } from '../support/run-child.js'
import { CLI_MAIN, PROJECT_ROOT } from '../support/service.js'
import { waitFor } from '../support/wait.js'

const K8S_DIR = path.join(PROJECT_ROOT, 'deploy/kubernetes')
/** CONTRACT §2: the service's configuration variables. */
const CONTRACT_ENV = [
  'PORT',
  'HOST',
  'CBC_JWT_BACKEND',
  'CBC_JWT_KEYSET_FILE',
  'CBC_JWT_REFRESH_INTERVAL_SECONDS',
  'CBC_JWT_ISSUER',
  'CBC_JWT_AUDIENCE',
  'CBC_JWT_CLOCK_TOLERANCE_SECONDS',
  'VAULT_ADDR',
  'VAULT_TOKEN',
  'VAULT_NAMESPACE',
  'VAULT_CACERT',
  'CBC_JWT_VAULT_MOUNT',
  'CBC_JWT_VAULT_PATH',
]

// Loose shapes for the checks below; the schemas and types do the full validation.
type Obj = Record<string, any>
interface Manifest {
  file: string
  obj: Obj
}

function loadManifests(): Manifest[] {
  return fs
    .readdirSync(K8S_DIR)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .flatMap((file) =>
      YAML.parseAllDocuments(fs.readFileSync(path.join(K8S_DIR, file), 'utf8')).map((doc) => {
        assert.deepEqual(doc.errors, [], `${file}: YAML errors`)
        return { file, obj: doc.toJS() as Obj }
      }),
    )
}

const ALL = loadManifests()
const OBJECTS = ALL.filter((m) => m.obj.kind !== 'Kustomization')
function one(kind: string, name?: string): Obj {
  const found = OBJECTS.filter((m) => m.obj.kind === kind && (name === undefined || m.obj.metadata.name === name))
  assert.equal(found.length, 1, `expected one ${kind}${name ? ` ${name}` : ''}`)
  return found[0]!.obj
}

/** The module of `kubernetes-models` (or its prometheus-operator add-on) for an object. */
function modelModule(apiVersion: string, kind: string): string {
  if (apiVersion.startsWith('monitoring.coreos.com/')) return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`
  return `kubernetes-models/${apiVersion}/${kind}`
}

const DEPLOYMENT = one('Deployment', 'cbc-jwt')
const POD = DEPLOYMENT.spec.template
const CONTAINER = POD.spec.containers.find((c: Obj) => c.name === 'cbc-jwt')
const CRONJOB = one('CronJob')
const CRON_POD = CRONJOB.spec.jobTemplate.spec.template

describe('Kubernetes manifests: schema', () => {
  test('kustomization.yaml lists every manifest file, and nothing else', () => {
    const kustomization = ALL.find((m) => m.obj.kind === 'Kustomization')
    assert.ok(kustomization)
    const files = [...new Set(OBJECTS.map((m) => m.file))].sort()
    assert.deepEqual([...kustomization.obj.resources].sort(), files)
  })

  test('the expected objects are there, all in one namespace', () => {
    const kinds = OBJECTS.map((m) => m.obj.kind).sort()
    assert.deepEqual(kinds, [
      'CronJob',
      'Deployment',
      'PodDisruptionBudget',
      'Role',
      'RoleBinding',
      'Secret',
      'Secret',
      'Service',
      'ServiceAccount',
      'ServiceMonitor',
    ])
    for (const { obj } of OBJECTS) {
      assert.ok(obj.metadata?.name, `${obj.kind} without a name`)
      assert.equal(obj.metadata.namespace, 'cbc', `${obj.kind} ${obj.metadata.name}: namespace`)
    }
  })

  test('every object validates against the Kubernetes OpenAPI schema', async () => {
    for (const { file, obj } of OBJECTS) {
      const mod = (await import(modelModule(obj.apiVersion, obj.kind))) as Record<string, new (data: unknown) => { validate(): void }>
      const Model = mod[obj.kind]
      assert.ok(Model, `${file}: no model for ${obj.apiVersion} ${obj.kind}`)
      assert.doesNotThrow(() => new Model(obj).validate(), `${file}: ${obj.kind} ${obj.metadata.name}`)
    }
  })

  test('the schema check catches a wrong type (it can fail)', async () => {
    const { Deployment } = await import('kubernetes-models/apps/v1/Deployment')
    const broken = structuredClone(DEPLOYMENT)
    broken.spec.template.spec.containers[0].ports[0].containerPort = 'http'
    assert.throws(() => new Deployment(broken).validate(), /containerPort must be integer/)
  })

  describe('no unknown fields', () => {
    let dir: string
    before(() => {
      // Inside node_modules so that the generated file resolves kubernetes-models' types.
      fs.mkdirSync(path.join(PROJECT_ROOT, 'node_modules/.cache'), { recursive: true })
      dir = fs.mkdtempSync(path.join(PROJECT_ROOT, 'node_modules/.cache/cbc-jwt-k8s-'))
    })
    after(() => fs.rmSync(dir, { recursive: true, force: true }))

    /** Type-checks `objects` against their kubernetes-models types; returns tsc's errors. */
    function typecheck(objects: Manifest[]): string {
      const lines: string[] = []
      objects.forEach(({ file, obj }, i) => {
        lines.push(`import type { I${obj.kind} as T${i} } from ${JSON.stringify(modelModule(obj.apiVersion, obj.kind))}`)
        lines.push(`// ${file}\nexport const m${i}: T${i} = ${JSON.stringify(obj, null, 2)}`)
      })
      fs.writeFileSync(path.join(dir, 'manifests.ts'), `${lines.join('\n')}\n`)
      fs.writeFileSync(
        path.join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: { strict: true, noEmit: true, module: 'NodeNext', moduleResolution: 'NodeNext', skipLibCheck: true, types: [] },
          files: ['manifests.ts'],
        }),
      )
      const tsc = path.join(PROJECT_ROOT, 'node_modules/typescript/bin/tsc')
      const r = spawnSync(process.execPath, [tsc, '-p', path.join(dir, 'tsconfig.json')], { encoding: 'utf8', timeout: 60_000 })
      return r.status === 0 ? '' : `${r.stdout}${r.stderr}`
    }

    test('every field of every object is one the Kubernetes API knows', () => {
      assert.equal(typecheck(OBJECTS), '')
    })

    test('a misspelt field is caught (it can fail)', () => {
      const broken = structuredClone(OBJECTS.find((m) => m.obj.kind === 'Deployment')!)
      broken.obj.spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem = true
      assert.match(typecheck([broken]), /readOnlyRootFileSystem/)
    })
  })
})

describe('Kubernetes manifests: the Deployment agrees with the service', () => {
  const env = Object.fromEntries(CONTAINER.env.map((e: Obj) => [e.name, e.value])) as Record<string, string>
  const config = serviceConfigFromEnv(env)
  const httpPort = CONTAINER.ports.find((p: Obj) => p.name === 'http')

  test('its environment variables are the contract’s and the code reads them', () => {
    // The service reads exactly the variables of its options table (src/lib/options-table.ts).
    const read = serviceVariables()
    for (const name of Object.keys(env)) {
      assert.ok(CONTRACT_ENV.includes(name), `${name} is not a variable of CONTRACT §2`)
      assert.ok(read.includes(name), `the service does not read ${name}`)
    }
    assert.equal(config.backend, 'file')
  })

  test('the service listens on the container port named http, 8000', () => {
    assert.equal(httpPort?.containerPort, 8000)
    assert.equal(config.port, 8000)
  })

  test('the keyset file is the verification projection’s jwt-keyset item, mounted read-only without subPath', () => {
    const volume = POD.spec.volumes.find((v: Obj) => v.secret?.secretName === 'cbc-jwt-verification')
    assert.ok(volume, 'no volume of the secret cbc-jwt-verification')
    assert.deepEqual(volume.secret.items, [{ key: 'jwt-keyset', path: 'jwt-keyset' }])
    const mounts = CONTAINER.volumeMounts.filter((m: Obj) => m.name === volume.name)
    assert.equal(mounts.length, 1)
    assert.equal(mounts[0].readOnly, true)
    // A subPath mount is never updated by the kubelet: rotations would not arrive.
    for (const m of CONTAINER.volumeMounts) assert.equal(m.subPath, undefined, `subPath on ${m.name}`)
    assert.equal(config.keysetFile, path.posix.join(mounts[0].mountPath, 'jwt-keyset'))
  })

  test('pods run as non-root, read-only, without capabilities, under RuntimeDefault seccomp', () => {
    for (const [name, pod] of [
      ['Deployment', POD],
      ['CronJob', CRON_POD],
    ] as const) {
      assert.equal(pod.spec.securityContext.runAsNonRoot, true, name)
      assert.equal(pod.spec.securityContext.seccompProfile.type, 'RuntimeDefault', name)
      for (const c of pod.spec.containers) {
        assert.equal(c.securityContext.runAsNonRoot, true, `${name}/${c.name}`)
        assert.equal(c.securityContext.readOnlyRootFilesystem, true, `${name}/${c.name}`)
        assert.equal(c.securityContext.allowPrivilegeEscalation, false, `${name}/${c.name}`)
        assert.deepEqual(c.securityContext.capabilities.drop, ['ALL'], `${name}/${c.name}`)
        assert.equal(c.securityContext.seccompProfile.type, 'RuntimeDefault', `${name}/${c.name}`)
        assert.doesNotMatch(c.image, /:latest$|^[^:]+$/, `${name}/${c.name}: pin the image tag`)
      }
    }
  })

  test('Service, ServiceMonitor and PodDisruptionBudget select the pods and the http port', () => {
    const podLabels = POD.metadata.labels
    const matches = (selector: Record<string, string>) => Object.entries(selector).every(([k, v]) => podLabels[k] === v)
    const service = one('Service')
    assert.ok(matches(service.spec.selector))
    assert.deepEqual(
      service.spec.ports.map((p: Obj) => [p.name, p.targetPort]),
      [['http', 'http']],
    )
    const monitor = one('ServiceMonitor')
    assert.ok(Object.entries(monitor.spec.selector.matchLabels).every(([k, v]) => service.metadata.labels[k] === v))
    assert.deepEqual(monitor.spec.namespaceSelector.matchNames, [service.metadata.namespace])
    assert.equal(monitor.spec.endpoints[0].port, 'http')
    // Prometheus names the job after the Service: the alert rules select job="cbc-jwt".
    assert.equal(service.metadata.name, 'cbc-jwt')
    const pdb = one('PodDisruptionBudget')
    assert.ok(matches(pdb.spec.selector.matchLabels))
    assert.ok(pdb.spec.maxUnavailable < DEPLOYMENT.spec.replicas)
    assert.ok(matches(DEPLOYMENT.spec.selector.matchLabels))
  })

  test('the probe and scrape paths are the real service’s routes', async () => {
    assert.equal(CONTAINER.livenessProbe.httpGet.path, '/healthz')
    assert.equal(CONTAINER.readinessProbe.httpGet.path, '/readyz')
    assert.equal(CONTAINER.livenessProbe.httpGet.port, 'http')
    assert.equal(CONTAINER.readinessProbe.httpGet.port, 'http')
    const metricsPath = one('ServiceMonitor').spec.endpoints[0].path

    // The service as the Deployment configures it, with the keyset file replaced by a backend
    // in memory (the mount path does not exist here).
    const keyset = JSON.stringify(makeKeyset([makeKey('ES256', 'k-probe')]))
    const backend: KeysetBackend = {
      kind: 'file',
      location: config.keysetFile!,
      read: async () => ({ text: keyset, version: '1' }),
      write: async () => assert.fail('no writes'),
      close: async () => {},
    }
    const service = createService({ config, backend, logger: pino({ level: 'silent' }) })
    try {
      const get = (url: string) => service.app.inject({ method: 'GET', url })
      assert.equal((await get(CONTAINER.livenessProbe.httpGet.path)).statusCode, 200)
      assert.equal((await get(CONTAINER.readinessProbe.httpGet.path)).statusCode, 503, 'ready before the keyset loaded')
      await service.keyring.start()
      assert.equal((await get(CONTAINER.readinessProbe.httpGet.path)).statusCode, 200)
      const metrics = await get(metricsPath)
      assert.equal(metrics.statusCode, 200)
      assert.match(metrics.body, /^cbc_jwt_keys_loaded 1$/m)
    } finally {
      await service.close()
    }
  })
})

describe('Kubernetes manifests: the rotation CronJob', () => {
  const serviceAccount = one('ServiceAccount')
  const role = one('Role')
  const binding = one('RoleBinding')

  test('may get and update the secret cbc-secrets, its verification projection and its last good copy, and nothing else', () => {
    assert.deepEqual(role.rules, [
      { apiGroups: [''], resources: ['secrets'], resourceNames: ['cbc-secrets', 'cbc-jwt-verification', 'cbc-jwt-last-good'], verbs: ['get', 'update'] },
    ])
    // Shipped (empty) so the rotator never needs `create`, which RBAC cannot restrict to a name.
    assert.equal(one('Secret', 'cbc-jwt-verification').metadata.namespace, 'cbc')
    assert.equal(one('Secret', 'cbc-jwt-last-good').metadata.namespace, 'cbc')
    assert.equal(one('Secret', 'cbc-jwt-last-good').data, undefined, 'shipped empty: kubectl apply never overwrites the copy')
    assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.metadata.name })
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: serviceAccount.metadata.name, namespace: serviceAccount.metadata.namespace }])
    assert.equal(CRON_POD.spec.serviceAccountName, serviceAccount.metadata.name)
    // The API pods need no token at all.
    assert.equal(POD.spec.automountServiceAccountToken, false)
  })

  test('runs one command, cbc-jwt rotate --auto --every 6d, through the API on cbc-secrets, publishing the projection the Deployment mounts, gated on Prometheus, one run at a time', () => {
    const container = CRON_POD.spec.containers[0]
    // The image the repository builds (the Dockerfile): its entrypoint is node, the CLI its bin.
    assert.equal(container.image, CONTAINER.image, "the service's own image")
    assert.equal(container.command, undefined, 'no shell: the image entrypoint (node) runs the CLI')
    const dockerfile = fs.readFileSync(path.join(PROJECT_ROOT, 'Dockerfile'), 'utf8')
    const cli = JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)![1]!)[0]
    assert.deepEqual(container.args.slice(0, 5), [cli, 'rotate', '--auto', '--every', '6d'])
    const env = Object.fromEntries(container.env.map((e: Obj) => [e.name, e.value]))
    assert.equal(env.CBC_JWT_BACKEND, 'kubernetes')
    assert.match(env.CBC_JWT_PROMETHEUS_URL, /^https?:\/\//, 'promotion is gated on every replica (CONTRACT §9)')
    const selector = container.args[container.args.indexOf('--selector') + 1]
    assert.match(selector, /job="cbc-jwt"/)
    const secretName = POD.spec.volumes.find((v: Obj) => v.secret).secret.secretName
    assert.equal(env.CBC_JWT_KUBERNETES_SECRET ?? 'cbc-secrets', 'cbc-secrets')
    assert.equal(env.CBC_JWT_KUBERNETES_PUBLIC_SECRET ?? 'cbc-jwt-verification', secretName, 'the Deployment mounts the projection the CronJob writes')
    assert.equal(CRONJOB.spec.concurrencyPolicy, 'Forbid')
    // Hourly: a key staged at 6 days is promoted within hours, well before the 7-day SLA.
    assert.match(CRONJOB.spec.schedule, /^\d+ \* \* \* \*$/)
  })

  test("docs/rotation.md's and docs/kubernetes.md's copies of its command are the command it runs", () => {
    const container = CRON_POD.spec.containers[0]
    const env = Object.fromEntries(container.env.map((e: Obj) => [e.name, e.value]))
    /** Shell words of a command: continuation lines joined, single quotes honoured. */
    const words = (command: string) => [...command.replace(/\\\n\s*/g, ' ').matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!)
    const rotation = fs.readFileSync(path.join(PROJECT_ROOT, 'docs/rotation.md'), 'utf8')
    const block = /## Scheduled rotation[\s\S]*?```bash\n([\s\S]*?)```/.exec(rotation)?.[1] ?? ''
    const documented = words(block)
    const at = documented.indexOf('cbc-jwt')
    assert.ok(at > 0, block)
    const documentedEnv = Object.fromEntries(documented.slice(0, at).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]))
    assert.deepEqual(documentedEnv, env)
    assert.deepEqual(documented.slice(at + 1), container.args.slice(1))
    const kubernetes = fs.readFileSync(path.join(PROJECT_ROOT, 'docs/kubernetes.md'), 'utf8')
    const inline = /^### The CronJob\n[\s\S]*?`(cbc-jwt rotate [^`]*)`/m.exec(kubernetes)?.[1] ?? ''
    const shown = words(inline).slice(1)
    assert.ok(shown.length >= 4, inline)
    assert.deepEqual(shown, container.args.slice(1, 1 + shown.length))
  })
})

describe('the CronJob command, run with the built CLI against the Kubernetes API test double', () => {
  let double: KubeDouble
  let dir: string
  let closedPort: number
  const container = () => CRON_POD.spec.containers[0]
  const DAY = 86_400_000
  const keysetAged = (ms: number) => JSON.stringify(makeKeyset([{ key: makeKey('ES256', 'k-current'), opts: { createdAt: new Date(Date.now() - ms) } }]))
  const keysetOf = () => Buffer.from(double.secret('cbc', 'cbc-secrets')!.data['jwt-keyset']!, 'base64').toString()

  before(async () => {
    assert.ok(fs.existsSync(CLI_MAIN), `${CLI_MAIN} is missing: run npm run build first`)
    double = await startKubeDouble()
    // The double answers 403 to every verb the shipped Role does not grant: the runs below
    // prove the RBAC covers what the backend does.
    const granted: string[] = one('Role').rules[0].verbs
    for (const verb of ['get', 'create', 'update', 'patch'] as const) if (!granted.includes(verb)) double.deny.add(verb)
    // The shipped, empty verification and last good Secrets (kubectl apply -k creates them).
    double.setSecret('cbc', 'cbc-jwt-verification', {})
    double.setSecret('cbc', 'cbc-jwt-last-good', {})
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-cronjob-'))
    closedPort = await freePort()
  })
  after(async () => {
    await double.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  /**
   * The container's command and env as the manifest has them (the pod's service account is a
   * kubeconfig on the double here), in an empty working, home and temp directory that must
   * stay empty: no key material on disk. Async: the double answers from this process.
   */
  async function runJob() {
    const env = Object.fromEntries(container().env.map((e: Obj) => [e.name, e.value]))
    const home = fs.mkdtempSync(path.join(dir, 'pod-'))
    const kubeconfig = double.writeKubeconfig(path.join(dir, 'kubeconfig'), { namespace: 'cbc' })
    const {
      code: status,
      stdout,
      stderr,
    } = await runChild(process.execPath, [CLI_MAIN, ...container().args.slice(1)], {
      cwd: home,
      env: { PATH: process.env.PATH ?? '', HOME: home, TMPDIR: home, KUBECONFIG: kubeconfig, ...env, CBC_JWT_PROMETHEUS_URL: `http://127.0.0.1:${closedPort}` },
      timeoutMs: 60_000,
      what: 'the CronJob command',
    })
    assert.deepEqual(fs.readdirSync(home), [], 'nothing written to disk')
    return { status, out: `${stdout}${stderr}`, stderr }
  }

  test('keeps a standby: the first run stages one, a run with nothing due writes nothing', async () => {
    double.setSecret('cbc', 'cbc-secrets', { 'jwt-keyset': keysetAged(3600_000), other: 'untouched' })
    const first = await runJob()
    assert.equal(first.status, 0, first.out)
    assert.match(first.out, /as the standby/)
    const rv = double.secret('cbc', 'cbc-secrets')!.metadata.resourceVersion
    const run = await runJob()
    assert.equal(run.status, 0, run.out)
    assert.match(run.out, /nothing to do/)
    assert.equal(double.secret('cbc', 'cbc-secrets')!.metadata.resourceVersion, rv)
  })

  test('stages a key when the current one is due, with an audit line; the promotion waits for Prometheus (unreachable: refused, nothing written)', async () => {
    double.setSecret('cbc', 'cbc-secrets', { 'jwt-keyset': keysetAged(6 * DAY + 3600_000), other: 'untouched' })
    const staged = await runJob()
    assert.equal(staged.status, 0, staged.out)
    const doc = JSON.parse(keysetOf()) as { current: string; keys: Array<{ kid: string }> }
    assert.equal(doc.current, 'k-current', 'staging does not switch the signing key')
    assert.equal(doc.keys.length, 2)
    assert.equal(Buffer.from(double.secret('cbc', 'cbc-secrets')!.data.other!, 'base64').toString(), 'untouched')
    assert.equal(
      Buffer.from(double.secret('cbc', 'cbc-jwt-last-good')!.data['jwt-keyset']!, 'base64').toString(),
      keysetOf(),
      'the last good copy is what was written',
    )
    const audit = staged.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l))
    assert.deepEqual(
      audit.map((e) => [e.event, e.command, e.actor, e.reason, e.location]),
      [
        [
          'keyset_changed',
          'rotate --auto',
          'system:serviceaccount:cbc:cbc-jwt-rotator',
          'scheduled rotation (CronJob cbc-jwt-rotate)',
          'kubernetes:cbc/cbc-secrets#jwt-keyset',
        ],
      ],
    )
    const before = double.secret('cbc', 'cbc-secrets')!
    const refused = await runJob()
    assert.equal(refused.status, 1, refused.out)
    assert.match(refused.out, /cannot ask Prometheus http:\/\/127\.0\.0\.1:\d+ \{job="cbc-jwt",namespace="cbc"\}: ECONNREFUSED/)
    assert.deepEqual(double.secret('cbc', 'cbc-secrets'), before, 'nothing written')
  })

  test('two runs at once: exactly one change (check-and-set on resourceVersion)', async () => {
    double.setSecret('cbc', 'cbc-secrets', { 'jwt-keyset': keysetAged(6 * DAY + 3600_000) })
    // The private Secret's calls (each run also publishes the projection, cbc-jwt-verification).
    const updates = () => double.calls.filter((c) => c.verb === 'update' && c.path.endsWith('/cbc-secrets'))
    const before = updates().length
    const conflictsBefore = double.calls.filter((c) => c.verb === 'update' && c.status === 409).length
    const readsBefore = double.calls.filter((c) => c.verb === 'get' && c.path.endsWith('/cbc-secrets')).length
    // Every write waits until both runs have read the Secret: the worst interleaving, every time
    // (both send their change with the same resourceVersion), not only when the scheduler allows.
    let release!: () => void
    double.writeGate = new Promise((resolve) => (release = resolve))
    const pending = Promise.all([runJob(), runJob()])
    try {
      await waitFor(() => double.calls.filter((c) => c.verb === 'get' && c.path.endsWith('/cbc-secrets')).length - readsBefore >= 2, {
        timeoutMs: 60_000,
        what: 'both runs to read the Secret',
      })
    } finally {
      release()
      double.writeGate = undefined
    }
    const runs = await pending
    const outcomes = runs.map((r) => `exit ${r.status}: ${r.out}`).join('\n')
    const made = updates().slice(before)
    assert.equal(made.filter((c) => c.status === 200).length, 1, `exactly one write\n${outcomes}`)
    // The loser is refused by a resourceVersion check: on the projection (written first) or on
    // cbc-secrets — or sends cbc-secrets no write from its read at all: the projection already
    // held the winner's key and cbc-secrets had moved, so it read again (update-keyset.ts).
    const refused = double.calls.filter((c) => c.verb === 'update' && c.status === 409).length - conflictsBefore
    assert.ok(refused >= 1 || made.length === 1, `the other was refused by the resourceVersion check, or saw it would be and wrote nothing\n${outcomes}`)
    assert.equal((JSON.parse(keysetOf()) as { keys: unknown[] }).keys.length, 2, 'one key staged, not two')
    const changes = runs.flatMap((r) => r.stderr.split('\n').filter((l) => l.includes('"keyset_changed"')))
    assert.equal(changes.length, 1, `one audit line for one change\n${outcomes}`)
    // The loser saw the staged key on its re-read: nothing to do (or a refusal, if it got as far as the gate).
    assert.ok(
      runs.every((r) => r.status === 0 || r.status === 1),
      outcomes,
    )
  })

  test('a 409 storm: bounded retries, exit 1, nothing half-written', async () => {
    const stored = double.setSecret('cbc', 'cbc-secrets', { 'jwt-keyset': keysetAged(6 * DAY + 3600_000) })
    double.conflictStorm = 1000
    const run = await runJob()
    double.conflictStorm = 0
    assert.equal(run.status, 1, run.out)
    assert.match(run.out, /changed by another writer twice .*nothing was written/)
    assert.equal(keysetOf(), Buffer.from(stored.data['jwt-keyset']!, 'base64').toString())
  })
})
