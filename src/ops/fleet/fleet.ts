import type { KeyStatus } from '../../lib/keyset/document.js'

/** What one replica has in force, as seen from Prometheus or from its own `/v1/keys`. */
export interface ReplicaState {
  /** How messages name it: the target's `instance` (and `pod`, when labelled), or its URL. */
  name: string
  /** False when Prometheus reports the target down, or the replica did not answer `/v1/keys` with the document. */
  reachable: boolean
  /** Why it is not reachable (or what it answered instead). */
  problem?: string
  /** kid → status of every key that verifies there now. */
  keys: ReadonlyMap<string, KeyStatus>
  /** `revoked_before` in force, Unix seconds; 0 when none; undefined when unknown. */
  revokedBefore: number | undefined
  /**
   * `created_at` of the newest revocation rule in force, Unix seconds; 0 when none; undefined
   * when unknown (the replica does not export it, or is down).
   */
  revocationsNewest?: number | undefined
}

/** Every replica of the fleet at one moment. */
export interface FleetView {
  /** Where the view came from, for messages: `Prometheus http://… {job="cbc-jwt"}` or `3 replicas`. */
  source: string
  replicas: ReplicaState[]
}

/**
 * Reads the fleet. Throws `RefusedError` when no view can be had at all (Prometheus
 * unreachable, or its selector matches no target): a gate must then refuse, never pass.
 */
export interface FleetSource {
  readonly description: string
  /** `timeoutMs`: a shorter deadline per request than the source's own (what is left of a wait). */
  read(opts?: { timeoutMs?: number }): Promise<FleetView>
  /**
   * The same fleet as one source per replica, when each can be asked on its own (`--replica`):
   * a wait then follows each replica at its own pace, so one that never answers holds up none
   * of the others.
   */
  members?(): FleetSource[]
}

/** One line about a replica, for refusals: `10.0.0.7:8000 (down: connection refused)`, `… (has k-a current)`. */
export function describeReplica(r: ReplicaState): string {
  if (!r.reachable) return `${r.name} (${r.problem ?? 'down'})`
  const keys = [...r.keys].map(([kid, status]) => `${kid} ${status}`).join(', ')
  return `${r.name} (has ${keys || 'no key'})`
}

/**
 * The replicas that do not verify with `kid` now. A replica that is down or unreadable
 * never counts as having it: what cannot be seen cannot be trusted to accept the key's tokens.
 */
export function replicasLacking(view: FleetView, kid: string): ReplicaState[] {
  return view.replicas.filter((r) => !r.reachable || !r.keys.has(kid))
}

/** The replicas that still verify with any of `kids` (or cannot be seen, so might). */
export function replicasHolding(view: FleetView, kids: readonly string[]): ReplicaState[] {
  return view.replicas.filter((r) => !r.reachable || kids.some((kid) => r.keys.has(kid)))
}
