import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { authorizationFromRawHeaders, bearerCredential } from '../../../src/lib/core/bearer.js'
import { fuzzParameters } from '../../support/fuzz.js'

const TOKEN = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln'

describe('bearerCredential: the Authorization rules every adapter shares', () => {
  const cases: Array<[name: string, header: string | readonly string[] | null | undefined, expected: ReturnType<typeof bearerCredential>]> = [
    ['no header → missing', undefined, { reason: 'missing' }],
    ["no header as the Fetch API's Headers.get() says it (null) → missing", null, { reason: 'missing' }],
    ['an empty header → missing', '', { reason: 'missing' }],
    ['a header of spaces → missing', '   ', { reason: 'missing' }],
    ['no header values at all (empty array) → missing', [], { reason: 'missing' }],
    ['Basic credentials → missing (no bearer credential presented, RFC 6750 §3.1)', 'Basic dXNlcjpwYXNz', { reason: 'missing' }],
    ['Digest credentials → missing', 'Digest username="a", realm="b"', { reason: 'missing' }],
    ['a scheme that only starts with Bearer → missing', `Bearerx ${TOKEN}`, { reason: 'missing' }],
    ['the token alone, without a scheme → missing', TOKEN, { reason: 'missing' }],
    ['Bearer <token> → the token', `Bearer ${TOKEN}`, { token: TOKEN }],
    ['the scheme is case-insensitive: bearer', `bearer ${TOKEN}`, { token: TOKEN }],
    ['the scheme is case-insensitive: BEARER', `BEARER ${TOKEN}`, { token: TOKEN }],
    ['several spaces or a tab after the scheme are one separator', `Bearer \t  ${TOKEN}`, { token: TOKEN }],
    ['surrounding whitespace is not part of the value', `  Bearer ${TOKEN}  `, { token: TOKEN }],
    ['Bearer without a token → malformed', 'Bearer', { reason: 'malformed' }],
    ['Bearer and spaces only → malformed', 'Bearer    ', { reason: 'malformed' }],
    ['two tokens (Bearer x y) → malformed', `Bearer ${TOKEN} ${TOKEN}`, { reason: 'malformed' }],
    ['an array of one value → that value', [`Bearer ${TOKEN}`], { token: TOKEN }],
    ['request smuggling: two Authorization headers → malformed, neither picked', [`Bearer ${TOKEN}`, 'Bearer other.token.x'], { reason: 'malformed' }],
    ['two Authorization headers, one Basic → malformed', ['Basic dXNlcjpwYXNz', `Bearer ${TOKEN}`], { reason: 'malformed' }],
  ]
  for (const [name, header, expected] of cases) {
    it(name, () => assert.deepEqual(bearerCredential(header), expected))
  }

  it('characters outside the JWS alphabet are left to the verifier (which answers malformed after the size check)', () => {
    assert.deepEqual(bearerCredential('Bearer a.b.c,d'), { token: 'a.b.c,d' })
  })
})

describe('authorizationFromRawHeaders: what Node hides in req.headers', () => {
  it('no Authorization → undefined', () => {
    assert.equal(authorizationFromRawHeaders(['Host', 'x', 'Accept', '*/*']), undefined)
  })
  it('one Authorization, any case → its value', () => {
    assert.equal(authorizationFromRawHeaders(['Host', 'x', 'AUTHORIZATION', 'Bearer a']), 'Bearer a')
  })
  it('attack: a second Authorization header (Node keeps only the first in req.headers) → both values', () => {
    assert.deepEqual(authorizationFromRawHeaders(['authorization', 'Bearer a', 'Host', 'x', 'Authorization', 'Bearer b']), ['Bearer a', 'Bearer b'])
  })
  it("attack: a request at Node's header cap (the rest dropped unseen) → several values, never the one it holds", () => {
    const filler = Array.from({ length: 1022 }, (_, i) => [`x-filler-${i}`, 'a']).flat()
    // What Node hands over for 1100 filler headers, then two Authorization: the first 1023 headers.
    const cut = ['Host', 'x', ...filler.slice(0, 2042), 'Authorization', 'Bearer a']
    assert.deepEqual(bearerCredential(authorizationFromRawHeaders(cut)), { reason: 'malformed' })
    assert.deepEqual(bearerCredential(authorizationFromRawHeaders(['Host', 'x', ...filler.slice(0, 1998)])), { reason: 'malformed' })
    // Below the cap nothing was dropped: the one value.
    assert.equal(authorizationFromRawHeaders(['Host', 'x', ...filler.slice(0, 1994), 'Authorization', 'Bearer a']), 'Bearer a')
  })

  it('an empty second Authorization header still counts', () => {
    assert.deepEqual(authorizationFromRawHeaders(['authorization', 'Bearer a', 'authorization', '']), ['Bearer a', ''])
  })
})

describe('bearerCredential: property, against the rules written as regular expressions', () => {
  // The rules of the doc comment, spelled the obvious (slower) way: the parser must agree on any input.
  function reference(value: string): ReturnType<typeof bearerCredential> {
    const trimmed = value.trim()
    if (trimmed === '') return { reason: 'missing' }
    // The scheme ends at the first space or tab (other whitespace is part of it).
    const space = trimmed.search(/[ \t]/)
    const scheme = space === -1 ? trimmed : trimmed.slice(0, space)
    if (scheme.toLowerCase() !== 'bearer') return { reason: 'missing' }
    if (space === -1) return { reason: 'malformed' }
    const token = trimmed.slice(space + 1).replace(/^[ \t]+/, '')
    return /[ \t]/.test(token) ? { reason: 'malformed' } : { token }
  }
  const piece = fc.constantFrom('Bearer', 'bearer', 'BEARER', 'Basic', ' ', '\t', '  ', '\n', '\u00a0', 'a.b.c', TOKEN, 'x', '')
  const header = fc.oneof(
    fc.array(piece, { maxLength: 6 }).map((p) => p.join('')),
    fc.string({ maxLength: 40 }),
    fc.string({ unit: fc.constantFrom(' ', '\t', 'B', 'e', 'a', 'r', '.', 'x') }),
  )

  it('agrees with the reference on every header value', () => {
    fc.assert(
      fc.property(header, (value) => {
        assert.deepEqual(bearerCredential(value), reference(value))
      }),
      fuzzParameters(2000),
    )
  })
})
