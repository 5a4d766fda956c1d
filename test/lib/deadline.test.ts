import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { startDeadline, withDeadline } from '../../src/lib/deadline.js'

const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length

describe('deadlines that count free event-loop time', () => {
  // hostile-files.test.ts shows a hung read given up within a bound, and a busy loop not counted.
  it('never expires before its time: a free loop waits the whole deadline', async () => {
    const started = performance.now()
    const err = await withDeadline(new Promise<never>(() => {}), 200, () => new Error('expired')).catch((e: Error) => e)
    assert.equal(err.message, 'expired')
    const took = performance.now() - started
    assert.ok(took >= 200, `expired after ${took.toFixed(0)} ms of a 200 ms deadline`)
  })

  // A timer left behind would keep a CLI's process alive until it fired, seconds after its answer.
  it('work that settles first leaves no timer behind, and the deadline never fires', async () => {
    const before = timers()
    let fired = 0
    assert.equal(await withDeadline(Promise.resolve('done'), 60_000, () => new Error(`fired ${++fired}`)), 'done')
    await assert.rejects(
      withDeadline(Promise.reject(new Error('failed')), 60_000, () => new Error(`fired ${++fired}`)),
      /failed/,
    )
    const cancel = startDeadline(60_000, () => void fired++)
    assert.equal(timers(), before + 1, 'a deadline holds one timer')
    cancel()
    cancel()
    assert.equal(timers(), before)
    assert.equal(fired, 0)
  })
})
