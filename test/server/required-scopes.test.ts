import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import v8 from 'node:v8'
import vm from 'node:vm'
import { requiredScopes } from '../../src/server/required-scopes.js'

/** A full garbage collection, without starting node with --expose-gc (the flag is put back). */
function collectGarbage(): void {
  v8.setFlagsFromString('--expose-gc')
  const gc = vm.runInNewContext('gc') as () => void
  v8.setFlagsFromString('--no-expose-gc')
  gc()
}

describe('requiredScopes (/v1/auth?scope=…)', () => {
  it('a gateway route query is parsed once and remembered; a long one is parsed each time', () => {
    const first = requiredScopes('/v1/auth?scope=orders:write%20orders:read')
    assert.deepEqual(first?.scopes, ['orders:write', 'orders:read'])
    assert.equal(requiredScopes('/v1/auth?scope=orders:write%20orders:read'), first)
    const long = `/v1/auth?scope=${'a'.repeat(4096)}`
    assert.notEqual(requiredScopes(long), requiredScopes(long), 'a long query was remembered')
    assert.deepEqual(requiredScopes(long), requiredScopes(long))
  })

  it('long queries sent by anyone do not pin memory: 255 of 60 KB hold under 1 MiB', async () => {
    // Any client reaching /v1/auth picks the query; 255 distinct ones of 60 KB (a request line
    // fits in the 64 KiB header limit) were all remembered: about 15 MiB held until others came.
    // A module of its own, so that what other tests asked for cannot empty its memory midway.
    const ownModule = new URL('../../src/server/required-scopes.ts?own-memory', import.meta.url).href
    const { requiredScopes: ownRequiredScopes } = (await import(ownModule)) as typeof import('../../src/server/required-scopes.js')
    collectGarbage()
    const before = process.memoryUsage().heapUsed
    const long = 'a'.repeat(60_000)
    for (let i = 0; i < 255; i++) {
      const result = ownRequiredScopes(`/v1/auth?scope=${long}&r=${i}`)
      assert.deepEqual(result?.scopes, [long], 'a long query is still required in full')
    }
    collectGarbage()
    const held = process.memoryUsage().heapUsed - before
    assert.ok(held < 1024 * 1024, `255 long queries left ${(held / 2 ** 20).toFixed(1)} MiB on the heap`)
  })
})
