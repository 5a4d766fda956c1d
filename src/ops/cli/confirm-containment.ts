import { UsageError } from '../../lib/errors.js'
import { keyStatus, type KeysetDocument } from '../../lib/keyset/document.js'
import { describeContainment, waitForContainment } from '../fleet/containment.js'
import type { FleetSource } from '../fleet/fleet.js'
import { durationFlag } from './args.js'
import { println, type CliContext } from './context.js'
import { fleetFromFlags, type FleetFlags } from './fleet-flags.js'
import type { KeysetSource } from './keyset-source.js'

/** `--wait` of the emergency commands: how long to wait for every replica. @default 30 s */
export const DEFAULT_CONTAINMENT_WAIT_MS = 30_000

export const CONTAINMENT_HELP = `  --prometheus URL, --selector S, --replica URL
                     after the write, wait until every replica reports the new state
                     (cbc_jwt_key_info / /v1/keys, revoked_before, the newest revocation
                     rule) and print how long each took; exit 1 naming the replicas that
                     did not follow within --wait
  --wait DUR         how long to wait for them (default 30s)`

/**
 * The replicas an emergency write is confirmed on, and how long to wait for them: when asked
 * on the command line — `--prometheus`, `--replica`, or `--selector`/`--wait` with
 * `CBC_JWT_PROMETHEUS_URL` as the Prometheus — never by `CBC_JWT_PROMETHEUS_URL` alone (set
 * for the CronJob's gate, it must not make every write wait). A flag of it is never ignored:
 * without any Prometheus or replica, `--selector` and `--wait` are bad usage.
 */
export function containmentFleet(
  env: NodeJS.ProcessEnv,
  flags: FleetFlags & { wait?: string | undefined },
): { fleet: FleetSource; waitMs: number } | undefined {
  const waitMs = durationFlag('wait', flags.wait) ?? DEFAULT_CONTAINMENT_WAIT_MS
  const asked = flags.prometheus !== undefined || (flags.replica ?? []).length > 0 || flags.selector !== undefined || flags.wait !== undefined
  const fleet = asked ? fleetFromFlags(env, flags) : undefined
  if (!fleet && flags.wait !== undefined) throw new UsageError('--wait needs --prometheus URL (or CBC_JWT_PROMETHEUS_URL) or --replica URL')
  return fleet ? { fleet, waitMs } : undefined
}

/**
 * After an emergency write has landed: records it in the audit trail, then confirms it on the
 * replicas when asked. An audit append that fails (a full disk) must not skip the confirmation
 * the incident needs: it is reported once the confirmation has run.
 */
export async function recordThenConfirm(record: () => void, confirm: (() => Promise<number>) | undefined): Promise<number> {
  if (confirm === undefined) {
    record()
    return 0
  }
  let failure: unknown
  try {
    record()
  } catch (err) {
    failure = err
  }
  const code = await confirm()
  if (failure !== undefined) throw failure
  return code
}

/**
 * Refuses to confirm a keyset streamed to stdout (`-`): whoever reads it stores it only once
 * this command has ended, so no replica can have it before the wait is over (and the wait
 * would hold the emergency keyset back from the pipeline for as long).
 */
export function requireConfirmable(source: Pick<KeysetSource, 'streamsDocument'>): void {
  if (!source.streamsDocument) return
  throw new UsageError(
    'cannot confirm a keyset streamed to stdout: the replicas get it only once this command has ended and the keyset is stored; drop --prometheus/--replica/--selector/--wait, then confirm with cbc-jwt verify-rotation --replica URL …',
  )
}

/**
 * After an emergency write: waits until every replica of `fleet` has the change in force —
 * the new current key current, every cut-off key verifying nowhere, `revoked_before` at least
 * the new one, the newest revocation rule at least `rulesCreatedAt` — and prints one line per replica. Returns the exit status: 0 when every
 * replica followed, 1 otherwise (the lagging replicas named).
 */
export async function confirmContainment(
  ctx: CliContext,
  source: KeysetSource,
  fleet: FleetSource,
  change: { before: KeysetDocument; after: KeysetDocument; rotated: boolean; rulesCreatedAt?: number | undefined },
  waitMs: number,
): Promise<number> {
  const { before, after } = change
  const stillVerifying = (doc: KeysetDocument) =>
    new Set(doc.keys.filter((k) => k.not_after === undefined || Date.parse(k.not_after) > ctx.now()).map((k) => k.kid))
  const kept = stillVerifying(after)
  const gone = change.rotated ? before.keys.filter((k) => keyStatus(before, k) !== undefined && !kept.has(k.kid)).map((k) => k.kid) : []
  const report = await waitForContainment(
    fleet,
    {
      ...(change.rotated ? { current: after.current } : {}),
      gone,
      ...(after.revoked_before ? { revokedBefore: Date.parse(after.revoked_before) / 1000 } : {}),
      ...(change.rulesCreatedAt !== undefined ? { rulesCreatedAt: change.rulesCreatedAt } : {}),
    },
    { waitMs },
  )
  const kind = change.rotated ? 'keys' : change.rulesCreatedAt !== undefined ? 'rules' : 'revoked_before'
  const { lines, ok } = describeContainment(report, waitMs, { kind })
  // Reports go where the document does not: stderr when the keyset streams to stdout.
  const out = source.streamsDocument ? ctx.stderr : ctx.stdout
  const verdict = lines.pop()!
  for (const line of lines) println(out, line)
  println(ok ? out : ctx.stderr, verdict)
  return ok ? 0 : 1
}
