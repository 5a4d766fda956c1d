import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isCasMismatch, redact, statusFailure, toFailure, vaultErrors } from '../../../../src/lib/backends/vault/classify.js'
import { TransportError } from '../../../../src/lib/backends/vault/http.js'
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
    const refused = toFailure(new TransportError('unreachable', 'ECONNREFUSED', 'ECONNREFUSED'), 'w')
    assert.deepEqual([refused.error.reason, refused.transient, refused.notApplied], ['unreachable', true, true])
    const reset = toFailure(new TransportError('unreachable', 'ECONNRESET', 'ECONNRESET'), 'w')
    assert.deepEqual([reset.error.reason, reset.transient, reset.notApplied], ['unreachable', true, false])
    assert.equal(toFailure(new TransportError('timeout', 't'), 'w').error.reason, 'timeout')
    assert.equal(toFailure(new TransportError('bad_response', 'b'), 'w').transient, false)
    assert.equal(toFailure(new Error('boom'), 'w').error.reason, 'io_error')
  })

  it('keeps Vault\'s errors strings, flattened and truncated to 200 characters', () => {
    assert.equal(vaultErrors({ errors: ['1 error occurred:\n\t* permission denied\n\n'] }), '1 error occurred: * permission denied')
    assert.equal(vaultErrors({ errors: ['a'.repeat(500)] }).length, 201)
    assert.equal(vaultErrors('<html>'), '')
    assert.equal(vaultErrors({ errors: [] }), '')
  })

  it('recognises only Vault\'s check-and-set 400 as a conflict', () => {
    const body = { errors: ['check-and-set parameter did not match the current version'] }
    assert.equal(isCasMismatch(400, body), true)
    assert.equal(isCasMismatch(500, body), false)
    assert.equal(isCasMismatch(400, { errors: ['no data provided'] }), false)
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
