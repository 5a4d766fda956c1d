/**
 * deploy/kubernetes/sidecar: an API pod with the cbc-jwt sidecar and the nginx gateway of
 * docs/forward-auth.md. Checked like the standalone manifests (OpenAPI schemas, no unknown
 * field) and against the code and the tested nginx configuration.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import YAML from 'yaml'
import { serviceConfigFromEnv } from '../../src/lib/config.js'
import { serviceVariables } from '../../src/lib/options-table.js'
import { HEADERS_MORE_MODULE, NGINX } from '../support/nginx.js'
import { PROJECT_ROOT } from '../support/service.js'

type Obj = Record<string, any>
const DIR = path.join(PROJECT_ROOT, 'deploy/kubernetes/sidecar')
const ALL = fs
  .readdirSync(DIR)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort()
  .flatMap((file) => YAML.parseAllDocuments(fs.readFileSync(path.join(DIR, file), 'utf8')).map((doc) => ({ file, obj: doc.toJS() as Obj })))
const OBJECTS = ALL.filter((m) => m.obj.kind !== 'Kustomization')
const one = (kind: string) => {
  const found = OBJECTS.filter((m) => m.obj.kind === kind)
  assert.equal(found.length, 1, kind)
  return found[0]!.obj
}
const modelModule = (apiVersion: string, kind: string) =>
  apiVersion.startsWith('monitoring.coreos.com/') ? `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}` : `kubernetes-models/${apiVersion}/${kind}`

const POD = one('Deployment').spec.template
const container = (name: string) => POD.spec.containers.find((c: Obj) => c.name === name)
const CBC = container('cbc-jwt')
const API = container('api')
const GATEWAY = container('gateway')

describe('Kubernetes sidecar manifests: schema', () => {
  test('kustomization.yaml lists every file; the objects are the expected ones, in one namespace', () => {
    const kustomization = ALL.find((m) => m.obj.kind === 'Kustomization')!
    assert.deepEqual([...kustomization.obj.resources].sort(), [...new Set(OBJECTS.map((m) => m.file))].sort())
    assert.deepEqual(OBJECTS.map((m) => m.obj.kind).sort(), ['ConfigMap', 'Deployment', 'PodMonitor', 'Role', 'RoleBinding', 'Secret', 'Service'])
    for (const { obj } of OBJECTS) assert.equal(obj.metadata.namespace, 'orders', obj.kind)
  })

  test('every object validates against the Kubernetes OpenAPI schema', async () => {
    for (const { file, obj } of OBJECTS) {
      const Model = ((await import(modelModule(obj.apiVersion, obj.kind))) as Record<string, new (d: unknown) => { validate(): void }>)[obj.kind]
      assert.ok(Model, file)
      assert.doesNotThrow(() => new Model(obj).validate(), file)
    }
  })

  describe('no unknown fields', () => {
    let dir: string
    before(() => {
      fs.mkdirSync(path.join(PROJECT_ROOT, 'node_modules/.cache'), { recursive: true })
      dir = fs.mkdtempSync(path.join(PROJECT_ROOT, 'node_modules/.cache/cbc-jwt-k8s-sidecar-'))
    })
    after(() => fs.rmSync(dir, { recursive: true, force: true }))

    const typecheck = (objects: Array<{ obj: Obj }>) => {
      const lines = objects.flatMap(({ obj }, i) => [
        `import type { I${obj.kind} as T${i} } from ${JSON.stringify(modelModule(obj.apiVersion, obj.kind))}`,
        `export const m${i}: T${i} = ${JSON.stringify(obj)}`,
      ])
      fs.writeFileSync(path.join(dir, 'manifests.ts'), `${lines.join('\n')}\n`)
      fs.writeFileSync(
        path.join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: { strict: true, noEmit: true, module: 'NodeNext', moduleResolution: 'NodeNext', skipLibCheck: true, types: [] },
          files: ['manifests.ts'],
        }),
      )
      const r = spawnSync(process.execPath, [path.join(PROJECT_ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(dir, 'tsconfig.json')], {
        encoding: 'utf8',
        timeout: 60_000,
      })
      return r.status === 0 ? '' : `${r.stdout}${r.stderr}`
    }

    test('every field is one the Kubernetes API (and the Prometheus Operator) knows; a typo is caught', () => {
      assert.equal(typecheck(OBJECTS), '')
      const broken = structuredClone(one('PodMonitor'))
      broken.spec.podMetricsEndpoints[0].relabelling = broken.spec.podMetricsEndpoints[0].relabelings
      assert.match(typecheck([{ obj: broken }]), /relabelling/)
    })
  })
})

describe('Kubernetes sidecar manifests: agree with the service and the tested gateway', () => {
  const env = Object.fromEntries(CBC.env.map((e: Obj) => [e.name, e.value])) as Record<string, string>
  const config = serviceConfigFromEnv(env)
  const cbcPort = CBC.ports.find((p: Obj) => p.name === 'cbc-jwt').containerPort

  test('the sidecar is configured by variables the code reads, on its container port', () => {
    // The service reads exactly the variables of its options table (src/lib/options-table.ts).
    const read = serviceVariables()
    for (const name of Object.keys(env)) assert.ok(read.includes(name), name)
    assert.equal(config.port, cbcPort)
    assert.equal(CBC.readinessProbe.httpGet.path, '/readyz')
    assert.equal(CBC.livenessProbe.httpGet.path, '/healthz')
  })

  test('the keyset is the verification projection’s jwt-keyset item, read-only, without subPath, in the cbc-jwt container only', () => {
    const volume = POD.spec.volumes.find((v: Obj) => v.secret?.secretName === 'cbc-jwt-verification')
    assert.equal(one('Secret').metadata.name, 'cbc-jwt-verification', 'shipped (empty) in this namespace for the rotator to fill')
    assert.deepEqual(volume.secret.items, [{ key: 'jwt-keyset', path: 'jwt-keyset' }])
    const mount = CBC.volumeMounts.find((m: Obj) => m.name === volume.name)
    assert.equal(mount.readOnly, true)
    assert.equal(mount.subPath, undefined)
    assert.equal(config.keysetFile, path.posix.join(mount.mountPath, 'jwt-keyset'))
    for (const c of [API, GATEWAY]) assert.ok(!(c.volumeMounts ?? []).some((m: Obj) => m.name === volume.name), `${c.name} sees key material`)
  })

  test('the gateway runs the nginx block of docs/forward-auth.md that the real-nginx test runs, aimed at this pod’s ports', () => {
    const doc = fs.readFileSync(path.join(PROJECT_ROOT, 'docs/forward-auth.md'), 'utf8')
    const tested = /<!-- nginx-config:begin -->\n```nginx\n([\s\S]*?)```/.exec(doc)![1]!
    const deployed = (one('ConfigMap').data as Record<string, string>)['cbc-jwt-gateway.conf']!
    assert.equal(deployed, tested.replace('listen 127.0.0.1:8080;', `listen ${GATEWAY.ports[0].containerPort};`))
    assert.match(deployed, new RegExp(`upstream cbc_jwt \\{\\s*server 127\\.0\\.0\\.1:${cbcPort};`))
    assert.match(deployed, /proxy_pass http:\/\/cbc_jwt\/v1\/auth;/)
    assert.match(deployed, /upstream cbc_jwt_protected_api \{\s*server 127\.0\.0\.1:9000;/)
    assert.equal(API.env.find((e: Obj) => e.name === 'LISTEN_ADDR').value, '127.0.0.1:9000', 'the API must listen on loopback only')
    assert.equal(API.ports, undefined, 'the API publishes no port: only the gateway reaches it')
  })

  test('the gateway’s nginx.conf loads headers-more and includes the block from conf.d; a real nginx accepts the pair (nginx -t, paths mapped)', () => {
    const data = one('ConfigMap').data as Record<string, string>
    const main = data['nginx.conf']!
    assert.match(main, /^load_module modules\/ngx_http_headers_more_filter_module\.so;$/m)
    assert.match(main, /include \/etc\/nginx\/conf\.d\/\*\.conf;/)
    const volumeOf = (mountPath: string) => POD.spec.volumes.find((v: Obj) => v.name === GATEWAY.volumeMounts.find((m: Obj) => m.mountPath === mountPath).name)
    assert.deepEqual(volumeOf('/etc/nginx/nginx.conf').configMap.items, [{ key: 'nginx.conf', path: 'nginx.conf' }])
    // Only the block in conf.d: the main file there would be included into http {} as well.
    assert.deepEqual(volumeOf('/etc/nginx/conf.d').configMap.items, [{ key: 'cbc-jwt-gateway.conf', path: 'cbc-jwt-gateway.conf' }])
    assert.ok(NGINX && HEADERS_MORE_MODULE, 'nginx and its headers-more module are installed (.ci/run)')
    const dir = fs.mkdtempSync(path.join(PROJECT_ROOT, 'node_modules/.cache/cbc-jwt-gateway-conf-'))
    try {
      fs.mkdirSync(path.join(dir, 'conf.d'))
      fs.writeFileSync(path.join(dir, 'conf.d/cbc-jwt-gateway.conf'), data['cbc-jwt-gateway.conf']!)
      const mapped = main
        .replace('modules/ngx_http_headers_more_filter_module.so', HEADERS_MORE_MODULE)
        .replace('/etc/nginx/conf.d/', `${dir}/conf.d/`)
        // One pass: the folder may itself be under /tmp (a checkout there), never mapped twice.
        .replace(/\/var\/log\/nginx\/|\/tmp\//g, `${dir}/`)
      fs.writeFileSync(path.join(dir, 'nginx.conf'), mapped)
      const r = spawnSync(NGINX, ['-t', '-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')], {
        encoding: 'utf8',
        timeout: 30_000,
      })
      assert.equal(r.status, 0, `${r.stdout}${r.stderr}`)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  test('the Service publishes the gateway only; the PodMonitor scrapes cbc-jwt under job="cbc-jwt", the alert rules’ selector', () => {
    const service = one('Service')
    assert.deepEqual(
      service.spec.ports.map((p: Obj) => p.targetPort),
      ['http'],
    )
    assert.equal(GATEWAY.ports[0].name, 'http')
    const monitor = one('PodMonitor')
    const labels = POD.metadata.labels
    assert.ok(Object.entries(monitor.spec.selector.matchLabels).every(([k, v]) => labels[k] === v))
    const endpoint = monitor.spec.podMetricsEndpoints[0]
    assert.equal(endpoint.port, 'cbc-jwt')
    assert.equal(endpoint.path, '/metrics')
    assert.deepEqual(endpoint.relabelings, [{ action: 'replace', targetLabel: 'job', replacement: 'cbc-jwt' }])
    const rules = fs.readFileSync(path.join(PROJECT_ROOT, 'deploy/prometheus/cbc-jwt.rules.yml'), 'utf8')
    assert.match(rules, /job="cbc-jwt"/)
    const scraped = POD.spec.containers.flatMap((c: Obj) => (c.ports ?? []).filter((p: Obj) => p.name === endpoint.port).map((p: Obj) => p.containerPort))
    assert.deepEqual(scraped, [cbcPort])
  })

  test('every container runs as non-root, read-only, without capabilities', () => {
    assert.equal(POD.spec.securityContext.runAsNonRoot, true)
    for (const c of POD.spec.containers) {
      assert.equal(c.securityContext.runAsNonRoot, true, c.name)
      assert.equal(c.securityContext.readOnlyRootFilesystem, true, c.name)
      assert.equal(c.securityContext.allowPrivilegeEscalation, false, c.name)
      assert.deepEqual(c.securityContext.capabilities.drop, ['ALL'], c.name)
      assert.doesNotMatch(c.image, /:latest$|^[^:]+$/, c.name)
    }
  })
})
