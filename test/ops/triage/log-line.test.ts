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
