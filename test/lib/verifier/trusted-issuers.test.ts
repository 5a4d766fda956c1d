// Routing by `iss`: a trusted issuer's token is checked against its own keys and
// rules, chosen by its `iss` before any key lookup; the keyset's tokens are unaffected; any other
// `iss` is bad_issuer; and the verified-token cache keeps every answer exact for both.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { LoadedKey } from '../../../src/lib/keyset/load.js'
import { readJwksDocument } from '../../../src/lib/issuers/jwks-document.js'
import type { IssuerRoute } from '../../../src/lib/verifier/issuer-route.js'
import { makeKey, makeKeyset, signToken, type TestKey } from '../../support/keys.js'
import { loadKeyset } from '../../../src/lib/keyset/load.js'
import { AUDIENCE, NOW, NOW_S, claimsAt, forge, segment, verifierAt } from './fixtures.js'

const IDP = 'https://idp.example.com/realms/acme'

/** The JWK Set an issuer would publish for these keys (public members only). */
function publishedKeys(keys: TestKey[]): Map<string, LoadedKey> {
  const doc = { keys: keys.map((k) => ({ ...publicJwk(k), kid: k.kid, alg: k.alg, use: 'sig' })) }
  return new Map(readJwksDocument(doc, ['ES256', 'RS256', 'EdDSA'], NOW).keys)
}

function publicJwk(key: TestKey): Record<string, unknown> {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...rest } = key.jwk as Record<string, unknown>
  return rest
}

function route(
  keys: ReadonlyMap<string, LoadedKey> | undefined,
  overrides: Partial<IssuerRoute> = {},
): IssuerRoute & { set(k: ReadonlyMap<string, LoadedKey> | undefined): void } {
  let current = keys
  return {
    issuer: IDP,
    audiences: ['orders-api'],
    leeway: 30,
    maxTokenTtlSeconds: 86400,
    allowMissingIat: false,
    scopeClaim: undefined,
    keys: () => current,
    set: (k) => void (current = k),
    ...overrides,
  }
}

const idpClaims = (overrides: Record<string, unknown> = {}) => claimsAt(NOW_S, { iss: IDP, aud: 'orders-api', ...overrides })

describe('trusted issuers: routing by iss', () => {
  const own = makeKey('ES256', 'shared-kid')
  const idpKey = makeKey('ES256', 'shared-kid') // the same kid, another key
  const keyset = loadKeyset(makeKeyset([own]), NOW)
  const idp = route(publishedKeys([idpKey]))

  it("accepts a trusted issuer's token with its own key, and the keyset's with the keyset's", async () => {
    const verifier = verifierAt(NOW, { trustedIssuers: [idp] })
    const theirs = await verifier.verify(signToken(idpKey, idpClaims()), keyset)
    assert.deepEqual([theirs.ok, theirs.ok && theirs.kid], [true, 'shared-kid'])
    const ours = await verifier.verify(signToken(own, claimsAt()), keyset)
    assert.equal(ours.ok, true)
  })

  it('attack: a kid of one issuer never verifies a token of another, in either direction', async () => {
    const verifier = verifierAt(NOW, { trustedIssuers: [idp] })
    const ownKeyTheirIss = await verifier.verify(signToken(own, idpClaims()), keyset)
    assert.deepEqual(ownKeyTheirIss.ok ? 'ok' : [ownKeyTheirIss.reason, ownKeyTheirIss.issuer], ['bad_signature', IDP])
    const theirKeyOurIss = await verifier.verify(signToken(idpKey, claimsAt()), keyset)
    assert.deepEqual(theirKeyOurIss.ok ? 'ok' : [theirKeyOurIss.reason, theirKeyOurIss.issuer], ['bad_signature', undefined])
  })

  it('any other iss is bad_issuer before any key lookup (a kid no one has included)', async () => {
    const verifier = verifierAt(NOW, { trustedIssuers: [idp] })
    for (const iss of [`${IDP}/`, 'https://evil.example.com', 42, undefined]) {
      const result = await verifier.verify(signToken(makeKey('ES256', 'no-such-kid'), idpClaims({ iss })), keyset)
      assert.equal(result.ok ? 'ok' : result.reason, 'bad_issuer', String(iss))
    }
  })

  it('routing comes first for a token without a kid too: another iss is bad_issuer, ours or a trusted one unknown_kid', async () => {
    const verifier = verifierAt(NOW, { trustedIssuers: [idp] })
    const reason = async (iss: unknown, kid: unknown) => {
      const result = await verifier.verify(signToken(idpKey, idpClaims({ iss }), { kid }), keyset)
      return result.ok ? 'ok' : result.reason
    }
    for (const kid of [undefined, '', 42]) {
      assert.equal(await reason('https://evil.example.com', kid), 'bad_issuer', `kid ${String(kid)}`)
      assert.equal(await reason(undefined, kid), 'bad_issuer', `no iss, kid ${String(kid)}`)
      assert.equal(await reason(IDP, kid), 'unknown_kid', `trusted iss, kid ${String(kid)}`)
      assert.equal(await reason('cbc-omega2', kid), 'unknown_kid', `own iss, kid ${String(kid)}`)
      // Still the issuer's token: its auth_failure line says whose, as for a kid it does not know.
      const theirs = await verifier.verify(signToken(idpKey, idpClaims(), { kid }), keyset)
      assert.deepEqual(theirs.ok ? 'ok' : [theirs.reason, theirs.issuer], ['unknown_kid', IDP], `trusted iss, kid ${String(kid)}`)
    }
  })

  it('without trusted issuers, routing is the same: another iss is bad_issuer before its unknown kid', async () => {
    const verifier = verifierAt(NOW)
    const stranger = await verifier.verify(signToken(makeKey('ES256', 'no-such-kid'), idpClaims({ iss: 'https://evil.example.com' })), keyset)
    assert.equal(stranger.ok ? 'ok' : stranger.reason, 'bad_issuer')
    // A trusted issuer's token, the issuer not configured here: another issuer like any other.
    const idpToken = await verifier.verify(signToken(idpKey, idpClaims()), keyset)
    assert.equal(idpToken.ok ? 'ok' : idpToken.reason, 'bad_issuer')
    const ours = await verifier.verify(signToken(makeKey('ES256', 'no-such-kid'), claimsAt()), keyset)
    assert.equal(ours.ok ? 'ok' : ours.reason, 'unknown_kid')
  })

  it('an unknown kid of a trusted issuer names the issuer (for its re-read), and so does a route with no keys yet', async () => {
    const verifier = verifierAt(NOW, { trustedIssuers: [idp, route(undefined, { issuer: 'https://other.example.com' })] })
    const stranger = await verifier.verify(signToken(makeKey('ES256', 'k-new'), idpClaims()), keyset)
    assert.deepEqual(stranger.ok ? 'ok' : [stranger.reason, stranger.issuer], ['unknown_kid', IDP])
    const empty = await verifier.verify(signToken(idpKey, idpClaims({ iss: 'https://other.example.com' })), keyset)
    assert.deepEqual(empty.ok ? 'ok' : [empty.reason, empty.issuer], ['unknown_kid', 'https://other.example.com'])
  })

  it("checks the issuer's audiences (any of them), not the keyset's", async () => {
    const verifier = verifierAt(NOW, { trustedIssuers: [route(idp.keys(), { audiences: ['orders-api', 'billing-api'] })] })
    const cases: Array<[unknown, string]> = [
      ['billing-api', 'ok'],
      [['x', 'orders-api'], 'ok'],
      [AUDIENCE, 'bad_audience'],
      [[], 'bad_audience'],
      [undefined, 'bad_audience'],
    ]
    for (const [aud, expected] of cases) {
      const result = await verifier.verify(signToken(idpKey, idpClaims({ aud })), keyset)
      assert.equal(result.ok ? 'ok' : result.reason, expected, JSON.stringify(aud))
    }
  })

  it('requires iat unless the issuer allows it missing; then bounds the lifetime left', async () => {
    const strict = verifierAt(NOW, { trustedIssuers: [idp] })
    assert.equal(((await strict.verify(signToken(idpKey, idpClaims({ iat: undefined })), keyset)) as { reason: string }).reason, 'malformed')
    const lenient = verifierAt(NOW, { trustedIssuers: [route(idp.keys(), { allowMissingIat: true, maxTokenTtlSeconds: 3600 })] })
    assert.equal((await lenient.verify(signToken(idpKey, idpClaims({ iat: undefined })), keyset)).ok, true)
    const tooLong = await lenient.verify(signToken(idpKey, idpClaims({ iat: undefined, exp: NOW_S + 7200 })), keyset)
    assert.equal(tooLong.ok ? 'ok' : tooLong.reason, 'malformed')
    const badIat = await lenient.verify(signToken(idpKey, idpClaims({ iat: 'yesterday' })), keyset)
    assert.equal(badIat.ok ? 'ok' : badIat.reason, 'malformed')
  })

  it("a trusted issuer's token with exp missing or not a number, or nbf not a number, is malformed", async () => {
    const verifier = verifierAt(NOW, { trustedIssuers: [idp] })
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ exp: undefined }, 'malformed'],
      [{ exp: String(NOW_S + 600) }, 'malformed'],
      [{ exp: null }, 'malformed'],
      [{ nbf: String(NOW_S) }, 'malformed'],
      [{ nbf: NOW_S }, 'ok'],
    ]
    for (const [claims, expected] of cases) {
      const result = await verifier.verify(signToken(idpKey, idpClaims(claims)), keyset)
      assert.equal(result.ok ? 'ok' : result.reason, expected, JSON.stringify(claims))
    }
  })

  it("a payload that is not a JSON object names no issuer: the keyset's keys and signature judge it (never thrown on)", async () => {
    const verifier = verifierAt(NOW, { trustedIssuers: [idp] })
    for (const payload of ['not json', '[1,2]', 'null', '"cbc-omega2"']) {
      const header = { alg: 'ES256', kid: 'shared-kid' }
      const damaged = `${segment(header)}.${Buffer.from(payload).toString('base64url')}.AAAA`
      const damagedResult = await verifier.verify(damaged, keyset)
      assert.deepEqual(damagedResult.ok ? 'ok' : [damagedResult.reason, damagedResult.issuer], ['bad_signature', undefined], payload)
      // Signed by the keyset's key under that kid: verified, then refused for what it holds.
      const signedByOwn = await verifier.verify(forge({ header, payload, alg: 'ES256', signingKey: own.signingKey }), keyset)
      assert.equal(signedByOwn.ok ? 'ok' : signedByOwn.reason, 'malformed', payload)
      // Signed by the trusted issuer's key under the same kid: it is not the keyset's key.
      const signedByIdp = await verifier.verify(forge({ header, payload, alg: 'ES256', signingKey: idpKey.signingKey }), keyset)
      assert.equal(signedByIdp.ok ? 'ok' : signedByIdp.reason, 'bad_signature', payload)
    }
  })

  it("applies the issuer's clock tolerance", async () => {
    const expiredBy60 = signToken(idpKey, idpClaims({ iat: NOW_S - 600, exp: NOW_S - 60 }))
    assert.equal(((await verifierAt(NOW, { trustedIssuers: [idp] }).verify(expiredBy60, keyset)) as { reason: string }).reason, 'expired')
    assert.equal((await verifierAt(NOW, { trustedIssuers: [route(idp.keys(), { leeway: 120 })] }).verify(expiredBy60, keyset)).ok, true)
  })

  it("the issuer's tolerance and lifetime bound hold at their exact edges (nbf, iat, exp − iat), as the keyset's do", async () => {
    // A leeway and a bound other than the keyset's (30 s, 24 h): each edge is the route's own.
    const verifier = verifierAt(NOW, { trustedIssuers: [route(idp.keys(), { leeway: 45, maxTokenTtlSeconds: 3600 })] })
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ nbf: NOW_S + 45 }, 'ok'],
      [{ nbf: NOW_S + 46 }, 'not_yet_valid'],
      [{ iat: NOW_S + 45, exp: NOW_S + 600 }, 'ok'],
      [{ iat: NOW_S + 46, exp: NOW_S + 600 }, 'not_yet_valid'],
      [{ iat: NOW_S - 60, exp: NOW_S - 60 + 3600 + 45 }, 'ok'],
      [{ iat: NOW_S - 60, exp: NOW_S - 60 + 3600 + 46 }, 'malformed'],
      [{ exp: NOW_S - 44 }, 'ok'],
      [{ exp: NOW_S - 45 }, 'expired'],
    ]
    for (const [claims, expected] of cases) {
      const result = await verifier.verify(signToken(idpKey, idpClaims(claims)), keyset)
      assert.equal(result.ok ? 'ok' : result.reason, expected, JSON.stringify(claims))
    }
  })

  it("the keyset's revoked_before is about its own tokens, not a trusted issuer's", async () => {
    const revoked = loadKeyset(makeKeyset([own], { revoked_before: new Date(NOW).toISOString() }), NOW)
    const verifier = verifierAt(NOW, { trustedIssuers: [idp] })
    assert.equal((await verifier.verify(signToken(idpKey, idpClaims()), revoked)).ok, true)
    const ours = await verifier.verify(signToken(own, claimsAt()), revoked)
    assert.equal(ours.ok ? 'ok' : ours.reason, 'revoked')
  })

  it("the keyset's revocations rules (client, subject, jti) apply to a trusted issuer's tokens, cached ones included", async () => {
    const at = (s: number) => new Date(s * 1000).toISOString()
    const withRules = (rules: unknown[]) => loadKeyset({ ...makeKeyset([own]), revocations: rules }, NOW)
    const verifier = verifierAt(NOW, { trustedIssuers: [route(idp.keys(), { allowMissingIat: true })] })
    const token = signToken(idpKey, idpClaims({ client_id: 'partner-batch', sub: 'svc-7', jti: 'tok-1' }))
    assert.equal((await verifier.verify(token, keyset)).ok, true)
    const created = at(NOW_S)
    const cases: unknown[][] = [
      [{ client_id: 'partner-batch', issued_before: at(NOW_S), created_at: created }],
      [{ sub: 'svc-7', issued_before: at(NOW_S), created_at: created }],
      [{ jti: 'tok-1', expires_at: at(NOW_S + 3600), created_at: created }],
    ]
    for (const rules of cases) {
      const result = await verifier.verify(token, withRules(rules))
      assert.equal(result.ok ? 'ok' : result.reason, 'revoked', JSON.stringify(rules))
    }
    // A rule for tokens issued before an earlier time does not reach this one.
    assert.equal((await verifier.verify(token, withRules([{ client_id: 'partner-batch', issued_before: at(NOW_S - 3600), created_at: created }]))).ok, true)
    // Without iat nothing shows it was issued after the rule's time: revoked.
    const noIat = signToken(idpKey, idpClaims({ client_id: 'partner-batch', iat: undefined }))
    const result = await verifier.verify(noIat, withRules([{ client_id: 'partner-batch', issued_before: at(NOW_S - 3600), created_at: created }]))
    assert.equal(result.ok ? 'ok' : result.reason, 'revoked')
  })

  it('with scope_claim, the configured claim is the scope (a string or an array of strings, else none)', async () => {
    const verifier = verifierAt(NOW, { trustedIssuers: [route(idp.keys(), { scopeClaim: 'scp' })] })
    const scopeOf = async (claims: Record<string, unknown>) => {
      const result = await verifier.verify(signToken(idpKey, idpClaims(claims)), keyset)
      assert.ok(result.ok)
      return result.claims.scope
    }
    assert.equal(await scopeOf({ scp: 'orders.read orders.write', scope: 'admin' }), 'orders.read orders.write')
    assert.deepEqual(await scopeOf({ scp: ['a', 'b'] }), ['a', 'b'])
    assert.equal(await scopeOf({ scp: [1], scope: 'admin' }), undefined)
    assert.equal(await scopeOf({ scope: 'admin' }), undefined)
  })
})

describe('trusted issuers: the verified-token cache never changes an answer', () => {
  const idpKey = makeKey('ES256', 'idp-1')
  const keyset = loadKeyset(makeKeyset([makeKey('ES256', 'own-1')]), NOW)

  it('serves a repeat, and stops at once when the issuer no longer publishes the key', async () => {
    const idp = route(publishedKeys([idpKey]))
    const verifier = verifierAt(NOW, { trustedIssuers: [idp] })
    const token = signToken(idpKey, idpClaims())
    assert.equal((await verifier.verify(token, keyset)).ok, true)
    assert.equal((await verifier.verify(token, keyset)).ok, true)
    assert.equal(verifier.tokenCache!.stats().hits, 1)
    idp.set(publishedKeys([makeKey('ES256', 'idp-2')]))
    const after = await verifier.verify(token, keyset)
    assert.deepEqual(after.ok ? 'ok' : [after.reason, after.issuer], ['unknown_kid', IDP])
  })

  it("stops when the key under the same kid changes material, and at expiry with the issuer's leeway", async () => {
    const idp = route(publishedKeys([idpKey]), { leeway: 5 })
    let now = NOW
    const verifier = verifierAt(NOW, { trustedIssuers: [idp], now: () => now })
    const token = signToken(idpKey, idpClaims({ exp: NOW_S + 100 }))
    assert.equal((await verifier.verify(token, keyset)).ok, true)
    now = NOW + 104_000
    assert.equal((await verifier.verify(token, keyset)).ok, true)
    now = NOW + 105_000
    assert.equal(((await verifier.verify(token, keyset)) as { reason: string }).reason, 'expired')
    now = NOW
    // Cached again (the expiry dropped it), so the change of material is met on the cache's path.
    assert.equal((await verifier.verify(token, keyset)).ok, true)
    const hits = verifier.tokenCache!.stats().hits
    assert.equal((await verifier.verify(token, keyset)).ok, true)
    assert.equal(verifier.tokenCache!.stats().hits, hits + 1)
    idp.set(publishedKeys([makeKey('ES256', 'idp-1')]))
    assert.equal(((await verifier.verify(token, keyset)) as { reason: string }).reason, 'bad_signature')
  })

  // Without iat the lifetime bound is `exp − now`, which depends on the clock: a repeat must
  // be held to it as a full verification is (the clock stepped back a second, by NTP).
  it('a token without iat: a repeat is held to the lifetime left, as a full verification is', async () => {
    const idp = route(publishedKeys([idpKey]), { allowMissingIat: true, maxTokenTtlSeconds: 3600, leeway: 30 })
    let now = NOW
    const cached = verifierAt(NOW, { trustedIssuers: [idp], now: () => now })
    const plain = verifierAt(NOW, { trustedIssuers: [idp], now: () => now, tokenCacheEntries: 0 })
    const token = signToken(idpKey, idpClaims({ iat: undefined, exp: NOW_S + 3600 + 30 }))
    assert.equal((await cached.verify(token, keyset)).ok, true)
    assert.equal((await plain.verify(token, keyset)).ok, true)
    now = NOW - 1000
    const expected = await plain.verify(token, keyset)
    assert.equal(expected.ok ? 'ok' : expected.reason, 'malformed')
    assert.deepEqual(await cached.verify(token, keyset), expected)
  })

  it('an unchanged key read again keeps its KeyObject, so cached tokens stay cached', async () => {
    const first = readJwksDocument({ keys: [{ ...publicJwk(idpKey), kid: 'idp-1', alg: 'ES256' }] }, ['ES256'], NOW)
    const again = readJwksDocument({ keys: [{ alg: 'ES256', kid: 'idp-1', ...publicJwk(idpKey) }] }, ['ES256'], NOW + 1000, first)
    assert.equal(again.keys.get('idp-1'), first.keys.get('idp-1'))
  })
})
