// A trusted issuer's JWK Set read from real TLS servers that misbehave: huge, slow, redirecting,
// degenerate keys, private keys, a discovery document naming another issuer, a certificate
// nobody vouched for. Each failure is counted with its reason and logged without the foreign
// value, and the last good keys stay in force; an unknown kid costs one shared read per cooldown.
import assert from 'node:assert/strict'
import type crypto from 'node:crypto'
import http from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { after, before, beforeEach, describe, it, mock } from 'node:test'
import { checkTrustedIssuers } from '../../../src/lib/issuers/trusted-issuers.js'
import { createTrustedIssuerKeys, type TrustedIssuerKeys } from '../../../src/lib/issuers/remote-jwks.js'
import type { BackendErrorReason } from '../../../src/lib/reasons.js'
import { makeKey } from '../../support/keys.js'
import { makeTestTls, type TestTls } from '../../support/test-tls.js'

type Handler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void

const good = makeKey('ES256', 'good-1')
const rsa = makeKey('RS256', 'rsa-1')
const publicOf = (jwk: crypto.JsonWebKey) => Object.fromEntries(Object.entries(jwk).filter(([k]) => !['d', 'p', 'q', 'dp', 'dq', 'qi'].includes(k)))
const goodSet = JSON.stringify({ keys: [{ ...publicOf(good.jwk), kid: 'good-1', alg: 'ES256', use: 'sig' }] })

describe('trusted issuer keys against hostile servers', () => {
  let tls: TestTls
  let server: https.Server
  let base: string
  let routes: Record<string, Handler>
  const hits: string[] = []

  before(async () => {
    tls = makeTestTls()
    server = https.createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
      hits.push(req.url ?? '')
      const handler = routes[req.url ?? '']
      if (handler) handler(req, res)
      else res.writeHead(404).end()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  after(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  beforeEach(() => {
    hits.length = 0
    routes = {
      '/.well-known/openid-configuration': json({ issuer: base, jwks_uri: `${base}/jwks` }),
      '/jwks': text(goodSet),
    }
  })

  function json(value: unknown): Handler {
    return text(JSON.stringify(value))
  }
  function text(body: string): Handler {
    return (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(body)
  }

  /** A deadline far from any read's time on a loaded machine, but for the slow server's case. */
  function issuerKeys(extra: Record<string, unknown> = {}, ca: string | null = tls.ca, timeoutMs = 10_000) {
    const errors: BackendErrorReason[] = []
    const lines: Array<Record<string, unknown>> = []
    const log = (obj: object) => void lines.push(obj as Record<string, unknown>)
    const [settings] = checkTrustedIssuers([{ issuer: base, audience: 'orders-api', ...extra }], 'cbc-omega2')
    const keys = createTrustedIssuerKeys({
      settings: settings!,
      clockToleranceSeconds: 30,
      maxTokenTtlSeconds: 86400,
      logger: { info: log, warn: log, error: log },
      onError: (reason) => void errors.push(reason),
      fetchLimits: { timeoutMs, ...(ca !== null ? { ca } : {}) },
    })
    return { keys, errors, lines }
  }

  async function loaded(extra: Record<string, unknown> = {}, timeoutMs?: number) {
    const it = issuerKeys(extra, tls.ca, timeoutMs)
    await it.keys.refresh('start')
    assert.deepEqual([...(it.keys.keys()?.keys() ?? [])], ['good-1'])
    return it
  }

  /** The next read fails with `reason`, and the keys in force are still the good ones. */
  async function failsKeepingLastGood(
    it: { keys: TrustedIssuerKeys; errors: BackendErrorReason[]; lines: Array<Record<string, unknown>> },
    reason: BackendErrorReason,
  ) {
    const before = it.keys.keys()
    await it.keys.refresh('interval')
    assert.deepEqual(it.errors, [reason])
    assert.equal(it.keys.keys(), before, 'the last good keys stay in force')
    const line = it.lines.find((l) => l.event === 'issuer_error')
    assert.equal(line?.reason, reason)
    assert.deepEqual(line?.keeping, ['good-1'])
  }

  it('finds the JWK Set by discovery and loads it', async () => {
    const { lines } = await loaded()
    assert.deepEqual(hits, ['/.well-known/openid-configuration', '/jwks'])
    assert.deepEqual(lines.find((l) => l.event === 'issuer_keys_loaded')?.kids, ['good-1'])
  })

  it('attack: a discovery document naming another issuer is refused, its keys never read, its value never logged', async () => {
    routes['/.well-known/openid-configuration'] = json({ issuer: 'https://evil.example.com', jwks_uri: `${base}/jwks` })
    const { keys, errors, lines } = issuerKeys()
    await keys.refresh('start')
    assert.deepEqual(errors, ['bad_response'])
    assert.equal(keys.keys(), undefined)
    assert.deepEqual(hits, ['/.well-known/openid-configuration'])
    assert.doesNotMatch(JSON.stringify(lines), /evil/)
  })

  it('attack: a discovery document pointing at plain HTTP keys is refused', async () => {
    routes['/.well-known/openid-configuration'] = json({ issuer: base, jwks_uri: `http://127.0.0.1/jwks` })
    const { keys, errors } = issuerKeys()
    await keys.refresh('start')
    assert.deepEqual(errors, ['bad_response'])
  })

  it('attack: a discovered jwks_uri carrying credentials is refused, never asked, never logged', async () => {
    for (const userinfo of ['reader:s3cret-pw@', 's3cret-pw@', ':s3cret-pw@']) {
      hits.length = 0
      routes['/.well-known/openid-configuration'] = json({ issuer: base, jwks_uri: `${base.replace('https://', `https://${userinfo}`)}/jwks` })
      const { keys, errors, lines } = issuerKeys()
      await keys.refresh('start')
      assert.deepEqual(errors, ['bad_response'], userinfo)
      assert.equal(keys.keys(), undefined, userinfo)
      assert.deepEqual(hits, ['/.well-known/openid-configuration'], userinfo)
      assert.doesNotMatch(JSON.stringify(lines), /s3cret/, userinfo)
    }
  })

  it('an issuer with a trailing slash is discovered at the issuer without it + /.well-known/openid-configuration (Discovery §4)', async () => {
    routes['/.well-known/openid-configuration'] = json({ issuer: `${base}/`, jwks_uri: `${base}/jwks` })
    const { keys, errors } = issuerKeys({ issuer: `${base}/` })
    await keys.refresh('start')
    assert.deepEqual(errors, [])
    assert.deepEqual(hits, ['/.well-known/openid-configuration', '/jwks'])
    assert.deepEqual([...(keys.keys()?.keys() ?? [])], ['good-1'])
  })

  it('after a failed read the discovery document is asked again: keys that moved are found', async () => {
    const it = await loaded()
    // The issuer moves its keys: the old location is gone, discovery names the new one.
    routes['/jwks'] = (_req, res) => res.writeHead(404).end()
    routes['/.well-known/openid-configuration'] = json({ issuer: base, jwks_uri: `${base}/keys-v2` })
    routes['/keys-v2'] = text(goodSet)
    await failsKeepingLastGood(it, 'bad_response')
    hits.length = 0
    await it.keys.refresh('interval')
    assert.deepEqual(hits, ['/.well-known/openid-configuration', '/keys-v2'])
    assert.deepEqual(it.errors, ['bad_response'], 'the read after the move succeeded')
  })

  it('a huge JWK Set is refused before it is parsed (last good kept)', async () => {
    const it = await loaded({ jwks_uri: `${base}/jwks` })
    routes['/jwks'] = text(JSON.stringify({ keys: [], pad: 'x'.repeat(600 * 1024) }))
    await failsKeepingLastGood(it, 'bad_response')
  })

  it('a slow JWK Set times out (last good kept)', async () => {
    // The first read is quick; only the deadline bounds the second, which never completes.
    const it = await loaded({ jwks_uri: `${base}/jwks` }, 3000)
    routes['/jwks'] = (_req, res) => {
      res.writeHead(200)
      res.write('{"keys":')
      // Never finished: the deadline ends it.
    }
    await failsKeepingLastGood(it, 'timeout')
  })

  it('attack: a redirect is not followed (last good kept)', async () => {
    const it = await loaded({ jwks_uri: `${base}/jwks` })
    routes['/jwks'] = (_req, res) => res.writeHead(302, { location: `${base}/elsewhere` }).end()
    routes['/elsewhere'] = text(goodSet)
    await failsKeepingLastGood(it, 'bad_response')
    assert.ok(!hits.includes('/elsewhere'))
  })

  it('attack: an RSA key with e = 1 (every message its own signature) refuses the document', async () => {
    const it = await loaded({ jwks_uri: `${base}/jwks` })
    routes['/jwks'] = json({ keys: [{ ...publicOf(rsa.jwk), e: 'AQ', kid: 'rsa-1', alg: 'RS256' }] })
    await failsKeepingLastGood(it, 'invalid_keyset')
  })

  it('attack: a small-order Ed25519 key (the identity point) refuses the document', async () => {
    const it = await loaded({ jwks_uri: `${base}/jwks` })
    const identity = Buffer.alloc(32)
    identity[0] = 1
    routes['/jwks'] = json({
      keys: [{ kty: 'OKP', crv: 'Ed25519', x: identity.toString('base64url'), kid: 'ed-1', alg: 'EdDSA' }, JSON.parse(goodSet).keys[0]],
    })
    await failsKeepingLastGood(it, 'invalid_keyset')
  })

  it('a JWK Set that publishes a private key is refused', async () => {
    const it = await loaded({ jwks_uri: `${base}/jwks` })
    routes['/jwks'] = json({ keys: [{ ...good.jwk, kid: 'good-1', alg: 'ES256' }] })
    await failsKeepingLastGood(it, 'invalid_keyset')
  })

  it('a document that is not JSON, or holds no usable key, keeps the last good keys', async () => {
    const it = await loaded({ jwks_uri: `${base}/jwks` })
    routes['/jwks'] = text('<html>maintenance</html>')
    await failsKeepingLastGood(it, 'invalid_json')
    it.errors.length = 0
    routes['/jwks'] = json({ keys: [{ ...publicOf(good.jwk), kid: 'enc-1', use: 'enc' }] })
    await it.keys.refresh('interval')
    assert.deepEqual(it.errors, ['invalid_keyset'])
    assert.deepEqual([...it.keys.keys()!.keys()], ['good-1'])
  })

  it('attack: a member that cannot be made a string, or nests too deeply to walk, never crashes the read', async () => {
    // JSON.parse takes any depth and any object: coercing the curve to a string threw (no usable
    // toString, or a stack overflow), and so did fingerprinting a key with a deep member.
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`
    const it = await loaded({ jwks_uri: `${base}/jwks` })
    for (const [body, reason] of [
      [`{"keys":[{"kty":"EC","crv":{"toString":1},"x":"AA","y":"AA","kid":"odd-1"}]}`, 'invalid_keyset'],
      [`{"keys":[{"kty":"EC","crv":${deep},"x":"AA","y":"AA","kid":"deep-1"}]}`, 'invalid_keyset'],
      [`{"keys":[{"kty":"EC","crv":"P-256","alg":"ES256","x":"AA","y":"AA","x5c":${deep},"kid":"deep-2"}]}`, 'invalid_keyset'],
    ] as const) {
      routes['/jwks'] = text(body)
      it.errors.length = 0
      await it.keys.refresh('interval')
      assert.deepEqual(it.errors, [reason])
      assert.deepEqual([...it.keys.keys()!.keys()], ['good-1'], 'the last good keys stay in force')
    }
    // A key member that is not a string refuses the document; a member that is not the key's own
    // (x5c here) is neither kept nor walked, however deep: the key beside it loads.
    const other = makeKey('ES256', 'other-1')
    routes['/jwks'] = text(`{"keys":[{"kty":"EC","crv":"P-256","alg":"ES256","x":${JSON.stringify(publicOf(other.jwk).x)},"y":{"toString":1},"kid":"odd-2"}]}`)
    it.errors.length = 0
    await it.keys.refresh('interval')
    assert.deepEqual(it.errors, ['invalid_keyset'])
    const deepBeside = JSON.stringify({ keys: [{ ...publicOf(other.jwk), kid: 'other-1', alg: 'ES256', x5c: 'X' }] }).replace('"X"', deep)
    routes['/jwks'] = text(deepBeside)
    it.errors.length = 0
    await it.keys.refresh('interval')
    assert.deepEqual(it.errors, [])
    assert.deepEqual([...it.keys.keys()!.keys()], ['other-1'])
  })

  // A 404 is the issuer's URL answering wrongly, not our keyset object gone: not_found would page
  // JWTKeysetObjectGone ("the keyset is deleted: keyset restore") for another team's identity provider.
  it("a 5xx, a 404 and a 403 are counted as such (a 404 as bad_response, never the keyset's not_found)", async () => {
    for (const [status, reason] of [
      [503, 'server_error'],
      [404, 'bad_response'],
      [403, 'forbidden'],
    ] as const) {
      const it = await loaded({ jwks_uri: `${base}/jwks` })
      routes['/jwks'] = (_req, res) => res.writeHead(status).end()
      await failsKeepingLastGood(it, reason)
      routes['/jwks'] = text(goodSet)
    }
  })

  it('attack: a certificate no trusted CA signed is refused', async () => {
    const { keys, errors } = issuerKeys({ jwks_uri: `${base}/jwks` }, null)
    await keys.refresh('start')
    assert.deepEqual(errors, ['unreachable'])
    assert.equal(keys.keys(), undefined)
  })

  it('keys not for us are skipped, counted by kind only; an RSA key without alg takes the one RSA algorithm allowed', async () => {
    routes['/jwks'] = json({
      keys: [
        { ...publicOf(rsa.jwk), kid: 'rsa-1' },
        { ...publicOf(good.jwk), kid: 'enc-1', use: 'enc' },
        { kty: 'oct', k: 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA', kid: 'hs-1', alg: 'HS256' },
        { ...publicOf(good.jwk), kid: 'bad "kid"\n', alg: 'ES256' },
        { ...publicOf(good.jwk), kid: 'ok-but-not-allowed', alg: 'ES384' },
      ],
    })
    const it = issuerKeys({ jwks_uri: `${base}/jwks`, algorithms: ['PS256', 'ES256'] })
    await it.keys.refresh('start')
    assert.deepEqual(
      [...it.keys.keys()!.values()].map((k) => [k.kid, k.alg]),
      [['rsa-1', 'PS256']],
    )
    const line = it.lines.find((l) => l.event === 'issuer_keys_loaded')
    assert.deepEqual(line?.skipped, { not_for_signing: 1, unsupported: 1, unusable_kid: 1, not_allowed: 1 })
    assert.doesNotMatch(JSON.stringify(it.lines), /bad \\"kid/)
  })

  // RFC 7517 §4.3: key_ops lists what a key is for, as `use` does; an issuer that marks its
  // encryption key so (and not with `use`) has not published it to verify its tokens.
  it('attack: a key whose key_ops do not include verify is not for signing, whatever its alg', async () => {
    routes['/jwks'] = json({
      keys: [
        { ...publicOf(good.jwk), kid: 'good-1', alg: 'ES256', key_ops: ['verify'] },
        { ...publicOf(good.jwk), kid: 'ecdh-1', alg: 'ES256', key_ops: ['deriveKey', 'deriveBits'] },
        { ...publicOf(rsa.jwk), kid: 'rsa-enc', alg: 'RS256', key_ops: ['encrypt', 'wrapKey'] },
        { ...publicOf(rsa.jwk), kid: 'rsa-odd', alg: 'RS256', key_ops: 'verify' },
      ],
    })
    const it = issuerKeys({ jwks_uri: `${base}/jwks` })
    await it.keys.refresh('start')
    assert.deepEqual([...it.keys.keys()!.keys()], ['good-1'])
    assert.deepEqual(it.lines.find((l) => l.event === 'issuer_keys_loaded')?.skipped, { not_for_signing: 3 })
  })

  it('unknown kids cost one shared read, then none within the cooldown', async () => {
    const it = await loaded({ jwks_uri: `${base}/jwks`, unknown_kid_cooldown_seconds: 60 })
    hits.length = 0
    await Promise.all(Array.from({ length: 20 }, () => it.keys.refreshForUnknownKid()))
    assert.deepEqual(hits, ['/jwks'])
    await it.keys.refreshForUnknownKid()
    assert.deepEqual(hits, ['/jwks'])
  })

  it('an unknown kid during a background read joins it, and leaves the cooldown unspent', async () => {
    // The read in flight may not hold the new kid (it was asked before the kid was published):
    // spending the cooldown on it would refuse that kid's tokens for a whole cooldown.
    const it = await loaded({ jwks_uri: `${base}/jwks`, unknown_kid_cooldown_seconds: 60 })
    let release = () => {}
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    routes['/jwks'] = (_req, res) => void held.then(() => res.writeHead(200, { 'content-type': 'application/json' }).end(goodSet))
    hits.length = 0
    const background = it.keys.refresh('interval')
    while (hits.length === 0) await new Promise((resolve) => setImmediate(resolve))
    assert.equal(it.keys.refreshForUnknownKid(), background, 'joins the read in flight')
    release()
    await background
    assert.deepEqual(hits, ['/jwks'])
    await it.keys.refreshForUnknownKid()
    assert.deepEqual(hits, ['/jwks', '/jwks'], 'the cooldown was not spent on the joined read')
  })

  it('start() reads once however often it is called, and not at all after close()', async () => {
    const first = issuerKeys({ jwks_uri: `${base}/jwks` })
    await first.keys.start()
    await first.keys.start()
    assert.deepEqual(hits, ['/jwks'])
    await first.keys.close()
    const closed = issuerKeys({ jwks_uri: `${base}/jwks` })
    await closed.keys.close()
    await closed.keys.start()
    assert.deepEqual(hits, ['/jwks'])
    assert.equal(closed.keys.keys(), undefined)
  })

  describe("the issuer's Cache-Control shortens the background refresh, never below a minute", () => {
    /** Resolves at the next read of /jwks, or rejects after `ms` of real time (timers are mocked). */
    function nextRead(ms = 10_000): Promise<void> {
      const count = hits.length
      const deadline = Date.now() + ms
      return new Promise((resolve, reject) => {
        const poll = () => {
          if (hits.length > count) resolve()
          else if (Date.now() > deadline) reject(new Error(`no read of the JWK Set within ${ms} ms`))
          else setImmediate(poll)
        }
        poll()
      })
    }
    function served(cacheControl: string, age?: string): void {
      routes['/jwks'] = (_req, res) => {
        const headers: Record<string, string> = { 'content-type': 'application/json', 'cache-control': cacheControl }
        if (age !== undefined) headers.age = age
        res.writeHead(200, headers).end(goodSet)
      }
    }
    async function started(cacheControl: string, age?: string) {
      served(cacheControl, age)
      mock.timers.enable({ apis: ['setTimeout'] })
      const it = issuerKeys({ jwks_uri: `${base}/jwks`, refresh_interval_seconds: 300 })
      await it.keys.start()
      assert.deepEqual(hits, ['/jwks'])
      return it.keys
    }
    // Each case advances the mocked clock only to the second the issuer's header asks for: with
    // the interval alone (300 s) no read would come, and the case fails.
    it('max-age=90: read again after 90 s, not 300', async (t) => {
      t.after(() => mock.timers.reset())
      const keys = await started('public, max-age=90')
      const read = nextRead()
      mock.timers.tick(90_000)
      await read
      await keys.close()
    })
    it('max-age less its Age: read again when it went stale', async (t) => {
      t.after(() => mock.timers.reset())
      const keys = await started('max-age=200', '80')
      const read = nextRead()
      mock.timers.tick(120_000)
      await read
      await keys.close()
    })
    for (const header of ['no-cache', 'public, max-age=15, stale-while-revalidate=15']) {
      it(`${header} (Keycloak, Auth0): after a minute, not every few seconds`, async (t) => {
        t.after(() => mock.timers.reset())
        const keys = await started(header)
        const read = nextRead()
        mock.timers.tick(60_000)
        await read
        await keys.close()
      })
    }
    it('a failing JWK Set is read again after a minute, not after the interval (the alert looks back 5 minutes)', async (t) => {
      // At the default 300 s interval a failing issuer was read once per JWTSecretsBackendErrors
      // window: the increase over 5 minutes fell to 0 between two failures and the page resolved
      // and fired again every cycle of an outage that never ended.
      t.after(() => mock.timers.reset())
      routes['/jwks'] = (_req, res) => res.writeHead(503).end()
      mock.timers.enable({ apis: ['setTimeout'] })
      const it = issuerKeys({ jwks_uri: `${base}/jwks`, refresh_interval_seconds: 300 })
      await it.keys.start()
      assert.deepEqual(it.errors, ['server_error'])
      const read = nextRead()
      mock.timers.tick(60_000)
      await read
      await it.keys.close()
    })
    it('a longer max-age never stretches the configured interval', async (t) => {
      t.after(() => mock.timers.reset())
      const keys = await started('max-age=86400')
      const read = nextRead()
      mock.timers.tick(300_000)
      await read
      await keys.close()
    })
  })

  it('close() leaves no timer behind', async () => {
    const { keys } = issuerKeys({ jwks_uri: `${base}/jwks`, refresh_interval_seconds: 1 })
    await keys.start()
    await keys.close()
    hits.length = 0
    await new Promise((resolve) => setTimeout(resolve, 1200))
    assert.deepEqual(hits, [])
  })
})

describe('a trusted issuer on this host, over plain http', () => {
  let server: http.Server
  let base: string
  let discovery: Record<string, unknown>
  const hits: string[] = []

  before(async () => {
    server = http.createServer((req, res) => {
      hits.push(req.url ?? '')
      if (req.url === '/.well-known/openid-configuration') res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(discovery))
      else if (req.url === '/jwks') res.writeHead(200, { 'content-type': 'application/json' }).end(goodSet)
      else res.writeHead(404).end()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  after(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })

  function issuerKeys() {
    const errors: BackendErrorReason[] = []
    const [settings] = checkTrustedIssuers([{ issuer: base, audience: 'orders-api' }], 'cbc-omega2')
    const keys = createTrustedIssuerKeys({
      settings: settings!,
      clockToleranceSeconds: 30,
      maxTokenTtlSeconds: 86400,
      logger: { info: () => {}, warn: () => {}, error: () => {} },
      onError: (reason) => void errors.push(reason),
      fetchLimits: { timeoutMs: 10_000 },
    })
    return { keys, errors }
  }

  it('finds its keys by discovery, on its loopback', async () => {
    hits.length = 0
    discovery = { issuer: base, jwks_uri: `${base}/jwks` }
    const { keys, errors } = issuerKeys()
    await keys.refresh('start')
    assert.deepEqual(errors, [])
    assert.deepEqual([...(keys.keys()?.keys() ?? [])], ['good-1'])
    assert.deepEqual(hits, ['/.well-known/openid-configuration', '/jwks'])
  })

  it('attack: its discovery document cannot send the keys read to plain HTTP off this host', async () => {
    hits.length = 0
    discovery = { issuer: base, jwks_uri: 'http://idp.example.com/jwks' }
    const { keys, errors } = issuerKeys()
    await keys.refresh('start')
    assert.deepEqual(errors, ['bad_response'])
    assert.equal(keys.keys(), undefined)
    assert.deepEqual(hits, ['/.well-known/openid-configuration'])
  })
})
