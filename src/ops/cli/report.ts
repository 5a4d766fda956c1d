import type { Writable } from 'node:stream'
import { projectionOf } from '../projection/publish.js'
import { describeChange } from '../rotation/diff.js'
import type { UpdateOutcome } from '../rotation/update-keyset.js'
import { println, type CliContext } from './context.js'
import type { KeysetSource } from './keyset-source.js'

const MAX_RULE_LINES = 20

/** What `-` leaves undone: the verification projection (the pipeline carries the private keyset only). */
export const STREAMED_NO_PROJECTION =
  'no verification projection written (- carries the keyset only): verifiers that read a projection (cbc-jwt-verification, keyset.public.json, a Vault path …-public) do not see this change until it is published, and a new key would sign before they verify it; write with --keyset-file PATH or --backend, which publish the projection first'

/** The stream for human-readable reports: stderr when stdout carries the document. */
export function reportStream(ctx: CliContext, source: Pick<KeysetSource, 'streamsDocument'>): Writable {
  return source.streamsDocument ? ctx.stderr : ctx.stdout
}

/**
 * Prints what an update did. With `-`, stdout always carries a keyset: the new one when it
 * changed, else (nothing to do, or a dry run) the input unchanged — so a pipeline into
 * `kubectl apply` is a no-op rather than an empty secret. The input goes out through the
 * stdout backend's own write, which refuses a terminal as it does for the new keyset.
 */
export async function reportUpdate(ctx: CliContext, source: KeysetSource, outcome: UpdateOutcome, opts: { headline: string; dryRun: boolean }): Promise<void> {
  const out = reportStream(ctx, source)
  if (source.streamsDocument && !outcome.written) await source.backend.write(outcome.beforeText)
  const { projection } = outcome
  if (outcome.changes.length === 0) {
    println(out, 'nothing to do')
    for (const note of outcome.notes) println(out, `  ${note}`)
    for (const location of projection.written) println(out, `repaired the verification projection ${location} (it differed from the keyset)`)
    if (opts.dryRun) for (const drift of projection.drift) println(out, `  note: the verification projection ${drift}; a run without --dry-run repairs it`)
    return
  }
  println(out, opts.dryRun ? `dry run, nothing written — ${opts.headline}:` : `${opts.headline}:`)
  // Rules can come by the thousand (revoke --jti - from a log): the first few of each kind,
  // then a count; `revoke --list` prints them all.
  const shown = { rule_added: 0, rule_removed: 0 }
  for (const change of outcome.changes) {
    if (change.kind === 'rule_added' || change.kind === 'rule_removed') {
      if (++shown[change.kind] > MAX_RULE_LINES) continue
    }
    println(out, `  ${describeChange(change)}`)
  }
  for (const [kind, count] of Object.entries(shown)) {
    if (count > MAX_RULE_LINES)
      println(
        out,
        `  … and ${count - MAX_RULE_LINES} more rule(s) ${kind === 'rule_added' ? 'revoked' : 'dropped'} (cbc-jwt revoke --list shows the rules in force)`,
      )
  }
  for (const note of outcome.notes) println(out, `  note: ${note}`)
  if (outcome.attempts > 1) println(out, `  note: ${source.backend.location} changed while this ran; the change was applied again to the new version`)
  if (projection.skipped) println(out, `  note: ${projection.skipped}`)
  // `-` carries one document: the projection verifiers read is not written, and nothing else says so.
  if (source.streamsDocument && !opts.dryRun && 'text' in projectionOf(outcome.after)) println(out, `  note: ${STREAMED_NO_PROJECTION}`)
  for (const location of projection.written) println(out, `wrote the verification projection ${location}`)
  if (outcome.written && !source.streamsDocument) println(out, `wrote ${source.backend.location}`)
}
