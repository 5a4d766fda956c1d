import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { forwardedChain } from '../../../src/lib/logging/forwarded-for.js'

describe('forwardedChain (X-Forwarded-For, when a proxy is trusted)', () => {
  it('splits the chain, IPv4 and IPv6', () => {
    assert.deepEqual(forwardedChain('203.0.113.7, 2001:db8::1 ,10.0.0.2'), ['203.0.113.7', '2001:db8::1', '10.0.0.2'])
    assert.deepEqual(forwardedChain(['203.0.113.7', '10.0.0.2']), ['203.0.113.7', '10.0.0.2'])
    assert.equal(forwardedChain(undefined), undefined)
    assert.equal(forwardedChain(' , '), undefined)
  })

  it('log injection: a hop that is not an address is logged as invalid', () => {
    assert.deepEqual(forwardedChain('1.2.3.4\n{"x":1}, 10.0.0.2'), ['invalid', '10.0.0.2'])
  })

  it('a long forged chain keeps only the 10 nearest hops', () => {
    const chain = forwardedChain([...Array.from({ length: 50 }, (_, i) => `192.0.2.${i}`), '10.0.0.2'].join(','))!
    assert.equal(chain.length, 10)
    assert.equal(chain.at(-1), '10.0.0.2')
    assert.deepEqual(forwardedChain('1'.repeat(5000)), ['invalid'])
  })

  it('attack: a long forged prefix does not hide the nearest hops (the address your proxy appended)', () => {
    // Envoy with use_remote_address appends the address it saw to whatever the client wrote.
    const prefix = Array.from({ length: 600 }, () => '192.0.2.1').join(', ')
    assert.deepEqual(forwardedChain(`${prefix}, 203.0.113.9`), [...Array(9).fill('192.0.2.1'), '203.0.113.9'])
    assert.deepEqual(forwardedChain(`${'x'.repeat(60_000)}, 203.0.113.9`), ['invalid', '203.0.113.9'])
    assert.deepEqual(forwardedChain(`${','.repeat(60_000)}203.0.113.9,,`), ['203.0.113.9'])
    assert.deepEqual(forwardedChain(['x'.repeat(5000), '10.0.0.2']), ['invalid', '10.0.0.2'])
  })
})
