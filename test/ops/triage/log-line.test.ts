import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { classifyLine } from '../../../src/ops/triage/log-line.js'

const rejection = { level: 40, time: 1_764_633_600_000, service: 'cbc-jwt', event: 'auth_rejected', reason: 'bad_signature', kid: 'k-1' }

describe('classifyLine', () => {
  it('reads a raw line, a kubectl --prefix line and a --timestamps line alike', () => {
    for (const line of [
      JSON.stringify(rejection),
      `[pod/cbc-jwt-7f9c/cbc-jwt] ${JSON.stringify(rejection)}`,
      `[pod/cbc-jwt-7f9c/cbc-jwt] 2025-12-02T00:00:00.123456789Z ${JSON.stringify(rejection)}`,
    ]) {
      const c = classifyLine(line)
      assert.equal(c.kind, 'rejection', line)
      if (c.kind === 'rejection') assert.equal(c.record.time, rejection.time)
    }
    const c = classifyLine(`[pod/cbc-jwt-7f9c/cbc-jwt] ${JSON.stringify(rejection)}`)
    assert.equal(c.kind === 'rejection' && c.record.source, 'pod/cbc-jwt-7f9c/cbc-jwt')
  })

  it('takes the time from --timestamps when the line has none', () => {
    const { time: _, ...untimed } = rejection
    const c = classifyLine(`2025-12-02T00:00:01Z ${JSON.stringify(untimed)}`)
    assert.equal(c.kind === 'rejection' && c.record.time, Date.parse('2025-12-02T00:00:01Z'))
  })

  it('prefers the verified client id; a claimed one is marked unverified', () => {
    const verified = classifyLine(JSON.stringify({ ...rejection, reason: 'expired', client_id: 'acme' }))
    assert.deepEqual(verified.kind === 'rejection' && [verified.record.clientId, verified.record.verified], ['acme', true])
    const claimed = classifyLine(JSON.stringify({ ...rejection, client_id: null, client_id_unverified: 'acme' }))
    assert.deepEqual(claimed.kind === 'rejection' && [claimed.record.clientId, claimed.record.verified], ['acme', false])
    const none = classifyLine(JSON.stringify({ ...rejection, client_id: null }))
    assert.deepEqual(none.kind === 'rejection' && [none.record.clientId, none.record.verified], [null, true])
  })

  it("attack: a claimed id beside a verified one never replaces it, and only a verified id is the tokens' sub", () => {
    const both = classifyLine(JSON.stringify({ ...rejection, client_id: 'acme', client_id_unverified: 'mallory', client_id_claim: 'sub' }))
    assert.deepEqual(both.kind === 'rejection' && [both.record.clientId, both.record.verified, both.record.subject], ['acme', true, true])
    // What a forged token claims is matched by no rule by subject: the command it gets is by client id.
    const claimed = classifyLine(JSON.stringify({ ...rejection, client_id_unverified: 'mallory', client_id_claim: 'sub' }))
    assert.deepEqual(claimed.kind === 'rejection' && [claimed.record.clientId, claimed.record.subject], ['mallory', false])
  })

  it('reads the kid and the remote address (either name); a field is 1 to 256 characters or none', () => {
    const c = classifyLine(JSON.stringify({ ...rejection, remote_address: '10.0.0.9', client_id: 'a'.repeat(256) }))
    assert.deepEqual(c.kind === 'rejection' && [c.record.kid, c.record.remoteAddress, c.record.clientId?.length], ['k-1', '10.0.0.9', 256])
    const long = classifyLine(JSON.stringify({ ...rejection, remote_addr: '10.0.0.8', client_id: 'a'.repeat(257) }))
    assert.deepEqual(long.kind === 'rejection' && [long.record.remoteAddress, long.record.clientId], ['10.0.0.8', null])
    const empty = classifyLine(JSON.stringify({ ...rejection, client_id: '', client_id_unverified: 'mallory' }))
    assert.deepEqual(empty.kind === 'rejection' && [empty.record.clientId, empty.record.verified], ['mallory', false])
  })

  it('a prefix with a blank in it is no kubectl prefix: the line is foreign', () => {
    assert.equal(classifyLine(`[pod/a b/cbc-jwt] ${JSON.stringify(rejection)}`).kind, 'foreign')
  })

  it('a time no Date can hold is no time: the line is foreign, never a crash when printed', () => {
    for (const time of [Number.MAX_VALUE, -1e300, 8.64e15 + 1, '+275760-09-14T00:00:00.001Z']) {
      assert.equal(classifyLine(JSON.stringify({ ...rejection, time })).kind, 'foreign', String(time))
    }
    const { time: _, ...untimed } = rejection
    assert.equal(classifyLine(`2025-13-45T00:00:01Z ${JSON.stringify(untimed)}`).kind, 'foreign')
    assert.equal(classifyLine(JSON.stringify({ ...rejection, time: 8.64e15 })).kind, 'rejection')
  })

  it('tells other service lines from foreign ones', () => {
    assert.equal(classifyLine(JSON.stringify({ service: 'cbc-jwt', event: 'keyset_loaded' })).kind, 'service')
    for (const line of [
      'plain text',
      '{not json',
      '[1,2]',
      '{"event":"auth_rejected","reason":"forged_reason","time":1}',
      JSON.stringify({ msg: 'other app' }),
    ]) {
      assert.equal(classifyLine(line).kind, 'foreign', line)
    }
  })
})
