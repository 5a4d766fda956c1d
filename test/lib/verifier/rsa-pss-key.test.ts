import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import { describe, it } from 'node:test'
import { rsaPssVerifyKey, type PssHash } from '../../../src/lib/verifier/rsa-pss-key.js'
import { generatePrivateKey } from '../../support/keys.js'

const HASHES: readonly PssHash[] = ['sha256', 'sha384', 'sha512']
const digestBytes = (hash: PssHash) => Number(hash.slice(3)) / 8
const PSS = crypto.constants.RSA_PKCS1_PSS_PADDING

/** A SubjectPublicKeyInfo's AlgorithmIdentifier and its BIT STRING (the public key itself), as DER. */
function spkiParts(key: crypto.KeyObject): { algorithm: string; subjectPublicKey: string } {
  const spki = key.export({ type: 'spki', format: 'der' })
  const contentAt = (at: number) => (spki[at + 1]! < 0x80 ? at + 2 : at + 2 + (spki[at + 1]! & 0x7f))
  const algorithmAt = contentAt(0)
  const algorithmEnd = contentAt(algorithmAt) + spki[algorithmAt + 1]!
  return { algorithm: spki.subarray(algorithmAt, algorithmEnd).toString('hex'), subjectPublicKey: spki.subarray(algorithmEnd).toString('hex') }
}

describe('rsaPssVerifyKey', () => {
  // 1024 bits puts the SubjectPublicKeyInfo's length in one octet, 2048 in two.
  const rsaKeys = [1024, 2048].map((modulusLength) => {
    const privateKey = generatePrivateKey('rsa', { modulusLength })
    return { privateKey, publicKey: crypto.createPublicKey(privateKey) }
  })

  for (const hash of HASHES) {
    it(`${hash}: the AlgorithmIdentifier is the one OpenSSL writes for a key generated with RFC 7518's parameters`, () => {
      const publicKey = crypto.createPublicKey(
        generatePrivateKey('rsa-pss', { modulusLength: 1024, hashAlgorithm: hash, mgf1HashAlgorithm: hash, saltLength: digestBytes(hash) }),
      )
      const made = rsaPssVerifyKey(rsaKeys[0]!.publicKey, hash)
      assert.equal(made.asymmetricKeyType, 'rsa-pss')
      assert.equal(spkiParts(made).algorithm, spkiParts(publicKey).algorithm)
      const { hashAlgorithm, mgf1HashAlgorithm, saltLength } = made.asymmetricKeyDetails!
      assert.deepEqual({ hashAlgorithm, mgf1HashAlgorithm, saltLength }, { hashAlgorithm: hash, mgf1HashAlgorithm: hash, saltLength: digestBytes(hash) })
    })
  }

  for (const [i, { publicKey, privateKey }] of rsaKeys.entries()) {
    const bits = [1024, 2048][i]!
    it(`${bits}-bit key: the same public key, and it verifies exactly RFC 7518 §3.5's signatures`, () => {
      // PSS needs the modulus to hold the digest, the salt and two octets: not SHA-512's at 1024 bits.
      for (const hash of HASHES.filter((h) => bits / 8 >= 2 * digestBytes(h) + 2)) {
        const pss = rsaPssVerifyKey(publicKey, hash)
        assert.equal(spkiParts(pss).subjectPublicKey, spkiParts(publicKey).subjectPublicKey)
        assert.equal(pss.asymmetricKeyDetails!.modulusLength, bits)
        const input = crypto.randomBytes(50)
        const signed = (saltLength: number) => crypto.sign(hash, input, { key: privateKey, padding: PSS, saltLength })
        assert.equal(crypto.verify(hash, input, pss, signed(digestBytes(hash))), true, `${hash}: the digest-length salt`)
        assert.equal(
          crypto
            .createVerify(hash)
            .update(input)
            .verify(pss, signed(digestBytes(hash))),
          true,
          `${hash}: through a Verify`,
        )
        for (const salt of [0, digestBytes(hash) - 1, digestBytes(hash) + 1]) {
          assert.equal(crypto.verify(hash, input, pss, signed(salt)), false, `${hash}: salt ${salt}`)
        }
        // PKCS#1 v1.5 under the same key is not a PSS signature.
        assert.equal(crypto.verify(hash, input, pss, crypto.sign(hash, input, privateKey)), false, `${hash}: PKCS#1 v1.5`)
        // Another hash's valid PSS signature: the key refuses the hash itself (signed outside the
        // assertion, so that only the verify can be what throws).
        const other = HASHES.find((h) => h !== hash)!
        const underOtherHash = crypto.sign(other, input, { key: privateKey, padding: PSS, saltLength: digestBytes(other) })
        assert.throws(() => crypto.verify(other, input, pss, underOtherHash), { code: 'ERR_OSSL_DIGEST_NOT_ALLOWED' })
      }
    })
  }

  it('refuses a key that does not export as a plain RSA SubjectPublicKeyInfo', () => {
    const ec = crypto.createPublicKey(generatePrivateKey('ec', { namedCurve: 'P-256' }))
    assert.throws(() => rsaPssVerifyKey(ec, 'sha256'), /plain RSA SubjectPublicKeyInfo/)
  })
})
