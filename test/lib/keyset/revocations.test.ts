import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { MAX_REVOCATION_RULES } from '../../../src/lib/keyset/document.js'
import { loadKeyset } from '../../../src/lib/keyset/load.js'
import { schemaProblems } from '../../../src/lib/keyset/schema.js'
import { makeKey, makeKeyset } from '../../support/keys.js'
import { invalid, lines } from './fixtures.js'

const NOW = Date.parse('2026-11-25T21:16:00Z')
const key = makeKey('ES256', 'k-1')
const CREATED = '2026-11-25T21:00:00Z'
const withRules = (revocations: unknown) => ({ ...makeKeyset([{ key, opts: { createdAt: new Date(NOW - 3600_000) } }]), revocations })
const jtiRules = (n: number) => Array.from({ length: n }, (_, i) => ({ jti: `tok-${i}`, expires_at: '2026-11-26T21:00:00Z', created_at: CREATED }))

describe('keyset revocations: validation', () => {
  it('loads the three kinds of rule and indexes them', () => {
    const ks = loadKeyset(
      withRules([
        { client_id: 'acme-batch', issued_before: '2026-11-25T21:00:00Z', created_at: CREATED },
        { sub: 'user-7', issued_before: '2026-11-25T21:00:00.500Z', created_at: CREATED },
        { jti: 'tok-1', expires_at: '2026-11-26T21:00:00Z', created_at: CREATED },
      ]),
      NOW,
    )
    assert.equal(ks.revocations.size, 3)
    const T = Date.parse('2026-11-25T21:00:00Z') / 1000
    assert.equal(ks.revocations.isRevoked({ client_id: 'acme-batch', iat: T - 1 }), true)
    assert.equal(ks.revocations.isRevoked({ sub: 'user-7', iat: T + 0.4 }), true, 'fractional seconds are kept')
    assert.equal(ks.revocations.isRevoked({ jti: 'tok-1', iat: T }), true)
  })

  it('a keyset without rules, or with an empty list, revokes nothing by rule', () => {
    assert.equal(loadKeyset(withRules([]), NOW).revocations.size, 0)
    const { revocations: _none, ...plain } = withRules([])
    assert.equal(loadKeyset(plain, NOW).revocations.size, 0)
  })

  it('accepts a value of exactly 256 characters, the longest a rule names (257 is refused below)', () => {
    const long = (c: string) => c.repeat(256)
    const ks = loadKeyset(
      withRules([
        { client_id: long('c'), issued_before: '2026-11-25T21:00:00Z', created_at: CREATED },
        { sub: long('s'), issued_before: '2026-11-25T21:00:00Z', created_at: CREATED },
        { jti: long('j'), expires_at: '2026-11-26T21:00:00Z', created_at: CREATED },
      ]),
      NOW,
    )
    assert.equal(ks.revocations.size, 3)
  })

  it('refuses malformed rules, each described once in words an operator can act on', () => {
    const err = invalid(() =>
      loadKeyset(
        withRules([
          { client_id: 'a', issued_before: '2026-11-25T21:00:00Z', created_at: CREATED },
          { client_id: 'b', sub: 'c', issued_before: '2026-11-25T21:00:00Z', created_at: CREATED },
          { jti: 't', issued_before: '2026-11-25T21:00:00Z', created_at: CREATED },
          { client_id: 'd', issued_before: 'yesterday', created_at: CREATED },
          { client_id: '', issued_before: '2026-11-25T21:00:00Z', created_at: CREATED },
          { sub: 'line\nbreak', issued_before: '2026-11-25T21:00:00Z' },
          { client_id: 'e', issued_before: '2026-11-25T21:00:00Z', created_at: CREATED, note: 'typo' },
          { issued_before: '2026-11-25T21:00:00Z', created_at: CREATED },
          'acme',
          { client_id: 'x'.repeat(257), issued_before: '2026-11-25T21:00:00Z', created_at: CREATED },
        ]),
        NOW,
      ),
    )
    assert.deepEqual(lines(err.problems), [
      'revocations[1]: names client_id and sub; a rule names exactly one',
      'revocations[2].expires_at: is required',
      'revocations[2].issued_before: a jti rule takes expires_at, not issued_before',
      'revocations[3].issued_before: must be an RFC 3339 date-time (e.g. 2026-11-25T21:16:00Z)',
      'revocations[4].client_id: must be 1–256 characters without control characters',
      'revocations[5].sub: must be 1–256 characters without control characters',
      'revocations[5].created_at: is required',
      'revocations[6].note: unknown field',
      'revocations[7]: must name one of client_id, sub or jti',
      'revocations[8]: must be an object naming one of client_id, sub or jti',
      'revocations[9].client_id: must be 1–256 characters without control characters',
    ])
  })

  it('refuses a second rule for the same client, subject or token id, and an unreadable date', () => {
    const err = invalid(() =>
      loadKeyset(
        withRules([
          { client_id: 'a', issued_before: '2026-11-25T21:00:00Z', created_at: CREATED },
          { sub: 'a', issued_before: '2026-11-25T21:00:00Z', created_at: CREATED },
          { client_id: 'a', issued_before: '2026-11-25T22:00:00Z', created_at: CREATED },
          { jti: 'j', expires_at: '2026-11-26T21:00:00Z', created_at: '2026-11-25T23:59:60Z' },
        ]),
        NOW,
      ),
    )
    assert.deepEqual(lines(err.problems), [
      'revocations[2].client_id: a second rule for client_id "a" (also revocations[0])',
      'revocations[3].created_at: must be an RFC 3339 date-time (e.g. 2026-11-25T21:16:00Z)',
    ])
  })

  it('one value under three kinds is three rules; a second subject or token id rule is named as such', () => {
    const err = invalid(() =>
      loadKeyset(
        withRules([
          { client_id: 'x', issued_before: '2026-11-25T21:00:00Z', created_at: CREATED },
          { sub: 'x', issued_before: '2026-11-25T21:00:00Z', created_at: CREATED },
          { jti: 'x', expires_at: '2026-11-26T21:00:00Z', created_at: CREATED },
          { sub: 'y', issued_before: '2026-11-25T21:00:00Z', created_at: CREATED },
          { sub: 'x', issued_before: '2026-11-25T22:00:00Z', created_at: CREATED },
          { jti: 'x', expires_at: '2026-11-26T22:00:00Z', created_at: CREATED },
          { sub: 'z', issued_before: '2026-11-25T23:59:60Z', created_at: CREATED },
        ]),
        NOW,
      ),
    )
    assert.deepEqual(lines(err.problems), [
      'revocations[4].sub: a second rule for sub "x" (also revocations[1])',
      'revocations[5].jti: a second rule for jti "x" (also revocations[2])',
      'revocations[6].issued_before: must be an RFC 3339 date-time (e.g. 2026-11-25T21:16:00Z)',
    ])
  })

  it('describes each fault of a rule, and only its faults (offset dates, fractions and 256 characters are sound)', () => {
    const err = invalid(() =>
      loadKeyset(
        withRules([
          null,
          { client_id: 5, issued_before: '2026-11-25T21:00:00Z', created_at: CREATED },
          { client_id: 'c', expires_at: '2026-11-25T21:00:00Z', created_at: CREATED },
          { sub: 's'.repeat(256), issued_before: '2026-11-25T22:00:00.125+01:00', created_at: CREATED, note: 'typo' },
          { sub: 't', issued_before: 'on 2026-11-25T21:00:00Z', created_at: '2026-11-25T21:00:00Z, then' },
        ]),
        NOW,
      ),
    )
    assert.deepEqual(lines(err.problems), [
      'revocations[0]: must be an object naming one of client_id, sub or jti',
      'revocations[1].client_id: must be 1–256 characters without control characters',
      'revocations[2].issued_before: is required',
      'revocations[2].expires_at: a client_id rule takes issued_before, not expires_at',
      'revocations[3].note: unknown field',
      'revocations[4].issued_before: must be an RFC 3339 date-time (e.g. 2026-11-25T21:16:00Z)',
      'revocations[4].created_at: must be an RFC 3339 date-time (e.g. 2026-11-25T21:16:00Z)',
    ])
  })

  it(`holds ${MAX_REVOCATION_RULES} rules and refuses ${MAX_REVOCATION_RULES + 1} with one clear line`, () => {
    assert.equal(loadKeyset(withRules(jtiRules(MAX_REVOCATION_RULES)), NOW).revocations.size, MAX_REVOCATION_RULES)
    const err = invalid(() => loadKeyset(withRules(jtiRules(MAX_REVOCATION_RULES + 1)), NOW))
    assert.deepEqual(lines(err.problems), [
      `revocations: ${MAX_REVOCATION_RULES + 1} rules; at most ${MAX_REVOCATION_RULES} are allowed (revoke a whole client or subject rather than its tokens one jti at a time)`,
    ])
  })

  it('the shipped schema alone refuses the same shapes (for tools that use only the schema)', () => {
    assert.deepEqual(schemaProblems(withRules([{ jti: 't', expires_at: '2026-11-26T21:00:00Z', created_at: CREATED }])), [])
    assert.notDeepEqual(schemaProblems(withRules([{ jti: 't', issued_before: '2026-11-26T21:00:00Z', created_at: CREATED }])), [])
    assert.notDeepEqual(schemaProblems(withRules({})), [])
  })
})
