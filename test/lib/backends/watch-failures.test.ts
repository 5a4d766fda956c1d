import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { watchFailures } from '../../../src/lib/backends/watch-failures.js'

const enospc = () => Object.assign(new Error('ENOSPC: System limit for number of file watchers reached'), { code: 'ENOSPC' })

describe('watch failures: the retry backoff', () => {
  // file-backend.test.ts sees the first waits double on a real watch; the cap is hours of
  // failing away, so it is pinned here on the streak itself.
  it('doubles from 100 ms on each refused attempt, and never waits more than 30 s however long the streak', () => {
    const failures = watchFailures('/keys/keyset.json', undefined, undefined, () => 0)
    assert.equal(failures.retryDelayMs(), 100, 'before any failure')
    const delays: number[] = []
    for (let i = 0; i < 60; i++) {
      failures.failed(enospc())
      delays.push(failures.retryDelayMs())
    }
    assert.deepEqual(delays.slice(0, 10), [100, 200, 400, 800, 1600, 3200, 6400, 12_800, 25_600, 30_000])
    assert.deepEqual(new Set(delays.slice(9)), new Set([30_000]), 'a watch limit used up for hours is retried every 30 s, not later')
  })

  it('a watch in place again ends the streak: one watch_resumed line saying how long it failed, and the next streak starts from 100 ms', () => {
    const lines: Array<{ level: string; obj: Record<string, unknown> }> = []
    const log = (level: string) => (obj: object) => void lines.push({ level, obj: obj as Record<string, unknown> })
    let now = 1000
    const failures = watchFailures('/keys/keyset.json', { warn: log('warn'), info: log('info') }, undefined, () => now)
    for (let i = 0; i < 5; i++) {
      failures.failed(enospc())
      now += 15_000
    }
    failures.succeeded()
    failures.succeeded()
    assert.deepEqual(
      lines.map((l) => [l.level, l.obj.event]),
      [
        ['warn', 'watch_failed'],
        ['info', 'watch_resumed'],
      ],
    )
    assert.equal(lines[1]!.obj.failed_attempts, 5)
    assert.equal(lines[1]!.obj.failing_for_seconds, 75, 'from the first refused attempt of the streak')
    failures.failed(enospc())
    assert.equal(failures.retryDelayMs(), 100)
    assert.equal(lines.filter((l) => l.obj.event === 'watch_failed').length, 2, 'a new streak logs again')
  })

  it('a directory that vanished before its watch (ENOENT, ENOTDIR) is routine: not counted, not logged, no backoff', () => {
    const counted: string[] = []
    const logged: object[] = []
    const logger = { warn: (obj: object) => void logged.push(obj), info: (obj: object) => void logged.push(obj) }
    const failures = watchFailures(
      '/keys/keyset.json',
      logger,
      (reason) => void counted.push(reason),
      () => 0,
    )
    for (const code of ['ENOENT', 'ENOTDIR']) failures.failed(Object.assign(new Error(code), { code }))
    failures.succeeded()
    assert.deepEqual(counted, [])
    assert.deepEqual(logged, [])
    assert.equal(failures.retryDelayMs(), 100)
  })
})
