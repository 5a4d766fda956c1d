import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { formatDuration, parseDuration } from '../../src/lib/duration.js'

describe('parseDuration', () => {
  it('reads the units operators write', () => {
    assert.equal(parseDuration('90s'), 90_000)
    assert.equal(parseDuration('15m'), 900_000)
    assert.equal(parseDuration('24h'), 86_400_000)
    assert.equal(parseDuration('6d'), 518_400_000)
    assert.equal(parseDuration('1w'), 604_800_000)
    assert.equal(parseDuration('500ms'), 500)
    assert.equal(parseDuration('1h30m'), 5_400_000)
    assert.equal(parseDuration('1.5h'), 5_400_000)
    assert.equal(parseDuration('0'), 0)
  })

  it('reads fractions of any length and ignores surrounding blanks (a variable as written in a manifest)', () => {
    assert.equal(parseDuration('1.25h'), 4_500_000)
    assert.equal(parseDuration('0.25s'), 250)
    assert.equal(parseDuration(' 90s '), 90_000)
  })

  it('refuses a number without a unit and anything else', () => {
    for (const bad of ['24', '', 'h', '3x', '-5m', '1 h', '5m garbage', '1e3s', 'P1D']) assert.equal(parseDuration(bad), undefined, bad)
  })
})

describe('formatDuration', () => {
  it('prints at most two units, rounded down', () => {
    assert.equal(formatDuration(0), '0s')
    assert.equal(formatDuration(45_000), '45s')
    assert.equal(formatDuration(90_000), '1m30s')
    assert.equal(formatDuration(86_400_000), '1d')
    assert.equal(formatDuration(93_784_000), '1d2h')
    assert.equal(formatDuration(7 * 86_400_000 + 59_000), '7d')
    assert.equal(formatDuration(-5), '0s')
  })

  it('prints less than a second in milliseconds, never as 0s', () => {
    assert.equal(formatDuration(500), '500ms')
    assert.equal(formatDuration(999.7), '999ms')
  })
})
