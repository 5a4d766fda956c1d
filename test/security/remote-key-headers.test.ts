// Attack: key injection through the header — `jku`/`x5u` point at the attacker's key set,
// `jwk`/`x5c` embed the attacker's key (CVE-2018-0114). The only keys are the keyset's: these
// headers are never read, never fetched, and a token signed by an embedded key is refused.
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { makeKey, makeKeyset, signToken, validClaims, type TestKey } from '../support/keys.js'
import { authFailures, bearer, delta, onlyReasonRose, startWithKeyset, type KeysetService } from '../server/fixtures.js'
import { NOW_S, claimsAt, keyPool, verifierAt } from '../lib/verifier/fixtures.js'
import { PROCESS_LEVEL } from '../support/tier.js'

/** A loopback HTTP server that serves the attacker's JWKS and records every request. */
async function startRecorder(attacker: TestKey) {
  const requests: string[] = []
  const jwks = JSON.stringify({ keys: [{ ...crypto.createPublicKey(attacker.signingKey).export({ format: 'jwk' }), kid: attacker.kid, alg: attacker.alg }] })
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`)
    res.setHeader('content-type', 'application/json').end(jwks)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    base,
    requests,
    /**
     * The requests that reached the recorder before a twin request sent now, itself left out: a
     * fetch started earlier (a header followed) would have connected first and been recorded
     * by the time the twin's answer is back — no fixed wait for "nothing was fetched".
     */
    async before(): Promise<string[]> {
      await fetch(`${base}/twin`).then((r) => r.text())
      const seen = requests.splice(0)
      assert.equal(seen.at(-1), 'GET /twin')
      return seen.slice(0, -1)
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

/** Every way a header can bring its own key, all pointing at or embedding `attacker`. */
function injectionHeaders(attacker: TestKey, base: string): Array<[string, Record<string, unknown>]> {
  const publicJwk = crypto.createPublicKey(attacker.signingKey).export({ format: 'jwk' })
  const spkiDer = crypto.createPublicKey(attacker.signingKey).export({ format: 'der', type: 'spki' }).toString('base64')
  return [
    ['jku', { jku: `${base}/jwks.json` }],
    ['x5u', { x5u: `${base}/cert.pem` }],
    ['jwk', { jwk: { ...publicJwk, kid: attacker.kid } }],
    ['x5c', { x5c: [spkiDer] }],
    ['all four at once', { jku: `${base}/jwks.json`, x5u: `${base}/cert.pem`, jwk: publicJwk, x5c: [spkiDer] }],
  ]
}

describe('attack: jku / x5u / jwk / x5c key injection (verifier)', () => {
  const { keyset } = keyPool()
  const verifier = verifierAt()
  // The attacker signs with their own key under the kid of the real current key.
  const attacker = makeKey('ES256', 'k-ES256')
  let recorder: Awaited<ReturnType<typeof startRecorder>>

  before(async () => {
    recorder = await startRecorder(attacker)
  })
  after(async () => {
    await recorder.close()
  })

  it('the recording server records requests (so "no request" below means something)', async () => {
    await fetch(`${recorder.base}/probe`).then((r) => r.text())
    assert.deepEqual(recorder.requests.splice(0), ['GET /probe'])
  })

  it('every injection header, with the real kid and the attacker key → bad_signature', async () => {
    for (const [name, header] of injectionHeaders(attacker, recorder.base)) {
      const result = await verifier.verify(signToken(attacker, claimsAt(NOW_S, { sub: 'admin' }), header), keyset)
      assert.equal(!result.ok && result.reason, 'bad_signature', `${name}: ${JSON.stringify(result)}`)
    }
    assert.deepEqual(await recorder.before(), [])
  })

  it('every injection header, with a kid the keyset does not know → unknown_kid', async () => {
    const stranger = { ...attacker, kid: 'k-attacker' }
    for (const [name, header] of injectionHeaders(stranger, recorder.base)) {
      const result = await verifier.verify(signToken(stranger, claimsAt(NOW_S), header), keyset)
      assert.equal(!result.ok && result.reason, 'unknown_kid', `${name}: ${JSON.stringify(result)}`)
    }
    assert.deepEqual(await recorder.before(), [])
  })

  it('the headers are ignored, not rejected: a genuine token that carries them still verifies', async () => {
    const genuine = keyPool().byAlg.ES256
    const result = await verifier.verify(signToken(genuine, claimsAt(), { jku: `${recorder.base}/jwks.json` }), keyset)
    assert.equal(result.ok, true)
  })
})

describe('attack: jku / x5u / jwk / x5c key injection (over HTTP, real service)', PROCESS_LEVEL, () => {
  const real = makeKey('ES256', 'k-real')
  const attacker = makeKey('ES256', 'k-real')
  let recorder: Awaited<ReturnType<typeof startRecorder>>
  let ctx: KeysetService

  before(async () => {
    recorder = await startRecorder(attacker)
    ctx = await startWithKeyset(makeKeyset([real]), { CBC_JWT_UNKNOWN_KID_COOLDOWN_SECONDS: '0' })
  })
  after(async () => {
    await ctx?.stop()
    await recorder?.close()
  })

  it('attacker-keyed tokens are refused with bad_signature and nothing is fetched', async () => {
    const headers = injectionHeaders(attacker, recorder.base)
    const before = authFailures(await ctx.service.metrics())
    for (const [name, header] of headers) {
      const res = await ctx.service.get('/v1/whoami', bearer(signToken(attacker, validClaims({ sub: 'admin' }), header)))
      assert.equal(res.status, 401, name)
      assert.equal(res.json.reason, 'bad_signature', name)
    }
    assert.deepEqual(delta(before, authFailures(await ctx.service.metrics())), onlyReasonRose('bad_signature', headers.length))
    assert.deepEqual(await recorder.before(), [])
  })

  it('with an unknown kid (which makes the service re-read its own backend) nothing is fetched either', async () => {
    const stranger = { ...attacker, kid: 'k-attacker' }
    for (const [name, header] of injectionHeaders(stranger, recorder.base)) {
      const res = await ctx.service.get('/v1/whoami', bearer(signToken(stranger, validClaims(), header)))
      assert.equal(res.json.reason, 'unknown_kid', name)
    }
    assert.deepEqual(await recorder.before(), [])
  })
})
