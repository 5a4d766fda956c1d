// nginx auth_request in front of an API, with cbc-jwt as the sidecar: the configuration of
// docs/forward-auth.md, run by a real nginx against the real built service.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { authFailures, startWithKeyset, type KeysetService } from '../server/fixtures.js'
import { freePort } from '../support/free-port.js'
import { makeKey, makeKeyset, signToken, validClaims } from '../support/keys.js'
import { startNginx, type RunningNginx } from '../support/nginx.js'
import { PROJECT_ROOT } from '../support/service.js'
import { waitFor } from '../support/wait.js'

const DOC = fs.readFileSync(path.join(PROJECT_ROOT, 'docs/forward-auth.md'), 'utf8')

/**
 * The nginx block of the docs with its scoped route ("Requiring a scope in nginx") inside its
 * `server`, as the docs say to put it, and the doc's three ports replaced.
 */
function documentedServerBlock(ports: { nginx: number; cbc: number; api: number }): string {
  const m = /<!-- nginx-config:begin -->\n```nginx\n([\s\S]*?)```\n<!-- nginx-config:end -->/.exec(DOC)
  assert.ok(m, 'docs/forward-auth.md has no nginx block between the markers')
  const scoped = /<!-- nginx-scope:begin -->\n```nginx\n([\s\S]*?)```\n<!-- nginx-scope:end -->/.exec(DOC)
  assert.ok(scoped, 'docs/forward-auth.md has no scoped nginx route between the markers')
  const serverEnd = m[1]!.trimEnd().lastIndexOf('}')
  const block = `${m[1]!.slice(0, serverEnd)}\n${scoped[1]!}}\n`
  for (const address of ['127.0.0.1:8080', '127.0.0.1:8000', '127.0.0.1:9000']) assert.ok(block.includes(address), address)
  return block
    .replaceAll('127.0.0.1:8080', `127.0.0.1:${ports.nginx}`)
    .replaceAll('127.0.0.1:8000', `127.0.0.1:${ports.cbc}`)
    .replaceAll('127.0.0.1:9000', `127.0.0.1:${ports.api}`)
}

/**
 * The client-side ports of every TCP connection to `port` the kernel still lists, from
 * either end (open, or closed and in TIME_WAIT for a minute on whichever side closed first):
 * a connection opened per request leaves one port each.
 */
function peerPortsOf(port: number): Set<number> {
  const ports = new Set<number>()
  for (const line of fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const [local, remote] = line.trim().split(/\s+/).slice(1, 3)
    if (local === undefined || remote === undefined) continue
    const localPort = parseInt(local.split(':')[1]!, 16)
    const remotePort = parseInt(remote.split(':')[1]!, 16)
    if (localPort === port && remotePort !== 0) ports.add(remotePort)
    else if (remotePort === port) ports.add(localPort)
  }
  return ports
}

describe('nginx auth_request → cbc-jwt /v1/auth → the API (real nginx)', () => {
  const key = makeKey('ES256', 'k-nginx')
  const seen: Array<{ url: string; headers: http.IncomingHttpHeaders }> = []
  let apiConnections = 0
  let api: http.Server
  let cbc: KeysetService
  let nginx: RunningNginx
  let dir: string
  let base: string

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-nginx-'))
    api = http.createServer((req, res) => {
      seen.push({ url: req.url ?? '', headers: req.headers })
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ ok: true }))
    })
    api.on('connection', () => apiConnections++)
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', () => resolve()))
    // Trusting the proxy: the rejection log then carries X-Forwarded-For, which nginx must set.
    cbc = await startWithKeyset(makeKeyset([key]), { CBC_JWT_TRUST_PROXY: 'true' })
    const port = await freePort()
    nginx = await startNginx(dir, documentedServerBlock({ nginx: port, cbc: cbc.service.port, api: (api.address() as AddressInfo).port }), port)
    base = `http://127.0.0.1:${port}`
  })
  after(async () => {
    await nginx?.stop()
    await cbc?.stop()
    await new Promise((resolve) => api?.close(resolve))
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
  })

  const call = async (url: string, headers: Record<string, string> = {}, method = 'GET') => {
    const res = await fetch(base + url, { method, headers, signal: AbortSignal.timeout(10_000) })
    const body = await res.text()
    return { status: res.status, headers: res.headers, body }
  }

  it('a valid token → the API gets the request with the identity headers', async () => {
    const claims = validClaims({ sub: 'alice', client_id: 'billing', scope: 'orders:read orders:write' })
    const res = await call('/orders/42?x=1', { authorization: `Bearer ${signToken(key, claims)}` }, 'POST')
    assert.equal(res.status, 200, res.body)
    const got = seen.at(-1)!
    assert.equal(got.url, '/orders/42?x=1')
    assert.equal(got.headers['x-auth-subject'], 'alice')
    assert.equal(got.headers['x-auth-client-id'], 'billing')
    assert.equal(got.headers['x-auth-scope'], 'orders:read orders:write')
    assert.equal(got.headers['x-auth-kid'], 'k-nginx')
    assert.equal(got.headers['x-auth-expires'], String(claims.exp))
  })

  it('a valid token of 8000 bytes (hundreds of scopes) → the API, not a 503 from nginx, on a scoped route too', async () => {
    // Its identity headers (~6 KiB of scope) are over nginx's default proxy_buffer_size (4 KiB):
    // without a larger one, nginx failed the auth subrequest ("upstream sent too big header").
    // 8000, not 8192: nginx's own default refuses a request header line over 8 KiB (400).
    let scopes = 0
    const scopeOf = (n: number) => ['orders:admin', ...Array.from({ length: n }, (_, i) => `orders:s${i}`)].join(' ')
    const tokenOf = (n: number) => signToken(key, validClaims({ sub: 'alice', scope: scopeOf(n) }))
    while (tokenOf(scopes + 1).length <= 8000) scopes++
    const token = tokenOf(scopes)
    for (const url of ['/orders', '/orders/admin/x']) {
      const res = await call(url, { authorization: `Bearer ${token}` })
      assert.equal(res.status, 200, `${url}: ${res.body}`)
      assert.equal(seen.at(-1)!.headers['x-auth-scope'], scopeOf(scopes))
    }
  })

  it('attack: no X-Auth-* header a client sends reaches the API, whatever its name or case — only cbc-jwt’s', async () => {
    const claims = validClaims({ sub: undefined, scope: undefined, client_id: 'billing' })
    const res = await call('/orders', {
      authorization: `Bearer ${signToken(key, claims)}`,
      'x-auth-subject': 'admin',
      'X-AUTH-SCOPE': 'admin:all',
      'x-auth-client-id': 'root',
      'X-Auth-Kid': 'forged',
      'X-Auth-Admin': '1',
      'x-auth-tenant': 'other',
      'X-Auth-Reason': 'ok',
      'x-auth-': 'empty suffix',
    })
    assert.equal(res.status, 200, res.body)
    const got = seen.at(-1)!
    const authHeaders = Object.fromEntries(Object.entries(got.headers).filter(([name]) => name.startsWith('x-auth-')))
    assert.deepEqual(authHeaders, { 'x-auth-client-id': 'billing', 'x-auth-kid': 'k-nginx', 'x-auth-expires': String(claims.exp) })
  })

  it('the auth request carries the address nginx saw in X-Forwarded-For, never the one the client wrote', async () => {
    const res = await call('/orders', { authorization: 'Bearer not.a.token', 'x-forwarded-for': '203.0.113.66' })
    assert.equal(res.status, 401)
    const line = await waitFor(() => cbc.service.logs().find((l) => l.event === 'auth_rejected' && l.reason === 'malformed'), {
      timeoutMs: 5000,
      intervalMs: 50,
      what: 'the rejection log line',
    })
    assert.deepEqual(line.forwarded_for, ['127.0.0.1'])
  })

  it('connections to cbc-jwt and to the API are kept and reused (keep-alive), not opened per request', async () => {
    const token = signToken(key, validClaims())
    const cbcPeersBefore = peerPortsOf(cbc.service.port)
    const apiBefore = apiConnections
    for (let i = 0; i < 20; i++) assert.equal((await call('/orders', { authorization: `Bearer ${token}` })).status, 200)
    const newCbcPeers = [...peerPortsOf(cbc.service.port)].filter((p) => !cbcPeersBefore.has(p))
    assert.ok(newCbcPeers.length <= 2, `20 requests opened ${newCbcPeers.length} connections to cbc-jwt`)
    assert.ok(apiConnections - apiBefore <= 2, `20 requests opened ${apiConnections - apiBefore} connections to the API`)
  })

  it('a bad token → 401 from nginx with the reason (header and body) and the challenge; the API never sees it; counted', async () => {
    const before = authFailures(await cbc.service.metrics())
    const apiCalls = seen.length
    const res = await call('/orders', { authorization: `Bearer ${signToken(key, validClaims({ exp: Math.floor(Date.now() / 1000) - 3600 }))}` })
    assert.equal(res.status, 401)
    assert.equal(res.headers.get('x-auth-reason'), 'expired')
    assert.equal(res.headers.get('www-authenticate'), 'Bearer error="invalid_token"')
    assert.deepEqual(JSON.parse(res.body), { error: 'invalid_token', reason: 'expired' })
    assert.equal(seen.length, apiCalls)
    assert.equal(authFailures(await cbc.service.metrics()).expired - before.expired, 1)
  })

  it('a route that needs a scope: a token without it → 403 with cbc-jwt’s challenge and reason, never the API; with it → the API', async () => {
    const before = seen.length
    const without = signToken(key, validClaims({ sub: 'alice', scope: 'orders:read' }))
    const refused = await fetch(`${base}/orders/admin/x?scope=orders:read`, { headers: { authorization: `Bearer ${without}` } })
    assert.equal(refused.status, 403)
    assert.equal(refused.headers.get('x-auth-reason'), 'insufficient_scope')
    assert.equal(refused.headers.get('www-authenticate'), 'Bearer error="insufficient_scope"')
    assert.deepEqual(await refused.json(), { error: 'insufficient_scope', reason: 'insufficient_scope' })
    assert.equal(seen.length, before, 'the API never saw it')
    const withScope = signToken(key, validClaims({ sub: 'alice', scope: 'orders:read orders:admin' }))
    const ok = await fetch(`${base}/orders/admin/x`, { headers: { authorization: `Bearer ${withScope}`, 'x-auth-scope': 'forged' } })
    assert.equal(ok.status, 200)
    const got = seen.at(-1)!
    assert.equal(got.url, '/orders/admin/x')
    assert.equal(got.headers['x-auth-subject'], 'alice')
    assert.equal(got.headers['x-auth-scope'], 'orders:read orders:admin', 'cbc-jwt’s, never the client’s')
  })

  it('no token → 401 missing with the bare Bearer challenge', async () => {
    const res = await call('/orders')
    assert.equal(res.status, 401)
    assert.equal(res.headers.get('x-auth-reason'), 'missing')
    assert.equal(res.headers.get('www-authenticate'), 'Bearer')
  })

  it('revocation takes effect at once: cbc-jwt revoke (a rewritten keyset) refuses the token on the next requests', async () => {
    const token = signToken(key, validClaims({ iat: Math.floor(Date.now() / 1000) - 60 }))
    assert.equal((await call('/orders', { authorization: `Bearer ${token}` })).status, 200)
    cbc.volume.writeKeyset(makeKeyset([key], { revoked_before: new Date().toISOString() }))
    // The file backend reacts to the volume's change event; no refresh interval is waited for.
    const res = await waitFor(
      async () => {
        const r = await call('/orders', { authorization: `Bearer ${token}` })
        return r.status === 401 && r
      },
      { timeoutMs: 5000, intervalMs: 100, what: 'the revoked token to be refused' },
    )
    assert.equal(res.headers.get('x-auth-reason'), 'revoked')
  })
})
