import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, it } from 'node:test'
import type { KeysetBackend } from '../../src/lib/backends/backend.js'
import { serviceConfigFromEnv } from '../../src/lib/config.js'
import { createLogger } from '../../src/server/logger.js'
import { createService, type Service } from '../../src/server/service.js'
import { makeKey, makeKeyset, signToken, validClaims } from '../support/keys.js'
import { parseExposition, series, valueOf } from '../support/metrics-text.js'

const key = makeKey('ES256', 'k-fwd')
const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function memoryBackend(text: string | undefined): KeysetBackend {
  return {
    kind: 'memory',
    location: 'memory',
    read: async () => {
      if (text === undefined) throw Object.assign(new Error('nothing yet'), { reason: 'not_found' })
      return { text, version: '1' }
    },
    write: async () => assert.fail('no writes'),
    close: async () => {},
  }
}

/**
 * Two ways in: fastify's `inject` (the routes), and real HTTP to the listening server, where
 * forward auth is answered before fastify's routing. Both must give the same answers.
 */
type Transport = 'inject' | 'http'
interface Asked {
  method?: string
  url: string
  headers?: Record<string, string | string[]>
  payload?: string
}
interface Answer {
  statusCode: number
  headers: http.IncomingHttpHeaders
  body: string
  json(): unknown
}

async function ask(s: Service, transport: Transport, req: Asked): Promise<Answer> {
  if (transport === 'inject') {
    const res = await s.app.inject({
      method: (req.method ?? 'GET') as 'GET',
      url: req.url,
      headers: req.headers as Record<string, string>,
      ...(req.payload !== undefined ? { payload: req.payload } : {}),
    })
    return { statusCode: res.statusCode, headers: res.headers as http.IncomingHttpHeaders, body: res.body, json: () => res.json() }
  }
  const { port } = s.app.server.address() as AddressInfo
  return new Promise((resolve, reject) => {
    const outgoing = http.request({ host: '127.0.0.1', port, method: req.method ?? 'GET', path: req.url, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (body += d))
      res.on('end', () => resolve({ statusCode: res.statusCode!, headers: res.headers, body, json: () => JSON.parse(body) }))
    })
    outgoing.on('error', reject)
    // An array is sent as one header line per value (two Authorization headers).
    for (const [name, value] of Object.entries(req.headers ?? {})) outgoing.setHeader(name, value)
    outgoing.end(req.payload)
  })
}

async function service(transport: Transport, loaded = true): Promise<Service> {
  const config = serviceConfigFromEnv({ CBC_JWT_LOG_LEVEL: 'silent' })
  const s = createService({ config, backend: memoryBackend(loaded ? JSON.stringify(makeKeyset([key])) : undefined), logger: createLogger('silent') })
  cleanups.push(() => s.close())
  if (transport === 'http') await s.app.listen({ port: 0, host: '127.0.0.1' })
  await s.keyring.start()
  return s
}

const bearer = (claims: Record<string, unknown> = {}) => `Bearer ${signToken(key, validClaims(claims))}`
const totalFailures = async (s: Service) =>
  series(parseExposition(await s.metrics.registry.metrics()), 'cbc_jwt_auth_failures_total').reduce((n, x) => n + x.value, 0)

for (const transport of ['inject', 'http'] as const)
  describe(`forward auth: /v1/auth and below (CONTRACT §7), through ${transport === 'inject' ? "fastify's inject (the routes)" : 'real HTTP (answered before fastify’s routing)'}`, () => {
    it('a valid token → 200, empty body, every identity header', async () => {
      const s = await service(transport)
      const claims = validClaims({ sub: 'alice', client_id: 'billing', scope: 'orders:read orders:write' })
      const authorization = `Bearer ${signToken(key, claims)}`
      const res = await ask(s, transport, { method: 'GET', url: '/v1/auth', headers: { authorization } })
      assert.equal(res.statusCode, 200)
      assert.equal(res.body, '')
      assert.equal(res.headers['x-auth-subject'], 'alice')
      assert.equal(res.headers['x-auth-client-id'], 'billing')
      assert.equal(res.headers['x-auth-scope'], 'orders:read orders:write')
      assert.equal(res.headers['x-auth-kid'], 'k-fwd')
      assert.equal(res.headers['x-auth-expires'], String(claims.exp))
      assert.equal(res.headers['x-auth-reason'], undefined)
      // The repeat is answered from the token cache, at once rather than after the threadpool: same answer.
      const repeat = await ask(s, transport, { method: 'GET', url: '/v1/auth', headers: { authorization } })
      assert.deepEqual([repeat.statusCode, repeat.body], [200, ''])
      for (const name of ['x-auth-subject', 'x-auth-client-id', 'x-auth-scope', 'x-auth-kid', 'x-auth-expires'])
        assert.equal(repeat.headers[name], res.headers[name], name)
      assert.equal(valueOf(parseExposition(await s.metrics.registry.metrics()), 'cbc_jwt_token_cache_hits_total'), 1)
    })

    it('any method on any path below /v1/auth (Envoy appends the original path): 200', async () => {
      const s = await service(transport)
      for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const) {
        for (const url of ['/v1/auth/', '/v1/auth/orders/42?expand=items', '/v1/auth/a/b/c/d']) {
          const res = await ask(s, transport, { method, url, headers: { authorization: bearer() } })
          assert.equal(res.statusCode, 200, `${method} ${url}`)
          assert.equal(res.headers['x-auth-kid'], 'k-fwd', `${method} ${url}`)
        }
      }
    })

    it('a request body of any type is ignored, never parsed (no 415, no 400)', async () => {
      const s = await service(transport)
      for (const [type, payload] of [
        ['application/xml', '<a/>'],
        ['application/json', '{not json'],
        ['text/plain', 'x'.repeat(100_000)],
      ] as const) {
        const res = await ask(s, transport, { method: 'POST', url: '/v1/auth/upload', headers: { authorization: bearer(), 'content-type': type }, payload })
        assert.equal(res.statusCode, 200, type)
      }
    })

    it('a rejected token → 401, WWW-Authenticate, the §2 body, X-Auth-Reason; counted', async () => {
      const s = await service(transport)
      const before = await totalFailures(s)
      const res = await ask(s, transport, {
        method: 'GET',
        url: '/v1/auth/x',
        headers: { authorization: bearer({ exp: Math.floor(Date.now() / 1000) - 3600 }) },
      })
      assert.equal(res.statusCode, 401)
      assert.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"')
      assert.equal(res.headers['x-auth-reason'], 'expired')
      assert.deepEqual(res.json(), { error: 'invalid_token', reason: 'expired' })
      assert.equal(res.headers['x-auth-subject'], undefined)
      assert.equal((await totalFailures(s)) - before, 1)
    })

    it('no token → 401 missing with the bare challenge', async () => {
      const s = await service(transport)
      const res = await ask(s, transport, { method: 'GET', url: '/v1/auth' })
      assert.equal(res.statusCode, 401)
      assert.equal(res.headers['www-authenticate'], 'Bearer')
      assert.equal(res.headers['x-auth-reason'], 'missing')
    })

    it('no keyset loaded yet → 503 not_ready, not counted', async () => {
      const s = await service(transport, false)
      const res = await ask(s, transport, { method: 'GET', url: '/v1/auth', headers: { authorization: bearer() } })
      assert.equal(res.statusCode, 503)
      assert.equal(res.headers['x-auth-reason'], 'not_ready')
      assert.equal(await totalFailures(s), 0)
    })

    it('a claim the token lacks is an absent header; client id falls back to azp', async () => {
      const s = await service(transport)
      const claims = validClaims({ sub: undefined, client_id: undefined, scope: undefined, azp: 'from-azp' })
      const authorization = `Bearer ${signToken(key, claims)}`
      const res = await ask(s, transport, { method: 'GET', url: '/v1/auth', headers: { authorization } })
      assert.equal(res.statusCode, 200)
      assert.equal(res.headers['x-auth-subject'], undefined)
      assert.equal(res.headers['x-auth-scope'], undefined)
      assert.equal(res.headers['x-auth-client-id'], 'from-azp')
    })

    it('attack: header injection through a claim (CR/LF, control characters) → the header is left out, never passed on', async () => {
      const s = await service(transport)
      const claims = validClaims({ sub: 'alice\r\nX-Admin: true', client_id: 'bob\u0000', azp: 'not-used', scope: ['orders:read', 'x\ny'] })
      const authorization = `Bearer ${signToken(key, claims)}`
      const res = await ask(s, transport, { method: 'GET', url: '/v1/auth', headers: { authorization } })
      assert.equal(res.statusCode, 200)
      assert.equal(res.headers['x-auth-subject'], undefined)
      assert.equal(res.headers['x-admin'], undefined)
      assert.equal(res.headers['x-auth-client-id'], undefined, 'an unsafe client_id is not replaced by azp')
      assert.equal(res.headers['x-auth-scope'], undefined)
      assert.equal(res.headers['x-auth-kid'], 'k-fwd')
    })

    it('attack: a tab, a DEL or a leading/trailing space in a claim → the header is left out, never trimmed or passed on', async () => {
      const s = await service(transport)
      for (const value of ['alice\tadmin', 'alice\u007fadmin', 'alice\u007f', ' alice', 'alice ', '\talice']) {
        const claims = validClaims({ sub: value, client_id: value })
        const res = await ask(s, transport, { url: '/v1/auth', headers: { authorization: `Bearer ${signToken(key, claims)}` } })
        assert.equal(res.statusCode, 200, JSON.stringify(value))
        assert.equal(res.headers['x-auth-subject'], undefined, JSON.stringify(value))
        assert.equal(res.headers['x-auth-client-id'], undefined, JSON.stringify(value))
      }
      // The control: a space inside a value is printable ASCII, and passes unchanged.
      const res = await ask(s, transport, { url: '/v1/auth', headers: { authorization: bearer({ sub: 'Alice Smith', client_id: 'billing eu' }) } })
      assert.deepEqual([res.headers['x-auth-subject'], res.headers['x-auth-client-id']], ['Alice Smith', 'billing eu'])
    })

    it('X-Auth-Expires is whole seconds, never later than the exp (a fractional exp is rounded down)', async () => {
      const s = await service(transport)
      const exp = Math.floor(Date.now() / 1000) + 600.75
      const res = await ask(s, transport, { url: '/v1/auth', headers: { authorization: bearer({ exp }) } })
      assert.equal(res.statusCode, 200)
      assert.equal(res.headers['x-auth-expires'], String(Math.floor(exp)))
    })

    it('a scope array is passed space-separated; non-ASCII values are left out', async () => {
      const s = await service(transport)
      const claims = validClaims({ scope: ['orders:read', 'orders:write'], sub: 'José' })
      const res = await ask(s, transport, { method: 'GET', url: '/v1/auth', headers: { authorization: `Bearer ${signToken(key, claims)}` } })
      assert.equal(res.headers['x-auth-scope'], 'orders:read orders:write')
      assert.equal(res.headers['x-auth-subject'], undefined)
    })

    it('attack: a scope array element holding a space ("orders:read admin") never becomes X-Auth-Scope: admin', async () => {
      const s = await service(transport)
      for (const scope of [['orders:read admin'], ['orders:read', 'admin '], 'orders:read  admin', ' admin', ['orders:read', 'a"b'], []]) {
        const res = await ask(s, transport, { url: '/v1/auth', headers: { authorization: bearer({ scope }) } })
        assert.equal(res.statusCode, 200)
        assert.equal(res.headers['x-auth-scope'], undefined, JSON.stringify(scope))
      }
    })

    describe('the gateway requires scopes: /v1/auth?scope=…', () => {
      const askScope = async (s: Service, url: string, scope: unknown) => ask(s, transport, { url, headers: { authorization: bearer({ scope }) } })

      it('a valid token without the scope → 403 insufficient_scope, X-Auth-Reason, no identity headers, not counted as a failure', async () => {
        const s = await service(transport)
        const res = await askScope(s, '/v1/auth?scope=orders:write', 'orders:read')
        assert.equal(res.statusCode, 403)
        assert.equal(res.headers['www-authenticate'], 'Bearer error="insufficient_scope"')
        assert.equal(res.headers['x-auth-reason'], 'insufficient_scope')
        assert.equal(res.headers['x-auth-subject'], undefined)
        assert.deepEqual(res.json(), { error: 'insufficient_scope', reason: 'insufficient_scope', scope: 'orders:write' })
        assert.equal(await totalFailures(s), 0)
      })

      it('several scopes, space-separated (a b) or repeated, are all required', async () => {
        const s = await service(transport)
        assert.equal((await askScope(s, '/v1/auth?scope=a%20b', 'a')).statusCode, 403)
        assert.equal((await askScope(s, '/v1/auth?scope=a+b', 'b')).statusCode, 403)
        const refused = await askScope(s, '/v1/auth?scope=a%20b', 'b')
        assert.deepEqual([refused.statusCode, refused.headers['x-auth-reason']], [403, 'insufficient_scope'])
        assert.equal((await askScope(s, '/v1/auth?scope=a&scope=b', 'a')).statusCode, 403)
        const granted = await askScope(s, '/v1/auth/orders/7?scope=a%20b', 'b a c')
        assert.equal(granted.statusCode, 200)
        assert.equal(granted.headers['x-auth-scope'], 'b a c')
        assert.equal((await askScope(s, '/v1/auth?scope=a&scope=b', ['a', 'b'])).statusCode, 200)
      })

      it('attack: ?scope=admin against scope ["orders:read admin"] → 403 (the odd element is not two scopes)', async () => {
        const s = await service(transport)
        assert.equal((await askScope(s, '/v1/auth?scope=admin', ['orders:read admin'])).statusCode, 403)
        assert.equal((await askScope(s, '/v1/auth?scope=admin', 'orders:read  admin')).statusCode, 403)
      })

      it('a scope query that is not scope-tokens fails closed: 403 for every token, nothing of it echoed', async () => {
        const s = await service(transport)
        const res = await askScope(s, '/v1/auth?scope=a%22b', 'a"b')
        assert.equal(res.statusCode, 403)
        assert.equal(res.headers['www-authenticate'], 'Bearer error="insufficient_scope"')
        // Two spaces, or an empty scope, is a gateway's typo: not read as `a b`, nor as no requirement.
        for (const url of ['/v1/auth?scope=a%20%20b', '/v1/auth?scope=%20a%20b', '/v1/auth?scope=', '/v1/auth?scope=a&scope=']) {
          const typo = await askScope(s, url, 'a b')
          assert.equal(typo.statusCode, 403, url)
          assert.equal(typo.headers['www-authenticate'], 'Bearer error="insufficient_scope"', url)
        }
        // The control: the same token meets the clean query.
        assert.equal((await askScope(s, '/v1/auth?scope=a%20b', 'a b')).statusCode, 200)
      })

      it('a query without a scope parameter requires nothing: a token with no scope claim is 200', async () => {
        const s = await service(transport)
        for (const url of ['/v1/auth?expand=items', '/v1/auth/orders/7?scopes=admin', '/v1/auth?']) {
          const res = await askScope(s, url, undefined)
          assert.equal(res.statusCode, 200, url)
          assert.equal(res.headers['x-auth-scope'], undefined, url)
        }
      })

      it('a rejected token is still 401 with its reason; no keyset is still 503', async () => {
        const s = await service(transport)
        const res = await ask(s, transport, { url: '/v1/auth?scope=a', headers: { authorization: 'Bearer x.y.z' } })
        assert.deepEqual([res.statusCode, res.headers['x-auth-reason']], [401, 'malformed'])
        const cold = await service(transport, false)
        assert.equal((await ask(cold, transport, { url: '/v1/auth?scope=a', headers: { authorization: bearer({ scope: 'a' }) } })).statusCode, 503)
      })
    })

    it('request smuggling: two Authorization headers → 401 malformed', async () => {
      const s = await service(transport)
      const res = await ask(s, transport, { method: 'GET', url: '/v1/auth', headers: { authorization: [bearer(), bearer()] } })
      assert.equal(res.statusCode, 401)
      assert.equal(res.headers['x-auth-reason'], 'malformed')
    })
    it('only /v1/auth and the paths below it: a lookalike path is not forward auth; an encoded spelling fastify decodes is', async () => {
      const s = await service(transport)
      for (const url of ['/v1/authx', '/v1/auth-raw', '/v1/authorize']) {
        const res = await ask(s, transport, { url, headers: { authorization: bearer() } })
        assert.equal(res.statusCode, 404, url)
        assert.equal(res.headers['x-auth-kid'], undefined, url)
      }
      const encoded = await ask(s, transport, { url: '/v1/%61uth/x', headers: { authorization: bearer() } })
      assert.equal(encoded.statusCode, 200)
      assert.equal(encoded.headers['x-auth-kid'], 'k-fwd')
    })

    it('a 200 has an empty body with Content-Length 0 (no chunked encoding) and Cache-Control no-store', async () => {
      const s = await service(transport)
      const res = await ask(s, transport, { url: '/v1/auth', headers: { authorization: bearer() } })
      assert.equal(res.statusCode, 200)
      assert.equal(res.headers['content-length'], '0')
      assert.equal(res.headers['transfer-encoding'], undefined)
      assert.equal(res.headers['cache-control'], 'no-store')
    })
  })

describe('forward auth over HTTP is answered on the server, before fastify', () => {
  it('no fastify hook runs for /v1/auth (its request, reply and routing are skipped); other paths still go through fastify', async () => {
    const config = serviceConfigFromEnv({ CBC_JWT_LOG_LEVEL: 'silent' })
    const s = createService({ config, backend: memoryBackend(JSON.stringify(makeKeyset([key]))), logger: createLogger('silent') })
    cleanups.push(() => s.close())
    const seen: string[] = []
    s.app.addHook('onRequest', (request, _reply, done) => {
      seen.push(request.url)
      done()
    })
    await s.app.listen({ port: 0, host: '127.0.0.1' })
    await s.keyring.start()
    assert.equal((await ask(s, 'http', { url: '/v1/auth/orders?x=1', headers: { authorization: bearer() } })).statusCode, 200)
    assert.equal((await ask(s, 'http', { url: '/v1/auth' })).statusCode, 401)
    // The gateway's scope query on the bare path (`/v1/auth?scope=…`, as the nginx configuration asks).
    assert.equal((await ask(s, 'http', { url: '/v1/auth?scope=read', headers: { authorization: bearer() } })).statusCode, 200)
    assert.equal((await ask(s, 'http', { url: '/healthz' })).statusCode, 200)
    assert.deepEqual(seen, ['/healthz'])
  })
})

describe("Authorization headers past Node's header cap are never left unseen (real HTTP)", () => {
  // Node's parser keeps only the first ~1000 headers of a request by default and drops the rest
  // silently (Node 20, 22): a second Authorization past that point would leave the first one
  // picked. Node 24 refuses such a request itself (431). Either way, no token is picked.
  const filler = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`x-filler-${i}`, 'a']))
  const refused = (res: Awaited<ReturnType<typeof ask>>) => {
    if (res.statusCode === 431) return
    assert.equal(res.statusCode, 401)
    assert.equal((res.json() as { reason: string }).reason, 'malformed')
  }
  for (const url of ['/v1/auth', '/v1/whoami'])
    it(`attack: ${url} with 1100 headers, then one or two Authorization headers → 401 malformed (or 431 from Node), none picked`, async () => {
      const s = await service('http')
      refused(await ask(s, 'http', { url, headers: { ...filler(1100), authorization: [bearer(), 'Bearer forged.forged.forged'] } }))
      refused(await ask(s, 'http', { url, headers: { ...filler(1100), authorization: bearer() } }))
      // Well below the cap, a token after many headers is read as usual.
      assert.equal((await ask(s, 'http', { url, headers: { ...filler(900), authorization: bearer() } })).statusCode, 200)
    })
})
