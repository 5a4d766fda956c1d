import { Counter, Gauge, Registry } from 'prom-client'
import type { Keyring } from '../keyring/keyring.js'
import { AUTH_FAILURE_REASONS, BACKEND_ERROR_REASONS, type AuthFailureReason, type BackendErrorReason } from '../reasons.js'
import { registerKeyStateMetrics, type TrustedIssuerKeyState } from './key-state.js'
import { DEFAULTS } from '../config.js'
import type { TokenCacheStats } from '../verifier/token-cache.js'
import { METRIC_NAMES } from './names.js'

const KNOWN_BACKEND_REASONS: ReadonlySet<string> = new Set(BACKEND_ERROR_REASONS)

export interface Metrics {
  readonly registry: Registry
  authFailure(reason: AuthFailureReason): void
  backendError(reason: BackendErrorReason): void
  rotation(): void
}

export interface MetricsOptions {
  /** Source of the point-in-time gauges, read at scrape time. */
  keyring: Pick<Keyring, 'keyset' | 'verifyingKeys' | 'lastSuccessAt'>
  /** The keyset's own issuer: the `issuer` label of its keys. @default 'cbc-omega2' */
  issuer?: string | undefined
  /** Trusted issuers, whose keys are exported beside the keyset's. @default [] */
  trustedIssuers?: readonly TrustedIssuerKeyState[] | undefined
  refreshIntervalSeconds: number
  /** A registry of the caller's; never prom-client's global one. @default new Registry() */
  registry?: Registry
  now?: () => number
  /** The verified-token cache's counts, read at scrape time; undefined (or absent) when it is off. */
  tokenCacheStats?: (() => TokenCacheStats | undefined) | undefined
}

/**
 * The metrics of docs/metrics.md on their own registry. Ages and counts are computed in
 * `collect()` at scrape time, so they are exact whenever Prometheus looks and cost nothing
 * between scrapes. Every label value comes from a closed list or from a loaded key's kid —
 * never from a token.
 */
export function createMetrics(options: MetricsOptions): Metrics {
  const registry = options.registry ?? new Registry()
  const now = options.now ?? Date.now
  const { keyring } = options

  new Gauge({
    name: METRIC_NAMES.keysLoaded,
    help: "Keys of the keyset that verify now (loaded, not past not_after); trusted issuers' keys are not counted.",
    registers: [registry],
    collect() {
      this.set(keyring.verifyingKeys(now()).length)
    },
  })
  new Gauge({
    name: METRIC_NAMES.activeKeyAge,
    help: 'Age in seconds of the active (current) signing key, by kid.',
    labelNames: ['kid'],
    registers: [registry],
    collect() {
      // reset() drops the previous kid's series: exactly one series, for the current key.
      this.reset()
      const current = keyring.keyset()?.current
      if (current) this.set({ kid: current.kid }, Math.max(0, (now() - current.createdAt) / 1000))
    },
  })
  const rotations = new Counter({
    name: METRIC_NAMES.rotations,
    help: 'Times this process saw the current signing key change to another kid.',
    registers: [registry],
  })
  const authFailures = new Counter({
    name: METRIC_NAMES.authFailures,
    help: 'Rejected tokens, by reason.',
    labelNames: ['reason'],
    registers: [registry],
  })
  const backendErrors = new Counter({
    name: METRIC_NAMES.backendErrors,
    help: "Failed loads of key material, by reason: the keyset from its secrets backend, and trusted issuers' JWK Sets.",
    labelNames: ['reason'],
    registers: [registry],
  })
  new Gauge({
    name: METRIC_NAMES.lastSuccess,
    help: 'Unix time of the last successful read of the keyset backend; 0 before the first.',
    registers: [registry],
    collect() {
      this.set((keyring.lastSuccessAt() ?? 0) / 1000)
    },
  })
  new Gauge({
    name: METRIC_NAMES.refreshInterval,
    help: 'Configured keyset refresh interval in seconds.',
    registers: [registry],
  }).set(options.refreshIntervalSeconds)
  registerKeyStateMetrics({ keyring, registry, now, issuer: options.issuer ?? DEFAULTS.issuer, trustedIssuers: options.trustedIssuers ?? [] })

  tokenCacheMetrics(registry, options.tokenCacheStats ?? (() => undefined))

  // Exported from 0, so rate() and increase() work from the first scrape.
  for (const reason of AUTH_FAILURE_REASONS) authFailures.inc({ reason }, 0)
  for (const reason of BACKEND_ERROR_REASONS) backendErrors.inc({ reason }, 0)

  return {
    registry,
    authFailure: (reason) => authFailures.inc({ reason }),
    // The label is a closed list: a reason from outside it (a custom backend's own, from JavaScript)
    // counts as io_error, as a read that throws something else does, never as a series of its own.
    backendError: (reason) => backendErrors.inc({ reason: KNOWN_BACKEND_REASONS.has(reason) ? reason : 'io_error' }),
    rotation: () => rotations.inc(),
  }
}

/**
 * The verified-token cache's hits, misses and size. The cache counts in plain integers on the
 * hot path; the counters catch up by the difference at scrape time, so a request pays no
 * prom-client call. Exported (from 0) even with the cache off.
 */
function tokenCacheMetrics(registry: Registry, stats: () => TokenCacheStats | undefined) {
  const counter = (name: string, help: string, read: (s: TokenCacheStats) => number) => {
    let reported = 0
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const s = stats()
        const value = s ? read(s) : 0
        if (value > reported) this.inc(value - reported)
        reported = Math.max(reported, value)
      },
    })
  }
  counter(METRIC_NAMES.tokenCacheHits, 'Token verifications answered from the verified-token cache.', (s) => s.hits)
  counter(METRIC_NAMES.tokenCacheMisses, 'Token verifications not answered from the verified-token cache.', (s) => s.misses)
  counter(METRIC_NAMES.tokenCacheEvictions, 'Entries dropped from the verified-token cache to stay within its bounds.', (s) => s.evictions)
  new Gauge({
    name: METRIC_NAMES.tokenCacheEntries,
    help: 'Tokens held in the verified-token cache.',
    registers: [registry],
    collect() {
      this.set(stats()?.entries ?? 0)
    },
  })
  new Gauge({
    name: METRIC_NAMES.tokenCacheBytes,
    help: 'Estimated heap bytes held by the verified-token cache.',
    registers: [registry],
    collect() {
      this.set(stats()?.bytes ?? 0)
    },
  })
}
