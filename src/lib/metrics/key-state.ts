import { Gauge, type Registry } from 'prom-client'
import type { Keyring } from '../keyring/keyring.js'
import type { LoadedKey } from '../keyset/load.js'
import { METRIC_NAMES } from './names.js'

/** What the metrics read of a trusted issuer, at scrape time. */
export interface TrustedIssuerKeyState {
  readonly issuer: string
  keys(): ReadonlyMap<string, LoadedKey> | undefined
  lastSuccessAt(): number | undefined
}

export interface KeyStateMetricsOptions {
  /** Read at scrape time; nothing is cached between scrapes. */
  keyring: Pick<Keyring, 'keyset' | 'verifyingKeys'>
  registry: Registry
  now: () => number
  /** The `issuer` label of the keyset's own keys. */
  issuer: string
  trustedIssuers: readonly TrustedIssuerKeyState[]
}

/** The `status` of a trusted issuer's key in `cbc_jwt_key_info` and `/v1/keys`: it verifies, never signs. */
export const TRUSTED_KEY_STATUS = 'trusted'

/**
 * What this replica has in force, for Prometheus to compare across replicas (the
 * promotion gate and the alerts): one `cbc_jwt_key_info{kid,alg,status}` series per key that verifies now, and the
 * `revoked_before` in force. Both are rebuilt in `collect()` from the keyset in force, so a
 * pruned or expired key's series is gone at the next scrape. Every label value comes from
 * the validated keyset (kids are 1–128 chars of `[A-Za-z0-9._:-]`, at most one series per
 * key), never from a token: a forged kid cannot create a series. A trusted issuer's keys are
 * exported too, with `status="trusted"` and the issuer from the configuration; their kids
 * passed a safe grammar and their number is bounded per issuer (jwks-document.ts).
 */
export function registerKeyStateMetrics({ keyring, registry, now, issuer, trustedIssuers }: KeyStateMetricsOptions): void {
  new Gauge({
    name: METRIC_NAMES.keyInfo,
    help: "One series per key that verifies now (value 1), by issuer; status is current, staged or verify-only for the keyset's own keys, trusted for a trusted issuer's.",
    labelNames: ['issuer', 'kid', 'alg', 'status'],
    registers: [registry],
    collect() {
      this.reset()
      for (const key of keyring.verifyingKeys(now())) this.set({ issuer, kid: key.kid, alg: key.alg, status: key.status }, 1)
      for (const trusted of trustedIssuers) {
        for (const key of trusted.keys()?.values() ?? []) this.set({ issuer: trusted.issuer, kid: key.kid, alg: key.alg, status: TRUSTED_KEY_STATUS }, 1)
      }
    },
  })
  if (trustedIssuers.length > 0) {
    new Gauge({
      name: METRIC_NAMES.issuerLastSuccess,
      help: 'Per trusted issuer, Unix time of the last good read of its JWK Set; 0 before the first. Its keys stay in force (last good) in between.',
      labelNames: ['issuer'],
      registers: [registry],
      collect() {
        for (const trusted of trustedIssuers) this.set({ issuer: trusted.issuer }, (trusted.lastSuccessAt() ?? 0) / 1000)
      },
    })
  }
  new Gauge({
    name: METRIC_NAMES.revokedBefore,
    help: 'revoked_before of the keyset in force, in Unix seconds: tokens with an earlier iat are rejected; 0 when none is in force.',
    registers: [registry],
    collect() {
      // 0, not absent, when none is in force (also before the first load, when cbc_jwt_key_info
      // has no series): min() over the replicas then shows a replica that lacks a revocation.
      this.set(keyring.keyset()?.revokedBefore ?? 0)
    },
  })
  new Gauge({
    name: METRIC_NAMES.revocationRules,
    help: 'Revocation rules (by client, subject or token id) of the keyset in force; 0 when none.',
    registers: [registry],
    collect() {
      this.set(keyring.keyset()?.revocations.size ?? 0)
    },
  })
  new Gauge({
    name: METRIC_NAMES.revocationsNewest,
    help: 'created_at of the newest revocation rule in force, in Unix seconds; 0 when none: a replica below the time of a revoke lacks its rule.',
    registers: [registry],
    collect() {
      this.set(keyring.keyset()?.revocations.newestCreatedAt ?? 0)
    },
  })
}
