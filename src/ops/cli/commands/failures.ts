import fs from 'node:fs'
import type { Readable } from 'node:stream'
import { InputError, UsageError } from '../../../lib/errors.js'
import { parseDuration } from '../../../lib/duration.js'
import { AUTH_FAILURE_REASONS, type AuthFailureReason } from '../../../lib/reasons.js'
import { createFailureTally, type FailureGroup, type FailureTally } from '../../triage/failures.js'
import { classifyLine } from '../../triage/log-line.js'
import { busiestOffenders, revokeCommand, revokeTime } from '../../triage/offenders.js'
import { DEFAULT_SPIKE_GAP_MS } from '../../triage/spike.js'
import { OVERLONG, readLines } from '../../triage/lines.js'
import { parseCommandArgs, quotedArgument } from '../args.js'
import { asciiJson, printable as foreignText } from '../../../lib/logging/sanitize.js'
import { println, type CliContext } from '../context.js'
import { parseTime } from '../time.js'
import type { Command } from './command.js'

const OPTIONS = {
  json: { type: 'boolean' },
  since: { type: 'string' },
  until: { type: 'string' },
  reason: { type: 'string' },
  kid: { type: 'string' },
  top: { type: 'string' },
  'max-groups': { type: 'string' },
  offenders: { type: 'string' },
  'spike-gap': { type: 'string' },
} as const

const DEFAULT_TOP = 50
const DEFAULT_MAX_GROUPS = 10_000
const DEFAULT_OFFENDERS = 3

/** What was read, beside the rejections themselves. */
interface LineCounts {
  lines: number
  rejections: number
  /** Rejections outside --since/--until/--reason/--kid. */
  filtered: number
  /** Lines of the service that are not rejections. */
  service: number
  /** Lines that are not the service's JSON (never echoed). */
  skipped: number
}

export const failuresCommand: Command = {
  name: 'failures',
  summary: "rejections by client id and reason from the service's logs: counts, first/last seen, spike start, the revoke command",
  help: `Usage: cbc-jwt failures [FILE... | -] [--since TIME|DUR] [--until TIME] [--reason R[,R]] [--kid KID] [--top N] [--json]

Reads the service's JSON log lines — of one replica or many, e.g.
  kubectl -n cbc logs -l app.kubernetes.io/name=cbc-jwt --prefix --tail=-1 --since=30m | cbc-jwt failures
— and prints the rejections (event "auth_rejected") by client id and reason, with counts,
first/last seen and the group's own spike start, the highest count first. Then, for the
busiest client ids, the exact command that cuts each one off when stolen tokens are being
replayed: "cbc-jwt revoke --client-id ID --issued-before SPIKE_START".

A group's spike is its busiest run of rejections with no silence longer than --spike-gap; its
start is that run's first rejection, rounded up to the second. A rejection of another client
or reason, or a stray one of the same group long before, never moves it back.

The client id is the verified one (client_id), or, for a token whose signature did not verify
(bad_signature, unknown_kid, unsupported_alg, malformed), the one it only claims
(client_id_unverified), marked "(unverified)": anyone can claim any id.
Lines with a "kubectl logs --prefix" prefix ([pod/NAME/CONTAINER]) and/or a "--timestamps"
time are read; the prefix counts the replicas. Other lines are skipped and counted, never
printed. Reads files (or stdin: "-", or no FILE) as a stream: any size, bounded memory.

Options:
  --since TIME|DUR  only rejections at or after TIME (RFC 3339) or DUR ago (30m, 2h)
  --until TIME      only rejections before TIME (RFC 3339)
  --reason R[,R]    only these reasons (${AUTH_FAILURE_REASONS.join(', ')})
  --kid KID         only tokens naming this kid (who still presents tokens of a retired or
                    compromised key)
  --top N           print the N busiest groups (default ${DEFAULT_TOP}; 0 for all; --json: all)
  --offenders N     print the revoke command for the N busiest client ids (default ${DEFAULT_OFFENDERS}; 0: none)
  --spike-gap DUR   a silence this long ends a spike (default 5m)
  --max-groups N    hold at most N groups in memory (default ${DEFAULT_MAX_GROUPS}); rejections of
                    client ids seen after that are counted, not grouped, and the output says so
  --json            print [{"client_id", "verified", "reason", "count", "first_seen",
                    "last_seen", "spike_start"}] in the same order ("verified": false for an
                    id a token only claims; "subject": true added for an id read from the
                    tokens' sub, cut off by --subject); the summary goes to stderr
  -h, --help        this help

Exit status: 0 read (whether or not there were rejections), 1 a file cannot be read, 2 bad usage.`,

  async run(ctx: CliContext, args: string[]): Promise<number> {
    const { values, positionals } = parseCommandArgs('failures', args, OPTIONS, { max: Number.POSITIVE_INFINITY, what: 'FILE...' })
    const now = ctx.now()
    const since = values.since === undefined ? undefined : timeOrAgo('since', values.since, now)
    const until = values.until === undefined ? undefined : timeOrAgo('until', values.until, now)
    // Rows are at or after --since and before --until: an --until not after --since selects nothing.
    if (since !== undefined && until !== undefined && until <= since) {
      // A duration far enough back is no Date: then its milliseconds.
      const at = (ms: number) => (Number.isNaN(new Date(ms).getTime()) ? `${ms} ms` : new Date(ms).toISOString())
      throw new UsageError(`--until ${at(until)} is not after --since ${at(since)}: no rejection can be between them`)
    }
    const reasons = values.reason === undefined ? undefined : reasonList(values.reason)
    const kid = values.kid
    const top = count('top', values.top, DEFAULT_TOP)
    const maxGroups = count('max-groups', values['max-groups'], DEFAULT_MAX_GROUPS)
    if (maxGroups === 0) throw new UsageError('--max-groups must be at least 1')
    const offenders = count('offenders', values.offenders, DEFAULT_OFFENDERS)
    const gapMs = values['spike-gap'] === undefined ? DEFAULT_SPIKE_GAP_MS : parseDuration(values['spike-gap'])
    if (gapMs === undefined || gapMs <= 0)
      throw new UsageError(`--spike-gap: ${quotedArgument(values['spike-gap'] ?? '')} is not a duration (use e.g. 2m, 10m)`)
    const inputs = positionals.length === 0 ? ['-'] : positionals
    if (inputs.filter((f) => f === '-').length > 1) throw new UsageError('failures: "-" (stdin) given more than once')
    for (const file of inputs) {
      if (file === '-') continue
      try {
        fs.accessSync(file, fs.constants.R_OK)
      } catch (err) {
        throw new InputError(`failures: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`)
      }
    }

    const tally = createFailureTally(maxGroups)
    const counts: LineCounts = { lines: 0, rejections: 0, filtered: 0, service: 0, skipped: 0 }
    for (const file of inputs) {
      const stream: Readable = file === '-' ? ctx.stdin : fs.createReadStream(file)
      try {
        for await (const line of readLines(stream)) {
          counts.lines++
          if (line === OVERLONG) {
            counts.skipped++
            continue
          }
          if (line.trim() === '') {
            counts.lines--
            continue
          }
          const c = classifyLine(line)
          if (c.kind === 'foreign') counts.skipped++
          else if (c.kind === 'service') counts.service++
          else {
            const r = c.record
            if (
              (since !== undefined && r.time < since) ||
              (until !== undefined && r.time >= until) ||
              (reasons && !reasons.has(r.reason)) ||
              (kid !== undefined && r.kid !== kid)
            ) {
              counts.filtered++
              continue
            }
            counts.rejections++
            tally.add(r)
          }
        }
      } catch (err) {
        throw new InputError(`failures: cannot read ${file === '-' ? 'stdin' : file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
      }
    }
    const result = tally.result()
    if (values.json) {
      const rows = (values.top === undefined || top === 0 ? result.groups : result.groups.slice(0, top)).map((g) => jsonRow(g, gapMs))
      // Escaped to ASCII: a client id from someone's log carries C1 controls and bidi overrides
      // that JSON.stringify leaves raw; a JSON reader gets the same id.
      println(ctx.stdout, asciiJson(rows, 2))
      for (const line of summary(result, counts, offenders, gapMs)) println(ctx.stderr, line)
    } else {
      printTable(ctx, result, top, gapMs)
      for (const line of summary(result, counts, offenders, gapMs)) println(ctx.stdout, line)
    }
    return 0
  },
}

function jsonRow(g: FailureGroup, gapMs: number) {
  return {
    client_id: g.clientId,
    // false: the id a token whose signature did not verify only claims (the table's "(unverified)").
    verified: g.verified,
    // Only when so: the id is the tokens' `sub` (the table's "(sub)"), cut off by `revoke --subject`.
    ...(g.subject ? { subject: true } : {}),
    reason: g.reason,
    count: g.count,
    first_seen: iso(g.firstSeen),
    last_seen: iso(g.lastSeen),
    spike_start: iso(g.spike.spike(gapMs)!.start),
  }
}

function printTable(ctx: CliContext, result: FailureTally, top: number, gapMs: number): void {
  if (result.groups.length === 0) return
  const shown = top === 0 ? result.groups : result.groups.slice(0, top)
  const rows = shown.map((g) => [
    String(g.count),
    g.reason,
    displayId(g),
    iso(g.firstSeen),
    iso(g.lastSeen),
    iso(g.spike.spike(gapMs)!.start),
    g.sources.size === 0 ? '-' : String(g.sources.size),
    g.remoteAddresses.size === 0 ? '-' : [...g.remoteAddresses].slice(0, 3).map(printable).join(',') + (g.remoteAddresses.size > 3 ? ',…' : ''),
  ])
  const header = ['COUNT', 'REASON', 'CLIENT_ID', 'FIRST_SEEN', 'LAST_SEEN', 'SPIKE_START', 'REPLICAS', 'REMOTE']
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const fmt = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  println(ctx.stdout, fmt(header))
  for (const r of rows) println(ctx.stdout, fmt(r))
  if (shown.length < result.groups.length) println(ctx.stdout, `… ${result.groups.length - shown.length} more group(s) (--top 0 shows all)`)
}

function summary(result: FailureTally, counts: LineCounts, offenders: number, gapMs: number): string[] {
  const out: string[] = []
  if (result.firstSeen !== undefined) {
    out.push(
      `first rejection at ${iso(result.firstSeen)}, last at ${iso(result.lastSeen!)}: ${result.rejections} rejection(s) in ${result.groups.length} group(s)`,
    )
    out.push(...offenderLines(result, offenders, gapMs))
  } else {
    out.push('no rejections')
  }
  if (result.overflow.count > 0) {
    out.push(
      `${result.overflow.count} rejection(s) of further client ids past --max-groups were counted but not grouped (first ${iso(result.overflow.firstSeen!)}, last ${iso(result.overflow.lastSeen!)})`,
    )
  }
  const filtered = counts.filtered > 0 ? `, ${counts.filtered} outside --since/--until/--reason/--kid` : ''
  out.push(
    `read ${counts.lines} line(s): ${counts.rejections} rejection(s)${filtered}, ${counts.service} other cbc-jwt line(s), ${counts.skipped} skipped (not cbc-jwt JSON lines)`,
  )
  return out
}

/**
 * The cut-off commands for the busiest client ids, each from its own group's spike, and the
 * global form for "we don't know who" from the busiest group's spike (never from the first
 * rejection of the whole log, which may be an unrelated stray one).
 */
function offenderLines(result: FailureTally, offenders: number, gapMs: number): string[] {
  const out: string[] = []
  const busiest = result.groups[0]
  const spike = busiest?.spike.spike(gapMs)
  if (busiest && spike) {
    out.push(
      `spike start for "cbc-jwt revoke --issued-before" (every client's tokens; the busiest group's, ${busiest.reason} ${displayId(busiest)}): ${revokeTime(spike.start)}`,
    )
  }
  const list = busiestOffenders(result.groups, offenders, gapMs)
  if (list.length === 0) return out
  out.push('to cut off only the busiest client ids (their tokens issued before their own spike start):')
  for (const o of list) {
    const command = revokeCommand(o)
    const why = `# ${o.spikeCount} ${o.reason} from ${iso(o.spikeStart)}`
    const caution = o.verified ? '' : '; the id is only claimed by tokens whose signature did not verify (anyone can claim one): check it before cutting it off'
    out.push(
      command ? `  ${command}   ${why}${caution}` : `  (client id ${printable(o.clientId)} is not printable ASCII: take it from --json) ${why}${caution}`,
    )
  }
  out.push('  (revoke only for stolen tokens; a leaked key needs "cbc-jwt rotate --compromised")')
  return out
}

/** A client id for a terminal: printable ASCII as is, anything else quoted and escaped; bounded. */
function displayId(g: FailureGroup): string {
  if (g.clientId === null) return '-'
  return printable(g.clientId) + (g.verified ? '' : ' (unverified)') + (g.subject ? ' (sub)' : '')
}

/**
 * Foreign text from someone's log line, for a terminal: clean printable ASCII as is, anything
 * else quoted with every character outside printable ASCII escaped (C1 controls and bidi
 * overrides included) by the one sanitiser; bounded.
 */
function printable(value: string): string {
  return /^[\x21-\x7e]{1,128}$/.test(value) ? value : `"${foreignText(value, { max: 128 })}"`
}

const iso = (ms: number) => new Date(ms).toISOString()

function timeOrAgo(flag: string, text: string, now: number): number {
  const at = parseTime(text, now)
  if (at !== undefined) return at
  const ago = parseDuration(text)
  if (ago !== undefined) return now - ago
  throw new UsageError(`--${flag}: ${quotedArgument(text)} is neither an RFC 3339 time (2026-11-25T20:00:00Z) nor a duration (30m, 2h)`)
}

function reasonList(text: string): Set<AuthFailureReason> {
  const out = new Set<AuthFailureReason>()
  for (const r of text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    if (!(AUTH_FAILURE_REASONS as readonly string[]).includes(r))
      throw new UsageError(`--reason: unknown reason ${quotedArgument(r)} (one of ${AUTH_FAILURE_REASONS.join(', ')})`)
    out.add(r as AuthFailureReason)
  }
  if (out.size === 0) throw new UsageError('--reason needs at least one reason')
  return out
}

function count(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback
  if (!/^\d{1,9}$/.test(text)) throw new UsageError(`--${flag}: ${quotedArgument(text)} is not a whole number`)
  return Number(text)
}
