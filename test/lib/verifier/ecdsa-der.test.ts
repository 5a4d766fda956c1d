import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { p1363ToDer } from '../../../src/lib/verifier/ecdsa-der.js'
import { fuzzParameters } from '../../support/fuzz.js'
import { generatePrivateKey } from '../../support/keys.js'

const CURVES = [
  { curve: 'P-256', hash: 'sha256', half: 32 },
  { curve: 'P-384', hash: 'sha384', half: 48 },
  { curve: 'P-521', hash: 'sha512', half: 66 },
] as const

/** The DER a textbook encoder gives, from the numbers themselves: the oracle. */
function referenceDer(signature: Uint8Array): Buffer {
  const half = signature.length / 2
  const integer = (bytes: Uint8Array) => {
    let hex = BigInt(`0x${Buffer.from(bytes).toString('hex')}`).toString(16)
    if (hex.length % 2) hex = `0${hex}`
    let content = Buffer.from(hex, 'hex')
    if (content[0]! >= 0x80) content = Buffer.concat([Buffer.of(0), content])
    return Buffer.concat([Buffer.of(0x02, content.length), content])
  }
  const body = Buffer.concat([integer(signature.subarray(0, half)), integer(signature.subarray(half))])
  const length = body.length < 0x80 ? Buffer.of(body.length) : Buffer.of(0x81, body.length)
  return Buffer.concat([Buffer.of(0x30), length, body])
}

describe('p1363ToDer', () => {
  for (const { curve, half } of CURVES) {
    it(`${curve}: any r‖s encodes as the textbook DER of the two numbers`, () => {
      // Runs of zero bytes and high bits at the front of each half are where encoders go wrong.
      const scalar = fc.oneof(
        fc.uint8Array({ minLength: half, maxLength: half }),
        fc
          .tuple(fc.integer({ min: 0, max: half }), fc.integer({ min: 0, max: 255 }), fc.uint8Array({ minLength: half, maxLength: half }))
          .map(([zeros, next, rest]) => {
            const bytes = Uint8Array.from(rest)
            bytes.fill(0, 0, zeros)
            if (zeros < half) bytes[zeros] = next
            return bytes
          }),
      )
      fc.assert(
        fc.property(scalar, scalar, (r, s) => {
          const signature = Buffer.concat([r, s])
          assert.deepEqual(p1363ToDer(signature), referenceDer(signature))
        }),
        fuzzParameters(2000),
      )
    })
  }

  it('the edges by hand: zero, a lone high bit, all ones, and P-521 in the long form', () => {
    const p256 = (r: number[], s: number[]) =>
      p1363ToDer(Buffer.concat([Buffer.alloc(32 - r.length), Buffer.from(r), Buffer.alloc(32 - s.length), Buffer.from(s)]))
    assert.deepEqual(p256([], [1]), Buffer.of(0x30, 6, 0x02, 1, 0, 0x02, 1, 1))
    assert.deepEqual(p256([0x80], [0x7f]), Buffer.of(0x30, 7, 0x02, 2, 0, 0x80, 0x02, 1, 0x7f))
    const ones = p1363ToDer(Buffer.alloc(64, 0xff))
    assert.deepEqual(ones.subarray(0, 5), Buffer.of(0x30, 70, 0x02, 33, 0))
    const p521 = p1363ToDer(Buffer.alloc(132, 0xff))
    assert.deepEqual(p521.subarray(0, 6), Buffer.of(0x30, 0x81, 138, 0x02, 67, 0))
    assert.equal(p521.length, 3 + 138)
  })

  for (const { curve, hash, half } of CURVES) {
    it(`${curve}: OpenSSL gives the DER form the same answer as Node's own P1363 check`, () => {
      const privateKey = generatePrivateKey('ec', { namedCurve: curve })
      const publicKey = crypto.createPublicKey(privateKey)
      const p1363 = { key: publicKey, dsaEncoding: 'ieee-p1363' as const }
      let leadingZero = 0
      let checked = 0
      // 200 signatures, and on until three have an r or s that starts with a zero byte (1
      // signature in 128 on P-256 and P-384): each verified, and again with one bit flipped.
      for (let i = 0; (checked < 200 || leadingZero < 3) && i < 50_000; i++) {
        const input = crypto.randomBytes(40)
        const signature = crypto.sign(hash, input, { key: privateKey, dsaEncoding: 'ieee-p1363' })
        const zeroFirst = signature[0] === 0 || signature[half] === 0
        if (checked >= 200 && !zeroFirst) continue
        if (zeroFirst) leadingZero++
        checked++
        assert.equal(crypto.verify(hash, input, publicKey, p1363ToDer(signature)), true)
        const flipped = Buffer.from(signature)
        flipped[i % flipped.length]! ^= 1 << (i % 8)
        assert.equal(crypto.verify(hash, input, publicKey, p1363ToDer(flipped)), crypto.verify(hash, input, p1363, flipped))
      }
      assert.ok(leadingZero >= 3, 'too few signatures with a leading zero byte: the case is not covered')
      const input = crypto.randomBytes(40)
      for (const forged of [Buffer.alloc(half * 2), Buffer.concat([Buffer.alloc(half), Buffer.alloc(half, 1)])]) {
        assert.equal(crypto.verify(hash, input, publicKey, p1363ToDer(forged)), false)
      }
    })
  }
})
