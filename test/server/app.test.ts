import assert from 'node:assert/strict'
import { createHook } from 'node:async_hooks'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, it } from 'node:test'
import type { KeysetBackend } from '../../src/lib/backends/backend.js'
import { createFileBackend } from '../../src/lib/backends/file-backend.js'
import { DEFAULTS, type ServiceConfig } from '../../src/lib/config.js'
import { createKeyring } from '../../src/lib/keyring/keyring.js'
import { createLogger } from '../../src/server/logger.js'
import { createService, type Service } from '../../src/server/service.js'
import fc from 'fast-check'
import { makeKey, makeKeyset, signToken, validClaims } from '../support/keys.js'
import { fuzzParameters } from '../support/fuzz.js'
import { forge } from '../lib/verifier/fixtures.js'
import { waitFor } from '../support/wait.js'

const COOLDOWN_SECONDS = 10

function configFor(file: string): ServiceConfig {
  return {
    ...DEFAULTS,
    port: 0,
    host: '127.0.0.1',
    backend: 'file',
    keysetFile: file,
    // Long: no interval read may happen during a test, so every read is accounted for.
    refreshIntervalSeconds: 3600,
    unknownKidCooldownSeconds: COOLDOWN_SECONDS,
    issuer: 'cbc-omega2',
    audience: 'cbc-api',
    clockToleranceSeconds: 30,
    maxTokenBytes: 8192,
    maxTokenTtlSeconds: 86400,
    logLevel: 'silent',
    trustProxy: false,
    successLogSample: 0,
  }
}

/**
 * A real file backend whose reads are counted. Without `watch`, so that the only reads are
 * the first load and the unknown-kid re-reads (no change event can explain a read away).
 */
function countingBackend(file: string): KeysetBackend & { reads: number } {
  const inner = createFileBackend(file)
  const counted = {
    kind: inner.kind,
    location: inner.location,
    reads: 0,
    read() {
      counted.reads++
      return inner.read()
    },
    write: inner.write.bind(inner),
    close: inner.close.bind(inner),
  }
  return counted
}

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

function tempKeysetFile(doc: unknown): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-app-'))
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'keyset.json')
  fs.writeFileSync(file, JSON.stringify(doc))
  return file
}

function serviceOn(file: string, backend: KeysetBackend, now?: () => number, config: Partial<ServiceConfig> = {}): Service {
  const service = createService({ config: { ...configFor(file), ...config }, backend, logger: createLogger('silent'), ...(now ? { now } : {}) })
  cleanups.push(() => service.close())
  return service
}

const whoami = (service: Service, token: string) => service.app.inject({ method: 'GET', url: '/v1/whoami', headers: { authorization: `Bearer ${token}` } })

describe('unknown kid: one immediate re-read, behind a cooldown', () => {
  it('a token of a key added after the load is accepted on the first try, after exactly one re-read', async () => {
    const a = makeKey('ES256', 'k-a')
    const b = makeKey('ES256', 'k-b')
    const file = tempKeysetFile(makeKeyset([a]))
    const backend = countingBackend(file)
    const service = serviceOn(file, backend)
    await service.keyring.start()
    assert.equal(backend.reads, 1)

    // Another replica (or the CLI) staged k-b; this one has not looked yet.
    fs.writeFileSync(file, JSON.stringify(makeKeyset([a, b])))
    const res = await whoami(service, signToken(b, validClaims()))
    assert.equal(res.statusCode, 200, res.body)
    assert.equal(res.json().kid, 'k-b')
    assert.equal(backend.reads, 2)
  })

  it('a token of a known key causes no read', async () => {
    const a = makeKey('ES256', 'k-a')
    const file = tempKeysetFile(makeKeyset([a]))
    const backend = countingBackend(file)
    const service = serviceOn(file, backend)
    await service.keyring.start()
    for (let i = 0; i < 20; i++) assert.equal((await whoami(service, signToken(a, validClaims()))).statusCode, 200)
    assert.equal(backend.reads, 1)
  })

  it('a flood of 200 forged kids costs one backend read per cooldown', async () => {
    const a = makeKey('ES256', 'k-a')
    const attacker = makeKey('ES256', 'k-attacker')
    const file = tempKeysetFile(makeKeyset([a]))
    const backend = countingBackend(file)
    let offset = 0
    const service = serviceOn(file, backend, () => Date.now() + offset)
    await service.keyring.start()
    const readsAfterLoad = backend.reads

    let n = 0
    const wave = async (size: number) => {
      const responses = await Promise.all(Array.from({ length: size }, () => whoami(service, signToken(attacker, validClaims(), { kid: `forged-${n++}` }))))
      for (const res of responses) assert.equal(res.json().reason, 'unknown_kid')
    }
    // Four waves one after another: single-flight alone would allow a read per wave.
    for (let i = 0; i < 4; i++) await wave(50)
    assert.equal(n, 200)
    assert.equal(backend.reads - readsAfterLoad, 1)

    // Once the cooldown has passed, the next flood costs one more read, and only one.
    offset = (COOLDOWN_SECONDS + 1) * 1000
    for (let i = 0; i < 2; i++) await wave(50)
    assert.equal(backend.reads - readsAfterLoad, 2)
  })

  it('a kid outside the kid grammar triggers no re-read at all', async () => {
    const a = makeKey('ES256', 'k-a')
    const file = tempKeysetFile(makeKeyset([a]))
    const backend = countingBackend(file)
    const service = serviceOn(file, backend)
    await service.keyring.start()
    const res = await whoami(service, signToken(a, validClaims(), { kid: 'no spaces allowed' }))
    assert.equal(res.json().reason, 'unknown_kid')
    assert.equal(backend.reads, 1)
  })
})

describe('close()', () => {
  const TRACKED = new Set(['Timeout', 'FSEVENTWRAP', 'TCPSERVERWRAP', 'TCPWRAP', 'STATWATCHER'])

  it('leaves no timer, watcher or socket behind (unref’d ones included)', async () => {
    const a = makeKey('ES256', 'k-a')
    const file = tempKeysetFile(makeKeyset([a]))
    // async_hooks sees unref'd timers and non-persistent watchers, which
    // process.getActiveResourcesInfo() does not list.
    const live = new Map<number, string>()
    const hook = createHook({
      init(id, type) {
        if (TRACKED.has(type)) live.set(id, type)
      },
      destroy(id) {
        live.delete(id)
      },
    }).enable()
    try {
      const backend = createFileBackend(file)
      let reads = 0
      const read = backend.read.bind(backend)
      backend.read = () => {
        reads++
        return read()
      }
      const service = createService({ config: configFor(file), backend, logger: createLogger('silent') })
      const address = await service.start()
      const res = await service.app.inject({ method: 'GET', url: '/readyz' })
      assert.equal(res.statusCode, 200)
      assert.match(address, /^http:\/\/127\.0\.0\.1:\d+$/)
      const types = [...live.values()]
      assert.ok(types.includes('FSEVENTWRAP') && types.includes('Timeout') && types.includes('TCPSERVERWRAP'), `while running: ${types.join(', ')}`)

      // The watcher works while the service runs …
      fs.writeFileSync(file, JSON.stringify(makeKeyset([a, makeKey('ES256', 'k-b')])))
      await waitFor(() => service.keyring.keyset()?.keys.has('k-b'), { what: 'the change event to reload' })

      await service.close()
      // Destroy hooks are emitted asynchronously (late on a loaded machine): poll, with a
      // deadline, what was alive when close() resolved (the wait's own timers are not in it).
      // A timer or watcher that close() really left behind never goes, and fails here.
      const atClose = [...live.keys()]
      const left = () => atClose.filter((id) => live.has(id)).map((id) => live.get(id))
      await waitFor(() => left().length === 0, { timeoutMs: 5000, what: 'every resource alive at close() to be destroyed' }).catch(() => {})
      assert.deepEqual(left(), [], 'resources left after close()')

      // … and after close() nothing reacts any more. A twin keyring left open on the same file
      // shows how long "nothing" has to last: by the time it has read the change, a watch the
      // closed service had left would have read it too.
      const readsAtClose = reads
      const twin = createKeyring({ backend: createFileBackend(file), logger: { info() {}, warn() {}, error() {} } })
      await twin.start()
      fs.writeFileSync(file, JSON.stringify(makeKeyset([a, makeKey('ES256', 'k-c')])))
      await waitFor(() => twin.keyset()?.keys.has('k-c'), { what: 'the twin to read the change' })
      await twin.close()
      assert.equal(reads, readsAtClose)
    } finally {
      hook.disable()
    }
  })
})

describe('request logging', () => {
  it('a request that fails with a 5xx is logged once, with its request id and the error, never the Authorization header', async () => {
    const file = tempKeysetFile(makeKeyset([makeKey('ES256', 'k-a')]))
    const lines: Array<Record<string, unknown>> = []
    const sink = { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) }
    const service = createService({ config: configFor(file), backend: createFileBackend(file), logger: createLogger('info', sink) })
    cleanups.push(() => service.close())
    service.app.get('/boom', async () => {
      throw new Error('the disk caught fire')
    })
    const res = await service.app.inject({ method: 'GET', url: '/boom', headers: { authorization: 'Bearer secret-token-value' } })
    assert.equal(res.statusCode, 500)
    // The cause is for the log, not for the client.
    assert.deepEqual(JSON.parse(res.body), { error: 'internal_error', message: 'internal error' })
    const failed = lines.filter((l) => l.msg === 'request failed')
    assert.equal(failed.length, 1)
    assert.match(String(failed[0]!.reqId), /^req-/)
    assert.equal((failed[0]!.err as { message: string }).message, 'the disk caught fire')
    assert.ok(!JSON.stringify(lines).includes('secret-token-value'), 'the token reached the log')
  })
})

describe('HTTP server settings', () => {
  it('keeps idle connections longer than a load balancer does (72 s > 60 s); reads headers up to 64 KiB (a huge token is 401 too_large)', async () => {
    const file = tempKeysetFile(makeKeyset([makeKey('ES256', 'k-a')]))
    const service = serviceOn(file, createFileBackend(file))
    const address = await service.start()
    const res = await fetch(`${address}/healthz`)
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('keep-alive'), 'timeout=72')
    assert.equal(service.app.server.keepAliveTimeout, 72_000)
    assert.equal((service.app.server as { maxHeaderSize?: number }).maxHeaderSize, 64 * 1024)
    // §2: a token far over CBC_JWT_MAX_TOKEN_BYTES, in headers near 64 KiB, is answered by
    // cbc-jwt (401 too_large, counted), never 431 from the HTTP layer.
    const huge = await fetch(`${address}/v1/whoami`, { headers: { authorization: `Bearer ${'a'.repeat(60_000)}`, 'x-other': 'b'.repeat(4000) } })
    assert.equal(huge.status, 401)
    assert.deepEqual(await huge.json(), { error: 'invalid_token', reason: 'too_large' })
    assert.match(await (await fetch(`${address}/metrics`)).text(), /^cbc_jwt_auth_failures_total\{reason="too_large"\} 1$/m)
  })
})

describe('/readyz', () => {
  it('is 503 once every key of the loaded keyset is past its not_after (keys_loaded 0, every token refused), 200 before', async () => {
    const t0 = Date.parse('2026-11-25T21:16:00Z')
    let clock = t0
    const key = makeKey('ES256', 'k-a')
    const file = tempKeysetFile(makeKeyset([{ key, opts: { notAfter: new Date(t0 + 60_000) } }]))
    const service = serviceOn(file, createFileBackend(file), () => clock)
    await service.start()
    assert.equal((await service.app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200)
    clock = t0 + 60_000
    const res = await service.app.inject({ method: 'GET', url: '/readyz' })
    assert.equal(res.statusCode, 503)
    assert.deepEqual(res.json(), { status: 'not_ready', reason: 'no key of the keyset verifies: every key is past its not_after' })
    assert.match(await service.metrics.registry.metrics(), /^cbc_jwt_keys_loaded 0$/m)
  })
})

describe('/v1/whoami body', () => {
  it('attack: a signed token whose sub nests 15 000 deep (CBC_JWT_MAX_TOKEN_BYTES 60 KiB) is 401 malformed, not a 500 from the serializer', async () => {
    const key = makeKey('HS256', 'k-deep')
    const file = tempKeysetFile(makeKeyset([key]))
    const service = serviceOn(file, createFileBackend(file), undefined, { maxTokenBytes: 60 * 1024 })
    await service.keyring.start()
    // Written as text: JSON.stringify of such a value overflows the stack, as the serializer did.
    const depth = 15_000
    const payload = JSON.stringify(validClaims({ sub: 0 })).replace('"sub":0', `"sub":${'['.repeat(depth)}${']'.repeat(depth)}`)
    const token = forge({ header: { alg: 'HS256', kid: key.kid }, payload, alg: 'HS256', signingKey: key.signingKey })
    const res = await whoami(service, token)
    assert.deepEqual([res.statusCode, res.json()], [401, { error: 'invalid_token', reason: 'malformed' }])
  })

  it('is, byte for byte, JSON.stringify of { sub, client_id, scope, kid, iat, exp } for any JSON the token holds (property)', async () => {
    const key = makeKey('HS256', 'k-body')
    const file = tempKeysetFile(makeKeyset([key]))
    const service = serviceOn(file, createFileBackend(file))
    await service.keyring.start()
    const claim = fc.option(fc.jsonValue({ maxDepth: 2 }), { nil: undefined })
    await fc.assert(
      fc.asyncProperty(claim, claim, claim, async (sub, clientId, scope) => {
        const claims = validClaims({ sub, client_id: clientId, scope })
        for (const [name, value] of Object.entries({ sub, client_id: clientId, scope })) if (value === undefined) delete claims[name]
        const res = await whoami(service, signToken(key, claims))
        assert.equal(res.statusCode, 200, res.body)
        const expected = { sub: sub ?? null, client_id: clientId ?? null, scope: scope ?? null, kid: 'k-body', iat: claims.iat, exp: claims.exp }
        assert.equal(res.body, JSON.stringify(expected))
        assert.equal(res.headers['cache-control'], 'no-store')
      }),
      fuzzParameters(150),
    )
  })
})
