import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isCasMismatch, redact, statusFailure, toFailure, vaultErrors } from '../../../../src/lib/backends/vault/classify.js'
import { HttpCallError } from '../../../../src/lib/http/index.js'
import { BackendError } from '../../../../src/lib/errors.js'
import { BACKEND_ERROR_REASONS } from '../../../../src/lib/reasons.js'

describe('vault failure classification', () => {
  it('maps HTTP statuses to reasons, and marks what is worth retrying', () => {
    const table: Array<[number, string, boolean]> = [
      [301, 'bad_response', false],
      [307, 'bad_response', false],
      [400, 'server_error', false],
      [401, 'forbidden', false],
      [403, 'forbidden', false],
      [404, 'not_found', false],
      [412, 'server_error', true],
      [429, 'server_error', true],
      [500, 'server_error', true],
      [502, 'server_error', true],
      [503, 'sealed', true],
    ]
    for (const [status, reason, transient] of table) {
      const f = statusFailure(status, { errors: ['x'] }, 'vault:secret/p: read')
      assert.equal(f.error.reason, reason, String(status))
      assert.equal(f.transient, transient, String(status))
      assert.ok((BACKEND_ERROR_REASONS as readonly string[]).includes(f.error.reason))
    }
  })

  it('maps transport failures; only refused connections count as never sent', () => {
    const refused = toFailure(new HttpCallError('unreachable', 'ECONNREFUSED', { code: 'ECONNREFUSED' }), 'w')
    assert.deepEqual([refused.error.reason, refused.transient, refused.notApplied], ['unreachable', true, true])
    const reset = toFailure(new HttpCallError('unreachable', 'ECONNRESET', { code: 'ECONNRESET' }), 'w')
    assert.deepEqual([reset.error.reason, reset.transient, reset.notApplied], ['unreachable', true, false])
    assert.equal(toFailure(new HttpCallError('timeout', 't'), 'w').error.reason, 'timeout')
    assert.equal(toFailure(new HttpCallError('too_large', 'b'), 'w').transient, false)
    assert.equal(toFailure(new Error('boom'), 'w').error.reason, 'io_error')
    const redirect = toFailure(new HttpCallError('redirect', 'r', { status: 307 }), 'w')
    assert.deepEqual(
      [redirect.error.reason, redirect.error.message, redirect.transient, redirect.notApplied],
      ['bad_response', 'w: HTTP 307: redirect not followed', false, true],
    )
    const tls = toFailure(new HttpCallError('tls', 'CERT_HAS_EXPIRED', { code: 'CERT_HAS_EXPIRED' }), 'w')
    assert.deepEqual([tls.error.reason, tls.error.message, tls.notApplied], ['unreachable', 'w: cannot reach Vault (CERT_HAS_EXPIRED)', false])
  })

  it("keeps Vault's errors strings, flattened; the cut is made after redaction, in redact()", () => {
    assert.equal(vaultErrors({ errors: ['1 error occurred:\n\t* permission denied\n\n'] }), '1 error occurred: * permission denied')
    assert.equal(vaultErrors({ errors: ['a'.repeat(500)] }).length, 500)
    assert.equal(redact(new BackendError('server_error', vaultErrors({ errors: ['a'.repeat(5000)] })), []).message.length, 403)
    assert.equal(vaultErrors('<html>'), '')
    assert.equal(vaultErrors({ errors: [] }), '')
  })

  it("recognises only Vault's check-and-set 400 as a conflict", () => {
    const body = { errors: ['check-and-set parameter did not match the current version'] }
    assert.equal(isCasMismatch(400, body), true)
    assert.equal(isCasMismatch(500, body), false)
    assert.equal(isCasMismatch(400, { errors: ['no data provided'] }), false)
  })

  it('attack: a token across the old 200-character cut is redacted whole, never printed as all but its last character', () => {
    const token = 'hvs.CAESIJlWh2Vq5LZ8Jx0tA1b2c3d4e5f6g7h8i9j0kLmNoPqRsTuVwXyZ'
    for (let at = 150; at < 260; at += 7) {
      const json = { errors: [`${'x'.repeat(at)} ${token} denied`] }
      const err = redact(statusFailure(403, json, 'read vault:secret/cbc').error, [token])
      for (let n = 8; n < token.length; n++) assert.ok(!err.message.includes(token.slice(0, n)), `${n} characters of the token printed (at ${at})`)
    }
  })

  it('attack: ESC/CSI/OSC sequences, C1 controls and bidi overrides in Vault errors are escaped, never printed raw', () => {
    const hostile = '\u001b[2J\u001b]0;pwned\u0007 \u009b31m \u202eevil\u202c \u200b'
    const err = redact(statusFailure(500, { errors: [hostile] }, 'read vault:secret/cbc').error, [])
    assert.match(err.message, /^[\x20-\x7e]*$/)
    assert.ok(err.message.includes('\\x1b[2J') && err.message.includes('\\x9b') && err.message.includes('\\u202e'), err.message)
  })

  // vaultErrors escaped the text and redact() escaped it again: `\\\\` for one backslash, `\\xe9` for é.
  it('a backslash or a non-ASCII character in a Vault error is escaped once: the message reads one way only', () => {
    const err = redact(statusFailure(500, { errors: ['C:\\vault \u00e9'] }, 'read vault:secret/cbc').error, [])
    assert.equal(err.message, 'read vault:secret/cbc: HTTP 500 (C:\\\\vault \\xe9)')
  })

  it('redacts known secrets from a message and keeps the reason and cause', () => {
    const cause = new Error('c')
    const err = redact(new BackendError('forbidden', 'token hvs.ABCDEF rejected', { cause }), ['hvs.ABCDEF'])
    assert.ok(err instanceof BackendError)
    assert.equal(err.message, 'token [redacted] rejected')
    assert.equal(err.reason, 'forbidden')
    assert.equal(err.cause, cause)
  })
})
