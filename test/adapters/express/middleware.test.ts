import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import express5 from 'express'
import { Registry } from 'prom-client'
import { cbcJwt, requireScope, type CbcJwtMiddleware } from '../../../src/adapters/express/index.js'
import { captureLogger, tempKeyset } from '../../lib/core/fixtures.js'
import { makeKey, makeKeyset, signToken, validClaims } from '../../support/keys.js'
import { parseExposition, valueOf } from '../../support/metrics-text.js'
import { rawRequest } from '../../support/raw-http.js'

const key = makeKey('ES256', 'k-express')
// express4 is the `express4` alias package (express@4): both majors run the same cases.
const { default: express4 } = (await import('express4' as string)) as { default: typeof express5 }

for (const [name, express] of [
  ['Express 5', express5],
  ['Express 4', express4],
] as const) {
  describe(`cbc-jwt/express on ${name}`, () => {
    let base: string
    let port: number
    let close: () => Promise<void>
    let mw: CbcJwtMiddleware
    const registry = new Registry()
    const { lines, logger } = captureLogger()

    before(async () => {
      const ks = tempKeyset(makeKeyset([key]))
      const app = express()
      mw = cbcJwt({ keysetFile: ks.file, env: {}, registry, logger })
      app.get('/public', (_req, res) => void res.json({ auth: _req.auth ?? null }))
      app.use('/api', mw)
      app.get('/api/me', (req, res) => void res.json({ sub: req.auth?.claims.sub, kid: req.auth?.kid }))
      app.get('/api/orders', requireScope('orders:read'), (req, res) => void res.json({ sub: req.auth!.claims.sub }))
      app.get('/unguarded-scope', requireScope('orders:read'), (_req, res) => void res.send('never'))
      const server = app.listen(0, '127.0.0.1')
      await new Promise<void>((resolve) => server.once('listening', () => resolve()))
      port = (server.address() as AddressInfo).port
      base = `http://127.0.0.1:${port}`
      close = async () => {
        await new Promise<void>((resolve) => server.close(() => resolve()))
        await mw.cbc.close()
        ks.cleanup()
      }
    })
    after(() => close())

    const get = async (path: string, authorization?: string) => {
      const res = await fetch(base + path, { headers: authorization ? { authorization } : {} })
      return { status: res.status, headers: res.headers, json: (await res.json()) as any }
    }
    const token = (claims: Record<string, unknown> = {}) => `Bearer ${signToken(key, validClaims(claims))}`

    it('a valid token → next() with req.auth', async () => {
      const res = await get('/api/me', token({ sub: 'alice' }))
      assert.equal(res.status, 200)
      assert.deepEqual(res.json, { sub: 'alice', kid: 'k-express' })
    })

    it('a repeated token: the same answer, next() called at once (from the token cache, no promise)', async () => {
      const authorization = token({ sub: 'bob' })
      assert.deepEqual((await get('/api/me', authorization)).json, { sub: 'bob', kid: 'k-express' })
      assert.deepEqual((await get('/api/me', authorization)).json, { sub: 'bob', kid: 'k-express' })
      // Called directly, as Express would: next runs before the middleware returns.
      const req = { rawHeaders: ['Authorization', authorization], headers: {}, socket: { remoteAddress: '127.0.0.1' } } as Parameters<CbcJwtMiddleware>[0]
      let nextCalled = false
      mw(req, { status: () => assert.fail('no answer expected') } as never, () => (nextCalled = true))
      assert.equal(nextCalled, true)
      assert.equal(req.auth?.claims.sub, 'bob')
    })

    it('no token → 401 of CONTRACT §2, counted on the given registry, logged', async () => {
      const res = await get('/api/me')
      assert.equal(res.status, 401)
      assert.equal(res.headers.get('www-authenticate'), 'Bearer')
      assert.equal(res.headers.get('cache-control'), 'no-store')
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/)
      assert.deepEqual(res.json, { error: 'invalid_token', reason: 'missing' })
      assert.ok((valueOf(parseExposition(await registry.metrics()), 'cbc_jwt_auth_failures_total', { reason: 'missing' }) ?? 0) >= 1)
      assert.ok(lines.some((l) => l.event === 'auth_rejected' && l.reason === 'missing' && l.remote_addr === '127.0.0.1'))
    })

    it('an expired token → 401 expired with the invalid_token challenge', async () => {
      const res = await get('/api/me', token({ exp: Math.floor(Date.now() / 1000) - 3600 }))
      assert.equal(res.status, 401)
      assert.equal(res.headers.get('www-authenticate'), 'Bearer error="invalid_token"')
      assert.equal(res.json.reason, 'expired')
    })

    it('scope held → 200; scope lacking → 403 insufficient_scope (RFC 6750)', async () => {
      assert.equal((await get('/api/orders', token({ scope: 'orders:read' }))).status, 200)
      const res = await get('/api/orders', token({ scope: 'orders:write' }))
      assert.equal(res.status, 403)
      assert.equal(res.headers.get('www-authenticate'), 'Bearer error="insufficient_scope"')
      assert.deepEqual(res.json, { error: 'insufficient_scope', reason: 'insufficient_scope', scope: 'orders:read' })
    })

    it('requireScope without cbcJwt() before it → 401 missing: fails closed, never a 500', async () => {
      const res = await get('/unguarded-scope', token({ scope: 'orders:read' }))
      assert.equal(res.status, 401)
      assert.deepEqual(res.json, { error: 'invalid_token', reason: 'missing' })
    })

    it('request smuggling: two Authorization header lines → 401 malformed (Node hides the second in req.headers)', async () => {
      const t = token()
      const res = await rawRequest(port, ['GET /api/me HTTP/1.1', 'Host: x', `Authorization: ${t}`, `authorization: ${t}`])
      assert.equal(res.status, 401)
      assert.equal(JSON.parse(res.body).reason, 'malformed')
    })

    it('non-Bearer and garbled credentials → 401 with a reason, never a 500', async () => {
      for (const [authorization, reason] of [
        ['Basic dXNlcjpwYXNz', 'missing'],
        ['Bearer', 'malformed'],
        ['Bearer a b', 'malformed'],
        ['Bearer a.b', 'malformed'],
      ] as const) {
        const res = await get('/api/me', authorization)
        assert.equal(res.status, 401, authorization)
        assert.equal(res.json.reason, reason, authorization)
      }
    })

    it('a 10 KB token → 401 too_large (Node’s 16 KiB header limit allows it)', async () => {
      const res = await get('/api/me', token({ padding: 'x'.repeat(10_000) }))
      assert.equal(res.status, 401)
      assert.equal(res.json.reason, 'too_large')
    })

    it('routes before the middleware stay public', async () => {
      assert.deepEqual((await get('/public')).json, { auth: null })
    })

    it('a misspelt option throws at once, naming it (found by an audit: it ran on the default)', () => {
      assert.throws(() => cbcJwt({ env: {}, keysetFile: '/nonexistent/keyset.json', registry: false, refreshInterval: 5 } as never), {
        name: 'TypeError',
        message: /unknown option refreshInterval \(did you mean refreshIntervalSeconds\?\)/,
      })
    })
  })
}
