import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { AUTH_FAILURE_REASONS, type AuthFailureReason } from '../../src/lib/reasons.js'
import { KubeletVolume } from '../support/kubelet-volume.js'
import { series, type Exposition } from '../support/metrics-text.js'
import { startService, type RunningService } from '../support/service.js'

export interface KeysetService {
  service: RunningService
  volume: KubeletVolume
  /** Stops the process and removes its temp dir. */
  stop(): Promise<void>
}

/**
 * Starts the real built service on a Kubernetes-style secret volume (in a fresh temp dir)
 * holding `doc`, and waits for /readyz 200.
 */
export async function startWithKeyset(doc: unknown, env: Record<string, string> = {}): Promise<KeysetService> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-test-'))
  const volume = new KubeletVolume(path.join(dir, 'secret'))
  volume.writeKeyset(doc)
  try {
    const service = await startService({ env: { CBC_JWT_KEYSET_FILE: volume.file(), ...env } })
    return {
      service,
      volume,
      async stop() {
        await service.stop()
        fs.rmSync(dir, { recursive: true, force: true })
      },
    }
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true })
    throw err
  }
}

export const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })

/** `cbc_jwt_auth_failures_total` by reason (every reason of §3, 0 when absent). */
export function authFailures(expo: Exposition): Record<AuthFailureReason, number> {
  const out = {} as Record<AuthFailureReason, number>
  for (const reason of AUTH_FAILURE_REASONS) {
    out[reason] = series(expo, 'cbc_jwt_auth_failures_total').find((s) => s.labels.reason === reason)?.value ?? 0
  }
  return out
}

/** The expected change of every reason's counter: +`by` for `reason`, 0 for all others. */
export function onlyReasonRose(reason: AuthFailureReason, by = 1): Record<AuthFailureReason, number> {
  return Object.fromEntries(AUTH_FAILURE_REASONS.map((r) => [r, r === reason ? by : 0])) as Record<AuthFailureReason, number>
}

/** after − before, per reason. */
export function delta(before: Record<AuthFailureReason, number>, after: Record<AuthFailureReason, number>): Record<AuthFailureReason, number> {
  return Object.fromEntries(AUTH_FAILURE_REASONS.map((r) => [r, after[r] - before[r]])) as Record<AuthFailureReason, number>
}

/** Number of series of every `cbc_jwt_*` metric, by sample name. */
export function seriesCounts(expo: Exposition): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const s of expo.samples) if (s.name.startsWith('cbc_jwt_')) counts[s.name] = (counts[s.name] ?? 0) + 1
  return counts
}

/** Every value of a private JWK member (d, p, q, dp, dq, qi, k, oth) in the given JWKs. */
export function privateValues(jwks: Array<Record<string, unknown>>): string[] {
  const names = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth']
  return jwks.flatMap((jwk) => names.filter((n) => typeof jwk[n] === 'string').map((n) => jwk[n] as string))
}
