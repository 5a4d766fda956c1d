import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { readJwksDocument } from '../../../src/lib/issuers/jwks-document.js'
import { loadKeyset } from '../../../src/lib/keyset/load.js'
import type { IssuerRoute } from '../../../src/lib/verifier/issuer-route.js'
import { createVerifier } from '../../../src/lib/verifier/verifier.js'
import { assertEveryReasonSeen, FUZZ_SEED, fullFuzzParameters } from '../../support/fuzz.js'
import { makeKey, makeKeyset, signToken, type TestKey } from '../../support/keys.js'
import { NOW, NOW_S } from './fixtures.js'

/**
 * CONTRACT §13 and docs/trusted-issuers.md, as an oracle: a token is routed by its `iss` before
 * any key lookup — the keyset's issuer to the keyset, a trusted issuer to its JWK Set, anything
 * else `bad_issuer` — so a kid of one issuer never verifies a token of another, even when both
 * publish the same kid. Each route then applies its own rules: audiences, leeway, lifetime,
 * `iat` optional or not; the keyset's `revocations` rules apply to both, its `revoked_before`
 * to its own tokens only. Random tokens (issuer, kid, signer, claims, clock) get the oracle's
 * answer from a cached and an uncached verifier alike, the cached one asked twice.
 */

const OWN = 'cbc-omega2'
const IDP = 'https://idp.example.com/realms/acme'
const OWN_AUDIENCE = 'cbc-api'
const IDP_AUDIENCES = ['orders-api', 'billing-api']
const OWN_LEEWAY = 30
const OWN_TTL = 3600

// The same kid `shared` at both issuers, with different keys; each also has a kid of its own.
const ownKeys = { shared: makeKey('ES256', 'shared'), own: makeKey('HS256', 'own-only') }
const idpKeys = { shared: makeKey('ES256', 'shared'), idp: makeKey('EdDSA', 'idp-only') }
const SIGNERS: Record<string, TestKey> = {
  'own:shared': ownKeys.shared,
  'own:own-only': ownKeys.own,
  'idp:shared': idpKeys.shared,
  'idp:idp-only': idpKeys.idp,
}
const publicJwk = (key: TestKey) => {
  const { d: _d, ...rest } = key.jwk as Record<string, unknown>
  return rest
}
const idpSet = readJwksDocument({ keys: Object.values(idpKeys).map((k) => ({ ...publicJwk(k), kid: k.kid, alg: k.alg, use: 'sig' })) }, ['ES256', 'EdDSA'], NOW)

interface Case {
  iss: string | number | null | undefined
  kid: string | undefined
  /** Which issuer's key under that kid signs: the one the token names, another's, or a stranger's. */
  signer: 'issuer' | 'own' | 'idp' | 'stranger'
  iatOff: number | undefined
  ttl: number
  nbfOff: number | undefined
  aud: unknown
  clientId: string | undefined
  sub: string
  jti: string
  atS: number
}

const caseArb: fc.Arbitrary<Case> = fc.record({
  iss: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(OWN, IDP) },
    { weight: 1, arbitrary: fc.constantFrom<Case['iss']>(`${IDP}/`, 'https://evil.example.com', 42, null, undefined) },
  ),
  kid: fc.oneof({ weight: 6, arbitrary: fc.constantFrom('shared', 'own-only', 'idp-only') }, { weight: 1, arbitrary: fc.constantFrom('nope', undefined) }),
  signer: fc.oneof(
    { weight: 4, arbitrary: fc.constant('issuer' as const) },
    { weight: 1, arbitrary: fc.constantFrom('own' as const, 'idp' as const, 'stranger' as const) },
  ),
  iatOff: fc.option(fc.integer({ min: -200, max: 100 }), { freq: 6, nil: undefined }),
  ttl: fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 1, max: 600 }) }, { weight: 1, arbitrary: fc.integer({ min: 600, max: 7300 }) }),
  nbfOff: fc.option(fc.integer({ min: -60, max: 90 }), { freq: 1, nil: undefined }),
  aud: fc.constantFrom<unknown>(OWN_AUDIENCE, 'orders-api', ['x', 'billing-api'], [OWN_AUDIENCE], 'other', [], undefined),
  clientId: fc.constantFrom('c-1', 'c-2', undefined),
  sub: fc.constantFrom('u-1', 'u-2'),
  jti: fc.constantFrom('j-1', 'j-2', 'j-3'),
  atS: fc.integer({ min: -120, max: 400 }),
})

interface World {
  idpLeeway: number
  idpTtl: number
  allowMissingIat: boolean
  revokedBeforeOff: number | undefined
  rules: Array<{ kind: 'client_id' | 'sub' | 'jti'; value: string; off: number }>
}

const worldArb: fc.Arbitrary<World> = fc.record({
  idpLeeway: fc.constantFrom(0, 5, 120),
  idpTtl: fc.constantFrom(600, 7200),
  allowMissingIat: fc.boolean(),
  revokedBeforeOff: fc.option(fc.integer({ min: -150, max: 50 }), { nil: undefined }),
  rules: fc.uniqueArray(
    fc.record({
      kind: fc.constantFrom('client_id' as const, 'sub' as const, 'jti' as const),
      value: fc.constantFrom('c-1', 'u-1', 'j-1'),
      off: fc.integer({ min: -150, max: 50 }),
    }),
    { maxLength: 2, selector: (r) => `${r.kind} ${r.value}` },
  ),
})

/** The answer of the contract and docs/trusted-issuers.md for a well-formed header. */
function oracle(c: Case, w: World): string {
  const nowS = NOW_S + c.atS
  const toIdp = c.iss === IDP
  // Routed by iss before any key lookup: a token of no known issuer is bad_issuer, kid or none.
  if (c.iss !== OWN && !toIdp) return 'bad_issuer'
  if (c.kid === undefined) return 'unknown_kid'
  const keys: Record<string, TestKey> = toIdp ? idpKeys : ownKeys
  const key = Object.values(keys).find((k) => k.kid === c.kid)
  if (key === undefined) return 'unknown_kid'
  // The algorithm is the key's; only that issuer's key under that kid verifies.
  const signer = signerOf(c)
  if (signer.alg !== key.alg) return 'unsupported_alg'
  if (signer !== key) return 'bad_signature'
  const leeway = toIdp ? w.idpLeeway : OWN_LEEWAY
  const iat = c.iatOff === undefined ? undefined : NOW_S + c.iatOff
  const exp = (iat ?? NOW_S) + c.ttl
  const nbf = c.nbfOff === undefined ? undefined : NOW_S + c.nbfOff
  if (iat === undefined && !(toIdp && w.allowMissingIat)) return 'malformed'
  const lifetime = iat === undefined ? exp - nowS : exp - iat
  if (lifetime > (toIdp ? w.idpTtl : OWN_TTL) + leeway) return 'malformed'
  if (nowS >= exp + leeway) return 'expired'
  if ((nbf !== undefined && nowS + leeway < nbf) || (iat !== undefined && iat > nowS + leeway)) return 'not_yet_valid'
  if (!toIdp && w.revokedBeforeOff !== undefined && iat! < NOW_S + w.revokedBeforeOff) return 'revoked'
  const client = c.clientId
  for (const r of w.rules) {
    const before = NOW_S + r.off
    const earlier = iat === undefined || iat < before
    if (r.kind === 'client_id' && client === r.value && earlier) return 'revoked'
    if (r.kind === 'sub' && c.sub === r.value && earlier) return 'revoked'
    if (r.kind === 'jti' && c.jti === r.value) return 'revoked'
  }
  const audiences = toIdp ? IDP_AUDIENCES : [OWN_AUDIENCE]
  const aud = c.aud
  const holds = typeof aud === 'string' ? audiences.includes(aud) : Array.isArray(aud) && aud.some((a) => audiences.includes(a))
  // The keyset's own audience is one string; a trusted issuer's, any of its list.
  if (!holds) return 'bad_audience'
  return 'ok'
}

function tokenOf(c: Case): string {
  const iat = c.iatOff === undefined ? undefined : NOW_S + c.iatOff
  const claims: Record<string, unknown> = {
    ...(c.iss !== undefined ? { iss: c.iss } : {}),
    ...(c.aud !== undefined ? { aud: c.aud } : {}),
    sub: c.sub,
    ...(c.clientId !== undefined ? { client_id: c.clientId } : {}),
    jti: c.jti,
    ...(iat !== undefined ? { iat } : {}),
    exp: (iat ?? NOW_S) + c.ttl,
    ...(c.nbfOff !== undefined ? { nbf: NOW_S + c.nbfOff } : {}),
  }
  return signToken(signerOf(c), claims, { kid: c.kid })
}

/** The key that signs: that issuer's key under the kid, else (it has none, or a stranger signs) a key of no issuer. */
function signerOf(c: Case): TestKey {
  const issuer = c.signer === 'issuer' ? (c.iss === IDP ? 'idp' : 'own') : c.signer
  return (issuer === 'stranger' ? undefined : SIGNERS[`${issuer}:${c.kid}`]) ?? makeStranger(c.kid)
}

const strangers = new Map<string, TestKey>()
function makeStranger(kid: string | undefined): TestKey {
  const name = kid ?? ''
  let k = strangers.get(name)
  if (!k) strangers.set(name, (k = makeKey('ES256', name || 'stranger')))
  return k
}

describe(`routing by iss agrees with an oracle from the contract (seed ${FUZZ_SEED})`, () => {
  it('every token gets the answer of its issuer’s rules, cached or not', async () => {
    const tally: Record<string, number> = {}
    await fc.assert(
      fc.asyncProperty(worldArb, fc.array(caseArb, { minLength: 1, maxLength: 20 }), async (w, cases) => {
        const created = new Date(NOW - 86_400_000).toISOString()
        const at = (off: number) => new Date((NOW_S + off) * 1000).toISOString()
        const doc = {
          ...makeKeyset([ownKeys.shared, ownKeys.own]),
          ...(w.revokedBeforeOff !== undefined ? { revoked_before: at(w.revokedBeforeOff) } : {}),
          ...(w.rules.length > 0
            ? {
                revocations: w.rules.map((r) =>
                  r.kind === 'jti'
                    ? { jti: r.value, expires_at: at(86_400), created_at: created }
                    : { [r.kind]: r.value, issued_before: at(r.off), created_at: created },
                ),
              }
            : {}),
        }
        const keyset = loadKeyset(doc, NOW)
        let now = NOW
        const route: IssuerRoute = {
          issuer: IDP,
          audiences: IDP_AUDIENCES,
          leeway: w.idpLeeway,
          maxTokenTtlSeconds: w.idpTtl,
          allowMissingIat: w.allowMissingIat,
          scopeClaim: undefined,
          keys: () => idpSet.keys,
        }
        const options = { issuer: OWN, audience: OWN_AUDIENCE, clockToleranceSeconds: OWN_LEEWAY, maxTokenBytes: 8192, maxTokenTtlSeconds: OWN_TTL }
        const cached = createVerifier({ ...options, now: () => now, trustedIssuers: [route] })
        const plain = createVerifier({ ...options, now: () => now, trustedIssuers: [route], tokenCacheEntries: 0 })
        for (const c of cases) {
          const token = tokenOf(c)
          const expected = oracle(c, w)
          tally[expected] = (tally[expected] ?? 0) + 1
          now = NOW + c.atS * 1000
          for (const [which, verifier] of [
            ['uncached', plain],
            ['cached', cached],
            ['cached, again', cached],
          ] as const) {
            const result = await verifier.verify(token, keyset)
            assert.equal(result.ok ? 'ok' : result.reason, expected, `${which}: ${JSON.stringify({ c, w })}`)
            // An accepted token names the key of its own issuer.
            if (result.ok) assert.equal(result.kid, c.kid)
          }
        }
      }),
      // Not scaled down by the unit tier (CBC_JWT_FUZZ_SCALE < 1): every reason must come up.
      fullFuzzParameters(150),
    )
    assertEveryReasonSeen(tally)
  })
})
