// A token sent to the wrong API: its rejection line says which audience was expected and which
// was received — and a hostile `aud` (terminal escapes, C1 controls, bidi overrides, a flood, a
// huge array, other types) reaches the line escaped and bounded, never raw.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import type { CbcJwtParts } from '../../src/lib/core/compose.js'
import { coreOn, tempKeyset } from '../lib/core/fixtures.js'
import { fuzzParameters, hostileText } from '../support/fuzz.js'
import { makeKey, makeKeyset, signToken, validClaims } from '../support/keys.js'

const key = makeKey('HS256', 'k-aud')
const PRINTABLE = /^[\x20-\x7e]*$/

describe('attack: a wrong-audience token with a hostile aud', () => {
  let parts: CbcJwtParts & { lines: Array<Record<string, unknown>> }
  const ks = tempKeyset(makeKeyset([key]))
  before(async () => {
    parts = coreOn(ks.file, { audience: 'orders-api', tokenCacheEntries: 0 })
    await parts.cbc.start()
  })
  after(async () => {
    await parts.cbc.close()
    ks.cleanup()
  })

  /** The rejection line of a token whose `aud` is `aud` (absent when undefined). */
  async function lineFor(aud: unknown): Promise<Record<string, unknown>> {
    const claims = validClaims({ aud })
    if (aud === undefined) delete claims.aud
    parts.lines.length = 0
    const result = await parts.cbc.authenticate(`Bearer ${signToken(key, claims)}`)
    assert.equal(result.ok ? 'ok' : result.reason, 'bad_audience')
    const line = parts.lines.find((l) => l.event === 'auth_rejected')
    assert.ok(line)
    return line
  }

  it('logs the expected and the received audience', async () => {
    const line = await lineFor('billing-api')
    assert.deepEqual(line.expected_audience, ['orders-api'])
    assert.equal(line.received_audience, 'billing-api')
    assert.deepEqual((await lineFor(['billing-api', 'payments-api'])).received_audience, ['billing-api', 'payments-api'])
    assert.equal((await lineFor(undefined)).received_audience, null)
  })

  it('terminal escapes, C1 controls and bidi overrides arrive escaped', async () => {
    const line = await lineFor('\u001b[2J\u001b]0;pwned\u0007\u009b31m\u202eipa-sredro\u0000')
    assert.equal(line.received_audience, '\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m\\u202eipa-sredro\\x00')
  })

  it('a flood is bounded: 5 000 characters, an array of 60, other types', async () => {
    const long = (await lineFor('a'.repeat(5000))).received_audience as string
    assert.ok(long.length <= 131, `${long.length} characters`)
    assert.ok(long.endsWith('...'))
    const many = (await lineFor(Array.from({ length: 60 }, (_, i) => `api-${i}`))).received_audience as string[]
    assert.deepEqual(many, [...Array.from({ length: 8 }, (_, i) => `api-${i}`), '...(52 more)'])
    assert.deepEqual((await lineFor([42, null, { a: 1 }, ['x']])).received_audience, ['(number)', '(null)', '(object)', '(object)'])
    assert.equal((await lineFor(42)).received_audience, '(number)')
    assert.equal((await lineFor({ aud: 'x' })).received_audience, '(object)')
  })

  it('property: whatever the aud, every string on the line is printable ASCII and bounded', async () => {
    await fc.assert(
      fc.asyncProperty(
        // Under the token size bound once signed (base64url adds a third): too_large is another test's.
        fc.oneof(hostileText(), fc.array(hostileText(), { maxLength: 12 })).filter((aud) => JSON.stringify(aud).length < 4000),
        async (aud) => {
          const line = await lineFor(aud)
          const strings = [line.received_audience].flat().filter((v): v is string => typeof v === 'string')
          for (const s of strings) {
            assert.match(s, PRINTABLE, JSON.stringify(s))
            assert.ok(s.length <= 131)
          }
          assert.ok(JSON.stringify(line).length < 2500)
        },
      ),
      fuzzParameters(60),
    )
  })
})
