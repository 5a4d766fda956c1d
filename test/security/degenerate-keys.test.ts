import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import fs from 'node:fs'
import { after, describe, it } from 'node:test'
import { KeysetInvalidError } from '../../src/lib/errors.js'
import { loadKeyset } from '../../src/lib/keyset/load.js'
import { createVerifier } from '../../src/lib/verifier/verifier.js'
import { cbcJwt, tempDir } from '../ops/cli/cli.js'
import { invalid, lines } from '../lib/keyset/fixtures.js'
import { generatePrivateKey, makeKey, makeKeyset, publicHalf, validClaims, type TestKey } from '../support/keys.js'

/**
 * Attack: a keyset key that imports and "verifies" but is arithmetically degenerate. With
 * RSA e = 1 every padded message is its own signature; with an Ed25519 public key of small
 * order (the identity, y = 1) the all-zero-S signature verifies for every message. Either lets
 * anyone mint tokens for any `sub` without a private key. The forgeries below are built from
 * public values only; each test first proves OpenSSL accepts the forgery for the raw key, so
 * the refusal by validation is what stands between the attacker and a 200.
 */

const b64u = (b: Buffer | string) => Buffer.from(b).toString('base64url')
// A sound current key, public like the degenerate key beside it: a verification keyset (a
// signing keyset would refuse the public-only key for being mixed in, before its material).
const signer = publicHalf(makeKey('ES256', 'k-signer'))
const rsa = makeKey('RS256', 'k-rsa')
const rsaPublic = { kty: 'RSA', n: rsa.jwk.n!, e: rsa.jwk.e! }

function keysetWith(kid: string, alg: string, jwk: Record<string, unknown>) {
  const doc = makeKeyset([signer])
  ;(doc.keys as unknown[]).push({ kid, alg, created_at: '2026-11-25T21:16:00Z', jwk })
  return doc
}

function unsignedInput(kid: string, alg: string) {
  const header = b64u(JSON.stringify({ alg, typ: 'JWT', kid }))
  const payload = b64u(JSON.stringify(validClaims({ sub: 'admin' })))
  return `${header}.${payload}`
}

/** EMSA-PKCS1-v1_5 (RFC 8017 §9.2) of SHA-256: with e = 1 this *is* the signature. */
function pkcs1Encoded(input: string, modulusBytes: number): Buffer {
  const digestInfo = Buffer.concat([Buffer.from('3031300d060960864801650304020105000420', 'hex'), crypto.createHash('sha256').update(input).digest()])
  return Buffer.concat([Buffer.from([0, 1]), Buffer.alloc(modulusBytes - digestInfo.length - 3, 0xff), Buffer.from([0]), digestInfo])
}

/** EMSA-PSS-ENCODE (RFC 8017 §9.1.1), SHA-256, MGF1-SHA-256, 32-byte salt. */
function pssEncoded(input: string, modulusBits: number): Buffer {
  const emBits = modulusBits - 1
  const emLen = Math.ceil(emBits / 8)
  const salt = crypto.randomBytes(32)
  const mHash = crypto.createHash('sha256').update(input).digest()
  const h = crypto
    .createHash('sha256')
    .update(Buffer.concat([Buffer.alloc(8), mHash, salt]))
    .digest()
  const db = Buffer.concat([Buffer.alloc(emLen - 32 - 32 - 2), Buffer.from([1]), salt])
  const mask = Buffer.alloc(db.length)
  for (let counter = 0, off = 0; off < mask.length; counter++, off += 32) {
    const c = Buffer.alloc(4)
    c.writeUInt32BE(counter)
    crypto.createHash('sha256').update(h).update(c).digest().copy(mask, off)
  }
  for (let i = 0; i < db.length; i++) db[i]! ^= mask[i]!
  db[0]! &= 0xff >> (8 * emLen - emBits)
  return Buffer.concat([Buffer.alloc(Math.ceil(modulusBits / 8) - emLen), db, h, Buffer.from([0xbc])])
}

function assertRefused(doc: Record<string, unknown>, pathAndMessage: RegExp) {
  const problems = lines(invalid(() => loadKeyset(doc)).problems)
  assert.ok(
    problems.some((p) => pathAndMessage.test(p)),
    `problems: ${problems.join(' | ')}`,
  )
}

describe('attack: forgery with a degenerate public key', () => {
  const tmp = tempDir('degenerate')
  after(() => tmp.cleanup())

  it('RSA e = 1 (RS256): the encoded message verifies as its own signature in OpenSSL — validation refuses the key', async () => {
    const jwk = { ...rsaPublic, e: 'AQ' }
    const input = unsignedInput('k-e1', 'RS256')
    const forged = pkcs1Encoded(input, 256)
    assert.ok(
      crypto.verify('sha256', Buffer.from(input), crypto.createPublicKey({ key: jwk, format: 'jwk' }), forged),
      'precondition: the forgery works on the raw key',
    )
    assertRefused(keysetWith('k-e1', 'RS256', jwk), /^keys\[1\]\.jwk\.e: RSA public exponent 1 refused/)
  })

  it('RSA e = 1 (PS256): a PSS encoding made without any key verifies in OpenSSL — validation refuses the key', async () => {
    const jwk = { ...rsaPublic, e: 'AQ' }
    const input = unsignedInput('k-e1', 'PS256')
    const forged = pssEncoded(input, 2048)
    const key = crypto.createPublicKey({ key: jwk, format: 'jwk' })
    const pss = { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: crypto.constants.RSA_PSS_SALTLEN_DIGEST }
    assert.ok(crypto.verify('sha256', Buffer.from(input), pss, forged), 'precondition: the forgery works on the raw key')
    assertRefused(keysetWith('k-e1', 'PS256', jwk), /^keys\[1\]\.jwk\.e: RSA public exponent 1 refused/)
  })

  for (const [e, shown] of [
    ['AA', '0'],
    ['Ag', '2'],
    ['AQA', '256'],
    ['Aw', '3'],
    ['AQAA', '65536'],
    [b64u(Buffer.concat([Buffer.from([1]), Buffer.alloc(32)])), 'of more than 64 bits'],
  ] as const) {
    it(`RSA e = ${shown} is refused (even, below 65537 or absurd: FIPS 186-5)`, async () => {
      assertRefused(keysetWith('k-e', 'RS256', { ...rsaPublic, e }), new RegExp(`^keys\\[1\\]\\.jwk\\.e: RSA public exponent ${shown} refused`))
    })
  }

  it('RSA moduli outside 2048–8192 bits, even, or with a small factor are refused', async () => {
    const odd = (bits: number, factor = 1n) => {
      const bytes = crypto.randomBytes(bits / 8)
      bytes[0]! |= 0x80
      bytes[bytes.length - 1]! |= 1
      let n = BigInt(`0x${bytes.toString('hex')}`)
      if (factor !== 1n) n = (n / factor) * factor // a multiple of `factor`, same size
      const hex = n.toString(16)
      return b64u(Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex'))
    }
    assertRefused(keysetWith('k-big', 'RS256', { kty: 'RSA', n: odd(16384), e: 'AQAB' }), /^keys\[1\]\.jwk\.n: RSA key is 16384 bits; at most 8192/)
    assertRefused(keysetWith('k-3', 'RS256', { kty: 'RSA', n: odd(2048, 3n * 1999n), e: 'AQAB' }), /^keys\[1\]\.jwk\.n: RSA modulus has a small prime factor/)
    const even = Buffer.from(rsaPublic.n, 'base64url')
    even[even.length - 1]! &= 0xfe
    assertRefused(keysetWith('k-even', 'RS256', { kty: 'RSA', n: b64u(even), e: 'AQAB' }), /^keys\[1\]\.jwk\.n: RSA modulus has a small prime factor/)
  })

  it('RSA moduli of exactly 8192 bits are accepted, of 8193 refused (the cap is inclusive)', async () => {
    // A random odd modulus of `bits` bits: the policy cannot tell it from a product of two
    // primes but by a small factor, so draws with one are skipped (about 6 in 7 are).
    const modulus = (bits: number) => {
      const bytes = crypto.randomBytes(Math.ceil(bits / 8))
      const top = 1 << ((bits - 1) % 8)
      bytes[0] = (bytes[0]! & (top - 1)) | top
      bytes[bytes.length - 1]! |= 1
      return b64u(bytes)
    }
    let loaded: ReturnType<typeof loadKeyset> | undefined
    for (let draw = 0; loaded === undefined && draw < 500; draw++) {
      try {
        loaded = loadKeyset(keysetWith('k-8192', 'RS256', { kty: 'RSA', n: modulus(8192), e: 'AQAB' }))
      } catch (err) {
        assert.ok(err instanceof KeysetInvalidError, String(err))
        assert.match(lines(err.problems).join(), /^keys\[1\]\.jwk\.n: RSA modulus has a small prime factor/)
      }
    }
    assert.equal(loaded?.keys.get('k-8192')?.verifyKey.asymmetricKeyDetails?.modulusLength, 8192)
    assertRefused(
      keysetWith('k-8193', 'RS256', { kty: 'RSA', n: modulus(8193), e: 'AQAB' }),
      /^keys\[1\]\.jwk\.n: RSA key is 8193 bits; at most 8192 accepted$/,
    )
  })

  it('RSA integers with a leading zero octet are refused (one key, one encoding)', async () => {
    const padded = b64u(Buffer.concat([Buffer.alloc(1), Buffer.from(rsaPublic.n, 'base64url')]))
    assertRefused(keysetWith('k-lz', 'RS256', { kty: 'RSA', n: padded, e: 'AQAB' }), /^keys\[1\]\.jwk\.n: has a leading zero octet/)
  })

  it('Ed25519 identity point: the all-zero signature verifies for any message in OpenSSL — validation refuses the key', async (t) => {
    const identity = Buffer.alloc(32)
    identity[0] = 1
    const jwk = { kty: 'OKP', crv: 'Ed25519', x: b64u(identity) }
    const input = unsignedInput('k-id', 'EdDSA')
    const forged = Buffer.concat([identity, Buffer.alloc(32)]) // R = identity, S = 0
    // The OpenSSL of Node 20 and 22 accepts this forgery; newer ones (Node 24's) refuse it.
    // Either way the key must be refused before it could ever verify anything.
    const accepted = crypto.verify(null, Buffer.from(input), crypto.createPublicKey({ key: jwk, format: 'jwk' }), forged)
    t.diagnostic(`this Node's OpenSSL ${accepted ? 'accepts' : 'refuses'} the all-zero signature on the raw key`)
    assertRefused(keysetWith('k-id', 'EdDSA', jwk), /^keys\[1\]\.jwk\.x: is a small-order Ed25519 point/)
  })

  it('every small-order Ed25519 encoding is refused, with either sign bit, and so is y ≥ p', async () => {
    const p = (1n << 255n) - 19n
    const le = (v: bigint, sign = false) => {
      const b = Buffer.from(v.toString(16).padStart(64, '0'), 'hex').reverse()
      if (sign) b[31]! |= 0x80
      return b64u(b)
    }
    const y8 = 2707385501144840649318225287225658788936804267575313519463743609750303402022n
    for (const y of [0n, 1n, p - 1n, y8, p - y8]) {
      for (const sign of [false, true]) {
        if (y === 1n && sign) continue // x = 0 with the sign bit set: refused as not a point, below
        assertRefused(keysetWith('k-so', 'EdDSA', { kty: 'OKP', crv: 'Ed25519', x: le(y, sign) }), /^keys\[1\]\.jwk\.x: is a small-order Ed25519 point/)
      }
    }
    for (const y of [p, p + 1n]) {
      assertRefused(keysetWith('k-nc', 'EdDSA', { kty: 'OKP', crv: 'Ed25519', x: le(y) }), /^keys\[1\]\.jwk\.x: is a non-canonical Ed25519 point encoding/)
    }
  })

  it('Ed448 small-order points and an Ed25519 y that is not on the curve are refused', async () => {
    const p448 = (1n << 448n) - (1n << 224n) - 1n
    const le57 = (v: bigint) => b64u(Buffer.concat([Buffer.from(v.toString(16).padStart(112, '0'), 'hex').reverse(), Buffer.alloc(1)]))
    for (const y of [0n, 1n, p448 - 1n]) {
      assertRefused(keysetWith('k-448', 'EdDSA', { kty: 'OKP', crv: 'Ed448', x: le57(y) }), /^keys\[1\]\.jwk\.x: is a small-order Ed448 point/)
    }
    // y = 2 on Ed25519: (y² − 1)/(d·y² + 1) is not a square mod p, so no x exists.
    const two = Buffer.alloc(32)
    two[0] = 2
    assertRefused(keysetWith('k-off', 'EdDSA', { kty: 'OKP', crv: 'Ed25519', x: b64u(two) }), /^keys\[1\]\.jwk\.x: is not a point on Ed25519/)
  })

  it('EC coordinates of the wrong length and points off the curve are refused', async () => {
    const ec = makeKey('ES256', 'k-ec').jwk
    const longX = b64u(Buffer.concat([Buffer.alloc(1), Buffer.from(ec.x!, 'base64url')]))
    assertRefused(
      keysetWith('k-ec', 'ES256', { kty: 'EC', crv: 'P-256', x: longX, y: ec.y }),
      /^keys\[1\]\.jwk(\.x: must be exactly 32 octets|: cannot be imported)/,
    )
    const y = Buffer.from(ec.y!, 'base64url')
    y[31]! ^= 1
    assertRefused(keysetWith('k-ec', 'ES256', { kty: 'EC', crv: 'P-256', x: ec.x, y: b64u(y) }), /^keys\[1\]\.jwk: cannot be imported/)
  })

  it('non-canonical base64url (stray low bits in the last character) is refused', async () => {
    const hs = makeKey('HS256', 'k-hs')
    const k = hs.jwk.k!
    const twin = k.slice(0, -1) + String.fromCharCode(k.charCodeAt(k.length - 1) + 1)
    assert.deepEqual(Buffer.from(twin, 'base64url'), Buffer.from(k, 'base64url'), 'precondition: both spellings decode to the same secret')
    const doc = makeKeyset([{ ...hs, jwk: { ...hs.jwk, k: twin } }])
    assertRefused(doc, /^keys\[0\]\.jwk\.k: is not canonical base64url/)
  })

  it('sound keys of every kind still load (the policy refuses nothing legitimate)', async () => {
    const keys = (['RS256', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'HS256', 'HS512'] as const).map((alg) => makeKey(alg, `k-${alg}`))
    const ed448: TestKey = { ...makeKey('EdDSA', 'k-ed448'), jwk: generatePrivateKey('ed448').export({ format: 'jwk' }) }
    const loaded = loadKeyset(makeKeyset([...keys, ed448]))
    assert.equal(loaded.keys.size, keys.length + 1)
  })

  it('end to end: keyset validate exits 1 and token verify refuses, where both used to accept the forged token', async () => {
    const jwk = { ...rsaPublic, e: 'AQ' }
    const input = unsignedInput('k-e1', 'RS256')
    const token = `${input}.${b64u(pkcs1Encoded(input, 256))}`
    const file = tmp.file('e1.json')
    fs.writeFileSync(file, JSON.stringify(keysetWith('k-e1', 'RS256', jwk)))
    const validate = await cbcJwt(['keyset', 'validate', '--keyset-file', file])
    assert.equal(validate.code, 1, validate.stdout + validate.stderr)
    assert.match(validate.stdout, /keys\[1\]\.jwk\.e: RSA public exponent 1 refused/)
    const verify = await cbcJwt(['token', 'verify', '--keyset-file', file, token])
    assert.equal(verify.code, 1, verify.stdout + verify.stderr)
    assert.doesNotMatch(verify.stdout, /admin/)
    // and the verifier, given only sound keys, has nothing that could accept it
    const verifier = createVerifier({ issuer: 'cbc-omega2', audience: 'cbc-api', clockToleranceSeconds: 30, maxTokenBytes: 8192 })
    assert.equal((await verifier.verify(token, loadKeyset(makeKeyset([signer])))).ok, false)
  })
})
