/** Metric names fixed by the runbook (docs/metrics.md), plus the health of the refresh loop and the per-replica key state. */
export const METRIC_NAMES = {
  keysLoaded: 'cbc_jwt_keys_loaded',
  activeKeyAge: 'cbc_jwt_active_key_age_seconds',
  rotations: 'cbc_jwt_key_rotations_total',
  authFailures: 'cbc_jwt_auth_failures_total',
  backendErrors: 'cbc_jwt_backend_errors_total',
  /** Unix time of the last successful read of the backend (changed or not); 0 before the first. */
  lastSuccess: 'cbc_jwt_keyset_last_success_timestamp_seconds',
  /** The configured refresh interval, so alerts can scale "stale" to it. */
  refreshInterval: 'cbc_jwt_keyset_refresh_interval_seconds',
  /** 1 per key that verifies now, labelled issuer, kid, alg, status: which replica has which key. */
  keyInfo: 'cbc_jwt_key_info',
  /** Per trusted issuer, Unix time of the last good read of its JWK Set; 0 before the first. */
  issuerLastSuccess: 'cbc_jwt_trusted_issuer_last_success_timestamp_seconds',
  /** `revoked_before` in force, Unix seconds; 0 when none (a revocation is in force only once every replica shows it). */
  revokedBefore: 'cbc_jwt_revoked_before_timestamp_seconds',
  /** Rules of the keyset's `revocations` in force (by client, subject or token id). */
  revocationRules: 'cbc_jwt_revocation_rules',
  /** The newest rule's `created_at` in force, Unix seconds; 0 when none: a replica below a revoke's time lacks its rule. */
  revocationsNewest: 'cbc_jwt_revocations_newest_timestamp_seconds',
  /** Verified-token cache: lookups answered from it. */
  tokenCacheHits: 'cbc_jwt_token_cache_hits_total',
  /** Lookups not answered from it (absent, or no longer valid and dropped). */
  tokenCacheMisses: 'cbc_jwt_token_cache_misses_total',
  /** Entries dropped to stay within the entry or byte bound. */
  tokenCacheEvictions: 'cbc_jwt_token_cache_evictions_total',
  /** Entries held now. */
  tokenCacheEntries: 'cbc_jwt_token_cache_entries',
  /** Estimated heap bytes held now. */
  tokenCacheBytes: 'cbc_jwt_token_cache_bytes',
} as const
