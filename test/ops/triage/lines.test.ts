import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { describe, it } from 'node:test'
import { OVERLONG, readLines } from '../../../src/ops/triage/lines.js'

async function collect(chunks: Array<string | Buffer>, max?: number) {
  const out: Array<string | typeof OVERLONG> = []
  for await (const l of readLines(Readable.from(chunks), max)) out.push(l)
  return out
}

describe('readLines', () => {
  it('splits across chunk boundaries, keeps a last line without newline', async () => {
    assert.deepEqual(await collect(['ab', 'c\nde', 'f\n\ng']), ['abc', 'def', '', 'g'])
  })

  it('decodes a UTF-8 character split between two chunks', async () => {
    const bytes = Buffer.from('é€\n')
    assert.deepEqual(await collect([bytes.subarray(0, 1), bytes.subarray(1, 3), bytes.subarray(3)]), ['é€'])
  })

  it('drops an over-long line as it streams, once, and goes on with the next', async () => {
    assert.deepEqual(await collect(['12345', '67890', '123\nok\n', 'x'.repeat(20)], 8), [OVERLONG, 'ok', OVERLONG])
    assert.deepEqual(await collect(['123456789\nok'], 8), [OVERLONG, 'ok'])
  })
})
