/**
 * The text exposition format as `verify-rotation --url` reads it from whatever answers on the
 * URL: samples, their labels unescaped then made printable, values including ±Inf; a line that
 * is not a sample is skipped without hiding the ones after it.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseSamples } from '../../../src/ops/fleet/prometheus-text.js'

describe('parseSamples', () => {
  it('reads names, labels and values; skips comments; ±Inf are infinite, a timestamp is not the value', () => {
    const text = [
      '# HELP cbc_jwt_key_info Keys that verify.',
      '# TYPE cbc_jwt_key_info gauge',
      'cbc_jwt_key_info{issuer="cbc-omega2",kid="k-a",alg="ES256",status="current"} 1',
      'cbc_jwt_keys_loaded 2 1700000000000',
      'cbc_jwt_up_since +Inf',
      'cbc_jwt_down_since -Inf',
      '',
    ].join('\n')
    assert.deepEqual(parseSamples(text), [
      { name: 'cbc_jwt_key_info', labels: { issuer: 'cbc-omega2', kid: 'k-a', alg: 'ES256', status: 'current' }, value: 1 },
      { name: 'cbc_jwt_keys_loaded', labels: {}, value: 2 },
      { name: 'cbc_jwt_up_since', labels: {}, value: Infinity },
      { name: 'cbc_jwt_down_since', labels: {}, value: -Infinity },
    ])
  })

  it('a line that is no sample (no value, no blank before the value) is skipped; the samples after it are still read', () => {
    const text = ['garbage', 'cbc_jwt_a{kid="k-a"}1', 'cbc_jwt_keys_loaded 3'].join('\n')
    assert.deepEqual(parseSamples(text), [{ name: 'cbc_jwt_keys_loaded', labels: {}, value: 3 }])
  })

  it('label values are unescaped (\\n, \\", \\\\), then made printable: nothing raw reaches a terminal', () => {
    const [sample] = parseSamples('cbc_jwt_key_info{kid="k-a",pod="a\\nb \\"q\\" c\\\\d \u001b]0;pwned\u0007\u009b2J"} 1')
    assert.equal(sample!.labels.kid, 'k-a')
    assert.equal(sample!.labels.pod, 'a\\x0ab "q" c\\\\d \\x1b]0;pwned\\x07\\x9b2J')
    assert.doesNotMatch(sample!.labels.pod!, /[\u0000-\u001f\u007f-\u009f]/)
  })

  it('attack: labels are read where the last one ended, until one does not parse: nothing past it is taken', () => {
    const [sample] = parseSamples('cbc_jwt_key_info{kid="k-a",!!!,status="current"} 1')
    assert.deepEqual(sample!.labels, { kid: 'k-a' })
  })
})
