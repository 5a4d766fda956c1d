/**
 * The rotation policy in one place: the runbook's figures and the defaults the CLI starts
 * from, with their units in the names. Precedence for the ones an operator can change is
 * stated in `src/ops/cli/settings.ts` (defaults < environment < flags).
 */
export const ROTATION_POLICY = {
  /** A retiring key keeps verifying at least this long (runbook: "at least 24 hours"). */
  minGraceMs: 24 * 3600_000,
  /** The signing-key age SLA of the runbook's `JWTKeyAgeExceeded`: 604 800 s. */
  keyAgeSlaMs: 7 * 24 * 3600_000,
  /** `status` warns about a verify-only key whose `not_after` is this close. */
  expiringSoonMs: 24 * 3600_000,
  /** `rotate --auto` period. @default 6 d */
  everyMs: 6 * 24 * 3600_000,
  /** The service's keyset refresh interval (`CBC_JWT_REFRESH_INTERVAL_SECONDS`). @default 30 */
  refreshIntervalSeconds: 30,
  /** Upper bound of the kubelet's sync of a changed secret into a pod's volume. */
  kubeletSyncMs: 90_000,
  /** `revoke` refuses a time further in the future than this (without `--force`). */
  futureRevocationSlackMs: 60_000,
} as const

/**
 * How long a newly published key must wait before it may sign: every replica reads the
 * backend at least once per refresh interval (twice, to cover a read that started just
 * before the publication), after the kubelet has synced the secret into the volume.
 *
 * @example propagationWindowMs(30) // 150 000 (2 × 30 s + 90 s)
 */
export function propagationWindowMs(refreshIntervalSeconds: number = ROTATION_POLICY.refreshIntervalSeconds): number {
  return Math.round(2 * refreshIntervalSeconds * 1000) + ROTATION_POLICY.kubeletSyncMs
}

/** The grace a rotation gives the retiring key by default: max(24 h, the longest token TTL). */
export function defaultGraceMs(maxTokenTtlMs: number): number {
  return Math.max(ROTATION_POLICY.minGraceMs, maxTokenTtlMs)
}
