// Two Fastify apps in one process (the API and its admin app, say) registering the plugin on
// one registry: with equal options they share one instance and its counts; with other options
// the second registration is refused loudly instead of hiding the first one's metrics.
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import Fastify from 'fastify'
import { Registry } from 'prom-client'
import cbcJwt from '../../../src/adapters/fastify/index.js'
import { captureLogger, tempKeyset } from '../../lib/core/fixtures.js'
import { makeKey, makeKeyset } from '../../support/keys.js'
import { parseExposition, valueOf } from '../../support/metrics-text.js'

describe('cbc-jwt/fastify in two apps on one registry', () => {
  const ks = tempKeyset(makeKeyset([makeKey('ES256', 'k-two-apps')]))
  const registry = new Registry()
  const { logger } = captureLogger()
  const options = { keysetFile: ks.file, env: {}, registry, logger }
  after(() => ks.cleanup())

  async function appOn(extra: Record<string, unknown> = {}) {
    const app = Fastify()
    await app.register(cbcJwt, { ...options, ...extra })
    app.get('/me', { onRequest: app.authenticate }, async () => 'ok')
    await app.ready()
    return app
  }
  const missing = async () => valueOf(parseExposition(await registry.metrics()), 'cbc_jwt_auth_failures_total', { reason: 'missing' })

  it('equal options: one instance, both apps counted, closed only when the last app closes', async () => {
    const api = await appOn()
    const admin = await appOn()
    for (let i = 0; i < 5; i++) assert.equal((await api.inject({ url: '/me' })).statusCode, 401)
    for (let i = 0; i < 3; i++) assert.equal((await admin.inject({ url: '/me' })).statusCode, 401)
    assert.equal(await missing(), 8)
    assert.equal(admin.cbcJwt, api.cbcJwt)

    await assert.rejects(
      appOn({ audience: 'another-api' }),
      (err: any) => err.code === 'ERR_ALREADY_REGISTERED' && /another cbc-jwt instance, still open/.test(err.message),
    )
    assert.equal(await missing(), 8)

    await api.close()
    assert.equal((await admin.inject({ url: '/me' })).statusCode, 401, 'the admin app still authenticates after the API app closed')
    assert.equal(admin.cbcJwt.ready(), true)
    await admin.close()
    // Both closed: the next app builds a fresh instance and takes the registry over.
    const next = await appOn({ audience: 'another-api' })
    assert.notEqual(next.cbcJwt, api.cbcJwt)
    assert.equal(await missing(), 0)
    await next.close()
  })
})
