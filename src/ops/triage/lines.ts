import type { Readable } from 'node:stream'
import { StringDecoder } from 'node:string_decoder'

/** A line longer than this is not one of the service's (they are a few hundred bytes). @default 65536 */
export const MAX_LINE_CHARS = 64 * 1024

/** What `readLines` yields for a line it refused to hold in memory. */
export const OVERLONG = Symbol('overlong line')

/**
 * The lines of a stream, one at a time, holding at most `maxChars` of one line in memory:
 * a longer line is dropped as it streams by and yields `OVERLONG` once, so a log of any size —
 * or one endless line — reads in bounded memory.
 */
export async function* readLines(stream: Readable, maxChars = MAX_LINE_CHARS): AsyncGenerator<string | typeof OVERLONG> {
  const decoder = new StringDecoder('utf8')
  let pending = ''
  let discarding = false
  for await (const chunk of stream) {
    let text = typeof chunk === 'string' ? chunk : decoder.write(chunk as Buffer)
    for (;;) {
      const nl = text.indexOf('\n')
      if (nl === -1) break
      const piece = text.slice(0, nl)
      text = text.slice(nl + 1)
      if (discarding) {
        discarding = false
        continue
      }
      if (pending.length + piece.length > maxChars) {
        pending = ''
        yield OVERLONG
        continue
      }
      yield pending + piece
      pending = ''
    }
    if (discarding) continue
    if (pending.length + text.length > maxChars) {
      pending = ''
      discarding = true
      yield OVERLONG
    } else {
      pending += text
    }
  }
  const tail = pending + decoder.end()
  if (!discarding && tail.length > 0) yield tail.length > maxChars ? OVERLONG : tail
}
