import assert from 'node:assert/strict'
import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { after, before, beforeEach, describe, it } from 'node:test'
import { createVaultBackend } from '../../../../src/lib/backends/vault/index.js'
import { startVaultDouble, type VaultDouble } from '../../../support/vault-double.js'
import { backendError, backendFor, captureLogger, kvRequests, SECRET_PATH } from './fixtures.js'

const ROLE = 'cbc-api'

describe('vault backend auth', () => {
  let double: VaultDouble
  let dir: string
  let jwtFile: string
  before(async () => {
    double = await startVaultDouble()
    double.setSecret(SECRET_PATH, { 'jwt-keyset': '{"k":1}' })
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vault-auth-'))
    jwtFile = path.join(dir, 'token')
  })
  after(async () => {
    await double.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })
  beforeEach(async () => {
    await double.setFault(null)
    double.requests.length = 0
    fs.writeFileSync(jwtFile, 'eyJhbGciOiJSUzI1NiJ9.sa-token-1.sig\n')
    double.enableKubernetesAuth({ role: ROLE, jwt: 'eyJhbGciOiJSUzI1NiJ9.sa-token-1.sig', ttlSeconds: 60 })
  })

  const logins = () => double.requests.filter((r) => r.path === '/v1/auth/kubernetes/login')
  const k8sOptions = () => ({ auth: 'kubernetes' as const, role: ROLE, k8sTokenPath: jwtFile })

  describe('token', () => {
    it('sends X-Vault-Token and X-Vault-Request, and no namespace header unless set', async (t) => {
      const backend = backendFor(double)
      t.after(() => backend.close())
      await backend.read()
      const [req] = kvRequests(double)
      assert.equal(req!.headers['x-vault-token'], double.token)
      assert.equal(req!.headers['x-vault-request'], 'true')
      assert.equal(req!.headers['x-vault-namespace'], undefined)
    })

    it('sends X-Vault-Namespace when set, and names it in the location', async (t) => {
      const backend = backendFor(double, { namespace: 'team-a/prod' })
      t.after(() => backend.close())
      await backend.read()
      assert.equal(kvRequests(double)[0]!.headers['x-vault-namespace'], 'team-a/prod')
      assert.equal(backend.location, `vault:secret/${SECRET_PATH} (namespace team-a/prod)`)
    })

    it('a 403 is forbidden at once: a static token cannot get better by retrying', async (t) => {
      const backend = backendFor(double, { token: 'hvs.not-a-valid-token' })
      t.after(() => backend.close())
      const err = await backendError(backend.read())
      assert.equal(err.reason, 'forbidden')
      assert.equal(double.requests.length, 1)
    })
  })

  describe('kubernetes', () => {
    it('logs in with role and the service account JWT, then uses the client token', async (t) => {
      const { logger, calls } = captureLogger()
      const backend = backendFor(double, k8sOptions(), { logger })
      t.after(() => backend.close())
      assert.equal((await backend.read()).text, '{"k":1}')
      assert.equal(logins().length, 1)
      assert.deepEqual(logins()[0]!.body, { role: ROLE, jwt: 'eyJhbGciOiJSUzI1NiJ9.sa-token-1.sig' })
      const used = kvRequests(double)[0]!.headers['x-vault-token']
      assert.match(String(used), /^hvs\./)
      assert.notEqual(used, double.token)
      const info = calls.find((c) => c.level === 'info')
      assert.deepEqual(info?.obj, { location: backend.location, auth_mount: 'kubernetes', role: ROLE, lease_seconds: 60, renewable: true })
    })

    it('uses a custom auth mount', async (t) => {
      double.enableKubernetesAuth({ role: ROLE, jwt: 'eyJhbGciOiJSUzI1NiJ9.sa-token-1.sig', mount: 'k8s-prod' })
      const backend = backendFor(double, { ...k8sOptions(), k8sMount: 'k8s-prod' })
      t.after(() => backend.close())
      await backend.read()
      assert.deepEqual(double.requests.map((r) => r.path)[0], '/v1/auth/k8s-prod/login')
    })

    it('logs in again only once the lease has run out, reading the rotated JWT from disk', async (t) => {
      let now = 1_000_000
      const backend = backendFor(double, k8sOptions(), { now: () => now })
      t.after(() => backend.close())
      await backend.read()
      await backend.read()
      now += 30_000
      await backend.read()
      assert.equal(logins().length, 1, 'no login while the 60 s lease holds')
      // The kubelet rotated the projected token; Vault accepts the new one.
      fs.writeFileSync(jwtFile, 'eyJhbGciOiJSUzI1NiJ9.sa-token-2.sig')
      double.enableKubernetesAuth({ role: ROLE, jwt: 'eyJhbGciOiJSUzI1NiJ9.sa-token-2.sig', ttlSeconds: 60 })
      now += 31_000
      await backend.read()
      assert.equal(logins().length, 2)
      assert.equal((logins()[1]!.body as { jwt: string }).jwt, 'eyJhbGciOiJSUzI1NiJ9.sa-token-2.sig')
      const tokens = kvRequests(double).map((r) => r.headers['x-vault-token'])
      assert.equal(new Set(tokens.slice(0, 3)).size, 1)
      assert.notEqual(tokens[3], tokens[0])
    })

    // Renewed a tenth of the lease (at most 5 s) early: a token must not run out in flight.
    it('the token is renewed from the instant its early renewal is due, not a millisecond later', async (t) => {
      let now = 1_000_000
      const backend = backendFor(double, k8sOptions(), { now: () => now })
      t.after(() => backend.close())
      await backend.read()
      now += 54_999
      await backend.read()
      assert.equal(logins().length, 1, 'the 60 s lease still holds 5 s before its end')
      now += 1
      await backend.read()
      assert.equal(logins().length, 2, 'due 5 s before the lease ends')
      // A lease of 10 s is renewed a tenth early: 1 s before its end.
      double.enableKubernetesAuth({ role: ROLE, jwt: 'eyJhbGciOiJSUzI1NiJ9.sa-token-1.sig', ttlSeconds: 10 })
      const short = backendFor(double, k8sOptions(), { now: () => now })
      t.after(() => short.close())
      await short.read()
      now += 8_999
      await short.read()
      assert.equal(logins().length, 3)
      now += 1
      await short.read()
      assert.equal(logins().length, 4, 'due 1 s before a 10 s lease ends')
    })

    // Vault's answer for a token that does not expire (a periodic or root-like token): kept as
    // long as Vault accepts it, never a login per request.
    it('a client token with no lease (lease_duration 0) is kept: one login, however long the reads go on', async (t) => {
      let logins = 0
      const server = http.createServer((req, res) => {
        res.setHeader('content-type', 'application/json')
        if (req.url === '/v1/auth/kubernetes/login') {
          res.end(JSON.stringify({ auth: { client_token: `hvs.forever-${++logins}`, lease_duration: 0 } }))
          return
        }
        res.end(JSON.stringify({ data: { data: { 'jwt-keyset': '{"k":1}' }, metadata: { version: 1 } } }))
      })
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      t.after(() => server.close())
      let now = 1_000_000
      const backend = createVaultBackend(
        { ...k8sOptions(), addr: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, retries: 0 },
        { now: () => now },
      )
      t.after(() => backend.close())
      for (let i = 0; i < 3; i++) {
        assert.equal((await backend.read()).text, '{"k":1}')
        now += 86_400_000
      }
      assert.equal(logins, 1)
    })

    it('logs in again when Vault answers 403 (token revoked) and repeats the request once', async (t) => {
      const backend = backendFor(double, k8sOptions())
      t.after(() => backend.close())
      await backend.read()
      double.revokeIssuedTokens()
      assert.equal((await backend.read()).text, '{"k":1}')
      assert.deepEqual(
        double.requests.map((r) => `${r.method} ${r.path}`),
        [
          'POST /v1/auth/kubernetes/login',
          `GET /v1/secret/data/${SECRET_PATH}`,
          `GET /v1/secret/data/${SECRET_PATH}`, // 403
          'POST /v1/auth/kubernetes/login',
          `GET /v1/secret/data/${SECRET_PATH}`,
        ],
      )
    })

    it('a 403 that survives a fresh login is forbidden, after one re-login only', async (t) => {
      const backend = backendFor(double, { ...k8sOptions(), retries: 3 })
      t.after(() => backend.close())
      await double.setFault({ kind: '403', method: 'GET' })
      const err = await backendError(backend.read())
      assert.equal(err.reason, 'forbidden')
      assert.equal(logins().length, 2)
      assert.equal(kvRequests(double).length, 2)
    })

    it('a refused login is forbidden: wrong role', async (t) => {
      const backend = backendFor(double, { ...k8sOptions(), role: 'intruder' })
      t.after(() => backend.close())
      const err = await backendError(backend.read())
      assert.equal(err.reason, 'forbidden')
      assert.match(err.message, /Kubernetes login \(auth\/kubernetes, role intruder\): refused, HTTP 400 \(invalid role name "intruder"\)/)
      assert.equal(kvRequests(double).length, 0)
      assert.equal(logins().length, 1, 'a refused login is not retried')
    })

    it('a refused login is forbidden: JWT not accepted', async (t) => {
      fs.writeFileSync(jwtFile, 'eyJhbGciOiJSUzI1NiJ9.someone-else.sig')
      const backend = backendFor(double, k8sOptions())
      t.after(() => backend.close())
      const err = await backendError(backend.read())
      assert.equal(err.reason, 'forbidden')
      assert.match(err.message, /HTTP 403 \(permission denied\)/)
    })

    it('a missing service account token file is forbidden, naming the path', async (t) => {
      const missing = path.join(dir, 'nope')
      const backend = backendFor(double, { ...k8sOptions(), k8sTokenPath: missing })
      t.after(() => backend.close())
      const err = await backendError(backend.read())
      assert.equal(err.reason, 'forbidden')
      assert.ok(err.message.includes(`cannot read the service account token ${missing} (ENOENT)`), err.message)
      assert.equal(double.requests.length, 0)
    })

    it('an empty service account token file is forbidden, naming the path, and no login is sent', async (t) => {
      fs.writeFileSync(jwtFile, ' \n')
      const backend = backendFor(double, k8sOptions())
      t.after(() => backend.close())
      const err = await backendError(backend.read())
      assert.equal(err.reason, 'forbidden')
      assert.ok(err.message.includes(`the service account token ${jwtFile} is empty`), err.message)
      assert.equal(double.requests.length, 0)
    })

    it('a login that meets a sealed Vault keeps the reason sealed and is retried', async (t) => {
      await double.setFault({ kind: 'sealed', method: 'POST', times: 1 })
      const backend = backendFor(double, k8sOptions())
      t.after(() => backend.close())
      assert.equal((await backend.read()).text, '{"k":1}')
      assert.equal(logins().length, 2)
    })

    // Many replicas starting at once meet Vault's rate limit quotas on the login path: that is
    // not Vault refusing the role or the JWT, and may pass within the read.
    it('a rate-limited login (429) is not forbidden: server_error, and retried', async (t) => {
      await double.setFault({ kind: '429', method: 'POST', times: 1 })
      const backend = backendFor(double, k8sOptions())
      t.after(() => backend.close())
      assert.equal((await backend.read()).text, '{"k":1}')
      assert.equal(logins().length, 2)
      await double.setFault({ kind: '429', method: 'POST' })
      const once = backendFor(double, { ...k8sOptions(), retries: 0 })
      t.after(() => once.close())
      const err = await backendError(once.read())
      assert.equal(err.reason, 'server_error')
      assert.match(err.message, /HTTP 429 \(request path "auth\/kubernetes\/login": rate limit quota exceeded\)/)
    })

    // The token goes in a header of every request after the login. One no header can carry was
    // kept (a lease of 0 never runs out) and failed every read before it was sent, as
    // "cannot reach Vault (ERR_INVALID_CHAR)", with no login ever again: the login answer is bad.
    it('attack: a login answer whose client_token no header can carry is bad_response and not kept; the next read logs in again', async (t) => {
      const tokens = ['hvs.first\r\nX-Injected: 1', 'hvs.second']
      let logins = 0
      const server = http.createServer((req, res) => {
        if (req.url === '/v1/auth/kubernetes/login') {
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ auth: { client_token: tokens[logins++], lease_duration: 0 } }))
          return
        }
        const known = req.headers['x-vault-token'] === 'hvs.second'
        res.writeHead(known ? 200 : 403, { 'content-type': 'application/json' })
        res.end(JSON.stringify(known ? { data: { data: { 'jwt-keyset': '{"k":1}' }, metadata: { version: 1 } } } : { errors: ['permission denied'] }))
      })
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      t.after(() => server.close())
      const backend = createVaultBackend({ ...k8sOptions(), addr: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, retries: 0 })
      t.after(() => backend.close())
      const err = await backendError(backend.read())
      assert.equal(err.reason, 'bad_response')
      assert.match(err.message, /Kubernetes login \(auth\/kubernetes, role cbc-api\): the answer has no auth\.client_token an HTTP header can carry$/)
      assert.equal((await backend.read()).text, '{"k":1}')
      assert.equal(logins, 2)
    })

    it('concurrent reads share one login', async (t) => {
      const backend = backendFor(double, k8sOptions())
      t.after(() => backend.close())
      await Promise.all([backend.read(), backend.read(), backend.read()])
      assert.equal(logins().length, 1)
    })
  })

  describe('secrets stay secret', () => {
    it('no token or JWT in error messages, logged objects or location, across failures', async (t) => {
      const { logger, calls } = captureLogger()
      const messages: string[] = []
      const token = backendFor(double, { namespace: 'ns1' }, { logger })
      const k8s = backendFor(double, k8sOptions(), { logger })
      t.after(() => Promise.all([token.close(), k8s.close()]))
      messages.push(token.location, k8s.location)
      await k8s.read()
      for (const fault of ['500', 'sealed', '403', 'not_json', 'redirect', 'reset'] as const) {
        await double.setFault(fault)
        for (const b of [token, k8s]) {
          messages.push((await backendError(b.read())).message)
          const w = await b.write('{}', '1').catch((err: Error) => err)
          if (w instanceof Error) messages.push(w.message, String(w.stack))
        }
      }
      await double.setFault(null)
      const wrongRole = backendFor(double, { ...k8sOptions(), role: 'x' }, { logger })
      t.after(() => wrongRole.close())
      messages.push((await backendError(wrongRole.read())).message)

      const issued = new Set(double.requests.map((r) => r.headers['x-vault-token']).filter((v): v is string => typeof v === 'string'))
      assert.ok(issued.size >= 2, 'the root token and at least one issued token were used')
      const secrets = [...issued, 'eyJhbGciOiJSUzI1NiJ9.sa-token-1.sig', 'sa-token-1']
      const logged = calls.map((c) => JSON.stringify(c.obj) + (c.msg ?? ''))
      assert.ok(calls.some((c) => c.level === 'warn') && calls.some((c) => c.level === 'info'))
      for (const text of [...messages, ...logged]) {
        for (const secret of secrets) assert.ok(!text.includes(secret), `secret leaked in: ${text.slice(0, 200)}`)
      }
    })

    // Every login brings a new client token (and reads the JWT again); what Vault or a proxy
    // echoes back of either must be blanked however many logins came before.
    it('attack: an error that echoes the token and the JWT is redacted, at every login of a long-running process', async (t) => {
      let issued = 0
      let jwt = ''
      const server = http.createServer((req, res) => {
        res.setHeader('content-type', 'application/json')
        if (req.url === '/v1/auth/kubernetes/login') {
          res.end(JSON.stringify({ auth: { client_token: `hvs.token-${++issued}`, lease_duration: 1 } }))
          return
        }
        res.statusCode = 500
        res.end(JSON.stringify({ errors: [`token ${req.headers['x-vault-token']} refused; the login used ${jwt}`] }))
      })
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      t.after(() => server.close())
      let now = 1_000_000
      const backend = createVaultBackend(
        { ...k8sOptions(), addr: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, retries: 0 },
        { now: () => now },
      )
      t.after(() => backend.close())
      for (let login = 1; login <= 6; login++) {
        jwt = `eyJhbGciOiJSUzI1NiJ9.sa-token-${login}.sig`
        fs.writeFileSync(jwtFile, jwt)
        const err = await backendError(backend.read())
        assert.equal(issued, login)
        assert.match(err.message, /HTTP 500 \(token \[redacted\] refused; the login used \[redacted\]\)/)
        assert.ok(!err.message.includes(`hvs.token-${login}`) && !err.message.includes(jwt), err.message)
        now += 2000 // the 1 s lease is over: the next read logs in again
      }
    })
  })
})
