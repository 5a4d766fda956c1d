import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { claimedClientId } from '../../../src/lib/logging/claimed-client-id.js'

const token = (claims: unknown, header: unknown = { alg: 'ES256', kid: 'k' }) =>
  `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(typeof claims === 'string' ? claims : JSON.stringify(claims)).toString('base64url')}.c2ln`

describe('claimedClientId (for client_id_unverified)', () => {
  it('reads client_id, else azp, else sub', () => {
    assert.equal(claimedClientId(token({ client_id: 'acme', azp: 'x', sub: 'y' })), 'acme')
    assert.equal(claimedClientId(token({ azp: 'partner-7', sub: 'y' })), 'partner-7')
    assert.equal(claimedClientId(token({ sub: 'alice@example.com' })), 'alice@example.com')
    assert.equal(claimedClientId(token({ iss: 'x' })), undefined)
  })

  it('log injection: control characters, quotes and line breaks become _', () => {
    assert.equal(claimedClientId(token({ client_id: 'evil\n{"event":"auth_accepted"}\u001b[2J' })), 'evil___event_:_auth_accepted____2J')
  })

  it('a 3000-character claimed id is cut to 64', () => {
    assert.equal(claimedClientId(token({ client_id: 'a'.repeat(3000) })), 'a'.repeat(64))
  })

  it('garbage payloads give nothing, never an exception', () => {
    for (const t of ['', 'abc', 'a.b', 'a.!!!.c', token('not json'), token([1, 2]), token({ client_id: 42 }), `h.${'A'.repeat(5000)}.s`]) {
      assert.equal(claimedClientId(t), undefined, t.slice(0, 40))
    }
  })
})
