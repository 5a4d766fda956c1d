// Attack: parser abuse — truncated or re-encoded segments, wrong segment counts, critical
// extensions the verifier does not implement, duplicate and `__proto__` members in the
// header. Each must end in a reason from the closed set; none may crash or pollute.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { rawSignature, signToken } from '../support/keys.js'
import { b64u, claimsAt, forge, keyPool, segment, verifierAt } from '../lib/verifier/fixtures.js'

describe('attack: malformed input', () => {
  const { byAlg, keyset } = keyPool()
  const verifier = verifierAt()
  const key = byAlg.ES256
  const good = signToken(key, claimsAt())
  const [h, p, s] = good.split('.') as [string, string, string]
  const reasonOf = async (token: string) => {
    const result = await verifier.verify(token, keyset)
    return result.ok ? 'ok' : result.reason
  }

  it('the untouched token verifies (control)', async () => {
    assert.equal(await reasonOf(good), 'ok')
  })

  describe('crit', () => {
    for (const crit of [['exp-ext'], ['b64'], [], 'exp-ext', null]) {
      it(`crit ${JSON.stringify(crit)} (validly signed) → malformed`, async () => {
        assert.equal(await reasonOf(signToken(key, claimsAt(), { crit, 'exp-ext': true, b64: true })), 'malformed')
      })
    }
  })

  describe('segment count', () => {
    const cases: Array<[string, string]> = [
      ['1 segment', h],
      ['2 segments', `${h}.${p}`],
      ['4 segments', `${good}.${s}`],
      ['4 segments (JWE-like, empty)', `${h}.${p}..${s}`],
      ['5 segments (JWE shape)', `${h}.${p}.${s}.${s}.${s}`],
      ['leading dot', `.${good}`],
      ['trailing dot', `${good}.`],
      ['empty header', `.${p}.${s}`],
      ['empty payload', `${h}..${s}`],
    ]
    for (const [name, token] of cases) {
      it(`${name} → malformed`, async () => assert.equal(await reasonOf(token), 'malformed'))
    }
  })

  describe('encoding', () => {
    const cases: Array<[string, string]> = [
      ['standard base64 "+" in the header', `${h.slice(0, -1)}+.${p}.${s}`],
      ['standard base64 "/" in the payload', `${h}.${p.slice(0, -1)}/.${s}`],
      ['"=" padding on the signature', `${h}.${p}.${s}=`],
      ['"=" padding on the header', `${h}==.${p}.${s}`],
      ['a space inside', `${h}.${p} .${s}`],
      ['a newline at the end', `${good}\n`],
      ['percent-encoding', `${h}.${p}.${s.slice(0, 4)}%3D`],
      ['non-ASCII', `${h}.${p}é.${s}`],
      ['header truncated to half', `${h.slice(0, Math.floor(h.length / 2))}.${p}.${s}`],
      ['header cut by one character', `${h.slice(0, -1)}.${p}.${s}`],
      ['header decoding to invalid UTF-8 / non-JSON', `${b64u(Buffer.from([0xff, 0xfe, 0x7b]))}.${p}.${s}`],
      ['header that is a JSON string', `${segment('{"alg":"ES256"}')}.${p}.${s}`],
      ['header that is JSON null', `${segment(null)}.${p}.${s}`],
    ]
    for (const [name, token] of cases) {
      it(`${name} → malformed`, async () => assert.equal(await reasonOf(token), 'malformed'))
    }

    // The payload is never read before the signature verifies: a truncated payload or
    // signature of a signed token is a signature failure, which is what it is.
    it('payload cut by one character → bad_signature (payload not parsed before the signature)', async () => {
      assert.equal(await reasonOf(`${h}.${p.slice(0, -1)}.${s}`), 'bad_signature')
    })
    it('signature cut by four characters → bad_signature', async () => {
      assert.equal(await reasonOf(`${h}.${p}.${s.slice(0, -4)}`), 'bad_signature')
    })
  })

  describe('duplicate and prototype members in the header', () => {
    // RFC 7515 §4: a parser that keeps only the lexically last duplicate member is allowed;
    // JSON.parse does. Either way the member in force must be the key's alg.
    it('a duplicated alg member: the last one counts, and it must be the key alg', async () => {
      const rawHeader = '{"alg":"none","kid":"k-ES256","alg":"ES256"}'
      const token = forge({ header: null, rawHeader, payload: claimsAt(), alg: 'ES256', signingKey: key.signingKey })
      assert.equal(await reasonOf(token), 'ok')
      const reversed = forge({
        header: null,
        rawHeader: '{"alg":"ES256","kid":"k-ES256","alg":"none"}',
        payload: claimsAt(),
        alg: 'ES256',
        signingKey: key.signingKey,
      })
      assert.equal(await reasonOf(reversed), 'unsupported_alg')
    })

    it('a duplicated kid member: the last one counts', async () => {
      const token = (rawHeader: string) => forge({ header: null, rawHeader, payload: claimsAt(), alg: 'ES256', signingKey: key.signingKey })
      assert.equal(await reasonOf(token('{"alg":"ES256","kid":"k-HS256","kid":"k-ES256"}')), 'ok')
      assert.equal(await reasonOf(token('{"alg":"ES256","kid":"k-ES256","kid":"k-HS256"}')), 'unsupported_alg')
    })

    it('a kid only under __proto__ is not used → unknown_kid, and nothing is polluted', async () => {
      const rawHeader = '{"alg":"ES256","__proto__":{"kid":"k-ES256","alg":"ES256","polluted":true}}'
      const token = forge({ header: null, rawHeader, payload: claimsAt(), alg: 'ES256', signingKey: key.signingKey })
      assert.equal(await reasonOf(token), 'unknown_kid')
      assert.equal(({} as Record<string, unknown>).polluted, undefined)
      assert.equal(({} as Record<string, unknown>).kid, undefined)
    })

    it('__proto__ and constructor members next to a real kid: verifies, pollutes nothing', async () => {
      const rawHeader = '{"alg":"ES256","kid":"k-ES256","__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}}}'
      const token = forge({ header: null, rawHeader, payload: claimsAt(), alg: 'ES256', signingKey: key.signingKey })
      assert.equal(await reasonOf(token), 'ok')
      assert.equal(({} as Record<string, unknown>).polluted, undefined)
    })

    it('__proto__ in a validly signed payload: verifies, pollutes nothing', async () => {
      const payload = JSON.stringify(claimsAt()).replace(/}$/, ',"__proto__":{"polluted":1,"iss":"x"}}')
      const token = forge({ header: { alg: 'ES256', kid: 'k-ES256' }, payload, alg: 'ES256', signingKey: key.signingKey })
      assert.equal(await reasonOf(token), 'ok')
      assert.equal(({} as Record<string, unknown>).polluted, undefined)
    })

    it('a header whose signature covers the raw bytes, not a re-serialisation', async () => {
      // Same JSON meaning, different bytes: the signature of one does not verify the other.
      const spaced = b64u('{ "alg": "ES256", "kid": "k-ES256" }')
      const sig = rawSignature('ES256', key.signingKey, Buffer.from(`${h}.${p}`)).toString('base64url')
      assert.equal(await reasonOf(`${spaced}.${p}.${sig}`), 'bad_signature')
    })
  })
})
