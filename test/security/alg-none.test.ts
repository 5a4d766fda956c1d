// Attack: "alg": "none" — an unsecured JWS (RFC 7515 §A.5) presented as if it were signed,
// in the hope that the verifier lets the header choose the algorithm (CVE-2015-9235 and kin).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { rawSignature } from '../support/keys.js'
import { NOW_S, claimsAt, keyPool, segment, verifierAt } from '../lib/verifier/fixtures.js'

describe('attack: alg none', () => {
  const { byAlg, keyset } = keyPool()
  const verifier = verifierAt()
  const payload = segment(claimsAt(NOW_S, { sub: 'admin' }))

  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['"none", no signature, kid of the current key', { alg: 'none', kid: 'k-ES256' }, ''],
    ['"none", no signature, no kid', { alg: 'none' }, ''],
    ['"none", no signature, kid of an HMAC key', { alg: 'none', kid: 'k-HS256' }, ''],
    ['"None", no signature', { alg: 'None', kid: 'k-ES256' }, ''],
    ['"NONE", no signature', { alg: 'NONE', kid: 'k-ES256' }, ''],
    ['"nOnE", no signature', { alg: 'nOnE', kid: 'k-RS256' }, ''],
    // Without a usable kid there is no key alg to catch it: "none" must be refused by name.
    ['"None", no kid', { alg: 'None' }, ''],
    ['"NONE", a kid the keyset does not have', { alg: 'NONE', kid: 'k-nope' }, ''],
    ['"none" with a junk signature', { alg: 'none', kid: 'k-ES256' }, 'c2lnbmF0dXJl'],
    ['"none" with a real ES256 signature of the same input', { alg: 'none', kid: 'k-ES256' }, 'REAL'],
  ]

  for (const [name, header, signature] of cases) {
    it(`${name} → unsupported_alg`, async () => {
      const h = segment({ typ: 'JWT', ...header })
      const sig = signature === 'REAL' ? rawSignature('ES256', byAlg.ES256.signingKey, Buffer.from(`${h}.${payload}`)).toString('base64url') : signature
      const result = await verifier.verify(`${h}.${payload}.${sig}`, keyset)
      assert.equal(result.ok, false)
      assert.equal(!result.ok && result.reason, 'unsupported_alg')
    })
  }

  it('an empty signature under a real algorithm is a bad signature, never a pass', async () => {
    for (const alg of ['HS256', 'RS256', 'PS256', 'ES256', 'EdDSA'] as const) {
      const h = segment({ alg, kid: byAlg[alg].kid })
      const result = await verifier.verify(`${h}.${payload}.`, keyset)
      assert.equal(!result.ok && result.reason, 'bad_signature', `${alg}: ${JSON.stringify(result)}`)
    }
  })
})
