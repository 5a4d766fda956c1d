import { RefusedError } from '../../lib/errors.js'
import { describeReplica, replicasLacking, type FleetSource } from './fleet.js'

/**
 * The promotion gate (docs/rotation.md, "Promotion gated on every replica"): resolves with a note when every replica of the fleet
 * verifies with `kid` now; otherwise throws `RefusedError` naming every replica that lacks
 * it (down and unreadable ones included). No time window is involved: what is checked is
 * what the replicas have loaded. `next`: what to do instead of running again once they have
 * loaded it, when that cannot happen (the key is not where they load it from).
 *
 * @example
 * await requireKeyEverywhere(createPrometheusFleet({ url }), 'k-20261125-3f9a', 'promote')
 */
export async function requireKeyEverywhere(source: FleetSource, kid: string, action: string, next?: string): Promise<string> {
  const view = await source.read().catch((err: unknown) => {
    // The fleet cannot be seen at all: refused, never promoted blindly.
    throw err instanceof RefusedError ? new RefusedError(`refusing to ${action} ${kid}: ${err.message}; nothing is promoted`) : err
  })
  const lacking = replicasLacking(view, kid)
  if (lacking.length > 0) {
    throw new RefusedError(
      `refusing to ${action} ${kid}: ${lacking.length} of ${view.replicas.length} replicas do not verify with it yet: ` +
        `${lacking.map(describeReplica).join('; ')} (seen through ${view.source}); nothing changed, ${next ?? 'run again once they have loaded it'}`,
    )
  }
  return `every replica verifies with ${kid} (${view.replicas.length} seen through ${view.source})`
}
