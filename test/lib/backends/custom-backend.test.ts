import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { boundedCustomBackend } from '../../../src/lib/backends/custom-backend.js'
import type { KeysetBackend } from '../../../src/lib/backends/backend.js'
import { createCbcJwt } from '../../../src/lib/core/compose.js'
import { BackendError } from '../../../src/lib/errors.js'

/**
 * Found by an audit: createCbcJwt({ backend }) with a backend of the caller's own whose read()
 * never settled (an SDK call without a timeout) kept `await cbc.start()` pending forever, and
 * `cbc.close()` too (it waits for the read in flight): an API could neither boot nor shut down.
 */
describe('a backend of the caller’s own: reads bounded by a deadline', () => {
  const hung = (): KeysetBackend => ({ location: 'hung', read: () => new Promise(() => {}) }) as unknown as KeysetBackend

  it('a read that never settles fails with BackendError timeout after the deadline', async () => {
    const backend = boundedCustomBackend(hung(), 50)
    await assert.rejects(
      backend.read(),
      (err: unknown) =>
        err instanceof BackendError && err.reason === 'timeout' && /hung: the backend's read\(\) did not settle within 0.05 s/.test(err.message),
    )
  })

  it('a read that settles in time, or fails, is passed on as it is; other members are the backend’s own', async () => {
    let closed = 0
    const ok = boundedCustomBackend(
      { kind: 'memory', location: 'm', read: async () => ({ text: '{}', version: 'v' }), close: async () => void closed++ } as unknown as KeysetBackend,
      1000,
    )
    assert.deepEqual(await ok.read(), { text: '{}', version: 'v' })
    assert.equal(ok.location, 'm')
    await ok.close()
    assert.equal(closed, 1)
    const failing = boundedCustomBackend(
      { location: 'f', read: async () => Promise.reject(new BackendError('forbidden', 'no')) } as unknown as KeysetBackend,
      1000,
    )
    await assert.rejects(failing.read(), (err: unknown) => err instanceof BackendError && err.reason === 'forbidden')
    assert.equal(typeof boundedCustomBackend(hung()).close, 'undefined')
  })

  it('cbc-jwt’s own backends are not wrapped: they bound each request themselves', () => {
    for (const kind of ['file', 'vault', 'kubernetes']) {
      const own = { kind, location: 'x', read: async () => ({ text: '', version: '' }) } as unknown as KeysetBackend
      assert.equal(boundedCustomBackend(own, 1), own)
    }
  })

  it('createCbcJwt wraps a backend object: start() resolves (not ready) and close() ends', { timeout: 60_000 }, async () => {
    const cbc = createCbcJwt({ env: {}, logger: false, backend: hung() })
    const started = await Promise.race([cbc.start().then(() => 'resolved'), new Promise((r) => setTimeout(r, 45_000, 'pending')).then(() => 'pending')])
    assert.equal(started, 'resolved')
    assert.equal(cbc.ready(), false)
    await cbc.close()
  })
})
