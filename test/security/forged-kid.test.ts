// Attack: forged `kid` values — a huge or hostile kid aimed at the metrics (a label value per
// kid is a cardinality bomb), at the logs (injection, flooding) and at the keyset lookup
// (prototype members of a plain object). No label value ever comes from a token.
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { makeKey, makeKeyset, signToken, validClaims } from '../support/keys.js'
import { waitFor } from '../support/wait.js'
import { authFailures, bearer, delta, onlyReasonRose, seriesCounts, startWithKeyset, type KeysetService } from '../server/fixtures.js'
import { claimsAt, keyPool, verifierAt } from '../lib/verifier/fixtures.js'
import { PROCESS_LEVEL } from '../support/tier.js'

const HUGE_KID = `forged-${crypto.randomBytes(5000).toString('hex')}`.slice(0, 10_000)

describe('attack: forged kid (verifier)', () => {
  const { keyset } = keyPool()
  const verifier = verifierAt(undefined, { maxTokenBytes: 60 * 1024 })
  const attacker = makeKey('ES256', 'k-ES256')

  it('a 10 000-character kid → unknown_kid, and the kid is not handed out for logging', async () => {
    assert.equal(HUGE_KID.length, 10_000)
    const result = await verifier.verify(signToken(attacker, claimsAt(), { kid: HUGE_KID }), keyset)
    assert.deepEqual(result, { ok: false, reason: 'unknown_kid', kid: undefined, clientId: undefined })
  })

  for (const kid of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf']) {
    it(`kid "${kid}" (an Object.prototype member) → unknown_kid`, async () => {
      const result = await verifier.verify(signToken(attacker, claimsAt(), { kid }), keyset)
      assert.equal(!result.ok && result.reason, 'unknown_kid')
    })
  }

  it('a kid of the wrong type (object, array, number) → unknown_kid', async () => {
    for (const kid of [{ toString: 'k-ES256' }, ['k-ES256'], 1, true]) {
      const result = await verifier.verify(signToken(attacker, claimsAt(), { kid }), keyset)
      assert.equal(!result.ok && result.reason, 'unknown_kid', JSON.stringify(kid))
    }
  })

  it('a kid with a newline and JSON (log injection) is not handed out for logging', async () => {
    const result = await verifier.verify(signToken(attacker, claimsAt(), { kid: 'x"}\n{"level":60,"msg":"pwned' }), keyset)
    assert.deepEqual(result, { ok: false, reason: 'unknown_kid', kid: undefined, clientId: undefined })
  })
})

describe('attack: forged kid (over HTTP, real service)', PROCESS_LEVEL, () => {
  const real = makeKey('ES256', 'k-real')
  const attacker = makeKey('ES256', 'k-attacker')
  let ctx: KeysetService

  before(async () => {
    // Raised so the 10 000-character kid reaches the kid lookup instead of the size check.
    ctx = await startWithKeyset(makeKeyset([real]), { CBC_JWT_MAX_TOKEN_BYTES: String(60 * 1024) })
  })
  after(async () => {
    await ctx?.stop()
  })

  it('a 10 000-character kid and 50 distinct forged kids create no metric series and are counted as unknown_kid', async () => {
    const expoBefore = await ctx.service.metrics()
    const forged = [HUGE_KID, ...Array.from({ length: 50 }, (_, i) => `forged-${i}-${crypto.randomBytes(4).toString('hex')}`)]
    for (const kid of forged) {
      const res = await ctx.service.get('/v1/whoami', bearer(signToken(attacker, validClaims(), { kid })))
      assert.equal(res.status, 401)
      assert.equal(res.json.reason, 'unknown_kid')
    }
    const expoAfter = await ctx.service.metrics()
    assert.deepEqual(seriesCounts(expoAfter), seriesCounts(expoBefore))
    assert.ok(Object.keys(seriesCounts(expoBefore)).includes('cbc_jwt_auth_failures_total'))
    for (const s of expoAfter.samples) {
      for (const value of Object.values(s.labels)) assert.ok(!value.startsWith('forged-'), `label value from a token: ${s.name}`)
    }
    assert.deepEqual(delta(authFailures(expoBefore), authFailures(expoAfter)), onlyReasonRose('unknown_kid', forged.length))
  })

  it('the rejection log line of the 10 000-character kid does not contain it', async () => {
    await waitFor(() => ctx.service.logs().filter((l) => l.event === 'auth_rejected').length >= 51, { what: '51 rejection lines' })
    const lines = ctx.service.logs().filter((l) => l.event === 'auth_rejected')
    assert.equal(lines[0]!.reason, 'unknown_kid')
    assert.equal(lines[0]!.kid, null)
    // Not the kid, and not even a recognisable piece of it.
    assert.ok(!ctx.service.output().includes(HUGE_KID.slice(100, 164)))
    // Grammar-conforming forged kids are logged as what they are (bounded, printable).
    assert.match(String(lines[1]!.kid), /^forged-0-[0-9a-f]{8}$/)
  })
})
