import type { Readable } from 'node:stream'
import { UsageError } from '../../../lib/errors.js'
import { MAX_KEYSET_BYTES, MAX_REVOCATION_VALUE_CHARS } from '../../../lib/keyset/document.js'
import { OVERLONG, readLines } from '../../triage/lines.js'
import { holdsToken } from '../args.js'

/**
 * The token ids of `revoke --jti -`: one a line (a list cut from the logs), surrounding space
 * and blank lines ignored. Bounded: a line longer than an id can be, or more input than a
 * keyset can hold, stops the command before anything is read from the backend. A bad line is
 * named by its number, never echoed (it came from a log, possibly from a token).
 */
export async function readTokenIds(stdin: Readable): Promise<string[]> {
  const ids: string[] = []
  let line = 0
  let bytes = 0
  for await (const text of readLines(stdin, MAX_REVOCATION_VALUE_CHARS + 16)) {
    line++
    if (text === OVERLONG) throw new UsageError(`--jti -: line ${line} is longer than a token id can be (${MAX_REVOCATION_VALUE_CHARS} characters)`)
    bytes += text.length + 1
    if (bytes > MAX_KEYSET_BYTES) throw new UsageError(`--jti -: more than ${MAX_KEYSET_BYTES} bytes of ids on stdin`)
    const id = text.trim()
    if (id === '') continue
    if (holdsToken(id)) throw new UsageError(`--jti -: line ${line} is a token, not a token id: give its jti claim (cbc-jwt token verify - prints the claims)`)
    if (id.length > MAX_REVOCATION_VALUE_CHARS || /[\u0000-\u001f\u007f]/.test(id)) {
      throw new UsageError(`--jti -: line ${line} is not a token id (1–${MAX_REVOCATION_VALUE_CHARS} characters without control characters)`)
    }
    ids.push(id)
  }
  return ids
}
