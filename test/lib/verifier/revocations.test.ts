import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import type { RevocationRule } from '../../../src/lib/keyset/document.js'
import { NO_REVOCATIONS, buildRevocationMatcher, type RevocableClaims } from '../../../src/lib/verifier/revocations.js'

const T = Date.parse('2026-11-25T21:00:00Z') / 1000
const iso = (seconds: number) => new Date(seconds * 1000).toISOString()
const CREATED = '2026-11-25T21:00:05Z'

const rules: RevocationRule[] = [
  { client_id: 'acme-batch', issued_before: iso(T), created_at: CREATED },
  { sub: 'user-7', issued_before: iso(T), created_at: CREATED },
  { jti: 'tok-1', expires_at: iso(T + 86_400), created_at: CREATED },
]
const matcher = buildRevocationMatcher(rules)

describe('revocation rules: what a rule revokes', () => {
  it("a client rule revokes that client's tokens issued before its time, exactly, and nothing else", () => {
    assert.equal(matcher.isRevoked({ client_id: 'acme-batch', iat: T - 1 }), true)
    assert.equal(matcher.isRevoked({ client_id: 'acme-batch', iat: T - 0.001 }), true)
    assert.equal(matcher.isRevoked({ client_id: 'acme-batch', iat: T }), false, 'issued at the instant itself: not before it')
    assert.equal(matcher.isRevoked({ client_id: 'acme-other', iat: T - 1 }), false)
    assert.equal(matcher.isRevoked({ client_id: 'ACME-BATCH', iat: T - 1 }), false, 'ids are compared exactly')
  })

  it('the client is client_id, else azp — azp does not count when client_id is there', () => {
    assert.equal(matcher.isRevoked({ azp: 'acme-batch', iat: T - 1 }), true)
    assert.equal(matcher.isRevoked({ client_id: 'someone', azp: 'acme-batch', iat: T - 1 }), false)
    assert.equal(matcher.isRevoked({ client_id: 42, azp: 'acme-batch', iat: T - 1 }), true, 'a client_id that is not a string names no client')
  })

  it("a subject rule revokes that subject's earlier tokens, whichever client they came from", () => {
    assert.equal(matcher.isRevoked({ sub: 'user-7', client_id: 'web', iat: T - 60 }), true)
    assert.equal(matcher.isRevoked({ sub: 'user-7', client_id: 'web', iat: T + 60 }), false)
    assert.equal(matcher.isRevoked({ sub: 'user-8', iat: T - 60 }), false)
  })

  it('a jti rule revokes that one token whenever it was issued', () => {
    assert.equal(matcher.isRevoked({ jti: 'tok-1', iat: T + 3600 }), true)
    assert.equal(matcher.isRevoked({ jti: 'tok-2', iat: T - 3600 }), false)
    assert.equal(matcher.isRevoked({ jti: ['tok-1'], iat: T - 3600 }), false)
  })

  it('a token without a numeric iat cannot show it came after a client or subject rule: revoked', () => {
    assert.equal(matcher.isRevoked({ client_id: 'acme-batch' }), true)
    assert.equal(matcher.isRevoked({ sub: 'user-7', iat: '2026' }), true)
    assert.equal(matcher.isRevoked({ client_id: 'other' }), false)
  })

  it('of two rules for one client (a hand-edited document), the later time wins', () => {
    const two = buildRevocationMatcher([
      { client_id: 'c', issued_before: iso(T), created_at: CREATED },
      { client_id: 'c', issued_before: iso(T - 100), created_at: CREATED },
    ])
    assert.equal(two.isRevoked({ client_id: 'c', iat: T - 50 }), true)
  })

  it('no rules: the shared empty matcher, which revokes nothing', () => {
    assert.equal(buildRevocationMatcher(undefined), NO_REVOCATIONS)
    assert.equal(buildRevocationMatcher([]), NO_REVOCATIONS)
    assert.equal(NO_REVOCATIONS.isRevoked({ client_id: 'acme-batch', sub: 'user-7', jti: 'tok-1' }), false)
    assert.equal(matcher.size, 3)
  })
})

/** The rules read literally, one by one: what the indexed matcher must agree with. */
function scan(list: RevocationRule[], claims: RevocableClaims): boolean {
  const client = typeof claims.client_id === 'string' ? claims.client_id : claims.azp
  const before = (text: string) => !(typeof claims.iat === 'number') || claims.iat < Date.parse(text) / 1000
  return list.some((r) =>
    'jti' in r ? claims.jti === r.jti : 'client_id' in r ? client === r.client_id && before(r.issued_before) : claims.sub === r.sub && before(r.issued_before),
  )
}

describe('revocation rules: the index agrees with reading every rule', () => {
  it('for random rules and random claims (property)', () => {
    const name = fc.constantFrom('a', 'b', 'c', 'd')
    const time = fc.integer({ min: -5, max: 5 }).map((s) => iso(T + s))
    const rule: fc.Arbitrary<RevocationRule> = fc.oneof(
      fc.record({ client_id: name, issued_before: time, created_at: fc.constant(CREATED) }),
      fc.record({ sub: name, issued_before: time, created_at: fc.constant(CREATED) }),
      fc.record({ jti: name, expires_at: time, created_at: fc.constant(CREATED) }),
    )
    const maybe = <V>(a: fc.Arbitrary<V>) => fc.option(a, { nil: undefined })
    const claims = fc.record(
      {
        client_id: maybe(fc.oneof(name, fc.constant(7))),
        azp: maybe(name),
        sub: maybe(name),
        jti: maybe(name),
        iat: maybe(fc.oneof(fc.double({ min: T - 6, max: T + 6, noNaN: true }), fc.constant('x'))),
      },
      { requiredKeys: [] },
    )
    fc.assert(
      fc.property(fc.array(rule, { maxLength: 12 }), fc.array(claims, { minLength: 1, maxLength: 20 }), (list, tokens) => {
        const m = buildRevocationMatcher(list)
        for (const c of tokens) assert.equal(m.isRevoked(c), scan(list, c), JSON.stringify({ list, c }))
      }),
      { ...(process.env.CI ? { seed: 20261206 } : {}), numRuns: 300 },
    )
  })
})
