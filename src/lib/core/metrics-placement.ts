import type { Registry } from 'prom-client'
import { CbcJwtError, ERROR_CODES } from '../errors.js'

/**
 * Which instance each cbc-jwt metric object belongs to, and which instances are closed: kept
 * beside the instances, not on them, so the public object stays what `CbcJwt` says.
 */
const ownerOf = new WeakMap<object, object>()
const closed = new WeakSet<object>()

/** Records that `owner` was closed: its metrics may be replaced by a new instance's. */
export function markClosed(owner: object): void {
  closed.add(owner)
}

/** True once `close()` was called on an instance built by `createCbcJwt`. */
export function isClosed(owner: object): boolean {
  return closed.has(owner)
}

interface NamedMetric {
  name: string
}

/**
 * Puts the metrics of `own` (one instance's private registry) on `target`. Again on the same
 * registry: nothing changes. A registry that holds the metrics of a closed instance (an instance
 * re-created after `close()`) gets this one's. A registry that holds those of another instance
 * still open is refused before anything changes: one of the two would silently lose its counts
 * (5 + 3 rejections exported as 3), which is what an operator must never see.
 */
export function placeMetrics(own: Registry, target: Registry, owner: object): void {
  const metrics = own.getMetricsAsArray() as unknown as Array<NamedMetric & Parameters<Registry['registerMetric']>[0]>
  for (const metric of metrics) {
    const present = target.getSingleMetric(metric.name)
    if (present === undefined || present === metric) continue
    const other = ownerOf.get(present)
    if (other !== undefined && other !== owner && !closed.has(other)) {
      throw new CbcJwtError(
        ERROR_CODES.ALREADY_REGISTERED,
        `the ${metric.name} metrics of another cbc-jwt instance, still open, are on this registry: both would be exported as one and one instance's counts lost. Build one instance and share it (adapters with the same options share one; pass { cbc }), close the other first, or give this one its own registry (or registry: false)`,
      )
    }
  }
  for (const metric of metrics) {
    ownerOf.set(metric, owner)
    const present = target.getSingleMetric(metric.name)
    if (present === metric) continue
    if (present) target.removeSingleMetric(metric.name)
    target.registerMetric(metric)
  }
}
