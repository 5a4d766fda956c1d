import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import { describe, it } from 'node:test'
import util from 'node:util'
import { ERROR_CODES } from '../../../src/lib/errors.js'
import { MAX_KEYSET_BYTES } from '../../../src/lib/keyset/document.js'
import { loadKeyset, parseKeysetText } from '../../../src/lib/keyset/load.js'
import { generatePrivateKey, keyEntry, makeKey, makeKeyset, type TestKey } from '../../support/keys.js'
import { assertNoPrivateMaterial, clone, invalid, lines } from './fixtures.js'

const NOW = Date.parse('2026-11-25T21:16:00Z')
const at = (offsetMs: number) => new Date(NOW + offsetMs)
const HOUR = 3600_000

const es256 = makeKey('ES256', 'k-es256')
const es256b = makeKey('ES256', 'k-es256-b')
const es384 = makeKey('ES384', 'k-es384')
const ed = makeKey('EdDSA', 'k-ed')
const ed2 = makeKey('EdDSA', 'k-ed-2')
const rs = makeKey('RS256', 'k-rs')
const hs = makeKey('HS256', 'k-hs')

/** The public half of a test key (a key that can verify but not sign). */
function publicOnly(key: TestKey): TestKey {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = key.jwk
  return { ...key, jwk: pub }
}

function withJwk(key: TestKey, jwk: crypto.JsonWebKey, kid = key.kid): TestKey {
  return { ...key, kid, jwk }
}

/** current ES256, a staged EdDSA, a verify-only RS256, an HS256 key. */
function goodDoc(): Record<string, unknown> {
  return makeKeyset(
    [
      { key: es256, opts: { createdAt: at(-HOUR) } },
      { key: ed, opts: { createdAt: at(-2 * HOUR) } },
      { key: rs, opts: { createdAt: at(-48 * HOUR), notAfter: at(24 * HOUR) } },
      { key: hs, opts: { createdAt: at(-3 * HOUR) } },
    ],
    { revoked_before: '2026-11-25T20:00:00Z' },
  )
}

describe('loadKeyset: a valid keyset', () => {
  it('imports every key once and derives each status from the document', () => {
    const ks = loadKeyset(goodDoc(), NOW)
    assert.equal(ks.current.kid, 'k-es256')
    assert.deepEqual(
      [...ks.keys.values()].map((k) => [k.kid, k.status, k.signingKey !== undefined]),
      [
        ['k-es256', 'current', true],
        ['k-ed', 'staged', true],
        ['k-rs', 'verify-only', true],
        ['k-hs', 'staged', true],
      ],
    )
    assert.equal(ks.keys.get('k-rs')!.notAfter, NOW + 24 * HOUR)
    assert.equal(ks.keys.get('k-es256')!.createdAt, NOW - HOUR)
    assert.equal(ks.revokedBefore, Date.parse('2026-11-25T20:00:00Z') / 1000)
  })

  it('publishes no private member in publicJwk, and none at all for an HMAC key', () => {
    const ks = loadKeyset(goodDoc(), NOW)
    for (const key of ks.keys.values()) {
      if (key.alg === 'HS256') assert.equal(key.publicJwk, undefined)
      else for (const m of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) assert.ok(!(m in key.publicJwk!), `${key.kid} publishes ${m}`)
    }
  })

  // A loaded keyset logged by mistake (console.log, util.inspect in a crash report, a JSON
  // logger) printed its document whole: every private key's d, p, q and every HMAC secret.
  it('a loaded keyset printed (util.inspect, JSON) shows no private or secret member', () => {
    const doc = goodDoc()
    const ks = loadKeyset(clone(doc), NOW)
    const inspected = util.inspect(ks, { depth: Number.POSITIVE_INFINITY })
    assertNoPrivateMaterial(inspected, doc, 'util.inspect of a loaded keyset')
    assertNoPrivateMaterial(JSON.stringify(ks), doc, 'JSON of a loaded keyset')
    // Positive controls: what it prints is the keyset, and the document itself is still whole.
    assert.match(inspected, /k-es256/)
    assert.deepEqual(ks.document, doc)
  })

  it('accepts a kid of exactly 128 characters of the whole grammar', () => {
    const kid = 'Az09._:-'.repeat(16)
    assert.equal(loadKeyset(makeKeyset([withJwk(es256, es256.jwk, kid)]), NOW).current.kid, kid)
  })
})

describe('loadKeyset: semantic checks name the JSON path', () => {
  it('a curve that does not fit the alg: keys[2].jwk.crv: ES256 needs P-256', () => {
    const doc = makeKeyset([es256, ed, withJwk(es384, es384.jwk, 'k-wrong-curve')])
    ;(doc.keys as Array<Record<string, unknown>>)[2]!.alg = 'ES256'
    assert.deepEqual(lines(invalid(() => loadKeyset(doc, NOW)).problems), ['keys[2].jwk.crv: ES256 needs P-256'])
  })

  it('a kty that does not fit the alg (an EC key declared HS256, an oct key declared RS256)', () => {
    const doc = makeKeyset([es256, { ...hs, alg: 'RS256' }, { ...es256b, alg: 'HS256' }])
    assert.deepEqual(lines(invalid(() => loadKeyset(doc, NOW)).problems), ['keys[1].jwk.kty: RS256 needs kty RSA', 'keys[2].jwk.kty: HS256 needs kty oct'])
  })

  // Found by probing `keyset validate`: an EC key with a `k` (secret) member passed, as a signing
  // keyset and as a "valid verification keyset", and the projection published it. A member of
  // another key type is no part of this key: refused like any unknown field.
  it('a member of another key type (a k on an EC key, x on an RSA key, n on an OKP key) is refused', () => {
    const secret = 'c2VjcmV0LXN5bW1ldHJpYy1rZXktbWF0ZXJpYWw'
    const doc = makeKeyset([
      withJwk(es256, { ...es256.jwk, k: secret } as crypto.JsonWebKey),
      withJwk(rs, { ...rs.jwk, x: es256.jwk.x } as crypto.JsonWebKey),
      withJwk(ed, { ...ed.jwk, n: rs.jwk.n } as crypto.JsonWebKey),
      withJwk(hs, { ...hs.jwk, d: secret } as crypto.JsonWebKey),
    ])
    assert.deepEqual(lines(invalid(() => loadKeyset(doc, NOW)).problems), [
      'keys[0].jwk.k: not a member of an EC key',
      'keys[1].jwk.x: not a member of an RSA key',
      'keys[2].jwk.n: not a member of an OKP key',
      'keys[3].jwk.d: not a member of an oct key',
    ])
    // The public halves, one with a stray k: not a verification keyset either.
    const pub = makeKeyset([withJwk(es256, { ...publicOnly(es256).jwk, k: secret } as crypto.JsonWebKey)])
    assert.deepEqual(lines(invalid(() => loadKeyset(pub, NOW)).problems), ['keys[0].jwk.k: not a member of an EC key'])
  })

  it('current names no key', () => {
    const err = invalid(() => loadKeyset(makeKeyset([es256], { current: 'k-nope' }), NOW))
    assert.equal(err.code, ERROR_CODES.KEYSET_INVALID)
    assert.equal(err.reason, 'invalid_keyset')
    assert.deepEqual(lines(err.problems), ['current: no key has kid "k-nope"'])
  })

  it('a keyset mixing private and public-only keys is refused, naming each public one', () => {
    const err = invalid(() => loadKeyset(makeKeyset([publicOnly(es256), ed, publicOnly(rs)]), NOW))
    assert.deepEqual(lines(err.problems), [
      'keys[0].jwk: has no private part while keys[1] has one: a keyset is either for signing (every key private) or for verification (no key private), never mixed',
      'keys[2].jwk: has no private part while keys[1] has one: a keyset is either for signing (every key private) or for verification (no key private), never mixed',
    ])
  })

  it('an HS* secret beside public-only keys is refused: a verification keyset cannot hold a secret', () => {
    const err = invalid(() => loadKeyset(makeKeyset([publicOnly(es256), hs]), NOW))
    assert.deepEqual(lines(err.problems), [
      'keys[1].jwk: an HS* (oct) key is secret by nature (it signs as well as verifies): a keyset of public keys (a verification keyset) cannot hold one',
    ])
  })

  it('a current key past its not_after', () => {
    const doc = makeKeyset([{ key: es256, opts: { notAfter: at(-1) } }])
    assert.deepEqual(lines(invalid(() => loadKeyset(doc, NOW)).problems), ['keys[0].not_after: the current key is past its not_after and cannot verify'])
    // At the instant itself the key has stopped verifying (the verifier's bound is `now < not_after`).
    assert.deepEqual(lines(invalid(() => loadKeyset(doc, NOW - 1)).problems), ['keys[0].not_after: the current key is past its not_after and cannot verify'])
    assert.equal(loadKeyset(doc, NOW - 2).current.kid, 'k-es256')
  })

  it('duplicate kids, with the index of the first', () => {
    const doc = makeKeyset([es256, ed, withJwk(es256b, es256b.jwk, 'k-es256')])
    assert.deepEqual(lines(invalid(() => loadKeyset(doc, NOW)).problems), ['keys[2].kid: duplicate kid "k-es256" (also keys[0])'])
  })

  // keyset validate lists every problem: a second key under a kid already taken was skipped
  // whole, so its bad material showed only once the kid was fixed.
  it('a key with a duplicate kid has its material checked too', () => {
    const small = generatePrivateKey('rsa', { modulusLength: 1024 }).export({ format: 'jwk' })
    const doc = makeKeyset([es256, withJwk(rs, small, 'k-es256'), withJwk(es256b, { ...es256b.jwk, d: es256.jwk.d! }, 'k-es256')])
    assert.deepEqual(lines(invalid(() => loadKeyset(doc, NOW)).problems), [
      'keys[1].kid: duplicate kid "k-es256" (also keys[0])',
      'keys[1].jwk.n: RSA key is 1024 bits; at least 2048 required',
      'keys[2].kid: duplicate kid "k-es256" (also keys[0])',
      'keys[2].jwk: the private part does not match the public part',
    ])
  })

  it('RSA 1024 is refused', () => {
    const small = generatePrivateKey('rsa', { modulusLength: 1024 }).export({ format: 'jwk' })
    const doc = makeKeyset([es256, withJwk(rs, small, 'k-rsa-1024')])
    assert.deepEqual(lines(invalid(() => loadKeyset(doc, NOW)).problems), ['keys[1].jwk.n: RSA key is 1024 bits; at least 2048 required'])
  })

  it('RSA of 2047 bits is refused: the floor is exactly 2048 (the RS256 key of goodDoc has 2048)', () => {
    const short = generatePrivateKey('rsa', { modulusLength: 2047 }).export({ format: 'jwk' })
    const doc = makeKeyset([es256, withJwk(rs, short, 'k-rsa-2047')])
    assert.deepEqual(lines(invalid(() => loadKeyset(doc, NOW)).problems), ['keys[1].jwk.n: RSA key is 2047 bits; at least 2048 required'])
    assert.equal(loadKeyset(goodDoc(), NOW).keys.get('k-rs')!.verifyKey.asymmetricKeyDetails!.modulusLength, 2048)
  })

  it('an HMAC secret shorter than the hash is refused (HS256 with 16 bytes, HS512 with 48)', () => {
    const short = (bytes: number) => ({ kty: 'oct', k: crypto.randomBytes(bytes).toString('base64url') })
    const doc = makeKeyset([es256, withJwk(hs, short(16), 'k-hs-16'), { ...withJwk(hs, short(48), 'k-hs512-48'), alg: 'HS512' }])
    assert.deepEqual(lines(invalid(() => loadKeyset(doc, NOW)).problems), [
      'keys[1].jwk.k: HS256 needs a secret of at least 32 bytes (got 16)',
      'keys[2].jwk.k: HS512 needs a secret of at least 64 bytes (got 48)',
    ])
  })

  it('an HMAC secret of exactly the hash size is accepted, one byte less is refused (CONTRACT §1)', () => {
    const secret = (bytes: number) => ({ kty: 'oct', k: crypto.randomBytes(bytes).toString('base64url') })
    const sizes = [
      ['HS256', 32],
      ['HS384', 48],
      ['HS512', 64],
    ] as const
    const exact = makeKeyset(sizes.map(([alg, bytes]) => ({ ...withJwk(hs, secret(bytes), `k-${alg}`), alg })))
    assert.equal(loadKeyset(exact, NOW).keys.size, 3)
    const short = makeKeyset(sizes.map(([alg, bytes]) => ({ ...withJwk(hs, secret(bytes - 1), `k-${alg}`), alg })))
    assert.deepEqual(
      lines(invalid(() => loadKeyset(short, NOW)).problems),
      sizes.map(([alg, bytes], i) => `keys[${i}].jwk.k: ${alg} needs a secret of at least ${bytes} bytes (got ${bytes - 1})`),
    )
  })

  it('an HMAC key without k is named as missing its secret, not as a short one', () => {
    const doc = makeKeyset([es256, withJwk(hs, { kty: 'oct' })])
    assert.deepEqual(lines(invalid(() => loadKeyset(doc, NOW)).problems), ['keys[1].jwk.k: is required'])
  })

  it('a jwk.alg (or jwk.kid) that differs from the entry', () => {
    const doc = makeKeyset([es256, withJwk(ed, { ...ed.jwk, alg: 'ES256' }), withJwk(es256b, { ...es256b.jwk, kid: 'other' })])
    assert.deepEqual(lines(invalid(() => loadKeyset(doc, NOW)).problems), [
      'keys[1].jwk.alg: "ES256" differs from the key\'s alg "EdDSA"',
      'keys[2].jwk.kid: "other" differs from the key\'s kid "k-es256-b"',
    ])
  })

  it('a private part that does not match its public part (d swapped between two EC keys, two Ed25519 keys)', () => {
    const doc = makeKeyset([
      es256,
      withJwk(es256b, { ...es256b.jwk, d: es256.jwk.d! }, 'k-swap-1'),
      withJwk(es256, { ...es256.jwk, d: es256b.jwk.d! }, 'k-swap-2'),
      withJwk(ed2, { ...ed2.jwk, d: ed.jwk.d! }, 'k-swap-ed'),
    ])
    const err = invalid(() => loadKeyset(doc, NOW))
    assert.deepEqual(lines(err.problems), [
      'keys[1].jwk: the private part does not match the public part',
      'keys[2].jwk: the private part does not match the public part',
      'keys[3].jwk: the private part does not match the public part',
    ])
    assertNoPrivateMaterial(err.message, doc, 'the error message')
  })

  it('material that cannot be imported (an x that is not a point of the curve)', () => {
    const doc = makeKeyset([es256, withJwk(es256b, { ...publicOnly(es256b).jwk, x: 'AAAA' })])
    assert.deepEqual(lines(invalid(() => loadKeyset(doc, NOW)).problems), ['keys[1].jwk: cannot be imported as an EC key for ES256'])
  })

  it('lists every semantic problem at once, not just the first', () => {
    const small = generatePrivateKey('rsa', { modulusLength: 1024 }).export({ format: 'jwk' })
    const doc = makeKeyset([
      publicOnly(es256),
      { ...withJwk(es384, es384.jwk, 'k-x'), alg: 'ES256' },
      withJwk(rs, small, 'k-small'),
      withJwk(ed, ed.jwk, 'k-x'),
    ])
    assert.deepEqual(lines(invalid(() => loadKeyset(doc, NOW)).problems), [
      'keys[1].jwk.crv: ES256 needs P-256',
      'keys[2].jwk.n: RSA key is 1024 bits; at least 2048 required',
      'keys[3].kid: duplicate kid "k-x" (also keys[1])',
      'keys[0].jwk: has no private part while keys[3] has one: a keyset is either for signing (every key private) or for verification (no key private), never mixed',
    ])
  })
})

describe('attack: terminal escapes written into the keyset never reach a problem raw', () => {
  it('an unknown field named with ESC/CSI, a jwk.alg and a jwk.kid holding them: escaped, quoted, bounded', () => {
    const doc = makeKeyset([es256, withJwk(es256b, { ...es256b.jwk, alg: '\u001b[31mES256', kid: `\u202e${'x'.repeat(100)}` })])
    doc['x\u001b[2Jy'] = 1
    const problems = lines(invalid(() => loadKeyset(doc, NOW)).problems)
    assert.deepEqual(problems, [
      'x\\x1b[2Jy: unknown field',
      `keys[1].jwk.alg: "\\u001b[31mES256" differs from the key's alg "ES256"`,
      `keys[1].jwk.kid: "\\u202e${'x'.repeat(63)}" differs from the key's kid "k-es256-b"`,
    ])
    for (const line of problems) assert.match(line, /^[\x20-\x7e]*$/, 'printable ASCII only')
  })
})

describe('loadKeyset: the schema comes first', () => {
  it('an unknown top-level field, an unknown key field, an unknown JWK member', () => {
    const doc = goodDoc()
    doc.curent = 'typo'
    const keys = doc.keys as Array<Record<string, unknown>>
    keys[1]!.notafter = '2026-12-01T00:00:00Z'
    keys[2]!.jwk = { ...(keys[2]!.jwk as object), x5c: ['MII…'] }
    assert.deepEqual(lines(invalid(() => loadKeyset(doc, NOW)).problems), [
      'curent: unknown field',
      'keys[1].notafter: unknown field',
      'keys[2].jwk.x5c: unknown field',
    ])
  })

  it('dates that are not RFC 3339', () => {
    const doc = goodDoc()
    doc.revoked_before = '2026-02-30T00:00:00Z'
    const keys = doc.keys as Array<Record<string, unknown>>
    keys[0]!.created_at = 'yesterday'
    keys[2]!.not_after = '2026-11-26T21:16:00'
    keys[3]!.created_at = 1795641360
    const msg = 'must be an RFC 3339 date-time (e.g. 2026-11-25T21:16:00Z)'
    assert.deepEqual(lines(invalid(() => loadKeyset(doc, NOW)).problems), [
      `revoked_before: ${msg}`,
      `keys[0].created_at: ${msg}`,
      `keys[2].not_after: ${msg}`,
      'keys[3].created_at: must be string',
    ])
  })

  // A date the schema's format accepts but Date.parse cannot read becomes NaN: a not_after of
  // NaN never expires in the verifier (`now >= NaN` is false), a revoked_before of NaN revokes
  // nothing (`iat < NaN` is false), a created_at of NaN makes the age gauge NaN. Such a keyset
  // must be refused, not loaded.
  for (const date of ['2016-12-31T23:59:60Z', '2026-11-26T21:16:00+01']) {
    it(`a date-time that passes the format but cannot be read (${date}) is refused, never NaN`, () => {
      const doc = goodDoc()
      doc.revoked_before = date
      ;(doc.keys as Array<Record<string, unknown>>)[2]!.not_after = date
      const loaded = (() => {
        try {
          return loadKeyset(doc, NOW)
        } catch {
          return undefined
        }
      })()
      if (loaded) {
        assert.fail(
          `accepted: revokedBefore=${loaded.revokedBefore}, keys[2].notAfter=${loaded.keys.get('k-rs')?.notAfter} ` +
            '(NaN: the revocation and the expiry are silently ignored)',
        )
      }
    })
  }

  it('kid grammar: a space, an empty kid, 129 characters, a bad current', () => {
    const doc = makeKeyset([withJwk(es256, es256.jwk, 'k 1'), withJwk(ed, ed.jwk, ''), withJwk(hs, hs.jwk, 'x'.repeat(129))], { current: 'k/1' })
    const grammar = 'must be 1–128 characters of [A-Za-z0-9._:-]'
    assert.deepEqual(lines(invalid(() => loadKeyset(doc, NOW)).problems), [
      `current: ${grammar}`,
      `keys[0].kid: ${grammar}`,
      'keys[1].kid: must NOT have fewer than 1 characters',
      `keys[1].kid: ${grammar}`,
      'keys[2].kid: must NOT have more than 128 characters',
    ])
  })

  it('lists schema and meaning problems together: a typoed field, a duplicate kid and a missing current in one run', () => {
    const doc = makeKeyset([es256, withJwk(es256b, es256b.jwk, 'k-es256')], { current: 'k-nowhere' })
    doc.extra = true
    ;(doc.keys as Array<Record<string, unknown>>)[0]!.not_afer = '2026-12-01T00:00:00Z'
    assert.deepEqual(lines(invalid(() => loadKeyset(doc, NOW)).problems), [
      'extra: unknown field',
      'keys[0].not_afer: unknown field',
      'keys[1].kid: duplicate kid "k-es256" (also keys[0])',
      'current: no key has kid "k-nowhere"',
    ])
  })

  it('a key with a schema problem is not imported, and its meaning problems are not guessed at', () => {
    const doc = makeKeyset([es256, es256b])
    ;(doc.keys as Array<Record<string, unknown>>)[1]!.alg = 'ES999'
    assert.deepEqual(lines(invalid(() => loadKeyset(doc, NOW)).problems), [
      'keys[1].alg: must be one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA',
    ])
  })

  it('a document that is not an object with a keys array reports the schema alone', () => {
    for (const doc of [null, [], 'keyset', { version: 1, current: 'k', keys: 'none' }]) {
      const err = invalid(() => loadKeyset(doc, NOW))
      assert.ok(err.problems.length > 0)
    }
  })
})

describe('parseKeysetText', () => {
  it('invalid JSON: reason invalid_json, and the message quotes nothing of the document', () => {
    const text = JSON.stringify(goodDoc(), null, 2)
    for (const broken of [text.slice(0, Math.floor(text.length / 2)), text.replace('"kty"', 'kty'), `${text}}`, `'${text}'`]) {
      const err = invalid(() => parseKeysetText(broken))
      assert.equal(err.reason, 'invalid_json')
      assert.equal(err.code, ERROR_CODES.KEYSET_INVALID)
      assert.match(err.message, /^invalid keyset: not valid JSON( \(at position \d+\))?$/)
      assertNoPrivateMaterial(err.message, goodDoc(), 'the error message')
    }
  })

  it('a document over the size limit is refused before parsing', () => {
    const err = invalid(() => parseKeysetText(`"${'a'.repeat(MAX_KEYSET_BYTES)}"`))
    assert.equal(err.reason, 'invalid_json')
    assert.deepEqual(lines(err.problems), [`document is larger than ${MAX_KEYSET_BYTES} bytes`])
  })

  it('the size limit counts bytes, not characters, and a document of exactly the limit is read', () => {
    assert.equal((parseKeysetText(`"${'a'.repeat(MAX_KEYSET_BYTES - 2)}"`) as string).length, MAX_KEYSET_BYTES - 2)
    // Half as many characters as the limit, each of two bytes in UTF-8: over the limit.
    const err = invalid(() => parseKeysetText(`"${'é'.repeat(MAX_KEYSET_BYTES / 2)}"`))
    assert.deepEqual(lines(err.problems), [`document is larger than ${MAX_KEYSET_BYTES} bytes`])
  })

  it('a member named twice in one object is refused: a reviewer reads the first, JSON.parse keeps the last', () => {
    const text = JSON.stringify(goodDoc(), null, 2)
    for (const [twice, name] of [
      [text.replace('"current": "k-es256",', '"current": "k-es256",\n  "current": "k-other",'), 'current'],
      [text.replace('"kty": "EC",', '"kty": "EC", "crv": "P-384",'), 'crv'],
      [text.replace('"version": 1', '"version": 1, "revoked_before": "2026-01-01T00:00:00Z", "revoked_before": "2026-01-02T00:00:00Z"'), 'revoked_before'],
      ['{"keys": [], "a\\u0062": 1, "ab": 2}', 'ab'],
    ] as const) {
      const err = invalid(() => parseKeysetText(twice))
      assert.equal(err.reason, 'invalid_json')
      assert.deepEqual(lines(err.problems), [`the member "${name}" appears twice in one object (RFC 7493 I-JSON: which one counts differs between readers)`])
      assertNoPrivateMaterial(err.message, goodDoc(), 'the error message')
    }
    // The same name in two objects, and a value that looks like a name, are fine.
    assert.deepEqual(parseKeysetText('{"a": {"k": 1}, "b": {"k": "\\"k\\": 2, {"}, "c": [{"k": 1}, {"k": 2}]}'), {
      a: { k: 1 },
      b: { k: '"k": 2, {' },
      c: [{ k: 1 }, { k: 2 }],
    })
  })

  it('text that parses goes on to loadKeyset', () => {
    assert.equal(loadKeyset(parseKeysetText(JSON.stringify(goodDoc())), NOW).current.kid, 'k-es256')
  })
})

describe('a rejected keyset never reveals private key material', () => {
  // Every way to break a document built from real keys; none of the messages may carry a value
  // of d, p, q, dp, dq, qi or k.
  const small = generatePrivateKey('rsa', { modulusLength: 1024 }).export({ format: 'jwk' })
  const cases: Array<[string, () => Record<string, unknown>]> = [
    ['alg mismatch', () => makeKeyset([es256, { ...rs, alg: 'ES256' }, { ...hs, alg: 'RS256' }])],
    ['pair mismatch', () => makeKeyset([es256, withJwk(es256b, { ...es256b.jwk, d: es256.jwk.d! }, 'k-2')])],
    ['RSA too small', () => makeKeyset([es256, withJwk(rs, small)])],
    ['HMAC too short', () => makeKeyset([es256, withJwk(hs, { kty: 'oct', k: hs.jwk.k!.slice(0, 20) })])],
    ['d not base64url', () => makeKeyset([es256, withJwk(es256b, { ...es256b.jwk, d: `${es256b.jwk.d!}+/=` })])],
    ['k of the wrong type', () => makeKeyset([es256, withJwk(hs, { kty: 'oct', k: [hs.jwk.k!] } as unknown as crypto.JsonWebKey)])],
    ['public current among private keys', () => makeKeyset([publicOnly(es256), rs, hs])],
    ['unknown members next to d', () => makeKeyset([withJwk(es256, { ...es256.jwk, secret: es256.jwk.d } as crypto.JsonWebKey), rs])],
    ['duplicate kid', () => makeKeyset([es256, withJwk(hs, hs.jwk, 'k-es256'), rs])],
  ]
  for (const [name, build] of cases) {
    it(name, () => {
      const doc = build()
      const err = invalid(() => loadKeyset(clone(doc), NOW))
      assert.ok(err.problems.length > 0)
      assertNoPrivateMaterial(`${err.message}\n${JSON.stringify(err.problems)}\n${String(err.stack)}`, doc, `the error for "${name}"`)
    })
  }

  it('the detector itself finds a leaked value (so the cases above can fail)', () => {
    const doc = makeKeyset([rs])
    assert.throws(() => assertNoPrivateMaterial(`keys[0]: bad ${(keyEntry(rs).jwk as crypto.JsonWebKey).q!}`, doc), /private key material/)
  })
})
