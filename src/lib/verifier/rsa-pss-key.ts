import crypto from 'node:crypto'

export type PssHash = 'sha256' | 'sha384' | 'sha512'

/**
 * RSASSA-PSS AlgorithmIdentifiers (RFC 4055 §3.1) with RFC 7518 §3.5's parameters: the hash,
 * MGF1 with the same hash, a salt as long as the digest. DER, exactly as OpenSSL writes them
 * for a key generated with those parameters (a test checks that they still are).
 */
const PSS_ALGORITHM = {
  sha256: '304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d06096086480165030402010500a203020120',
  sha384: '304106092a864886f70d01010a3034a00f300d06096086480165030402020500a11c301a06092a864886f70d010108300d06096086480165030402020500a203020130',
  sha512: '304106092a864886f70d01010a3034a00f300d06096086480165030402030500a11c301a06092a864886f70d010108300d06096086480165030402030500a203020140',
} as const satisfies Record<PssHash, string>

/** rsaEncryption with its NULL parameters: the AlgorithmIdentifier of every plain RSA SubjectPublicKeyInfo. */
const RSA_ENCRYPTION = Buffer.from('300d06092a864886f70d0101010500', 'hex')

/**
 * The same RSA public key as an `rsa-pss` KeyObject that carries RFC 7518 §3.5's parameters
 * for `hash`, so that a verify needs nothing beside the key.
 *
 * Why: Node 24 charges ≈ 10 µs per call for a `{ key, padding, saltLength }` object in place
 * of a bare KeyObject, and PSS needs those options: a PS256 verify cost 34–47 µs there against
 * 20–30 µs on Node 22 (docs/performance.md). A key that carries its parameters verifies at the
 * bare key's cost. OpenSSL also holds such a key to them: a salt of any other length fails, and
 * a verify with another hash is refused outright.
 *
 * Node makes an `rsa-pss` key only by generating one or from a SubjectPublicKeyInfo, so the
 * key's own SubjectPublicKeyInfo is re-labelled: the same public key bits under the
 * RSASSA-PSS AlgorithmIdentifier. Throws if Node's export is not the plain RSA form expected.
 */
export function rsaPssVerifyKey(rsaKey: crypto.KeyObject, hash: PssHash): crypto.KeyObject {
  const spki = rsaKey.export({ type: 'spki', format: 'der' })
  const outer = derElement(spki, 0)
  const algorithm = derElement(spki, outer.contentStart)
  if (outer.end !== spki.length || !spki.subarray(outer.contentStart, algorithm.end).equals(RSA_ENCRYPTION)) {
    throw new Error('an RSA public key did not export as a plain RSA SubjectPublicKeyInfo')
  }
  const body = Buffer.concat([Buffer.from(PSS_ALGORITHM[hash], 'hex'), spki.subarray(algorithm.end)])
  return crypto.createPublicKey({ key: Buffer.concat([Buffer.of(0x30), derLength(body.length), body]), format: 'der', type: 'spki' })
}

/** One DER element's content start and end, from its tag at `at` (lengths up to 4 octets). */
function derElement(der: Buffer, at: number): { contentStart: number; end: number } {
  const first = der[at + 1]!
  if (first < 0x80) return { contentStart: at + 2, end: at + 2 + first }
  const octets = first & 0x7f
  if (octets === 0 || octets > 4) throw new Error('an RSA SubjectPublicKeyInfo has a DER length this reader does not take')
  const length = der.readUIntBE(at + 2, octets)
  return { contentStart: at + 2 + octets, end: at + 2 + octets + length }
}

/** A DER length: short form below 128, else the fewest octets that hold it. */
function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.of(length)
  let octets = 1
  while (length >= 256 ** octets) octets++
  const encoded = Buffer.alloc(1 + octets)
  encoded[0] = 0x80 | octets
  encoded.writeUIntBE(length, 1, octets)
  return encoded
}
