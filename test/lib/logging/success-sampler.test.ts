import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createSuccessSampler } from '../../../src/lib/logging/success-sampler.js'

describe('createSuccessSampler', () => {
  it('logs the first use of each (kid, client id) pair in an hour, then a random rate', () => {
    const clock = { t: 0 }
    const rolls = [0.5, 0.005, 0.5]
    const sample = createSuccessSampler({ rate: 0.01, now: () => clock.t, random: () => rolls.shift() ?? 0.5 })
    assert.equal(sample('k-1', 'acme'), 'first_use')
    assert.equal(sample('k-1', 'acme'), undefined)
    assert.equal(sample('k-1', 'acme'), 'sample')
    assert.equal(sample('k-2', 'acme'), 'first_use', 'another kid is another pair')
    assert.equal(sample('k-1', undefined), 'first_use')
    assert.equal(sample('k-1', 'acme'), undefined)
    clock.t = 3600_000
    assert.equal(sample('k-1', 'acme'), 'first_use', 'a new hour')
  })

  it('a wall clock stepped back starts a new window: a first use is never hidden past its hour', () => {
    const clock = { t: 10 * 3600_000 }
    const sample = createSuccessSampler({ rate: 0, now: () => clock.t, random: () => 0.5 })
    assert.equal(sample('k-1', 'acme'), 'first_use')
    // NTP steps the clock back an hour: the hour that began at the old time would last two.
    clock.t -= 3600_000
    assert.equal(sample('k-1', 'acme'), 'first_use', 'no first_use line for two hours after the step')
    assert.equal(sample('k-1', 'acme'), undefined)
  })

  it('rate 0 logs first uses only; memory is bounded at 10 000 pairs', () => {
    const sample = createSuccessSampler({ rate: 0, now: () => 0, random: () => 0 })
    for (let i = 0; i < 10_000; i++) assert.equal(sample('k', `c-${i}`), 'first_use')
    assert.equal(sample('k', 'c-10000'), undefined, 'past the cap only the rate samples')
  })

  it('refuses a rate outside [0, 1]', () => {
    for (const rate of [-0.1, 1.5, Number.NaN]) assert.throws(() => createSuccessSampler({ rate }), RangeError)
  })
})
