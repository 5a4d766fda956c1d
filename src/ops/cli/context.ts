import type { Readable, Writable } from 'node:stream'
import { UsageError } from '../../lib/errors.js'
import { parseTime } from './time.js'

/**
 * Everything a command touches of the outside world, passed in so that tests can run a
 * command in-process and so that time comes from exactly one place.
 */
export interface CliContext {
  env: NodeJS.ProcessEnv
  stdin: Readable & { isTTY?: boolean }
  stdout: Writable
  stderr: Writable
  /** The one clock every command uses, in ms since the epoch. */
  now(): number
}

/** Writes a line (a final newline is added) to a stream. */
export function println(stream: Writable, line = ''): void {
  stream.write(`${line}\n`)
}

/**
 * The clock: `CBC_JWT_NOW` (RFC 3339) pins it — a testing aid, so a spawned binary can be
 * run "six days later" — otherwise the system clock.
 */
export function clockFromEnv(env: NodeJS.ProcessEnv): () => number {
  const pinned = env.CBC_JWT_NOW
  if (pinned === undefined || pinned === '') return Date.now
  const at = parseTime(pinned, Date.now(), { allowNow: false })
  if (at === undefined) throw new UsageError(`CBC_JWT_NOW must be an RFC 3339 time like 2026-11-25T00:00:00Z (got "${pinned}")`)
  return () => at
}

/**
 * A token given as `-`: the whole of stdin, trimmed, at most 1 MiB. On the command line a token
 * is visible to every local user (`ps`, /proc/PID/cmdline) for as long as the command runs, and
 * it stays in shell history.
 */
export async function readTokenFromStdin(stdin: Readable, what: string): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of stdin) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer)
    size += buf.length
    if (size > 1024 * 1024) throw new UsageError(`${what}: stdin is larger than 1 MiB`)
    chunks.push(buf)
  }
  return Buffer.concat(chunks).toString('utf8').trim()
}
