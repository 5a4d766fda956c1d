import { BackendError, UsageError } from '../../../lib/errors.js'
import type { KeysetDocument } from '../../../lib/keyset/document.js'
import { keyRows } from '../../../lib/core/keys-view.js'
import { toRfc3339 } from '../../../lib/keyset/generate.js'
import { formatDuration } from '../../../lib/duration.js'
import { ROTATION_POLICY } from '../../rotation/policy.js'
import { KEYSET_OPTIONS, parseCommandArgs, unexpectedArgument } from '../args.js'
import { println, type CliContext } from '../context.js'
import { projectionView } from '../../projection/holds.js'
import { stagedKeys } from '../../rotation/two-phase.js'
import { openKeysetSource, readKeyset, type KeysetSource } from '../keyset-source.js'
import { propagationMs } from '../settings.js'
import type { Command } from './command.js'
import { asciiJson } from '../../../lib/logging/sanitize.js'

const OPTIONS = { ...KEYSET_OPTIONS, json: { type: 'boolean' }, propagation: { type: 'string' } } as const

export const statusCommand: Command = {
  name: 'status',
  summary: 'keys, statuses, ages, and whether the 7-day key-age SLA holds (exit 1 when not)',
  help: `Usage: cbc-jwt status [- | --keyset-file PATH | --backend file|vault|kubernetes] [--json]

Lists every key (kid, alg, status, created, age, not_after) and flags:
  - a current key older than the 7-day SLA (604800 s, alert JWTKeyAgeExceeded): exit 1
  - a verify-only (or current) key that stops verifying within 24h
  - whether a staged key has been published long enough to be promoted, and a staged
    key a verification projection lacks (rotate --promote refuses it; rotate --stage
    replaces it)

Options:
  --json             machine-readable output
  --propagation DUR  propagation window for "ready to promote" (default 2 x
                     CBC_JWT_REFRESH_INTERVAL_SECONDS + 90s)
  -h, --help         this help

Exit status: 0 SLA holds, 1 SLA broken / invalid keyset / backend error, 2 bad usage.`,

  async run(ctx: CliContext, args: string[]): Promise<number> {
    const { values, positionals } = parseCommandArgs('status', args, OPTIONS, { max: 1, what: '- (stdin)' })
    if (positionals[0] !== undefined && positionals[0] !== '-') throw new UsageError(`status: ${unexpectedArgument(positionals[0])} (use --keyset-file PATH)`)
    const window = propagationMs(ctx.env, values.propagation)
    const source = openKeysetSource(ctx, values, positionals)
    const now = ctx.now()
    const { keyset } = await readKeyset(source, now)
    const doc = keyset.document
    const warnings: string[] = []
    const unpublished = await stagedUnpublished(source, doc, now, warnings)
    // The rows of GET /v1/keys, with notes for the operator.
    const keys = keyRows(keyset, now).map((row) => {
      const sinceCreated = now - Date.parse(row.created_at)
      const notAfter = row.not_after === null ? undefined : Date.parse(row.not_after)
      const notes: string[] = []
      if (row.status === 'current' && sinceCreated >= ROTATION_POLICY.keyAgeSlaMs) {
        notes.push(`older than the 7-day SLA`)
        warnings.push(`current key ${row.kid} is ${formatDuration(sinceCreated)} old, over the 7-day SLA: rotate now (cbc-jwt rotate)`)
      }
      if (row.status === 'staged') {
        const lacking = unpublished.get(row.kid)
        if (sinceCreated >= ROTATION_POLICY.keyAgeSlaMs) notes.push('past the 7-day SLA, too old to promote: rotate --stage replaces it')
        else if (lacking !== undefined) notes.push('not in the verification projection, not promotable: rotate --stage replaces it')
        else notes.push(sinceCreated >= window ? 'ready to promote' : `propagating, promotable in ${formatDuration(window - sinceCreated)}`)
        if (lacking !== undefined) {
          warnings.push(
            `staged key ${row.kid} is not in the verification projection (${lacking.join('; ')}): no verifier has it, whatever its age, and rotate --promote refuses it; run cbc-jwt rotate --stage (it retires this key, which never signed, and stages a fresh one)`,
          )
        }
      }
      // A current key may carry a not_after too (a document written by hand or by another tool):
      // past it the keyset no longer loads, which is worse than a verify-only key retiring.
      if (row.verifies && notAfter !== undefined && notAfter - now <= ROTATION_POLICY.expiringSoonMs) {
        const left = formatDuration(notAfter - now)
        notes.push(`stops verifying in ${left}`)
        warnings.push(
          row.status === 'current'
            ? `current key ${row.kid} stops verifying in ${left} (${row.not_after}): past it the keyset no longer loads and nothing signs; rotate now (cbc-jwt rotate)`
            : `verify-only key ${row.kid} stops verifying in ${left} (${row.not_after})`,
        )
      }
      if (!row.verifies) notes.push('no longer verifies; pruned by the next rotation')
      return { ...row, notes }
    })
    const current = keys.find((k) => k.kid === doc.current)!
    const slaOk = current.age_seconds * 1000 < ROTATION_POLICY.keyAgeSlaMs
    if (values.json) {
      println(
        ctx.stdout,
        asciiJson(
          {
            location: source.backend.location,
            now: toRfc3339(new Date(now)),
            current: doc.current,
            revoked_before: doc.revoked_before ?? null,
            sla: { max_age_seconds: ROTATION_POLICY.keyAgeSlaMs / 1000, current_age_seconds: current.age_seconds, ok: slaOk },
            keys,
            warnings,
          },
          2,
        ),
      )
      return slaOk ? 0 : 1
    }
    const out = ctx.stdout
    println(out, `keyset ${source.backend.location} at ${toRfc3339(new Date(now))}`)
    const rows = [
      ['KID', 'ALG', 'STATUS', 'CREATED', 'AGE', 'NOT_AFTER', 'NOTES'],
      ...keys.map((k) => [k.kid, k.alg, k.status, k.created_at, formatDuration(k.age_seconds * 1000), k.not_after ?? '-', k.notes.join('; ')]),
    ]
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
    for (const r of rows)
      println(
        out,
        r
          .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!)))
          .join('  ')
          .trimEnd(),
      )
    println(out, `revoked_before: ${doc.revoked_before ?? 'none'}`)
    const age = formatDuration(current.age_seconds * 1000)
    if (slaOk) {
      const dueIn = formatDuration(ROTATION_POLICY.keyAgeSlaMs - current.age_seconds * 1000)
      println(out, `SLA: ok — current key ${current.kid} is ${age} old (limit 7d, reached in ${dueIn})`)
    } else {
      println(out, `SLA: BROKEN — current key ${current.kid} is ${age} old (limit 7d)`)
    }
    for (const w of warnings) println(out, `warning: ${w}`)
    return slaOk ? 0 : 1
  },
}

/**
 * The staged keys a verification projection lacks, with where (`projectionView`, as rotate asks
 * it): such a key's `created_at` does not tell when verifiers got it, so `rotate --promote`
 * refuses it and `rotate --stage` replaces it. Read only when a key is staged. An unreadable
 * projection is a warning, not a failure: status reports the keyset, and its exit status is
 * the keyset's SLA, which a pipeline may gate on with no access to the projection.
 */
async function stagedUnpublished(source: KeysetSource, doc: KeysetDocument, now: number, warnings: string[]): Promise<Map<string, readonly string[]>> {
  const found = new Map<string, readonly string[]>()
  const staged = stagedKeys(doc)
  if (staged.length === 0) return found
  const view = projectionView(source.projections(), () => now)
  try {
    for (const key of staged) {
      const lacking = await view.lacking(doc, key.kid)
      if (lacking.length > 0) found.set(key.kid, lacking)
    }
  } catch (err) {
    if (!(err instanceof BackendError)) throw err
    warnings.push(`could not read the verification projection to tell whether it holds the staged key: ${err.message}`)
  } finally {
    await Promise.all(source.projections.made().map((p) => p.close()))
  }
  return found
}
