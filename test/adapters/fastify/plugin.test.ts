import assert from 'node:assert/strict'
import { createHook } from 'node:async_hooks'
import { afterEach, describe, it } from 'node:test'
import Fastify, { type FastifyInstance } from 'fastify'
import { Registry } from 'prom-client'
import cbcJwt from '../../../src/adapters/fastify/index.js'
import { makeKey, makeKeyset, signToken, validClaims } from '../../support/keys.js'
import { parseExposition, valueOf } from '../../support/metrics-text.js'
import { captureLogger, tempKeyset } from '../../lib/core/fixtures.js'
import { waitFor } from '../../support/wait.js'

const key = makeKey('ES256', 'k-fastify')
const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

async function appWith(extra: Record<string, unknown> = {}, moreRoutes?: (app: FastifyInstance) => Promise<void>) {
  const ks = tempKeyset(makeKeyset([key]))
  cleanups.push(ks.cleanup)
  const registry = new Registry()
  const { lines, logger } = captureLogger()
  const app = Fastify()
  cleanups.push(() => app.close())
  await app.register(cbcJwt, { keysetFile: ks.file, env: {}, registry, logger, ...extra })
  app.get('/orders', { onRequest: [app.authenticate, app.requireScope('orders:read')] }, async (request) => ({
    sub: request.auth?.claims.sub,
    kid: request.auth?.kid,
  }))
  app.get('/me', { onRequest: app.authenticate }, async (request) => ({ sub: request.auth?.claims.sub }))
  app.get('/public', async (request) => ({ auth: request.auth }))
  app.get('/scope-only', { onRequest: app.requireScope('orders:read') }, async () => 'never')
  await moreRoutes?.(app)
  await app.ready()
  return { app, registry, lines }
}

const bearer = (claims: Record<string, unknown> = {}) => ({ authorization: `Bearer ${signToken(key, validClaims(claims))}` })

describe('cbc-jwt/fastify', () => {
  it('a valid token with the scope → 200 and request.auth', async () => {
    const { app } = await appWith()
    const res = await app.inject({ url: '/orders', headers: bearer({ sub: 'alice', scope: 'orders:read orders:write' }) })
    assert.equal(res.statusCode, 200)
    assert.deepEqual(res.json(), { sub: 'alice', kid: 'k-fastify' })
  })

  it('the scope claim may be an array', async () => {
    const { app } = await appWith()
    const res = await app.inject({ url: '/orders', headers: bearer({ scope: ['orders:read'] }) })
    assert.equal(res.statusCode, 200)
  })

  it('no token → 401 of CONTRACT §2, counted on the given registry', async () => {
    const { app, registry } = await appWith()
    const res = await app.inject({ url: '/orders' })
    assert.equal(res.statusCode, 401)
    assert.equal(res.headers['www-authenticate'], 'Bearer')
    assert.match(String(res.headers['content-type']), /^application\/json/)
    assert.deepEqual(res.json(), { error: 'invalid_token', reason: 'missing' })
    assert.equal(valueOf(parseExposition(await registry.metrics()), 'cbc_jwt_auth_failures_total', { reason: 'missing' }), 1)
  })

  it('a token without the scope → 403 insufficient_scope (RFC 6750), not counted as an auth failure', async () => {
    const { app, registry } = await appWith()
    const res = await app.inject({ url: '/orders', headers: bearer({ scope: 'orders:readx orders' }) })
    assert.equal(res.statusCode, 403)
    assert.equal(res.headers['www-authenticate'], 'Bearer error="insufficient_scope"')
    assert.deepEqual(res.json(), { error: 'insufficient_scope', reason: 'insufficient_scope', scope: 'orders:read' })
    const expo = parseExposition(await registry.metrics())
    assert.equal(
      expo.samples.filter((s) => s.name === 'cbc_jwt_auth_failures_total').reduce((n, s) => n + s.value, 0),
      0,
    )
  })

  it('request smuggling: two Authorization headers → 401 malformed, never one of them picked', async () => {
    const { app } = await appWith()
    const good = bearer().authorization
    // light-my-request passes an array as repeated header lines, like a client sending two.
    const res = await app.inject({ url: '/me', headers: { authorization: [good, good] as unknown as string } })
    assert.equal(res.statusCode, 401)
    assert.equal(res.json().reason, 'malformed')
  })

  it('a Basic credential → 401 missing; a garbled one → 401 malformed; never a 500', async () => {
    const { app } = await appWith()
    for (const [authorization, reason] of [
      ['Basic dXNlcjpwYXNz', 'missing'],
      ['Bearer', 'malformed'],
      ['Bearer a b', 'malformed'],
      ['Bearer ✓.✓.✓', 'malformed'],
    ] as const) {
      const res = await app.inject({ url: '/me', headers: { authorization } })
      assert.equal(res.statusCode, 401, authorization)
      assert.equal(res.json().reason, reason, authorization)
    }
  })

  it('routes without the hook stay public, request.auth null', async () => {
    const { app } = await appWith()
    const res = await app.inject({ url: '/public' })
    assert.deepEqual(res.json(), { auth: null })
  })

  it('requireScope on a route without authentication → 401 (fails closed, never a 500) and one warning', async () => {
    const { app } = await appWith()
    for (let i = 0; i < 2; i++) {
      const res = await app.inject({ url: '/scope-only', headers: bearer({ scope: 'orders:read' }) })
      assert.equal(res.statusCode, 401)
      assert.deepEqual(res.json(), { error: 'invalid_token', reason: 'missing' })
    }
  })

  it('requireScope with a scope that is not one scope-token throws at once', async () => {
    const { app } = await appWith()
    assert.throws(() => app.requireScope('a b'), TypeError)
    assert.throws(() => app.requireScope('a"b'), TypeError)
  })

  it('registered twice → a clear ERR_ALREADY_REGISTERED error, not a second keyring', async () => {
    const ks = tempKeyset(makeKeyset([key]))
    cleanups.push(ks.cleanup)
    const app = Fastify()
    cleanups.push(() => app.close())
    await app.register(cbcJwt, { keysetFile: ks.file, env: {}, registry: new Registry(), logLevel: 'silent' })
    await assert.rejects(
      async () => {
        await app.register(cbcJwt, { keysetFile: ks.file, env: {}, registry: new Registry(), logLevel: 'silent' })
      },
      (err: any) => err.code === 'ERR_ALREADY_REGISTERED' && /already registered/.test(err.message),
    )
  })

  it("a misspelt option is refused at register, naming it; Fastify's own register options pass", async () => {
    // Found by an audit: { maxTokenTtl: '1h' } signed 24 h tokens without a word.
    const ks = tempKeyset(makeKeyset([key]))
    cleanups.push(ks.cleanup)
    const bad = Fastify()
    cleanups.push(() => bad.close())
    await assert.rejects(
      async () => {
        await bad.register(cbcJwt, { keysetFile: ks.file, env: {}, registry: new Registry(), logger: false, maxTokenTtl: '1h' } as never)
      },
      (err: Error) => err instanceof TypeError && /unknown option maxTokenTtl \(did you mean maxTokenTtlSeconds\?\)/.test(err.message),
    )
    const { app } = await appWith({ prefix: '/api', logSerializers: {}, logLevel: 'silent' })
    assert.equal((await app.inject({ url: '/me', headers: bearer() })).statusCode, 200)
  })

  it('starts with the app (ready after the first read) and closes with it: no timer or watcher left', async () => {
    const live = new Map<number, string>()
    const hook = createHook({
      init(id, type) {
        if (type === 'Timeout' || type === 'FSEVENTWRAP') live.set(id, type)
      },
      destroy(id) {
        live.delete(id)
      },
    }).enable()
    try {
      const { app } = await appWith()
      assert.equal(app.cbcJwt.ready(), true)
      assert.ok([...live.values()].includes('FSEVENTWRAP') && [...live.values()].includes('Timeout'), 'the plugin started nothing')
      await app.close()
      const atClose = [...live.keys()]
      // Destroy hooks are emitted asynchronously; poll with a deadline rather than guess a delay.
      await waitFor(() => atClose.every((id) => !live.has(id)), {
        timeoutMs: 5000,
        what: `resources left after close: ${atClose.map((id) => live.get(id)).join(', ')}`,
      })
      await app.cbcJwt.close() // a second close is harmless
    } finally {
      hook.disable()
    }
  })

  it('an instance given as `cbc` is used as it is and not closed by the plugin', async () => {
    const ks = tempKeyset(makeKeyset([key]))
    cleanups.push(ks.cleanup)
    const { createCbcJwt } = await import('../../../src/lib/core/compose.js')
    const cbc = createCbcJwt({ keysetFile: ks.file, env: {}, logLevel: 'silent' })
    cleanups.push(() => cbc.close())
    await cbc.start()
    const app = Fastify()
    await app.register(cbcJwt, { cbc, registry: false })
    app.get('/me', { onRequest: app.authenticate }, async (request) => request.auth?.kid)
    assert.equal((await app.inject({ url: '/me', headers: bearer() })).body, 'k-fastify')
    await app.close()
    assert.equal(cbc.ready(), true)
  })

  it('oversized token within the host server’s header limit → 401 too_large', async () => {
    const { app } = await appWith()
    const res = await app.inject({ url: '/me', headers: bearer({ padding: 'x'.repeat(9000) }) })
    assert.equal(res.statusCode, 401)
    assert.equal(res.json().reason, 'too_large')
  })
})

describe('cbc-jwt/fastify: app.authenticate in each form it is called', () => {
  /**
   * An app whose routes count the handler's runs, with an async onSend hook (so a reply is not
   * finished within the call that sends it) and the hook placed three ways: as a route hook,
   * wrapped to observe how it continued, and awaited from the user's own async hook.
   */
  async function countingApp() {
    const ran: string[] = []
    const continued: Array<'at once' | 'promise'> = []
    const { app } = await appWith({}, async (app) =>
      app.register(async (scope) => {
        scope.addHook('onSend', async (_request, _reply, payload) => payload)
        scope.get('/hook', { onRequest: app.authenticate }, async (request) => (ran.push('hook'), request.auth?.claims.sub))
        scope.get(
          '/observed',
          {
            onRequest(request, reply, done) {
              let doneAtOnce = false
              const returned = app.authenticate(request, reply, () => {
                doneAtOnce = true
                done()
              })
              // Never both: fastify would run the rest of the request twice. (A rejection at once
              // does neither: it answered, and fastify is not told to go on.)
              assert.ok(!(doneAtOnce && returned instanceof Promise))
              continued.push(returned instanceof Promise ? 'promise' : 'at once')
              return returned
            },
          },
          async (request) => (ran.push('observed'), request.auth?.claims.sub),
        )
        scope.get(
          '/own-hook',
          {
            async preHandler(request, reply) {
              await app.authenticate(request, reply)
            },
          },
          async (request) => (ran.push('own-hook'), request.auth?.claims.sub),
        )
        scope.get(
          '/scoped',
          { onRequest: [app.authenticate, app.requireScope('orders:read')] },
          async (request) => (ran.push('scoped'), request.auth?.claims.sub),
        )
      }),
    )
    return { app, ran, continued }
  }

  it('a cached token continues at once, a first ES256 check and every rejection answer the same in every form; a refused scope never reaches the handler', async () => {
    const { app, ran, continued } = await countingApp()
    const good = bearer({ sub: 'alice' })
    const forged = { authorization: `${good.authorization.slice(0, -8)}AAAAAAAA` }
    for (const url of ['/hook', '/observed', '/own-hook']) {
      const first = await app.inject({ url, headers: bearer({ sub: `first-${url}` }) }) // ES256, not cached: the threadpool
      assert.deepEqual([first.statusCode, first.body], [200, `first-${url}`], url)
      const repeat = await app.inject({ url, headers: good })
      assert.deepEqual([repeat.statusCode, repeat.body], [200, 'alice'], url)
      const missing = await app.inject({ url })
      assert.deepEqual([missing.statusCode, missing.json().reason], [401, 'missing'], url)
      const bad = await app.inject({ url, headers: forged })
      assert.deepEqual([bad.statusCode, bad.json().reason], [401, 'bad_signature'], url)
    }
    const lacking = bearer({ sub: 'carol', scope: 'profile:read' })
    for (let i = 0; i < 2; i++) assert.deepEqual((await app.inject({ url: '/scoped', headers: lacking })).statusCode, 403)
    assert.equal((await app.inject({ url: '/scoped', headers: bearer({ sub: 'dave', scope: 'orders:read' }) })).body, 'dave')
    assert.deepEqual(ran, ['hook', 'hook', 'observed', 'observed', 'own-hook', 'own-hook', 'scoped'], 'the handler ran for the accepted requests only')
    // /observed: first check (threadpool) → promise; cached repeat → at once; no token → at once; forged → threadpool.
    assert.deepEqual(continued, ['promise', 'at once', 'at once', 'promise'])
  })
})
