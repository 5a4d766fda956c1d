import { UsageError } from '../../lib/errors.js'
import type { FleetSource } from '../fleet/fleet.js'
import { DEFAULT_SELECTOR, createPrometheusFleet } from '../fleet/prometheus.js'
import { createReplicaFleet } from '../fleet/replicas.js'
import type { OptionSpec } from './args.js'

/** `--prometheus URL [--selector S]...` or `--replica URL` (repeatable): how a command sees every replica. */
export const FLEET_OPTIONS = {
  prometheus: { type: 'string' },
  selector: { type: 'string', multiple: true },
  replica: { type: 'string', multiple: true },
} as const satisfies OptionSpec

export interface FleetFlags {
  prometheus?: string | undefined
  selector?: string[] | undefined
  replica?: string[] | undefined
}

export const FLEET_HELP = `  --prometheus URL   ask this Prometheus which replicas have which key (env
                     CBC_JWT_PROMETHEUS_URL): every target of the selector must be up and
                     export cbc_jwt_key_info for the kid
  --selector S       PromQL label matchers of the replicas' targets (default ${DEFAULT_SELECTOR});
                     repeat it to gate on several sets at once, e.g. one per namespace
                     that verifies: every target of every selector must have the key, and
                     each selector must match at least one target
  --replica URL      ask this replica's /v1/keys directly; repeat for every replica`

/**
 * The fleet the flags name, or undefined when none is named. Precedence: `--replica` or
 * `--prometheus` (not both) > `CBC_JWT_PROMETHEUS_URL`. `--selector` needs a Prometheus.
 */
export function fleetFromFlags(env: NodeJS.ProcessEnv, flags: FleetFlags): FleetSource | undefined {
  const replicas = flags.replica ?? []
  if (replicas.length > 0 && flags.prometheus !== undefined) throw new UsageError('give either --prometheus or --replica, not both')
  if (replicas.length > 0) {
    if (flags.selector !== undefined) throw new UsageError('--selector applies to --prometheus, not to --replica')
    return createReplicaFleet({ urls: replicas })
  }
  // Set but empty is a gate configured wrong, not no gate: promotion would fall back to time alone.
  if (flags.prometheus === undefined && env.CBC_JWT_PROMETHEUS_URL !== undefined && env.CBC_JWT_PROMETHEUS_URL.trim() === '') {
    throw new UsageError('CBC_JWT_PROMETHEUS_URL is set but empty: set it to the Prometheus URL (e.g. http://prometheus:9090), or unset it')
  }
  const url = flags.prometheus ?? env.CBC_JWT_PROMETHEUS_URL
  if (url === undefined) {
    if (flags.selector !== undefined) throw new UsageError('--selector needs --prometheus URL (or CBC_JWT_PROMETHEUS_URL)')
    return undefined
  }
  if (url === '') throw new UsageError('--prometheus needs a URL')
  return createPrometheusFleet({ url, ...(flags.selector !== undefined && flags.selector.length > 0 ? { selector: flags.selector } : {}) })
}
