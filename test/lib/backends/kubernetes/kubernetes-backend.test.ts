import assert from 'node:assert/strict'
import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import YAML from 'yaml'
import { createKubernetesBackend, kubernetesOptionsFromEnv } from '../../../../src/lib/backends/kubernetes/index.js'
import { resolveConnection } from '../../../../src/lib/backends/kubernetes/connection.js'
import { BackendError, CasConflictError, ConfigError } from '../../../../src/lib/errors.js'
import { stageKey } from '../../../../src/ops/rotation/two-phase.js'
import { updateKeyset } from '../../../../src/ops/rotation/update-keyset.js'
import { serializeKeyset } from '../../../../src/lib/keyset/serialize.js'
import { startKubeDouble, type KubeDouble } from '../../../support/kube-double.js'
import { makeKey, makeKeyset } from '../../../support/keys.js'
import { selfSignedCert } from '../../../support/test-tls.js'

const NS = 'cbc'
const KEYSET = serializeKeyset(makeKeyset([makeKey('ES256', 'k-kube-1')]) as never)

describe('kubernetesOptionsFromEnv', () => {
  it('a set but empty Secret name or data key is refused: the default is the private keyset, not what a template meant', () => {
    for (const name of ['CBC_JWT_KUBERNETES_SECRET', 'CBC_JWT_KUBERNETES_KEY']) {
      assert.throws(
        () => kubernetesOptionsFromEnv({ [name]: '' }),
        (err: unknown) => err instanceof ConfigError && new RegExp(`^${name} is set but empty: .*or unset it`).test(err.message),
      )
    }
  })

  it("a set but empty namespace is refused: read as unset it is the kubeconfig's or the pod's, maybe another team's Secret", () => {
    for (const value of ['', ' ']) {
      assert.throws(
        () => kubernetesOptionsFromEnv({ CBC_JWT_KUBERNETES_NAMESPACE: value }),
        (err: unknown) => err instanceof ConfigError && /^CBC_JWT_KUBERNETES_NAMESPACE is set but empty: .*or unset it$/.test(err.message),
        JSON.stringify(value),
      )
    }
    assert.equal('namespace' in kubernetesOptionsFromEnv({}), false, 'unset: found as kubectl finds it')
  })

  it('a set but empty kubeconfig context is refused: the current context may be another cluster', () => {
    for (const value of ['', ' ']) {
      assert.throws(
        () => kubernetesOptionsFromEnv({ CBC_JWT_KUBERNETES_CONTEXT: value }),
        (err: unknown) => err instanceof ConfigError && /^CBC_JWT_KUBERNETES_CONTEXT is set but empty: .*or unset it/.test(err.message),
      )
    }
    assert.equal(kubernetesOptionsFromEnv({ CBC_JWT_KUBERNETES_CONTEXT: 'prod' }).context, 'prod')
    assert.equal(kubernetesOptionsFromEnv({}).context, undefined)
  })

  it('the defaults, and every variable read as it is', () => {
    assert.deepEqual(kubernetesOptionsFromEnv({}), { secret: 'cbc-secrets', key: 'jwt-keyset', timeoutMs: 10_000 })
    assert.deepEqual(
      kubernetesOptionsFromEnv({
        CBC_JWT_KUBERNETES_NAMESPACE: 'cbc',
        CBC_JWT_KUBERNETES_SECRET: 'cbc-jwt-verification',
        CBC_JWT_KUBERNETES_KEY: 'jwt.keyset_1',
        CBC_JWT_KUBERNETES_CONTEXT: 'prod',
      }),
      { namespace: 'cbc', secret: 'cbc-jwt-verification', key: 'jwt.keyset_1', context: 'prod', timeoutMs: 10_000 },
    )
  })

  // Each name goes into the API path (/api/v1/namespaces/NS/secrets/NAME): one the API server
  // would refuse, or a '/' that reaches another resource, is refused here, naming the variable.
  const names: Array<[string, string[], string[], RegExp]> = [
    [
      'CBC_JWT_KUBERNETES_NAMESPACE',
      ['a', 'cbc', 'a-1', '0', 'a'.repeat(63)],
      ['a'.repeat(64), 'Cbc', '-cbc', 'cbc-', 'c_bc', 'cbc.prod', 'cbc/x', 'x/cbc', '..', ' cbc'],
      /^CBC_JWT_KUBERNETES_NAMESPACE must be a DNS label \(got ".*"\)$/s,
    ],
    [
      'CBC_JWT_KUBERNETES_SECRET',
      ['a', 'cbc-secrets', 'cbc.jwt.v1', `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`],
      [
        `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(62)}`,
        'Cbc',
        '-cbc',
        'cbc-',
        'cbc..secrets',
        '.cbc',
        'cbc.',
        'cbc.-x',
        'cbc_secrets',
        '../configmaps/x',
        'cbc-secrets/',
        'x/cbc-secrets',
      ],
      /^CBC_JWT_KUBERNETES_SECRET must be a DNS subdomain name \(got ".*"\)$/s,
    ],
    [
      'CBC_JWT_KUBERNETES_KEY',
      ['a', 'jwt-keyset', '.jwt_keyset.V2', 'jwt..keyset', 'k'.repeat(253)],
      // The API server also refuses '.', '..' and a key starting with '..' (the kubelet's own names in a volume).
      ['k'.repeat(254), 'a/b', '/key', 'key/', 'jwt keyset', 'jwt:keyset', 'key\n', '.', '..', '..data', '...'],
      /^CBC_JWT_KUBERNETES_KEY must be 1-253 characters of \[-\._a-zA-Z0-9\], not "\." nor starting with "\.\." \(got ".*"\)$/s,
    ],
  ]
  for (const [variable, good, bad, message] of names) {
    it(`${variable}: what the API server takes, and nothing else`, () => {
      const field = { CBC_JWT_KUBERNETES_NAMESPACE: 'namespace', CBC_JWT_KUBERNETES_SECRET: 'secret', CBC_JWT_KUBERNETES_KEY: 'key' }[variable] as 'namespace'
      for (const value of good) assert.equal(kubernetesOptionsFromEnv({ [variable]: value })[field], value, value)
      for (const value of bad) {
        assert.throws(
          () => kubernetesOptionsFromEnv({ [variable]: value }),
          (err: unknown) => err instanceof ConfigError && message.test(err.message),
          value,
        )
      }
    })
  }
})

describe('resolveConnection: kubeconfig files merged as kubectl merges them', () => {
  it('an empty current-context in the first file is unset: a later file that sets one decides', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-kubeconfigs-'))
    try {
      const file = (name: string, doc: object) => {
        const f = path.join(dir, name)
        fs.writeFileSync(f, YAML.stringify(doc))
        return f
      }
      const first = file('first', {
        'current-context': '',
        clusters: [{ name: 'a', cluster: { server: 'https://a.example:6443' } }],
        contexts: [{ name: 'a', context: { cluster: 'a', user: 'u' } }],
        users: [{ name: 'u', user: { token: 't' } }],
      })
      const second = file('second', {
        'current-context': 'b',
        clusters: [{ name: 'b', cluster: { server: 'https://b.example:6443' } }],
        contexts: [{ name: 'b', context: { cluster: 'b', user: 'u' } }],
      })
      const conn = await resolveConnection({ KUBECONFIG: [first, second].join(path.delimiter), HOME: dir })
      assert.equal(conn.server, 'https://b.example:6443')
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('Kubernetes Secret backend (against the API test double)', () => {
  let double: KubeDouble
  let dir: string
  let env: NodeJS.ProcessEnv
  const backend = (extra: NodeJS.ProcessEnv = {}) => createKubernetesBackend(kubernetesOptionsFromEnv({ ...env, ...extra }), { env: { ...env, ...extra } })

  before(async () => {
    double = await startKubeDouble()
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-kube-'))
    env = { KUBECONFIG: double.writeKubeconfig(path.join(dir, 'kubeconfig'), { namespace: NS }), HOME: dir }
  })
  after(async () => {
    await double.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })
  const seed = () => double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': KEYSET, 'db-password': 'untouched' })

  it('reads the key of the Secret in the kubeconfig context namespace; the version is the resourceVersion', async () => {
    const stored = seed()
    const b = backend()
    const snap = await b.read()
    assert.equal(snap.text, KEYSET)
    assert.equal(snap.version, stored.metadata.resourceVersion)
    assert.equal(b.location, 'kubernetes:cbc/cbc-secrets#jwt-keyset')
    await b.close()
  })

  it('component(): the label of the Secret as last fetched, kept without the keyset key, gone with the Secret', async () => {
    const created = await fetch(`${double.url}/api/v1/namespaces/${NS}/secrets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${double.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'cbc-labelled', namespace: NS, labels: { 'app.kubernetes.io/component': 'verification-keyset' } },
        type: 'Opaque',
      }),
    })
    assert.equal(created.status, 201)
    const b = backend({ CBC_JWT_KUBERNETES_SECRET: 'cbc-labelled' })
    await assert.rejects(b.read(), /has no key jwt-keyset/)
    assert.equal(b.component(), 'verification-keyset', 'an empty labelled Secret still tells its label')
    double.deleteSecret(NS, 'cbc-labelled')
    await assert.rejects(b.read(), /does not exist/)
    assert.equal(b.component(), undefined, 'a Secret gone has no label any more')
    await b.close()
  })

  it('writes back with the resourceVersion read: only the keyset key changes; a stale version is a CasConflictError and changes nothing', async () => {
    seed()
    const b = backend()
    const snap = await b.read()
    const next = `${KEYSET.replace('k-kube-1', 'k-kube-1')} `
    const written = await b.write(next, snap.version)
    const secret = double.secret(NS, 'cbc-secrets')!
    assert.equal(Buffer.from(secret.data['jwt-keyset']!, 'base64').toString(), next)
    assert.equal(Buffer.from(secret.data['db-password']!, 'base64').toString(), 'untouched')
    assert.equal(written.version, secret.metadata.resourceVersion)
    await assert.rejects(b.write('{}', snap.version), CasConflictError)
    assert.equal(double.secret(NS, 'cbc-secrets')!.metadata.resourceVersion, secret.metadata.resourceVersion, 'nothing written')
    await b.close()
  })

  it('updateKeyset: another writer between read and write (409) → re-read, change applied again to the new version', async () => {
    seed()
    let raced = false
    double.beforeWrite = () => {
      if (raced) return
      raced = true
      double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': KEYSET, 'db-password': 'rotated by someone else' })
    }
    const b = backend()
    const outcome = await updateKeyset(b, (doc) => stageKey(doc, { now: Date.now() }))
    double.beforeWrite = undefined
    assert.equal(outcome.attempts, 2)
    const secret = double.secret(NS, 'cbc-secrets')!
    assert.equal(Buffer.from(secret.data['db-password']!, 'base64').toString(), 'rotated by someone else', 'the other writer’s change is kept')
    assert.equal(JSON.parse(Buffer.from(secret.data['jwt-keyset']!, 'base64').toString()).keys.length, 2)
    await b.close()
  })

  it('a 409 storm: bounded (two writes), CasConflictError, nothing half-written', async () => {
    const before = seed()
    double.conflictStorm = 100
    const b = backend()
    const puts = double.calls.filter((c) => c.verb === 'update').length
    await assert.rejects(
      updateKeyset(b, (doc) => stageKey(doc, { now: Date.now() })),
      (err: unknown) => {
        assert.ok(err instanceof CasConflictError)
        assert.match(err.message, /changed by another writer twice .* nothing was written/)
        return true
      },
    )
    double.conflictStorm = 0
    assert.equal(double.calls.filter((c) => c.verb === 'update').length - puts, 2, 'two attempts, no more')
    assert.deepEqual(double.secret(NS, 'cbc-secrets')!.data, before.data)
    await b.close()
  })

  it('401 (bad token), 403 (RBAC), 404 (no Secret, no key) are BackendErrors with bounded reasons; the token never appears', async () => {
    seed()
    const bad = createKubernetesBackend(kubernetesOptionsFromEnv(env), {
      env: { ...env, KUBECONFIG: double.writeKubeconfig(path.join(dir, 'bad-kubeconfig'), { namespace: NS, token: 'stolen-or-stale' }) },
    })
    await assert.rejects(bad.read(), (err: unknown) => err instanceof BackendError && err.reason === 'forbidden' && !err.message.includes('stolen-or-stale'))
    await bad.close()
    const b = backend()
    const snap = await b.read()
    double.deny.add('update')
    await assert.rejects(
      b.write(KEYSET, snap.version),
      (err: unknown) => err instanceof BackendError && err.reason === 'forbidden' && /cannot update resource "secrets"/.test(err.message),
    )
    double.deny.clear()
    await b.close()
    await assert.rejects(
      backend({ CBC_JWT_KUBERNETES_SECRET: 'no-such-secret' }).read(),
      (err: unknown) => err instanceof BackendError && err.reason === 'not_found',
    )
    await assert.rejects(
      backend({ CBC_JWT_KUBERNETES_KEY: 'other-key' }).read(),
      (err: unknown) => err instanceof BackendError && err.reason === 'not_found' && /has no key other-key/.test(err.message),
    )
    assert.throws(() => kubernetesOptionsFromEnv({ CBC_JWT_KUBERNETES_NAMESPACE: 'Bad_NS' }), ConfigError)
  })

  it('an exec plugin token is fetched again when it expires or the API answers 401, as kubectl does', async () => {
    seed()
    // A client-go credential plugin (aws eks get-token, gke-gcloud-auth-plugin): its token lives
    // minutes. It prints the token of the file `current`, with the expiry of the file `expiry`.
    const plugin = path.join(dir, 'credential-plugin.mjs')
    const current = path.join(dir, 'plugin-token')
    const expiry = path.join(dir, 'plugin-expiry')
    const runs = path.join(dir, 'plugin-runs')
    fs.writeFileSync(
      plugin,
      `import fs from 'node:fs'
fs.appendFileSync(${JSON.stringify(runs)}, 'x')
const status = { token: fs.readFileSync(${JSON.stringify(current)}, 'utf8') }
if (fs.existsSync(${JSON.stringify(expiry)})) status.expirationTimestamp = fs.readFileSync(${JSON.stringify(expiry)}, 'utf8')
console.log(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status }))
`,
    )
    const kubeconfig = path.join(dir, 'exec-kubeconfig')
    const doc = JSON.parse(JSON.stringify(YAML.parse(fs.readFileSync(double.writeKubeconfig(kubeconfig, { namespace: NS }), 'utf8'))))
    doc.users[0].user = { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, args: [plugin], interactiveMode: 'Never' } }
    fs.writeFileSync(kubeconfig, JSON.stringify(doc))
    const accepted = double.token
    const rotate = (token: string) => {
      double.token = token
      fs.writeFileSync(current, token)
    }
    try {
      rotate('exec-token-1')
      fs.rmSync(expiry, { force: true })
      const b = createKubernetesBackend(kubernetesOptionsFromEnv(env), { env: { ...env, KUBECONFIG: kubeconfig } })
      assert.equal((await b.read()).text, KEYSET)
      // The API server stops accepting the token (it expired, with no expirationTimestamp given):
      // the 401 makes the plugin run again, and the request is repeated once with the new token.
      // From here on the plugin's tokens carry an expirationTimestamp, already past.
      fs.writeFileSync(expiry, new Date(Date.now() - 1000).toISOString())
      rotate('exec-token-2')
      assert.equal((await b.read()).text, KEYSET)
      // A token past its expirationTimestamp is never sent: the plugin runs again first.
      rotate('exec-token-3')
      const before = double.calls.length
      assert.equal((await b.read()).text, KEYSET)
      assert.deepEqual(
        double.calls.slice(before).map((c) => c.status),
        [200],
      )
      // A token that has not expired is reused: one run per credential, not one per request.
      fs.writeFileSync(expiry, new Date(Date.now() + 3600_000).toISOString())
      rotate('exec-token-4')
      await b.read()
      const ran = fs.readFileSync(runs, 'utf8').length
      await b.read()
      await b.read()
      assert.equal(fs.readFileSync(runs, 'utf8').length, ran)
      await b.close()
    } finally {
      double.token = accepted
    }
  })

  it('attack: a Status message with terminal escapes, C1 controls, bidi overrides and the bearer token prints escaped, redacted, bounded', async () => {
    seed()
    const b = backend()
    const snap = await b.read()
    double.deny.add('update')
    double.statusMessageSuffix = ` \u001b[2J\u001b]0;pwned\u0007 \u009b31m \u202eevil token=${double.token} ${'x'.repeat(2000)}`
    try {
      await assert.rejects(b.write(KEYSET, snap.version), (err: unknown) => {
        assert.ok(err instanceof BackendError)
        assert.match(err.message, /^[\x20-\x7e]*$/, err.message)
        assert.ok(err.message.includes('\\x1b[2J') && err.message.includes('\\x9b31m') && err.message.includes('\\u202eevil'), err.message)
        assert.ok(!err.message.includes(double.token), 'the bearer token printed')
        assert.ok(err.message.length < 500, `${err.message.length} characters`)
        return true
      })
    } finally {
      double.statusMessageSuffix = ''
      double.deny.clear()
      await b.close()
    }
  })

  it('a PUT answered 200 with a body that is not the Secret: the write landed, so it resolves (never "unexpected error"), with the version read back', async () => {
    seed()
    const b = backend()
    const snap = await b.read()
    const next = serializeKeyset(makeKeyset([makeKey('ES256', 'k-kube-2')]) as never)
    double.updateAnswer = { kind: 'Status', apiVersion: 'v1', status: 'Success' }
    try {
      const stored = await b.write(next, snap.version)
      assert.equal(stored.text, next)
      double.updateAnswer = undefined
      const after = await b.read()
      assert.equal(after.text, next)
      assert.equal(stored.version, after.version)
      // The version read back serves the next check-and-set.
      await b.write(KEYSET, stored.version)
      assert.equal((await b.read()).text, KEYSET)
    } finally {
      double.updateAnswer = undefined
      await b.close()
    }
  })

  it('a PUT answered with something else whose read back shows another writer’s document: landed, but no version to build on', async () => {
    seed()
    const b = backend()
    const snap = await b.read()
    const next = serializeKeyset(makeKeyset([makeKey('ES256', 'k-kube-3')]) as never)
    const other = serializeKeyset(makeKeyset([makeKey('ES256', 'k-kube-other')]) as never)
    // Another writer lands right after this write, before its answer is sent (and read back).
    Object.defineProperty(double, 'updateAnswer', {
      configurable: true,
      get() {
        Object.defineProperty(double, 'updateAnswer', { configurable: true, writable: true, value: { kind: 'Status', status: 'Success' } })
        double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': other, 'db-password': 'untouched' })
        return { kind: 'Status', status: 'Success' }
      },
    })
    try {
      const stored = await b.write(next, snap.version)
      assert.equal(stored.version, '', 'no version: a check-and-set from it must fail')
      assert.match(stored.notice ?? '', /reading kubernetes:cbc\/cbc-secrets#jwt-keyset back does not show the keyset written \(another writer since\?\)/)
    } finally {
      double.updateAnswer = undefined
      await b.close()
    }
  })

  it('create-only (keyset init): creates a missing Secret, refuses one that already holds a keyset', async () => {
    const b = backend({ CBC_JWT_KUBERNETES_SECRET: 'fresh-secret' })
    await b.write(KEYSET, null)
    assert.equal(Buffer.from(double.secret(NS, 'fresh-secret')!.data['jwt-keyset']!, 'base64').toString(), KEYSET)
    await assert.rejects(b.write(KEYSET, null), CasConflictError)
    await b.close()
  })

  // A Secret made beforehand for the app's other keys: keyset init adds its key, keeping theirs.
  it('create-only into an existing Secret without the keyset key: the key is added, the other keys kept', async () => {
    double.setSecret(NS, 'shared-secret', { 'db-password': 'untouched' })
    const b = backend({ CBC_JWT_KUBERNETES_SECRET: 'shared-secret' })
    try {
      await b.write(KEYSET, null)
      const secret = double.secret(NS, 'shared-secret')!
      assert.equal(Buffer.from(secret.data['jwt-keyset']!, 'base64').toString(), KEYSET)
      assert.equal(Buffer.from(secret.data['db-password']!, 'base64').toString(), 'untouched')
    } finally {
      await b.close()
    }
  })

  it('a bearer token file (a kubeconfig tokenFile, the pod token) missing at start is a configuration error, unreadable later forbidden — one line naming it', async () => {
    seed()
    const tokenFile = path.join(dir, 'token-file')
    const kubeconfig = path.join(dir, 'token-file-kubeconfig')
    const doc = JSON.parse(fs.readFileSync(double.writeKubeconfig(kubeconfig, { namespace: NS }), 'utf8'))
    doc.users[0].user = { tokenFile: './token-file' }
    fs.writeFileSync(kubeconfig, JSON.stringify(doc))
    const fileEnv = { ...env, KUBECONFIG: kubeconfig }
    // Missing at start: as kubectl, the configuration is refused before any request.
    const early = createKubernetesBackend(kubernetesOptionsFromEnv(fileEnv), { env: fileEnv })
    await assert.rejects(early.connect(), (err: unknown) => err instanceof ConfigError && err.message.includes(tokenFile))
    await early.close()
    fs.writeFileSync(tokenFile, `${double.token}\n`)
    const b = createKubernetesBackend(kubernetesOptionsFromEnv(fileEnv), { env: fileEnv })
    assert.equal((await b.read()).text, KEYSET)
    // Gone since (a rotation gone wrong): a counted, bounded failure of the read, never a raw ENOENT.
    fs.rmSync(tokenFile)
    await assert.rejects(
      b.read(),
      (err: unknown) => err instanceof BackendError && err.reason === 'forbidden' && err.message === `cannot read the bearer token file ${tokenFile} (ENOENT)`,
    )
    await b.close()
  })

  // The server check of the wrong-shape case below read the scheme case-sensitively: refused at start, where kubectl connects.
  it('a server whose scheme is in capitals (HTTP://) is read as kubectl and the HTTP client read it: case-insensitive', async () => {
    seed()
    const kubeconfig = path.join(dir, 'capitals-kubeconfig')
    const doc = JSON.parse(fs.readFileSync(double.writeKubeconfig(kubeconfig, { namespace: NS }), 'utf8'))
    doc.clusters[0].cluster.server = double.url.replace(/^https?/, (scheme: string) => scheme.toUpperCase())
    fs.writeFileSync(kubeconfig, JSON.stringify(doc))
    const b = backend({ KUBECONFIG: kubeconfig })
    try {
      assert.equal((await b.read()).text, KEYSET)
    } finally {
      await b.close()
    }
  })

  it('a kubeconfig of the wrong shape, or naming a certificate file that is gone, is a configuration error naming it — never a TypeError or raw ENOENT', async () => {
    const server = { name: 'k', cluster: { server: double.url } }
    const context = { name: 'c', context: { cluster: 'k', user: 'u' } }
    const cases: Array<[string, object, RegExp]> = [
      ['contexts not a list', { 'current-context': 'c', contexts: 5 }, /no context "c"/],
      ['a null context entry', { 'current-context': 'c', contexts: [null] }, /no context "c"/],
      ['a cluster entry without its cluster', { 'current-context': 'c', contexts: [context], clusters: [{ name: 'k' }] }, /names no cluster with a server/],
      ...['127.0.0.1:6443', 'ftp://k', 'https://'].map((url): [string, object, RegExp] => [
        `server ${url}`,
        { 'current-context': 'c', contexts: [context], clusters: [{ name: 'k', cluster: { server: url } }] },
        /not an https:\/\/ \(or http:\/\/\) URL/,
      ]),
      [
        'a certificate-authority file that is gone',
        { 'current-context': 'c', contexts: [context], clusters: [{ name: 'k', cluster: { ...server.cluster, 'certificate-authority': 'gone/ca.crt' } }] },
        /certificate-authority .*gone\/ca\.crt cannot be read \(ENOENT\)/,
      ],
      [
        'an exec plugin without a command',
        { 'current-context': 'c', contexts: [context], clusters: [server], users: [{ name: 'u', user: { exec: {} } }] },
        /exec plugin: no command/,
      ],
      [
        'an exec plugin env entry that is not a name and value',
        {
          'current-context': 'c',
          contexts: [context],
          clusters: [server],
          users: [{ name: 'u', user: { exec: { command: '/nonexistent/plugin', env: [null] } } }],
        },
        /exec plugin \/nonexistent\/plugin failed/,
      ],
      [
        'a client-key file that is gone',
        {
          'current-context': 'c',
          contexts: [context],
          clusters: [server],
          users: [{ name: 'u', user: { 'client-certificate-data': 'eA==', 'client-key': 'gone/key.pem' } }],
        },
        /client-key .*gone\/key\.pem cannot be read \(ENOENT\)/,
      ],
    ]
    for (const [what, doc, message] of cases) {
      const file = path.join(dir, 'malformed-kubeconfig')
      fs.writeFileSync(file, JSON.stringify(doc))
      const b = createKubernetesBackend(kubernetesOptionsFromEnv({}), { env: { KUBECONFIG: file, HOME: dir } })
      await assert.rejects(b.connect(), (err: unknown) => err instanceof ConfigError && message.test(err.message), what)
      await b.close()
    }
  })

  it('in a pod: the service-account token, CA and namespace files, over HTTPS; a wrong CA is refused', async (t) => {
    const server = selfSignedCert()
    const impostor = server && selfSignedCert()
    if (!server || !impostor) return t.skip('openssl is not installed')
    const cert = server.cert
    const secure = await startKubeDouble({ tls: { key: server.key, cert } })
    try {
      secure.setSecret('prod', 'cbc-secrets', { 'jwt-keyset': KEYSET })
      const sa = path.join(dir, 'serviceaccount')
      fs.mkdirSync(sa)
      fs.writeFileSync(path.join(sa, 'token'), `${secure.token}\n`)
      fs.writeFileSync(path.join(sa, 'ca.crt'), cert)
      fs.writeFileSync(path.join(sa, 'namespace'), 'prod')
      const podEnv = { HOME: path.join(dir, 'empty-home'), KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: new URL(secure.url).port }
      const b = createKubernetesBackend(kubernetesOptionsFromEnv(podEnv), { env: podEnv, serviceAccountDir: sa })
      assert.equal((await b.read()).text, KEYSET)
      assert.equal(b.location, 'kubernetes:prod/cbc-secrets#jwt-keyset')
      await b.close()
      fs.writeFileSync(path.join(sa, 'ca.crt'), impostor.cert) // an impostor's CA
      const wrong = createKubernetesBackend(kubernetesOptionsFromEnv(podEnv), { env: podEnv, serviceAccountDir: sa })
      await assert.rejects(wrong.read(), (err: unknown) => err instanceof BackendError && err.reason === 'unreachable')
      await wrong.close()
    } finally {
      await secure.close()
    }
  })
})

describe('Kubernetes Secret backend against a hostile API server', () => {
  // The resourceVersion is opaque text chosen by whatever answers for the API server (a proxy):
  // a conflict names it, and `keyset init --force` prints that message on the operator's terminal.
  it('attack: a resourceVersion with terminal escapes reaches a conflict message escaped and bounded', async (t) => {
    const hostile = `7\u001b[2J\u001b]0;pwned\u0007\u009b31m\u202e${'9'.repeat(5000)}`
    const server = http.createServer((req, res) => {
      if (req.method === 'PUT') {
        res.writeHead(409, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', reason: 'Conflict', code: 409 }))
        return
      }
      const secret = {
        kind: 'Secret',
        metadata: { name: 'cbc-secrets', namespace: NS, resourceVersion: hostile },
        data: { 'jwt-keyset': Buffer.from(KEYSET).toString('base64') },
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(secret))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-kube-hostile-'))
    t.after(() => {
      server.closeAllConnections()
      server.close()
      fs.rmSync(dir, { recursive: true, force: true })
    })
    const kubeconfig = path.join(dir, 'kubeconfig')
    const cluster = { server: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }
    fs.writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        'current-context': 'c',
        clusters: [{ name: 'c', cluster }],
        users: [{ name: 'u', user: { token: 'hostile-test-token' } }],
        contexts: [{ name: 'c', context: { cluster: 'c', user: 'u', namespace: NS } }],
      }),
    )
    const env = { KUBECONFIG: kubeconfig, HOME: dir }
    const conflict = (err: unknown) => {
      assert.ok(err instanceof CasConflictError)
      assert.match(err.message, /^[\x20-\x7e]*$/, err.message)
      assert.ok(err.message.includes('7\\x1b[2J'), err.message)
      assert.ok(err.message.length < 300, `${err.message.length} characters`)
      return true
    }
    const b = createKubernetesBackend(kubernetesOptionsFromEnv(env), { env })
    t.after(() => b.close())
    const snap = await b.read()
    assert.equal(snap.version, hostile)
    // The PUT refused 409: the Secret as read was changed by another writer.
    await assert.rejects(b.write(KEYSET, snap.version), conflict)
    // A version the API no longer holds, checked before any PUT.
    await assert.rejects(createKubernetesBackend(kubernetesOptionsFromEnv(env), { env }).write(KEYSET, `${hostile}0`), conflict)
  })
})
