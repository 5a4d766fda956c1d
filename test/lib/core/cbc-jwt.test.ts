import assert from 'node:assert/strict'
import { afterEach, describe, it } from 'node:test'
import { Registry, register as defaultRegistry } from 'prom-client'
import { createCbcJwt } from '../../../src/lib/core/compose.js'
import { ConfigError, ERROR_CODES } from '../../../src/lib/errors.js'
import { AUTH_FAILURE_REASONS } from '../../../src/lib/reasons.js'
import { MAX_CLAIMS_DEPTH } from '../../../src/lib/verifier/claims-cost.js'
import { makeKey, makeKeyset, signToken, validClaims } from '../../support/keys.js'
import { parseExposition, valueOf } from '../../support/metrics-text.js'
import { coreOn, tempKeyset } from './fixtures.js'

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function setup(keys = [makeKey('ES256', 'k-a')], options = {}) {
  const ks = tempKeyset(makeKeyset(keys))
  cleanups.push(ks.cleanup)
  const parts = coreOn(ks.file, options)
  cleanups.push(() => parts.cbc.close())
  return { ...parts, ks, keys }
}

/**
 * A backend in memory that counts its reads: `text()` is read at each one (a test changes the
 * keyset by changing what it returns). It has no watch, so a re-read is the only way news arrives
 * before the interval.
 */
function countingCbc(text: () => string) {
  const counted = { reads: 0 }
  const cbc = createCbcJwt({
    env: {},
    logLevel: 'silent',
    backend: {
      kind: 'memory',
      location: 'memory',
      read: async () => {
        counted.reads++
        const current = text()
        return { text: current, version: String(current.length) }
      },
      write: async () => assert.fail(),
      close: async () => {},
    },
  })
  cleanups.push(() => cbc.close())
  return { cbc, counted }
}

const failures = async (parts: { metrics: { registry: Registry } }, reason: string) =>
  valueOf(parseExposition(await parts.metrics.registry.metrics()), 'cbc_jwt_auth_failures_total', { reason })

describe('createCbcJwt: authenticate', () => {
  it('a valid token → ok with kid and claims', async () => {
    const { cbc, keys } = setup()
    await cbc.start()
    const result = await cbc.authenticate(`Bearer ${signToken(keys[0]!, validClaims({ sub: 'alice' }))}`)
    assert.equal(result.ok, true)
    assert.equal(result.ok && result.kid, 'k-a')
    assert.equal(result.ok && result.claims.sub, 'alice')
  })

  it('a rejection is ready to send: 401, WWW-Authenticate, JSON body; counted once; logged without the token', async () => {
    const parts = setup()
    await parts.cbc.start()
    const token = signToken(parts.keys[0]!, validClaims({ exp: Math.floor(Date.now() / 1000) - 3600 }))
    const result = await parts.cbc.authenticate(`Bearer ${token}`, { remoteAddress: '192.0.2.7' })
    assert.deepEqual(
      { ...result },
      {
        ok: false,
        reason: 'expired',
        status: 401,
        headers: { 'www-authenticate': 'Bearer error="invalid_token"', 'cache-control': 'no-store', 'content-type': 'application/json; charset=utf-8' },
        body: { error: 'invalid_token', reason: 'expired' },
      },
    )
    assert.equal(await failures(parts, 'expired'), 1)
    const line = parts.lines.find((l) => l.event === 'auth_rejected')
    assert.deepEqual(line, {
      level: 'warn',
      event: 'auth_rejected',
      reason: 'expired',
      kid: 'k-a',
      client_id: 'client-1',
      remote_addr: '192.0.2.7',
      msg: 'token rejected',
    })
    assert.ok(!JSON.stringify(parts.lines).includes(token))
  })

  it('no header → 401 with the bare Bearer challenge, reason missing', async () => {
    const parts = setup()
    await parts.cbc.start()
    const result = await parts.cbc.authenticate(undefined)
    assert.equal(!result.ok && result.headers['www-authenticate'], 'Bearer')
    assert.equal(!result.ok && result.reason, 'missing')
    assert.equal(await failures(parts, 'missing'), 1)
  })

  // The Fetch API's `request.headers.get('authorization')` (Node's Request, Hono, Next.js)
  // answers null for no header: a 401 like any missing token, never a TypeError out of authenticate.
  it('no header as the Fetch API gives it (null) → 401 missing, counted', async () => {
    const parts = setup()
    await parts.cbc.start()
    const result = await parts.cbc.authenticate(new Headers().get('authorization'))
    assert.equal(!result.ok && result.status, 401)
    assert.equal(!result.ok && result.reason, 'missing')
    assert.equal(await failures(parts, 'missing'), 1)
  })

  it('two Authorization values → 401 malformed, counted', async () => {
    const parts = setup()
    await parts.cbc.start()
    const good = `Bearer ${signToken(parts.keys[0]!, validClaims())}`
    const result = await parts.cbc.authenticate([good, good])
    assert.equal(!result.ok && result.reason, 'malformed')
    assert.equal(await failures(parts, 'malformed'), 1)
  })

  it('before the first keyset: 503 not_ready whatever the token, and nothing counted', async () => {
    const parts = coreOn('/nonexistent/cbc-jwt/keyset.json')
    cleanups.push(() => parts.cbc.close())
    await parts.cbc.start() // a failed first read does not throw
    assert.equal(parts.cbc.ready(), false)
    for (const header of [undefined, 'Basic x', 'Bearer a.b.c']) {
      const result = await parts.cbc.authenticate(header)
      assert.equal(!result.ok && result.status, 503)
      assert.deepEqual(!result.ok && result.body, { error: 'temporarily_unavailable', reason: 'not_ready' })
    }
    for (const reason of AUTH_FAILURE_REASONS) assert.equal(await failures(parts, reason), 0, reason)
  })

  it('unknown kid: one re-read of the backend, and the new key is accepted at once', async () => {
    const a = makeKey('ES256', 'k-a')
    const b = makeKey('ES256', 'k-b')
    const { cbc, ks } = setup([a])
    await cbc.start()
    ks.write(makeKeyset([a, b]))
    const result = await cbc.authenticate(`Bearer ${signToken(b, validClaims())}`)
    assert.equal(result.ok && result.kid, 'k-b')
  })
})

describe('createCbcJwt: a flood of leaked-key tokens does not hold the unknown-kid re-read', () => {
  it('a retired kid (past not_after) triggers no re-read; the replacement key, written next, is read at once', async () => {
    const current = makeKey('ES256', 'k-current')
    const leaked = makeKey('ES256', 'k-leaked')
    const replacement = makeKey('ES256', 'k-replacement')
    let text = JSON.stringify(makeKeyset([current, { key: leaked, opts: { notAfter: new Date(Date.now() + 300) } }]))
    // No watch: the re-read behind the cooldown is the only way a new key arrives before the interval.
    const { cbc, counted } = countingCbc(() => text)
    await cbc.start()
    await new Promise((resolve) => setTimeout(resolve, 400)) // the leaked key is past its not_after now
    for (let i = 0; i < 5; i++) {
      const r = await cbc.authenticate(`Bearer ${signToken(leaked, validClaims())}`)
      assert.equal(!r.ok && r.reason, 'unknown_kid')
    }
    assert.equal(counted.reads, 1, 'no re-read for a kid the keyset retired')
    text = JSON.stringify(makeKeyset([replacement, current]))
    const fresh = await cbc.authenticate(`Bearer ${signToken(replacement, validClaims())}`)
    assert.equal(fresh.ok && fresh.kid, 'k-replacement', 'the cooldown was still free for the new key')
    assert.equal(counted.reads, 2)
  })

  it("another issuer's token is bad_issuer and triggers no re-read, whatever kid it names", async () => {
    const current = makeKey('ES256', 'k-current')
    const { cbc, counted } = countingCbc(() => JSON.stringify(makeKeyset([current])))
    await cbc.start()
    for (const kid of ['k-stranger', 'k-current']) {
      const r = await cbc.authenticate(`Bearer ${signToken(makeKey('ES256', kid), validClaims({ iss: 'https://idp.example.com' }))}`)
      assert.equal(!r.ok && r.reason, 'bad_issuer', kid)
    }
    assert.equal(counted.reads, 1, 'no re-read for a token of another issuer')
  })
})

describe('createCbcJwt: sign', () => {
  it('signs with the current key; the token verifies; iss/aud from the configuration', async () => {
    const { cbc } = setup([makeKey('ES256', 'k-a')], { issuer: 'iss-x', audience: 'aud-x' })
    await cbc.start()
    const token = await cbc.sign({ sub: 'bob', scope: 'orders:read' }, { ttl: '10m' })
    const header = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString())
    assert.deepEqual([header.alg, header.kid], ['ES256', 'k-a'])
    const result = await cbc.authenticate(`Bearer ${token}`)
    assert.ok(result.ok)
    assert.equal(result.claims.iss, 'iss-x')
    assert.equal(result.claims.aud, 'aud-x')
    assert.equal(result.claims.exp - result.claims.iat, 600)
  })

  it('iss/aud given as undefined are not given: the configuration fills them and the token verifies', async () => {
    const { cbc } = setup([makeKey('ES256', 'k-a')], { issuer: 'iss-x', audience: 'aud-x' })
    await cbc.start()
    // `{ aud: options.aud }` with no audience chosen: a token without iss/aud would verify nowhere.
    const token = await cbc.sign({ sub: 'bob', iss: undefined, aud: undefined, jti: undefined })
    const result = await cbc.authenticate(`Bearer ${token}`)
    assert.ok(result.ok, JSON.stringify(result))
    assert.deepEqual([result.claims.iss, result.claims.aud, typeof result.claims.jti], ['iss-x', 'aud-x', 'string'])
    const given = await cbc.authenticate(`Bearer ${await cbc.sign({ sub: 'bob', aud: ['other', 'aud-x'] })}`)
    assert.ok(given.ok)
    assert.deepEqual(given.claims.aud, ['other', 'aud-x'])
  })

  it('refuses a scope that is not RFC 6749 scope-tokens: an array element with a space is never signed', async () => {
    const { cbc } = setup([makeKey('ES256', 'k-a')])
    await cbc.start()
    for (const scope of [['orders:read admin'], ['a', 'b c'], 'a  b', ' a', ['a"b'], [], [1]]) {
      await assert.rejects(
        cbc.sign({ sub: 'bob', scope }),
        (err: Error) => err instanceof TypeError && /claims\.scope must be RFC 6749 scope-tokens/.test(err.message),
        JSON.stringify(scope),
      )
    }
    assert.ok(await cbc.sign({ sub: 'bob', scope: ['orders:read', 'admin'] }))
    assert.ok(await cbc.sign({ sub: 'bob', scope: 'orders:read admin' }))
  })

  it('signs claims as deep as the verifier accepts, and refuses one level more: it never signs a token it would answer malformed', async () => {
    const { cbc } = setup([makeKey('ES256', 'k-a')])
    await cbc.start()
    // The claims object is level 1; `deep` holds the rest.
    const nesting = (levels: number) => {
      let value: unknown[] = []
      for (let d = 2; d < levels; d++) value = [value]
      return { sub: 'bob', deep: value }
    }
    const deepest = await cbc.authenticate(`Bearer ${await cbc.sign(nesting(MAX_CLAIMS_DEPTH))}`)
    assert.ok(deepest.ok, JSON.stringify(deepest))
    const claims = nesting(MAX_CLAIMS_DEPTH + 1)
    await assert.rejects(cbc.sign(claims), (err: Error) => err instanceof TypeError && /claims nest deeper than 128 levels/.test(err.message))
    assert.ok(!Object.isFrozen(claims.deep), "the caller's claims are left as they were")
  })

  it('follows a rotation with no restart', async () => {
    const a = makeKey('ES256', 'k-a')
    const b = makeKey('HS256', 'k-b')
    const { cbc, keyring, ks } = setup([a])
    await cbc.start()
    ks.write(makeKeyset([b, a]))
    await keyring.refresh('change')
    const token = await cbc.sign({ sub: 'bob' })
    assert.equal(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).kid, 'k-b')
  })

  it('refuses a ttl over the max token TTL with ERR_REFUSED; the default max is 24h', async () => {
    const { cbc } = setup()
    await cbc.start()
    await assert.rejects(cbc.sign({ sub: 'x' }, { ttl: '25h' }), (err: any) => err.code === ERROR_CODES.REFUSED && /max token TTL 1d/.test(err.message))
    assert.ok(await cbc.sign({ sub: 'x' }, { ttl: 24 * 3600 }))
    // Just over: the message must not read "ttl 1d is longer than the max token TTL 1d".
    for (const ttl of [86_401, '24h1s', '24h30m']) {
      await assert.rejects(
        cbc.sign({ sub: 'x' }, { ttl }),
        (err: any) => err.code === ERROR_CODES.REFUSED && !/ttl 1d is longer/.test(err.message),
        String(ttl),
      )
    }
    await assert.rejects(cbc.sign({ sub: 'x' }, { ttl: 86_401 }), /ttl 86401s is longer than the max token TTL 1d/)
  })

  it('CBC_JWT_MAX_TOKEN_TTL lowers the maximum', async () => {
    const ks = tempKeyset(makeKeyset([makeKey('ES256', 'k-a')]))
    cleanups.push(ks.cleanup)
    const cbc = createCbcJwt({ env: { CBC_JWT_KEYSET_FILE: ks.file, CBC_JWT_MAX_TOKEN_TTL: '1h', CBC_JWT_LOG_LEVEL: 'silent' } })
    cleanups.push(() => cbc.close())
    await cbc.start()
    assert.equal(cbc.config.maxTokenTtlSeconds, 3600)
    await assert.rejects(cbc.sign({ sub: 'x' }, { ttl: '61m' }), { code: 'ERR_REFUSED' })
  })

  it('misuse: a bad ttl is a TypeError/RangeError, exp in the claims a TypeError', async () => {
    const { cbc } = setup()
    await cbc.start()
    await assert.rejects(cbc.sign({ sub: 'x' }, { ttl: 'soon' }), TypeError)
    await assert.rejects(cbc.sign({ sub: 'x' }, { ttl: 0 }), RangeError)
    await assert.rejects(cbc.sign({ sub: 'x', exp: 1 }), TypeError)
    // The message names the value given: JSON.stringify said "got null" for NaN and Infinity.
    await assert.rejects(cbc.sign({ sub: 'x' }, { ttl: Number.POSITIVE_INFINITY }), {
      name: 'RangeError',
      message: /a finite number of seconds, got Infinity$/,
    })
    await assert.rejects(cbc.sign({ sub: 'x' }, { ttl: Number.NaN }), { name: 'TypeError', message: /got NaN$/ })
    await assert.rejects(cbc.sign({ sub: 'x' }, { ttl: -5 }), { name: 'RangeError', message: /at least 1 second, got -5$/ })
    await assert.rejects(cbc.sign({ sub: 'x' }, { ttl: '25h' }), {
      code: 'ERR_REFUSED',
      message: /^sign\(\): ttl 25h \(1d1h\) is longer than the max token TTL 1d/,
    })
    // A string of digits (an environment variable passed on) is not seconds: the message says what to write.
    await assert.rejects(cbc.sign({ sub: 'x' }, { ttl: '900' }), {
      name: 'TypeError',
      message: /got "900" \(a string of digits: give 900 as a number, or "900s"\)$/,
    })
  })

  it('before the first keyset: ERR_NOT_READY', async () => {
    const parts = coreOn('/nonexistent/cbc-jwt/keyset.json')
    cleanups.push(() => parts.cbc.close())
    await assert.rejects(parts.cbc.sign({ sub: 'x' }), { code: 'ERR_NOT_READY' })
  })
})

describe('createCbcJwt: the logger option, checked up front', () => {
  it("logger: false (pino's and fastify's way to silence) starts, authenticates and rejects without a line", async () => {
    const writes: string[] = []
    const write = process.stdout.write
    // The default logger's lines start with {"level": caught here; the test runner's own writes pass.
    process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) =>
      String(chunk).startsWith('{"level"')
        ? (writes.push(String(chunk)), true)
        : (write.call(process.stdout, chunk, ...(rest as [])) as boolean)) as typeof process.stdout.write
    try {
      const { cbc, keys } = setup([makeKey('ES256', 'k-a')], { logger: false })
      await cbc.start()
      assert.equal(cbc.ready(), true)
      assert.equal((await cbc.authenticate(`Bearer ${signToken(keys[0]!, validClaims())}`)).ok, true)
      assert.equal((await cbc.authenticate('Bearer x.y.z')).ok, false)
    } finally {
      process.stdout.write = write
    }
    assert.deepEqual(writes, [])
  })

  it('any other logger that is not one: a TypeError at construction naming the option, not a crash at start()', () => {
    for (const logger of [true, 'info', null, {}, { info() {}, warn() {} }, () => {}]) {
      assert.throws(
        () => createCbcJwt({ logger: logger as never, keysetFile: '/nonexistent/keyset.json', env: {} }),
        (err: Error) =>
          err instanceof TypeError && /createCbcJwt\(\{ logger \}\): logger must be false or an object with info, warn and error methods/.test(err.message),
        JSON.stringify(logger),
      )
    }
  })
})

describe('createCbcJwt: configuration, metrics, key views', () => {
  it('no keyset configured → ConfigError naming the variable, each backend and the option', () => {
    assert.throws(
      () => createCbcJwt({ env: {} }),
      (err: unknown) =>
        err instanceof ConfigError &&
        /CBC_JWT_KEYSET_FILE/.test(err.message) &&
        /CBC_JWT_BACKEND=vault or kubernetes/.test(err.message) &&
        /keysetFile/.test(err.message),
    )
  })

  it('clockToleranceSeconds over an hour is a RangeError: a leeway of days accepts tokens long expired', () => {
    assert.throws(() => createCbcJwt({ clockToleranceSeconds: 86400, keysetFile: '/nonexistent/keyset.json', env: {} }), {
      name: 'RangeError',
      message: /clockToleranceSeconds must be a number from 0 to 3600/,
    })
  })

  it('refreshIntervalSeconds over a day is a RangeError: a Node timer that long fires every millisecond', () => {
    assert.throws(() => createCbcJwt({ refreshIntervalSeconds: 30 * 86400, keysetFile: '/nonexistent/keyset.json', env: {} }), {
      name: 'RangeError',
      message: /refreshIntervalSeconds must be a number from 0.1 to 86400/,
    })
  })

  it('never reads PORT: a PORT the library would refuse does not matter to it', () => {
    const ks = tempKeyset(makeKeyset([makeKey('ES256', 'k-a')]))
    cleanups.push(ks.cleanup)
    const cbc = createCbcJwt({ env: { PORT: 'not-a-port', CBC_JWT_KEYSET_FILE: ks.file } })
    assert.equal('port' in cbc.config, false)
  })

  it('options in code win over the environment; a bad option is a RangeError naming it', () => {
    const ks = tempKeyset(makeKeyset([makeKey('ES256', 'k-a')]))
    cleanups.push(ks.cleanup)
    const cbc = createCbcJwt({ env: { CBC_JWT_KEYSET_FILE: '/elsewhere', CBC_JWT_AUDIENCE: 'env-aud' }, keysetFile: ks.file, audience: 'code-aud' })
    assert.equal(cbc.config.audience, 'code-aud')
    assert.equal(cbc.config.keysetFile, ks.file)
    assert.throws(
      () => createCbcJwt({ keysetFile: ks.file, env: {}, maxTokenBytes: 10 }),
      (err: unknown) => err instanceof RangeError && /maxTokenBytes/.test(err.message),
    )
  })

  it('an unknown option is a TypeError naming it: a misspelt one would silently run on its default', () => {
    // Found by an audit: createCbcJwt({ maxTokenTtl: '1h' }) (the variable is CBC_JWT_MAX_TOKEN_TTL,
    // the option maxTokenTtlSeconds) built an instance that signed 24 h tokens without a word.
    for (const [name, value] of [
      ['maxTokenTtl', '1h'],
      ['refreshInterval', 5],
      ['keyset_file', '/k.json'],
      ['registry', false],
    ] as const) {
      assert.throws(() => createCbcJwt({ keysetFile: '/nonexistent/keyset.json', env: {}, [name]: value } as never), {
        name: 'TypeError',
        message: new RegExp(`createCbcJwt: unknown option ${name}\\b`),
      })
    }
    assert.throws(() => createCbcJwt({ keysetFile: '/nonexistent/keyset.json', env: {}, maxTokenTtl: '1h' } as never), /did you mean maxTokenTtlSeconds/)
    assert.throws(
      () => createCbcJwt({ keysetFile: '/nonexistent/keyset.json', env: {}, registry: new Registry() } as never),
      /cbc\.registerMetrics\(registry\)/,
    )
    // Every option the type names is taken, an undefined one included.
    createCbcJwt({ keysetFile: '/nonexistent/keyset.json', env: {}, logger: false, now: Date.now, trustedIssuersCa: undefined, issuer: undefined })
    // An unknown name whose value is undefined changes nothing: not refused.
    createCbcJwt({ keysetFile: '/nonexistent/keyset.json', env: {}, registry: undefined } as never)
  })

  it('a custom KeysetBackend object is used as it is', async () => {
    const text = JSON.stringify(makeKeyset([makeKey('ES256', 'k-custom')]))
    const { cbc, counted } = countingCbc(() => text)
    await cbc.start()
    assert.equal(counted.reads, 1)
    assert.equal(cbc.keys()?.current, 'k-custom')
  })

  // Found by an audit: createCbcJwt took a backend with read() alone (all the library calls to
  // load keys), and then cbc.close() threw "backend.close is not a function".
  it('a custom backend with read() only (from JavaScript): start, authenticate and close all work', async () => {
    const text = JSON.stringify(makeKeyset([makeKey('ES256', 'k-read-only')]))
    const cbc = createCbcJwt({ env: {}, logger: false, backend: { location: 'memory', read: async () => ({ text, version: '1' }) } as never })
    await cbc.start()
    assert.equal(cbc.keys()?.current, 'k-read-only')
    await cbc.close()
    await cbc.close()
  })

  // Found by an audit: a custom backend's watch reporting failures with reasons of its own made
  // one cbc_jwt_backend_errors_total series per reason: the label is a closed list.
  it('a custom backend reporting reasons outside the closed list: counted as io_error, no new series', async () => {
    const text = JSON.stringify(makeKeyset([makeKey('ES256', 'k-odd')]))
    let reads = 0
    const backend = {
      location: 'memory',
      read: async () => {
        reads++
        if (reads === 2) throw Object.assign(new Error('odd'), { reason: 'odd-read', code: 'ERR_BACKEND' })
        return { text, version: '1' }
      },
      watch: (_change: () => void, _event?: () => void, onFailure?: (reason: string) => void) => {
        for (let i = 0; i < 20; i++) onFailure?.(`odd-${i}`)
      },
    }
    const registry = new Registry()
    const cbc = createCbcJwt({ env: {}, logger: false, backend: backend as never })
    cleanups.push(() => cbc.close())
    cbc.registerMetrics(registry)
    await cbc.start()
    await cbc.authenticate(`Bearer ${signToken(makeKey('ES256', 'k-unknown'), validClaims())}`) // a re-read: the failing one
    const expo = parseExposition(await registry.metrics())
    const reasons = expo.samples.filter((x) => x.name === 'cbc_jwt_backend_errors_total').map((x) => x.labels.reason)
    assert.deepEqual(
      reasons.filter((r) => r?.startsWith('odd')),
      [],
      'a series per foreign reason',
    )
    assert.equal(reads, 2, 'the unknown kid re-read the backend')
    assert.equal(valueOf(expo, 'cbc_jwt_backend_errors_total', { reason: 'io_error' }), 21)
  })

  it('registerMetrics: the metrics of §3 on a registry; twice on the same one is not an error; another open instance is refused; one re-created after close() takes over', async () => {
    const registry = new Registry()
    const first = setup()
    first.cbc.registerMetrics(registry)
    first.cbc.registerMetrics(registry)
    await first.cbc.authenticate(undefined) // not ready yet: not counted
    await first.cbc.start()
    await first.cbc.authenticate(undefined)
    let expo = parseExposition(await registry.metrics())
    assert.equal(valueOf(expo, 'cbc_jwt_auth_failures_total', { reason: 'missing' }), 1)
    assert.equal(valueOf(expo, 'cbc_jwt_keys_loaded'), 1)
    const second = setup()
    // Both open on one registry: one would hide the other's counts. Refused, nothing changed.
    assert.throws(
      () => second.cbc.registerMetrics(registry),
      (err: any) => err.code === ERROR_CODES.ALREADY_REGISTERED,
    )
    expo = parseExposition(await registry.metrics())
    assert.equal(valueOf(expo, 'cbc_jwt_auth_failures_total', { reason: 'missing' }), 1)
    await first.cbc.close()
    second.cbc.registerMetrics(registry)
    expo = parseExposition(await registry.metrics())
    assert.equal(valueOf(expo, 'cbc_jwt_auth_failures_total', { reason: 'missing' }), 0)
  })

  it('registerMetrics: a registry of another prom-client major, passed explicitly, exports the metrics', async () => {
    const { default: promClient14 } = (await import('prom-client-14' as string)) as { default: typeof import('prom-client') }
    const registry = new promClient14.Registry()
    const { cbc } = setup()
    await cbc.start()
    cbc.registerMetrics(registry as never)
    await cbc.authenticate(undefined)
    const expo = parseExposition(await registry.metrics())
    assert.equal(valueOf(expo, 'cbc_jwt_auth_failures_total', { reason: 'missing' }), 1)
    assert.equal(valueOf(expo, 'cbc_jwt_keys_loaded'), 1)
  })

  it('registerMetrics() with no argument uses prom-client’s default registry', async () => {
    const { cbc } = setup()
    cbc.registerMetrics()
    cleanups.push(() => defaultRegistry.clear())
    assert.match(await defaultRegistry.metrics(), /^cbc_jwt_auth_failures_total\{reason="missing"\} 0$/m)
  })

  it('jwks() and keys(): public halves and metadata, never material; keys() undefined before the first load', async () => {
    const a = makeKey('ES256', 'k-a')
    const { cbc } = setup([a, makeKey('HS256', 'k-h')])
    assert.equal(cbc.keys(), undefined)
    assert.deepEqual(cbc.jwks(), { keys: [] })
    await cbc.start()
    const jwks = cbc.jwks()
    assert.deepEqual(
      jwks.keys.map((k) => [k.kid, k.alg, k.use, 'd' in k]),
      [['k-a', 'ES256', 'sig', false]],
    )
    assert.deepEqual(
      cbc.keys()?.keys.map((k) => [k.kid, k.status]),
      [
        ['k-a', 'current'],
        ['k-h', 'staged'],
      ],
    )
    assert.ok(!JSON.stringify(cbc.keys()).includes(a.jwk.d!))
  })

  it('start() twice is one start; close() twice is one close', async () => {
    const { cbc } = setup()
    assert.equal(cbc.start(), cbc.start())
    await cbc.start()
    await cbc.close()
    await cbc.close()
  })
})
