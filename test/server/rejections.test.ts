import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { AUTH_FAILURE_REASONS, type AuthFailureReason } from '../../src/lib/reasons.js'
import { makeKey, makeKeyset, rawSignature, signToken, validClaims, type TestKey } from '../support/keys.js'
import { waitFor } from '../support/wait.js'
import { authFailures, bearer, delta, onlyReasonRose, privateValues, startWithKeyset, type KeysetService } from './fixtures.js'
import { PROCESS_LEVEL } from '../support/tier.js'

// Non-default issuer and audience: a token made for the defaults must be refused.
const ISS = 'https://issuer.test'
const AUD = 'orders-api'
const HOUR = 3600

const current = makeKey('ES256', 'k-current')
const staged = makeKey('RS256', 'k-staged')
const retiring = makeKey('EdDSA', 'k-retiring')
const hmac = makeKey('HS256', 'k-hmac')
const allKeys = [current, staged, retiring, hmac]
const nowS = () => Math.floor(Date.now() / 1000)
const REVOKED_BEFORE_S = nowS() - HOUR

function keysetDoc() {
  return makeKeyset([current, staged, { key: retiring, opts: { notAfter: new Date(Date.now() + 24 * HOUR * 1000) } }, hmac], {
    revoked_before: new Date(REVOKED_BEFORE_S * 1000).toISOString(),
  })
}

const claims = (overrides: Record<string, unknown> = {}) => validClaims(overrides, { iss: ISS, aud: AUD })

/** Every real token sent, to prove none of them reaches the output. */
const sent: string[] = []
function token(key: TestKey, overrides: Record<string, unknown> = {}, header: Record<string, unknown> = {}): string {
  const t = signToken(key, claims(overrides), header)
  sent.push(t)
  return t
}

function hs256WithPublicPem(): string {
  const pem = crypto.createPublicKey(current.signingKey).export({ format: 'pem', type: 'spki' })
  const h = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: current.kid })).toString('base64url')
  const p = Buffer.from(JSON.stringify(claims())).toString('base64url')
  const sig = rawSignature('HS256', crypto.createSecretKey(Buffer.from(pem)), Buffer.from(`${h}.${p}`)).toString('base64url')
  const t = `${h}.${p}.${sig}`
  sent.push(t)
  return t
}

/** The request that produces each reason, and only it. */
const CASES: Record<AuthFailureReason, () => Record<string, string>> = {
  missing: () => ({}),
  malformed: () => bearer('only.two-segments'),
  too_large: () => bearer(token(current, { padding: 'x'.repeat(9000) })),
  unsupported_alg: () => bearer(hs256WithPublicPem()),
  unknown_kid: () => bearer(token(makeKey('ES256', 'k-not-loaded'))),
  bad_signature: () => bearer(token(makeKey('ES256', current.kid))),
  expired: () => bearer(token(current, { iat: nowS() - 2 * 60, exp: nowS() - 60 - 30 })),
  not_yet_valid: () => bearer(token(current, { nbf: nowS() + HOUR })),
  bad_issuer: () => bearer(token(current, { iss: 'cbc-omega2' })),
  bad_audience: () => bearer(token(current, { aud: 'cbc-api' })),
  revoked: () => bearer(token(current, { iat: REVOKED_BEFORE_S - 1 })),
}

describe('GET /v1/whoami over HTTP: one rejection per reason', PROCESS_LEVEL, () => {
  let ctx: KeysetService

  before(async () => {
    ctx = await startWithKeyset(keysetDoc(), { CBC_JWT_ISSUER: ISS, CBC_JWT_AUDIENCE: AUD })
  })
  after(async () => {
    await ctx?.stop()
  })

  async function expectRejection(headers: Record<string, string>, reason: AuthFailureReason) {
    const before = authFailures(await ctx.service.metrics())
    const res = await ctx.service.get('/v1/whoami', headers)
    assert.equal(res.status, 401, res.body)
    assert.equal(res.headers.get('www-authenticate'), reason === 'missing' ? 'Bearer' : 'Bearer error="invalid_token"')
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/)
    assert.deepEqual(res.json, { error: 'invalid_token', reason })
    const after = authFailures(await ctx.service.metrics())
    assert.deepEqual(delta(before, after), onlyReasonRose(reason))
  }

  it('the table has a case for every reason of §3', () => {
    assert.deepEqual(Object.keys(CASES).sort(), [...AUTH_FAILURE_REASONS].sort())
  })

  for (const reason of AUTH_FAILURE_REASONS) {
    it(`${reason}: 401 with its exact shape, and only its counter rises`, async () => {
      await expectRejection(CASES[reason](), reason)
    })
  }

  it('Authorization: Basic … is missing', async () => {
    await expectRejection({ authorization: `Basic ${Buffer.from('user:pass').toString('base64')}` }, 'missing')
  })

  it('a valid token: 200 with sub, client_id, scope, kid, iat, exp, and no failure counted', async () => {
    const c = claims({ sub: 'alice', client_id: 'web-1', scope: 'orders:read' })
    const t = signToken(current, c)
    sent.push(t)
    const before = authFailures(await ctx.service.metrics())
    const res = await ctx.service.get('/v1/whoami', bearer(t))
    assert.equal(res.status, 200, res.body)
    assert.deepEqual(res.json, { sub: 'alice', client_id: 'web-1', scope: 'orders:read', kid: 'k-current', iat: c.iat, exp: c.exp })
    assert.deepEqual(delta(before, authFailures(await ctx.service.metrics())), onlyReasonRose('missing', 0))
  })

  it('the scheme is case-insensitive: lowercase bearer is accepted', async () => {
    const res = await ctx.service.get('/v1/whoami', { authorization: `bearer ${token(current)}` })
    assert.equal(res.status, 200, res.body)
  })

  for (const key of [staged, retiring, hmac]) {
    it(`a token of the ${key.kid} key (${key.alg}) is accepted`, async () => {
      const res = await ctx.service.get('/v1/whoami', bearer(token(key)))
      assert.equal(res.status, 200, res.body)
      assert.equal(res.json.kid, key.kid)
    })
  }

  it('the rejection log line carries reason, kid and client_id', async () => {
    await ctx.service.get('/v1/whoami', bearer(token(current, { client_id: 'log-client-77', exp: nowS() - HOUR })))
    const line = await waitFor(() => ctx.service.logs().find((l) => l.event === 'auth_rejected' && l.client_id === 'log-client-77'), {
      what: 'the auth_rejected log line',
    })
    assert.equal(line.reason, 'expired')
    assert.equal(line.kid, 'k-current')
    assert.equal(line.client_id, 'log-client-77')
  })

  it('a rejection by bad signature logs the kid and the claimed client id, marked unverified (client_id stays null)', async () => {
    await ctx.service.get('/v1/whoami', bearer(token(makeKey('ES256', current.kid), { client_id: 'spoofed-client-9' })))
    const line = await waitFor(() => ctx.service.logs().find((l) => l.event === 'auth_rejected' && l.client_id_unverified === 'spoofed-client-9'), {
      what: 'the bad_signature log line',
    })
    // Found by its claimed id, not as "the last bad_signature line": an earlier case's line may still be
    // the last one when the log stream is read, and that line would claim a different client.
    assert.equal(line.reason, 'bad_signature')
    assert.equal(line.kid, 'k-current')
    assert.equal(line.client_id, null)
  })

  // Runs last: by now every token above has been sent and every rejection logged.
  it('the output never contains a token or any private JWK member value', async () => {
    await waitFor(() => ctx.service.logs().filter((l) => l.event === 'auth_rejected').length >= AUTH_FAILURE_REASONS.length + 2, {
      what: 'every rejection logged',
    })
    const output = ctx.service.output()
    assert.ok(sent.length > AUTH_FAILURE_REASONS.length)
    for (const t of sent) {
      assert.ok(!output.includes(t), 'a token reached the output')
      // A signature alone is as good as the token for an attacker replaying it.
      assert.ok(!output.includes(t.split('.')[2]!), 'a token signature reached the output')
    }
    const secrets = privateValues(allKeys.map((k) => k.jwk as Record<string, unknown>))
    assert.equal(secrets.length, 9) // EC d, RSA d p q dp dq qi, OKP d, oct k
    for (const value of secrets) assert.ok(!output.includes(value), 'private key material reached the output')
  })
})

describe('key publication over HTTP: /readyz, /.well-known/jwks.json, /v1/keys', PROCESS_LEVEL, () => {
  let ctx: KeysetService
  const secrets = privateValues(allKeys.map((k) => k.jwk as Record<string, unknown>))
  const PRIVATE = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth']

  before(async () => {
    ctx = await startWithKeyset(keysetDoc(), { CBC_JWT_ISSUER: ISS, CBC_JWT_AUDIENCE: AUD })
  })
  after(async () => {
    await ctx?.stop()
  })

  it('/readyz is 200 once the keyset is loaded', async () => {
    const res = await ctx.service.get('/readyz')
    assert.equal(res.status, 200)
    assert.equal(res.json.current, 'k-current')
  })

  it('the JWKS holds the public halves of the asymmetric keys, staged and verify-only included, with use "sig"', async () => {
    const res = await ctx.service.get('/.well-known/jwks.json')
    assert.equal(res.status, 200)
    const keys = res.json.keys as Array<Record<string, unknown>>
    assert.deepEqual(keys.map((k) => k.kid).sort(), ['k-current', 'k-retiring', 'k-staged'])
    for (const jwk of keys) {
      assert.equal(jwk.use, 'sig')
      assert.equal(jwk.alg, allKeys.find((k) => k.kid === jwk.kid)!.alg)
      for (const member of PRIVATE) assert.ok(!(member in jwk), `${String(jwk.kid)} publishes "${member}"`)
    }
    // The published halves are the real public keys: they verify what the private halves sign.
    for (const jwk of keys) {
      const key = allKeys.find((k) => k.kid === jwk.kid)!
      const publicKey = crypto.createPublicKey({ key: jwk as crypto.JsonWebKey, format: 'jwk' })
      assert.ok(publicKey.equals(crypto.createPublicKey(key.signingKey)), `${key.kid} publishes another key`)
    }
  })

  it('the HS256 key is absent from the JWKS entirely', async () => {
    const res = await ctx.service.get('/.well-known/jwks.json')
    assert.ok(!res.body.includes('k-hmac'))
    assert.ok(!res.body.includes('"oct"'))
    assert.ok(!res.body.includes(hmac.jwk.k!))
  })

  it('/v1/keys lists every key with its status and never any key material', async () => {
    const res = await ctx.service.get('/v1/keys')
    assert.equal(res.status, 200)
    const keys = res.json.keys as Array<Record<string, unknown>>
    assert.deepEqual(Object.fromEntries(keys.map((k) => [k.kid, k.status])), {
      'k-current': 'current',
      'k-staged': 'staged',
      'k-retiring': 'verify-only',
      'k-hmac': 'staged',
    })
    for (const entry of keys) {
      for (const member of [...PRIVATE, 'jwk', 'x', 'y', 'n', 'e']) assert.ok(!(member in entry), `/v1/keys publishes "${member}"`)
    }
  })

  it('neither route contains any private member value', async () => {
    const bodies = (await Promise.all(['/.well-known/jwks.json', '/v1/keys'].map((r) => ctx.service.get(r)))).map((r) => r.body).join('\n')
    assert.equal(secrets.length, 9) // EC d, RSA d p q dp dq qi, OKP d, oct k
    for (const value of secrets) assert.ok(!bodies.includes(value), 'private key material published')
  })
})
