// Attack: forged or malleated signatures — another key under a real kid, ECDSA signatures in
// the wrong encoding or length, the all-zero ECDSA signature ("psychic signatures",
// CVE-2022-21449), and HMAC tags of the wrong length or wrong bytes (compared in constant time).
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import { describe, it } from 'node:test'
import { generatePrivateKey, makeKey, signToken, type TestAlg } from '../support/keys.js'
import type { VerifyResult } from '../../src/lib/verifier/verifier.js'
import { claimsAt, keyPool, verifierAt, withSignature } from '../lib/verifier/fixtures.js'

const reasonOf = (result: VerifyResult) => (result.ok ? 'ok' : result.reason)

describe('attack: signature forgery', () => {
  const { byAlg, keyset } = keyPool()
  const verifier = verifierAt()

  for (const alg of Object.keys(byAlg) as TestAlg[]) {
    it(`${alg}: a signature by another key under the same kid → bad_signature`, async () => {
      const impostor =
        alg.startsWith('RS') || alg.startsWith('PS') ? { ...byAlg.RS256, kid: `k-${alg}`, alg, signingKey: otherRsa() } : makeKey(alg, `k-${alg}`)
      assert.equal(reasonOf(await verifier.verify(signToken(impostor, claimsAt()), keyset)), 'bad_signature')
    })
  }

  for (const alg of ['ES256', 'ES384', 'ES512'] as const) {
    describe(`${alg} signature encoding`, () => {
      const key = byAlg[alg]
      const good = signToken(key, claimsAt())
      const [h, p, s] = good.split('.') as [string, string, string]
      const raw = Buffer.from(s, 'base64url')
      const input = Buffer.from(`${h}.${p}`)

      it('the untouched token verifies (control)', async () => {
        assert.equal(reasonOf(await verifier.verify(good, keyset)), 'ok')
      })

      it('the same signature DER-encoded → bad_signature', async () => {
        const der = crypto.sign(`sha${alg.slice(2)}`, input, { key: key.signingKey, dsaEncoding: 'der' })
        assert.ok(crypto.verify(`sha${alg.slice(2)}`, input, { key: crypto.createPublicKey(key.signingKey), dsaEncoding: 'der' }, der))
        assert.equal(reasonOf(await verifier.verify(withSignature(good, der), keyset)), 'bad_signature')
      })

      it('one byte short, one byte long, empty → bad_signature', async () => {
        for (const sig of [raw.subarray(0, -1), Buffer.concat([raw, Buffer.from([0])]), Buffer.alloc(0)]) {
          assert.equal(reasonOf(await verifier.verify(withSignature(good, sig), keyset)), 'bad_signature', `length ${sig.length}`)
        }
      })

      it('r = s = 0 (psychic signature) → bad_signature', async () => {
        assert.equal(reasonOf(await verifier.verify(withSignature(good, Buffer.alloc(raw.length)), keyset)), 'bad_signature')
      })

      it('r and s swapped → bad_signature', async () => {
        const half = raw.length / 2
        const swapped = Buffer.concat([raw.subarray(half), raw.subarray(0, half)])
        assert.equal(reasonOf(await verifier.verify(withSignature(good, swapped), keyset)), 'bad_signature')
      })
    })
  }

  for (const alg of ['HS256', 'HS384', 'HS512'] as const) {
    it(`${alg}: a tag of the wrong length and a right-length tag with wrong bytes → bad_signature`, async () => {
      const good = signToken(byAlg[alg], claimsAt())
      const tag = Buffer.from(good.split('.')[2]!, 'base64url')
      assert.equal(reasonOf(await verifier.verify(good, keyset)), 'ok')
      const flippedLast = Buffer.from(tag)
      flippedLast[flippedLast.length - 1]! ^= 1
      const flippedFirst = Buffer.from(tag)
      flippedFirst[0]! ^= 0x80
      const wrong = [
        tag.subarray(0, -1), // truncated
        Buffer.concat([tag, Buffer.from([0])]), // extended
        tag.subarray(0, 16), // a prefix of the right tag
        Buffer.alloc(0),
        flippedLast,
        flippedFirst,
        Buffer.alloc(tag.length),
      ]
      for (const sig of wrong) assert.equal(reasonOf(await verifier.verify(withSignature(good, sig), keyset)), 'bad_signature', `${sig.length} bytes`)
    })
  }

  for (const alg of ['PS256', 'PS384', 'PS512'] as const) {
    it(`${alg}: the key's own signature with a salt other than the digest's length → bad_signature`, async () => {
      // RFC 7518 §3.5 allows only a salt as long as the digest. OpenSSL verifies any length when
      // asked to detect it (RSA_PSS_SALTLEN_AUTO): a check that asked would accept these.
      const key = byAlg[alg]
      const good = signToken(key, claimsAt())
      const [h, p] = good.split('.') as [string, string]
      const hash = `sha${alg.slice(2)}`
      const pss = (saltLength: number) =>
        crypto.sign(hash, Buffer.from(`${h}.${p}`), { key: key.signingKey, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength })
      const digestBytes = Number(alg.slice(2)) / 8
      assert.equal(reasonOf(await verifier.verify(withSignature(good, pss(digestBytes)), keyset)), 'ok', 'control: the digest-length salt')
      for (const saltLength of [0, 20, digestBytes - 1, digestBytes + 1, crypto.constants.RSA_PSS_SALTLEN_MAX_SIGN]) {
        assert.equal(reasonOf(await verifier.verify(withSignature(good, pss(saltLength)), keyset)), 'bad_signature', `salt ${saltLength}`)
      }
    })
  }

  it('a signature copied from another valid token → bad_signature', async () => {
    const a = signToken(byAlg.HS256, claimsAt())
    const b = signToken(byAlg.HS256, { ...claimsAt(), sub: 'admin' })
    assert.equal(reasonOf(await verifier.verify(withSignature(b, a.split('.')[2]!), keyset)), 'bad_signature')
  })
})

let rsa: crypto.KeyObject | undefined
function otherRsa(): crypto.KeyObject {
  rsa ??= generatePrivateKey('rsa', { modulusLength: 2048 })
  return rsa
}
