// Attack: algorithm confusion — the token's header names another algorithm than the key's,
// most famously RS256 → HS256 with the (public!) RSA key used as the HMAC secret
// (CVE-2016-10555, CVE-2022-29217). The key's own alg decides; the header never does.
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import { describe, it } from 'node:test'
import { rawSignature, type TestAlg } from '../support/keys.js'
import { NOW_S, claimsAt, forge, keyPool, segment, verifierAt } from '../lib/verifier/fixtures.js'

describe('attack: algorithm confusion', () => {
  const { byAlg, keyset } = keyPool()
  const verifier = verifierAt()
  const claims = claimsAt(NOW_S, { sub: 'admin' })

  /** An HMAC token under `kid`, keyed with `secret` (what an attacker can get: public material). */
  function hmacWith(alg: TestAlg, kid: string, secret: Buffer | string): string {
    return forge({ header: { alg, typ: 'JWT', kid }, payload: claims, alg, signingKey: crypto.createSecretKey(Buffer.from(secret)) })
  }

  const rsaPublic = crypto.createPublicKey(byAlg.RS256.signingKey)
  const ecPublic = crypto.createPublicKey(byAlg.ES256.signingKey)
  const edPublic = crypto.createPublicKey(byAlg.EdDSA.signingKey)
  const secrets: Array<[string, string, Buffer | string]> = [
    ['RS256 key, public key PEM (SPKI) as the HS256 secret', 'k-RS256', rsaPublic.export({ format: 'pem', type: 'spki' })],
    ['RS256 key, public key PEM (PKCS#1) as the HS256 secret', 'k-RS256', rsaPublic.export({ format: 'pem', type: 'pkcs1' })],
    ['RS256 key, public key DER as the HS256 secret', 'k-RS256', rsaPublic.export({ format: 'der', type: 'spki' })],
    ['RS256 key, public JWK JSON bytes as the HS256 secret', 'k-RS256', JSON.stringify(rsaPublic.export({ format: 'jwk' }))],
    [
      'RS256 key, JWKS-published JWK bytes as the HS256 secret',
      'k-RS256',
      JSON.stringify({ ...rsaPublic.export({ format: 'jwk' }), kid: 'k-RS256', alg: 'RS256', use: 'sig' }),
    ],
    ['PS256 key, public key PEM as the HS256 secret', 'k-PS256', rsaPublic.export({ format: 'pem', type: 'spki' })],
    ['ES256 key, public key PEM as the HS256 secret', 'k-ES256', ecPublic.export({ format: 'pem', type: 'spki' })],
    ['ES256 key, public JWK bytes as the HS256 secret', 'k-ES256', JSON.stringify(ecPublic.export({ format: 'jwk' }))],
    ['EdDSA key, public key PEM as the HS256 secret', 'k-EdDSA', edPublic.export({ format: 'pem', type: 'spki' })],
  ]

  for (const [name, kid, secret] of secrets) {
    it(`${name} → unsupported_alg`, async () => {
      const result = await verifier.verify(hmacWith('HS256', kid, secret), keyset)
      assert.equal(!result.ok && result.reason, 'unsupported_alg', JSON.stringify(result))
    })
  }

  it('RS256 key with HS384 and HS512 headers → unsupported_alg', async () => {
    for (const alg of ['HS384', 'HS512'] as const) {
      const result = await verifier.verify(hmacWith(alg, 'k-RS256', rsaPublic.export({ format: 'pem', type: 'spki' })), keyset)
      assert.equal(!result.ok && result.reason, 'unsupported_alg', alg)
    }
  })

  // The same key material under another scheme of the same family: a downgrade or a
  // parser quirk, still not the key's algorithm.
  const crossAlg: Array<[string, string, TestAlg]> = [
    ['RS256 key, PS256 header, valid PSS signature', 'k-RS256', 'PS256'],
    ['PS256 key, RS256 header, valid PKCS#1 v1.5 signature', 'k-PS256', 'RS256'],
    ['RS256 key, RS512 header, valid RS512 signature', 'k-RS256', 'RS512'],
    ['HS256 key, HS512 header', 'k-HS256', 'HS512'],
  ]
  for (const [name, kid, alg] of crossAlg) {
    it(`${name} → unsupported_alg`, async () => {
      const key = keyset.keys.get(kid)!
      const signingKey = key.signingKey!
      const token = forge({ header: { alg, kid }, payload: claims, alg, signingKey })
      const result = await verifier.verify(token, keyset)
      assert.equal(!result.ok && result.reason, 'unsupported_alg', JSON.stringify(result))
    })
  }

  it('the header alg is matched exactly: "es256" or "ES256 " is not ES256', async () => {
    for (const alg of ['es256', 'ES256 ', 'ES256\u0000']) {
      const h = segment({ alg, kid: 'k-ES256' })
      const p = segment(claims)
      const sig = rawSignature('ES256', byAlg.ES256.signingKey, Buffer.from(`${h}.${p}`)).toString('base64url')
      const result = await verifier.verify(`${h}.${p}.${sig}`, keyset)
      assert.equal(!result.ok && result.reason, 'unsupported_alg', JSON.stringify(alg))
    }
  })
})
