// cbcJwt() on each route, as the docs show it: every route's rejections reach the one registry.
// Before, each call built its own instance and the last one's metrics replaced the others' on
// the registry: 5 rejections on one route and 3 on another were exported as 3.
import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { after, describe, it } from 'node:test'
import express from 'express'
import { Registry } from 'prom-client'
import { authOf, cbcJwt } from '../../../src/adapters/express/index.js'
import { captureLogger, tempKeyset } from '../../lib/core/fixtures.js'
import { makeKey, makeKeyset, signToken, validClaims } from '../../support/keys.js'
import { parseExposition, valueOf } from '../../support/metrics-text.js'

const key = makeKey('ES256', 'k-shared')

describe('cbcJwt() per route on one registry', () => {
  const ks = tempKeyset(makeKeyset([key]))
  const registry = new Registry()
  const { logger } = captureLogger()
  const options = () => ({ keysetFile: ks.file, env: {}, registry, logger })
  const cleanups: Array<() => unknown> = []
  after(async () => {
    for (const c of cleanups.reverse()) await c()
    ks.cleanup()
  })

  async function serve(app: express.Express): Promise<string> {
    const server = app.listen(0, '127.0.0.1')
    await new Promise<void>((resolve) => server.once('listening', () => resolve()))
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())))
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  }
  const missing = async () => valueOf(parseExposition(await registry.metrics()), 'cbc_jwt_auth_failures_total', { reason: 'missing' })

  it('two routes, equal options: one instance, 5 + 3 rejections exported as 8', async () => {
    const app = express()
    const orders = cbcJwt(options())
    const admin = cbcJwt(options())
    cleanups.push(() => orders.cbc.close())
    app.use('/orders', orders)
    app.use('/admin', admin)
    app.get('/orders', (req, res) => void res.json({ sub: authOf<{ sub: string }>(req).claims.sub }))
    app.get('/admin', (_req, res) => void res.json({}))
    const base = await serve(app)
    for (let i = 0; i < 5; i++) assert.equal((await fetch(`${base}/orders`)).status, 401)
    for (let i = 0; i < 3; i++) assert.equal((await fetch(`${base}/admin`)).status, 401)
    assert.equal(await missing(), 8)
    assert.equal(admin.cbc, orders.cbc, 'equal options share one instance (one keyring, one watch)')
    const ok = await fetch(`${base}/orders`, { headers: { authorization: `Bearer ${signToken(key, validClaims({ sub: 'alice' }))}` } })
    assert.deepEqual(await ok.json(), { sub: 'alice' })
  })

  it('another open instance on the same registry is refused loudly, and the counts stay', async () => {
    assert.throws(
      () => cbcJwt({ ...options(), audience: 'another-api' }),
      (err: any) => err.code === 'ERR_ALREADY_REGISTERED' && /another cbc-jwt instance, still open/.test(err.message),
    )
    assert.equal(await missing(), 8)
  })

  it('once the first is closed, an instance of other options takes the registry over', async () => {
    const first = cbcJwt(options())
    await first.cbc.close()
    const next = cbcJwt({ ...options(), audience: 'another-api' })
    cleanups.push(() => next.cbc.close())
    assert.notEqual(next.cbc, first.cbc)
    await next.started
    assert.equal(await missing(), 0)
    // Equal options after a close get a fresh instance, never the closed one.
    const again = cbcJwt({ ...options(), audience: 'another-api' })
    assert.equal(again.cbc, next.cbc)
  })

  it('authOf on a request that was never authenticated throws, naming what to do', () => {
    assert.throws(() => authOf({}), /not authenticated — put app\.authenticate \(Fastify\) or cbcJwt\(\) \(Express\) before the handler/)
    assert.throws(() => authOf({ auth: null }), TypeError)
  })
})
