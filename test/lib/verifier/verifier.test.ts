import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SignJWT } from 'jose'
import jwt from 'jsonwebtoken'
import type { LoadedKeyset } from '../../../src/lib/keyset/load.js'
import { AUTH_FAILURE_REASONS, type AuthFailureReason } from '../../../src/lib/reasons.js'
import { createVerifier, type VerifierOptions } from '../../../src/lib/verifier/verifier.js'
import { generatePrivateKey, makeKey, rawSignature, signToken, type TestAlg, type TestKey } from '../../support/keys.js'
import { AUDIENCE, ISSUER, LEEWAY, NOW, NOW_S, b64u, claimsAt, forge, keyPool, keysetOf, segment, verifierAt, withSignature } from './fixtures.js'

const ALL_ALGS = Object.keys(keyPool().byAlg) as TestAlg[]

describe('createVerifier: every algorithm family verifies', () => {
  const { byAlg, keyset } = keyPool()
  const verifier = verifierAt()

  for (const alg of ALL_ALGS) {
    it(`accepts ${alg} signed with node:crypto`, async () => {
      const result = await verifier.verify(signToken(byAlg[alg], claimsAt()), keyset)
      assert.deepEqual(result, { ok: true, kid: `k-${alg}`, claims: claimsAt() })
    })
  }

  it('accepts EdDSA on Ed448', async () => {
    const signingKey = generatePrivateKey('ed448')
    const key: TestKey = { kid: 'k-ed448', alg: 'EdDSA', signingKey, jwk: signingKey.export({ format: 'jwk' }) }
    const result = await verifier.verify(signToken(key, claimsAt()), keysetOf([key]))
    assert.equal(result.ok, true)
  })
})

describe('createVerifier: tokens from independent implementations', () => {
  const { byAlg, keyset } = keyPool()
  const verifier = verifierAt()

  // jsonwebtoken has no EdDSA; jose covers it below.
  for (const alg of ALL_ALGS.filter((a) => a !== 'EdDSA')) {
    it(`accepts ${alg} signed by jsonwebtoken`, async () => {
      const key = byAlg[alg]
      const token = jwt.sign(claimsAt(), key.signingKey, { algorithm: alg as jwt.Algorithm, keyid: key.kid })
      const result = await verifier.verify(token, keyset)
      assert.equal(result.ok, true, JSON.stringify(result))
      assert.equal(result.ok && result.kid, key.kid)
    })
  }

  for (const alg of ALL_ALGS) {
    it(`accepts ${alg} signed by jose SignJWT`, async () => {
      const key = byAlg[alg]
      const token = await new SignJWT(claimsAt()).setProtectedHeader({ alg, kid: key.kid, typ: 'JWT' }).sign(key.signingKey)
      const result = await verifier.verify(token, keyset)
      assert.equal(result.ok, true, JSON.stringify(result))
      assert.equal(result.ok && result.claims.sub, 'user-1')
    })
  }
})

/** One row: a case, the verifier's answer, and what it runs against. */
interface Row {
  case: string
  expect: AuthFailureReason | 'ok'
  token: string
  keyset?: LoadedKeyset | undefined
  now?: number
  options?: Partial<VerifierOptions>
}

const es = () => keyPool().byAlg.ES256
const tokenWith = (overrides: Record<string, unknown>, header: Record<string, unknown> = {}) => signToken(es(), claimsAt(NOW_S, overrides), header)
const signedPayload = (payload: string) => forge({ header: { alg: 'ES256', kid: 'k-ES256' }, payload, alg: 'ES256', signingKey: es().signingKey })
/** CBC_JWT_MAX_TOKEN_TTL's default (24h), in seconds: the verifier's lifetime bound unless given another. */
const MAX_TTL = 86_400
const REVOKED_BEFORE = NOW_S - 3600
const revokedKeyset = () => keysetOf([es()], { revoked_before: new Date(REVOKED_BEFORE * 1000).toISOString() })
const RULE_TIME = new Date(REVOKED_BEFORE * 1000).toISOString()
/** REVOKED_BEFORE + 0.9 ms, written with digits past the millisecond (RFC 3339 allows any). */
const SUB_MS_TIME = RULE_TIME.replace('.000Z', '.0009Z')
/** One rule of each kind (client-1 is the fixtures' client, user-1 their subject). */
const ruledKeyset = (rule: Record<string, string>) => keysetOf([es()], { revocations: [{ ...rule, created_at: RULE_TIME }] })

function rows(): Row[] {
  const { byAlg } = keyPool()
  const valid = tokenWith({})
  const otherEs = makeKey('ES256', 'k-ES256')
  const [h, p] = valid.split('.') as [string, string]
  return [
    // malformed
    { case: 'not a JWS at all', expect: 'malformed', token: 'not-a-token' },
    { case: 'empty string', expect: 'malformed', token: '' },
    { case: 'header that is not JSON', expect: 'malformed', token: `${b64u('{"alg":"ES256",')}.${p}.${valid.split('.')[2]}` },
    { case: 'header that is a JSON array', expect: 'malformed', token: `${segment(['ES256'])}.${p}.AAAA` },
    {
      case: 'header without alg',
      expect: 'malformed',
      token: forge({ header: { kid: 'k-ES256' }, payload: claimsAt(), alg: 'ES256', signingKey: es().signingKey }),
    },
    { case: 'alg that is not a string', expect: 'malformed', token: `${segment({ alg: 256, kid: 'k-ES256' })}.${p}.AAAA` },
    { case: 'unknown crit header', expect: 'malformed', token: tokenWith({}, { crit: ['exp-ext'], 'exp-ext': true }) },
    { case: 'missing exp', expect: 'malformed', token: tokenWith({ exp: undefined }) },
    { case: 'missing iat', expect: 'malformed', token: tokenWith({ iat: undefined }) },
    { case: 'exp as a string', expect: 'malformed', token: tokenWith({ exp: String(NOW_S + 600) }) },
    { case: 'iat as a string', expect: 'malformed', token: tokenWith({ iat: String(NOW_S) }) },
    { case: 'exp null', expect: 'malformed', token: tokenWith({ exp: null }) },
    { case: 'nbf as a string', expect: 'malformed', token: tokenWith({ nbf: String(NOW_S) }) },
    { case: 'validly signed payload that is not JSON', expect: 'malformed', token: signedPayload('this is not json') },
    // exp − iat above the max token TTL + the clock tolerance (docs/reasons.md): no issuer of ours mints it.
    { case: 'lifetime exactly the max TTL + leeway', expect: 'ok', token: tokenWith({ exp: NOW_S - 60 + MAX_TTL + LEEWAY }) },
    { case: 'lifetime one second over the max TTL + leeway', expect: 'malformed', token: tokenWith({ exp: NOW_S - 60 + MAX_TTL + LEEWAY + 1 }) },
    {
      case: 'lifetime over a configured max TTL, the leeway added once',
      expect: 'malformed',
      token: tokenWith({ exp: NOW_S - 60 + 3600 + LEEWAY + 1 }),
      options: { maxTokenTtlSeconds: 3600 },
    },
    {
      case: 'lifetime a configured max TTL + leeway',
      expect: 'ok',
      token: tokenWith({ exp: NOW_S - 60 + 3600 + LEEWAY }),
      options: { maxTokenTtlSeconds: 3600 },
    },
    { case: 'validly signed payload that is a JSON array', expect: 'malformed', token: signedPayload('[1,2,3]') },
    // too_large
    { case: 'one byte over maxTokenBytes', expect: 'too_large', token: valid, options: { maxTokenBytes: valid.length - 1 } },
    { case: 'exactly maxTokenBytes', expect: 'ok', token: valid, options: { maxTokenBytes: valid.length } },
    { case: 'few characters but too many UTF-8 bytes', expect: 'too_large', token: 'é'.repeat(600), options: { maxTokenBytes: 1000 } },
    // unsupported_alg
    { case: 'alg none with the kid of a real key', expect: 'unsupported_alg', token: `${segment({ alg: 'none', kid: 'k-ES256' })}.${p}.` },
    {
      case: 'header alg other than the key alg',
      expect: 'unsupported_alg',
      token: forge({ header: { alg: 'ES384', kid: 'k-ES256' }, payload: claimsAt(), alg: 'ES384', signingKey: byAlg.ES384.signingKey }),
    },
    // unknown_kid
    { case: 'kid not in the keyset', expect: 'unknown_kid', token: tokenWith({}, { kid: 'k-nope' }) },
    { case: 'no kid', expect: 'unknown_kid', token: tokenWith({}, { kid: undefined }) },
    { case: 'empty kid', expect: 'unknown_kid', token: tokenWith({}, { kid: '' }) },
    { case: 'kid that is a number', expect: 'unknown_kid', token: tokenWith({}, { kid: 7 }) },
    { case: 'no keyset loaded yet', expect: 'unknown_kid', token: valid, keyset: undefined },
    // bad_signature
    { case: 'signed by another key under the same kid', expect: 'bad_signature', token: signToken(otherEs, claimsAt()) },
    { case: 'payload changed after signing', expect: 'bad_signature', token: `${h}.${segment(claimsAt(NOW_S, { sub: 'admin' }))}.${valid.split('.')[2]}` },
    {
      case: 'expired and badly signed: the signature is checked first',
      expect: 'bad_signature',
      token: signToken(otherEs, claimsAt(NOW_S, { exp: NOW_S - 3600 })),
    },
    {
      case: 'badly signed non-JSON payload: it names no issuer, and the signature judges it first',
      expect: 'bad_signature',
      token: withSignature(signedPayload('nope'), rawSignature('ES256', otherEs.signingKey, Buffer.from('x'))),
    },
    // expired
    { case: 'exp exactly now, no leeway', expect: 'expired', token: tokenWith({ exp: NOW_S }), options: { clockToleranceSeconds: 0 } },
    { case: 'exp one second ahead, no leeway', expect: 'ok', token: tokenWith({ exp: NOW_S + 1 }), options: { clockToleranceSeconds: 0 } },
    { case: 'exp + leeway exactly now', expect: 'expired', token: tokenWith({ exp: NOW_S - LEEWAY }) },
    { case: 'exp within leeway', expect: 'ok', token: tokenWith({ exp: NOW_S - LEEWAY + 1 }) },
    { case: 'exp long past', expect: 'expired', token: tokenWith({ iat: NOW_S - 7200, exp: NOW_S - 3600 }) },
    // not_yet_valid
    { case: 'nbf within leeway', expect: 'ok', token: tokenWith({ nbf: NOW_S + LEEWAY }) },
    { case: 'nbf after leeway', expect: 'not_yet_valid', token: tokenWith({ nbf: NOW_S + LEEWAY + 1 }) },
    { case: 'iat in the future within leeway', expect: 'ok', token: tokenWith({ iat: NOW_S + LEEWAY }) },
    { case: 'iat in the future beyond leeway', expect: 'not_yet_valid', token: tokenWith({ iat: NOW_S + LEEWAY + 1 }) },
    // bad_issuer
    { case: 'another issuer', expect: 'bad_issuer', token: tokenWith({ iss: 'https://evil.example' }) },
    { case: 'no iss', expect: 'bad_issuer', token: tokenWith({ iss: undefined }) },
    { case: 'iss as an array holding the issuer', expect: 'bad_issuer', token: tokenWith({ iss: [ISSUER] }) },
    {
      case: 'another issuer, an unknown kid: routed by iss before any key lookup',
      expect: 'bad_issuer',
      token: tokenWith({ iss: 'https://evil.example' }, { kid: 'k-nope' }),
    },
    { case: 'another issuer, no kid', expect: 'bad_issuer', token: tokenWith({ iss: 'https://evil.example' }, { kid: undefined }) },
    {
      case: 'another issuer, badly signed and expired: iss comes before the signature',
      expect: 'bad_issuer',
      token: signToken(otherEs, claimsAt(NOW_S, { iss: 'https://evil.example', exp: NOW_S - 3600 })),
    },
    // bad_audience
    { case: 'another audience', expect: 'bad_audience', token: tokenWith({ aud: 'other-api' }) },
    { case: 'no aud', expect: 'bad_audience', token: tokenWith({ aud: undefined }) },
    { case: 'aud array without the audience', expect: 'bad_audience', token: tokenWith({ aud: ['other-api', 'billing'] }) },
    { case: 'aud array containing the audience', expect: 'ok', token: tokenWith({ aud: ['other-api', AUDIENCE] }) },
    { case: 'aud as a prefix of the audience', expect: 'bad_audience', token: tokenWith({ aud: AUDIENCE.slice(0, -1) }) },
    // revoked
    { case: 'iat one second before revoked_before', expect: 'revoked', token: tokenWith({ iat: REVOKED_BEFORE - 1 }), keyset: revokedKeyset() },
    { case: 'iat exactly revoked_before', expect: 'ok', token: tokenWith({ iat: REVOKED_BEFORE }), keyset: revokedKeyset() },
    {
      // Date.parse keeps three fraction digits: read as …:00.000, the boundary let this token pass.
      case: 'iat 0.9 ms before a revoked_before written past the millisecond',
      expect: 'revoked',
      token: tokenWith({ iat: REVOKED_BEFORE }),
      keyset: keysetOf([es()], { revoked_before: SUB_MS_TIME }),
    },
    {
      case: 'iat one second before revoked_before with a large leeway (leeway not applied)',
      expect: 'revoked',
      token: tokenWith({ iat: REVOKED_BEFORE - 1 }),
      keyset: revokedKeyset(),
      options: { clockToleranceSeconds: 7200 },
    },
    {
      case: 'client rule, iat one second before it',
      expect: 'revoked',
      token: tokenWith({ iat: REVOKED_BEFORE - 1 }),
      keyset: ruledKeyset({ client_id: 'client-1', issued_before: RULE_TIME }),
    },
    {
      case: 'client rule, iat exactly its time',
      expect: 'ok',
      token: tokenWith({ iat: REVOKED_BEFORE }),
      keyset: ruledKeyset({ client_id: 'client-1', issued_before: RULE_TIME }),
    },
    {
      case: 'client rule written past the millisecond, iat 0.9 ms before it',
      expect: 'revoked',
      token: tokenWith({ iat: REVOKED_BEFORE }),
      keyset: ruledKeyset({ client_id: 'client-1', issued_before: SUB_MS_TIME }),
    },
    {
      case: 'client rule for another client',
      expect: 'ok',
      token: tokenWith({ iat: REVOKED_BEFORE - 1 }),
      keyset: ruledKeyset({ client_id: 'client-2', issued_before: RULE_TIME }),
    },
    {
      case: 'client rule matching azp',
      expect: 'revoked',
      token: tokenWith({ iat: REVOKED_BEFORE - 1, client_id: undefined, azp: 'client-1' }),
      keyset: ruledKeyset({ client_id: 'client-1', issued_before: RULE_TIME }),
    },
    {
      case: 'client rule with a large leeway (leeway not applied)',
      expect: 'revoked',
      token: tokenWith({ iat: REVOKED_BEFORE - 1 }),
      keyset: ruledKeyset({ client_id: 'client-1', issued_before: RULE_TIME }),
      options: { clockToleranceSeconds: 7200 },
    },
    {
      case: 'subject rule, iat before it',
      expect: 'revoked',
      token: tokenWith({ iat: REVOKED_BEFORE - 1 }),
      keyset: ruledKeyset({ sub: 'user-1', issued_before: RULE_TIME }),
    },
    {
      case: 'subject rule, iat after it',
      expect: 'ok',
      token: tokenWith({ iat: REVOKED_BEFORE + 1 }),
      keyset: ruledKeyset({ sub: 'user-1', issued_before: RULE_TIME }),
    },
    {
      case: 'jti rule naming the token',
      expect: 'revoked',
      token: tokenWith({ jti: 'tok-1' }),
      keyset: ruledKeyset({ jti: 'tok-1', expires_at: new Date(NOW + 86_400_000).toISOString() }),
    },
    {
      case: 'jti rule naming another token',
      expect: 'ok',
      token: tokenWith({ jti: 'tok-2' }),
      keyset: ruledKeyset({ jti: 'tok-1', expires_at: new Date(NOW + 86_400_000).toISOString() }),
    },
    {
      case: 'jti rule, expired token: expired comes first',
      expect: 'expired',
      token: tokenWith({ jti: 'tok-1', exp: NOW_S - 3600 }),
      keyset: ruledKeyset({ jti: 'tok-1', expires_at: new Date(NOW + 86_400_000).toISOString() }),
    },
  ]
}

describe('createVerifier: each reason comes from exactly the case it names', () => {
  const table = rows()
  for (const row of table) {
    it(`${row.case} → ${row.expect}`, async () => {
      const keyset = 'keyset' in row ? row.keyset : keyPool().keyset
      const result = await verifierAt(row.now ?? NOW, row.options).verify(row.token, keyset)
      assert.equal(result.ok ? 'ok' : result.reason, row.expect, JSON.stringify(result))
    })
  }

  it('the table covers every reason the verifier can give (all of §3 but missing)', async () => {
    const covered = new Set(table.map((r) => r.expect))
    assert.deepEqual(
      AUTH_FAILURE_REASONS.filter((r) => r !== 'missing' && !covered.has(r)),
      [],
    )
  })
})

describe('createVerifier: what a rejection carries for the log', () => {
  const verifier = verifierAt()
  const { keyset } = keyPool()

  it('an unverified token yields no client id, even when its payload names one', async () => {
    const result = await verifier.verify(signToken(makeKey('ES256', 'k-ES256'), claimsAt()), keyset)
    assert.deepEqual(result, { ok: false, reason: 'bad_signature', kid: 'k-ES256', clientId: undefined })
  })

  it('a verified but expired token yields its kid and client id', async () => {
    const result = await verifier.verify(tokenWith({ exp: NOW_S - 3600 }), keyset)
    assert.deepEqual(result, { ok: false, reason: 'expired', kid: 'k-ES256', clientId: 'client-1' })
  })

  it('a token revoked by a rule yields its kid and client id (the log names who was cut off)', async () => {
    const result = await verifier.verify(tokenWith({ iat: REVOKED_BEFORE - 1 }), ruledKeyset({ client_id: 'client-1', issued_before: RULE_TIME }))
    assert.deepEqual(result, { ok: false, reason: 'revoked', kid: 'k-ES256', clientId: 'client-1' })
  })

  it('client id falls back to azp, then sub', async () => {
    const azp = await verifier.verify(tokenWith({ exp: 1, client_id: undefined, azp: 'azp-1' }), keyset)
    const sub = await verifier.verify(tokenWith({ exp: 1, client_id: undefined }), keyset)
    assert.equal(!azp.ok && azp.clientId, 'azp-1')
    assert.equal(!sub.ok && sub.clientId, 'user-1')
  })

  it('a kid outside the kid grammar is not returned for logging', async () => {
    const result = await verifier.verify(tokenWith({}, { kid: 'k\n{"level":60}' }), keyset)
    assert.deepEqual(result, { ok: false, reason: 'unknown_kid', kid: undefined, clientId: undefined })
  })
})

describe('createVerifier: key lifecycle against the injected clock', () => {
  const current = keyPool().byAlg.ES256
  const retiring = keyPool().byAlg.ES384
  const staged = keyPool().byAlg.EdDSA
  const NOT_AFTER = NOW + 3600_000
  const keyset = keysetOf([current, { key: retiring, opts: { notAfter: new Date(NOT_AFTER) } }, staged])
  const tokenAt = (key: TestKey, ms: number) => signToken(key, claimsAt(ms / 1000))

  it('a verify-only key verifies before its not_after', async () => {
    assert.equal(keyset.keys.get(retiring.kid)?.status, 'verify-only')
    const at = NOT_AFTER - 1
    assert.equal((await verifierAt(at).verify(tokenAt(retiring, at), keyset)).ok, true)
  })

  it('a verify-only key is unknown_kid at the exact instant of its not_after', async () => {
    const result = await verifierAt(NOT_AFTER).verify(tokenAt(retiring, NOT_AFTER), keyset)
    assert.equal(!result.ok && result.reason, 'unknown_kid')
  })

  it('a verify-only key is unknown_kid after its not_after', async () => {
    const at = NOT_AFTER + 60_000
    const result = await verifierAt(at).verify(tokenAt(retiring, at), keyset)
    assert.equal(!result.ok && result.reason, 'unknown_kid')
  })

  it('a staged key (no not_after, not current) verifies', async () => {
    assert.equal(keyset.keys.get(staged.kid)?.status, 'staged')
    assert.equal((await verifierAt().verify(tokenAt(staged, NOW), keyset)).ok, true)
  })

  it('the verifier reads the clock per call, not once at creation', async () => {
    let clock = NOW
    const verifier = createVerifier({ issuer: ISSUER, audience: AUDIENCE, clockToleranceSeconds: 0, maxTokenBytes: 8192, now: () => clock })
    const token = signToken(current, claimsAt(NOW_S, { exp: NOW_S + 10 }))
    assert.equal((await verifier.verify(token, keyset)).ok, true)
    clock = NOW + 10_000
    const result = await verifier.verify(token, keyset)
    assert.equal(!result.ok && result.reason, 'expired')
  })
})

describe('createVerifier: options are validated once, at creation', () => {
  const base: VerifierOptions = { issuer: ISSUER, audience: AUDIENCE, clockToleranceSeconds: 30, maxTokenBytes: 8192 }
  const cases: Array<[string, Partial<VerifierOptions>, typeof TypeError | typeof RangeError, RegExp]> = [
    ['empty issuer', { issuer: '' }, TypeError, /issuer/],
    ['empty audience', { audience: '' }, TypeError, /audience/],
    ['negative clock tolerance', { clockToleranceSeconds: -1 }, RangeError, /clockToleranceSeconds/],
    ['NaN clock tolerance', { clockToleranceSeconds: Number.NaN }, RangeError, /clockToleranceSeconds/],
    ['zero maxTokenBytes', { maxTokenBytes: 0 }, RangeError, /maxTokenBytes/],
    ['NaN maxTokenBytes', { maxTokenBytes: Number.NaN }, RangeError, /maxTokenBytes/],
  ]
  for (const [name, override, type, message] of cases) {
    it(`throws ${type.name} for ${name}`, async () => {
      assert.throws(
        () => createVerifier({ ...base, ...override }),
        (err: unknown) => {
          assert.ok(err instanceof type, `expected ${type.name}, got ${String(err)}`)
          assert.match(err.message, message)
          return true
        },
      )
    })
  }

  it('accepts a zero clock tolerance and defaults the clock to Date.now', async () => {
    const verifier = createVerifier({ ...base, clockToleranceSeconds: 0 })
    const nowS = Math.floor(Date.now() / 1000)
    const token = signToken(keyPool().byAlg.ES256, claimsAt(nowS))
    assert.equal((await verifier.verify(token, keyPool().keyset)).ok, true)
  })
})
