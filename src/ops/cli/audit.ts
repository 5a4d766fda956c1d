import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { BackendError, ConfigError, UsageError } from '../../lib/errors.js'
import type { KeysetDocument } from '../../lib/keyset/document.js'
import { toRfc3339 } from '../../lib/keyset/generate.js'
import { auditEvent } from '../rotation/audit.js'
import { quotedArgument, type OptionSpec } from './args.js'
import { println, type CliContext } from './context.js'
import { asciiJson } from '../../lib/logging/sanitize.js'

/** The options of every command that changes a keyset. */
export const AUDIT_OPTIONS = {
  actor: { type: 'string' },
  reason: { type: 'string' },
  'audit-log': { type: 'string' },
} as const satisfies OptionSpec

export const AUDIT_HELP = `  --actor NAME       who made the change, for the audit line (default: $USER)
  --reason TEXT      why (a ticket, an incident), for the audit line
  --audit-log FILE   also append the keyset_changed line to FILE (created 0600)`

const MAX_REASON_CHARS = 1000

export interface AuditFlags {
  actor?: string | undefined
  reason?: string | undefined
  'audit-log'?: string | undefined
}

/** Writes the audit trail of a command: the stderr line always, the log file when asked. */
export interface AuditTrail {
  /** Reports one written change. Throws a coded error if the log file cannot be appended. */
  record(o: { location: string; before: KeysetDocument | null; after: KeysetDocument }): void
  close(): void
}

/**
 * Checks the audit flags and opens `--audit-log` (O_APPEND, created 0600) before anything is
 * changed: a log that cannot be opened stops the command while nothing is written yet. A dry
 * run records nothing, so it only checks that the log could be appended: it writes nothing,
 * not even an empty log file.
 */
export function openAuditTrail(ctx: CliContext, command: string, flags: AuditFlags, opts: { dryRun?: boolean } = {}): AuditTrail {
  const actor = flags.actor ?? defaultActor(ctx.env)
  if (actor.trim() === '') throw new UsageError('--actor must not be empty')
  const reason = flags.reason ?? null
  if (reason !== null && reason.length > MAX_REASON_CHARS) throw new UsageError(`--reason is longer than ${MAX_REASON_CHARS} characters`)
  const file = flags['audit-log']
  let fd: number | undefined
  if (file !== undefined) {
    if (file === '') throw new UsageError('--audit-log needs a file')
    try {
      if (opts.dryRun) appendable(file)
      else fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT, 0o600)
    } catch (err) {
      throw new ConfigError(`--audit-log ${quotedArgument(file)}: ${(err as NodeJS.ErrnoException).code ?? 'cannot open'}; nothing was changed`)
    }
  }
  return {
    record({ location, before, after }) {
      const event = auditEvent({ command, location, before, after, at: toRfc3339(new Date(ctx.now())), actor, reason })
      // ASCII-escaped JSON: the same values for a reader, nothing raw for a terminal (rule values may come from tokens).
      const line = asciiJson(event)
      println(ctx.stderr, line)
      if (fd === undefined) return
      const lost = (why: string) =>
        new BackendError('io_error', `the keyset was changed, but --audit-log ${quotedArgument(file!)} ${why}; the line above is the record`)
      // A log that the change itself renamed over (it names the keyset, its projection or its
      // copy) is no longer linked anywhere: a line appended to it would be lost without a word.
      if (fs.fstatSync(fd).nlink === 0) throw lost('was replaced by the change itself (it names a file the command writes)')
      try {
        // One write(2) of the whole line on an O_APPEND descriptor: concurrent runs never interleave.
        fs.writeSync(fd, `${line}\n`)
      } catch (err) {
        throw lost(`could not be appended (${(err as NodeJS.ErrnoException).code})`)
      }
    },
    close() {
      if (fd !== undefined) fs.closeSync(fd)
      fd = undefined
    },
  }
}

/** Throws what opening `file` for appending would (ENOENT, EACCES, EISDIR, …), creating nothing. */
function appendable(file: string): void {
  let stat: fs.Stats | undefined
  try {
    stat = fs.statSync(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  if (stat === undefined) {
    // Absent: the real run creates it, which needs a folder it may write in.
    fs.accessSync(path.dirname(path.resolve(file)), fs.constants.W_OK | fs.constants.X_OK)
    return
  }
  if (stat.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' })
  fs.accessSync(file, fs.constants.W_OK)
}

/** The environment's user: $USER, $LOGNAME, the account name, else `uid:N` (a container without passwd entry). */
function defaultActor(env: NodeJS.ProcessEnv): string {
  if (env.USER) return env.USER
  if (env.LOGNAME) return env.LOGNAME
  try {
    return os.userInfo().username
  } catch {
    return `uid:${process.getuid?.() ?? 'unknown'}`
  }
}
