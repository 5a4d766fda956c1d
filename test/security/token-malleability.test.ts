import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import { describe, it } from 'node:test'
import { hasCanonicalBase64urlTail } from '../../src/lib/verifier/base64url.js'
import { signToken } from '../support/keys.js'
import { NOW_S, b64u, claimsAt, forge, keyPool, verifierAt, withSignature } from '../lib/verifier/fixtures.js'

/**
 * Attack: a second spelling of a valid token. A cache, a denylist or a log line correlates on
 * the token string; a twin that verifies slips past a denylist entry for the original and
 * splits one client's trail in two. Each case proves the twin decodes to the same signature
 * bytes (so node:crypto alone would accept it) and that the verifier refuses it.
 */
describe('attack: malleable token strings', () => {
  const { byAlg, keyset } = keyPool()
  const verifier = verifierAt()

  for (const alg of ['ES256', 'HS256', 'RS256', 'PS256', 'EdDSA'] as const) {
    it(`${alg}: stray low bits in the last signature character → bad_signature, the original still verifies`, async () => {
      const token = signToken(byAlg[alg], claimsAt())
      const sig = token.slice(token.lastIndexOf('.') + 1)
      assert.notEqual(sig.length % 4, 0, 'precondition: the signature has spare bits')
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
      const twinSig = sig.slice(0, -1) + alphabet[alphabet.indexOf(sig.at(-1)!) + 1]
      assert.deepEqual(Buffer.from(twinSig, 'base64url'), Buffer.from(sig, 'base64url'), 'precondition: same bytes')
      assert.equal((await verifier.verify(token, keyset)).ok, true)
      const result = await verifier.verify(withSignature(token, twinSig), keyset)
      assert.equal(result.ok, false)
      assert.equal(!result.ok && result.reason, 'bad_signature')
    })
  }

  it('PS256 and RS256: a signature with its leading zero octet stripped → bad_signature', async () => {
    for (const alg of ['PS256', 'RS256'] as const) {
      let token: string
      let sig: Buffer
      do {
        token = signToken(byAlg[alg], claimsAt(NOW_S, { jti: crypto.randomUUID() }))
        sig = Buffer.from(token.slice(token.lastIndexOf('.') + 1), 'base64url')
      } while (sig[0] !== 0) // about one signature in 256
      const stripped = withSignature(token, sig.subarray(1))
      const key = keyset.keys.get(`k-${alg}`)!.verifyKey
      const options = alg === 'PS256' ? { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: crypto.constants.RSA_PSS_SALTLEN_DIGEST } : key
      const input = Buffer.from(token.slice(0, token.lastIndexOf('.')))
      if (alg === 'PS256') assert.ok(crypto.verify('sha256', input, options, sig.subarray(1)), 'precondition: OpenSSL accepts the short PSS signature')
      const result = await verifier.verify(stripped, keyset)
      assert.equal(!result.ok && result.reason, 'bad_signature', alg)
    }
  })

  it('hasCanonicalBase64urlTail: exactly one spelling per byte string, for every length; no length ≡ 1 (mod 4)', async () => {
    for (let k = 0; k < 5; k++) assert.equal(hasCanonicalBase64urlTail('A'.repeat(4 * k + 1)), false)
    for (let n = 0; n < 70; n++) {
      const canonical = b64u(crypto.randomBytes(n))
      assert.ok(hasCanonicalBase64urlTail(canonical), canonical)
      if (canonical.length % 4 !== 0) {
        const last = canonical.at(-1)!
        for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_') {
          if (c === last) continue
          const twin = canonical.slice(0, -1) + c
          assert.equal(hasCanonicalBase64urlTail(twin), b64u(Buffer.from(twin, 'base64url')) === twin, twin)
        }
      }
    }
  })
})

describe('header rules: typ and b64', () => {
  const { byAlg, keyset } = keyPool()
  const verifier = verifierAt()
  const key = byAlg.ES256
  const token = (header: Record<string, unknown>) =>
    forge({ header: { alg: 'ES256', kid: key.kid, ...header }, payload: claimsAt(), alg: 'ES256', signingKey: key.signingKey })
  const reason = async (t: string) => {
    const r = await verifier.verify(t, keyset)
    return r.ok ? 'ok' : r.reason
  }

  it('typ absent, JWT, at+jwt (any case, with or without application/) are accepted', async () => {
    for (const typ of [undefined, 'JWT', 'jwt', 'at+jwt', 'AT+JWT', 'application/at+jwt', 'application/jwt']) {
      assert.equal(await reason(token(typ === undefined ? {} : { typ })), 'ok', String(typ))
    }
  })

  it('attack: a JWT of another kind signed by the same key (logout, DPoP proof, SET) is malformed as an access token', async () => {
    for (const typ of ['logout+jwt', 'dpop+jwt', 'secevent+jwt', 'JWS', '', 42, null]) {
      assert.equal(await reason(token({ typ })), 'malformed', String(typ))
    }
  })

  it('attack: b64 (RFC 7797 unencoded payload), with or without crit, is malformed — any value', async () => {
    for (const extra of [{ b64: false }, { b64: true }, { b64: false, crit: ['b64'] }]) {
      assert.equal(await reason(token(extra)), 'malformed', JSON.stringify(extra))
    }
  })
})

describe('maximum token lifetime (exp − iat ≤ CBC_JWT_MAX_TOKEN_TTL + clock tolerance)', () => {
  const { byAlg, keyset } = keyPool()
  const key = byAlg.ES256

  it('a token living exactly the maximum is accepted; one second more past the tolerance is malformed', async () => {
    const verifier = verifierAt(undefined, { maxTokenTtlSeconds: 3600 })
    const ok = signToken(key, claimsAt(NOW_S, { iat: NOW_S - 10, exp: NOW_S - 10 + 3600 + 30 }))
    const long = signToken(key, claimsAt(NOW_S, { iat: NOW_S - 10, exp: NOW_S - 10 + 3600 + 31 }))
    assert.equal((await verifier.verify(ok, keyset)).ok, true)
    const r = await verifier.verify(long, keyset)
    assert.equal(!r.ok && r.reason, 'malformed')
  })

  it('attack: a ten-year token minted with a current key is refused by default (24 h)', async () => {
    const r = await verifierAt().verify(signToken(key, claimsAt(NOW_S, { iat: NOW_S - 60, exp: NOW_S + 10 * 365 * 86400 })), keyset)
    assert.equal(!r.ok && r.reason, 'malformed')
  })
})
