/**
 * The closed vocabulary of token rejections (docs/reasons.md). One list drives the HTTP body,
 * the log field and the `reason` label of `cbc_jwt_auth_failures_total`; nothing else may
 * become a reason, so no label value can ever come from a token.
 */
export const AUTH_FAILURE_REASONS = [
  'missing',
  'malformed',
  'too_large',
  'unsupported_alg',
  'unknown_kid',
  'bad_signature',
  'expired',
  'not_yet_valid',
  'bad_issuer',
  'bad_audience',
  'revoked',
] as const

export type AuthFailureReason = (typeof AUTH_FAILURE_REASONS)[number]

/**
 * Why a load of key material failed: the bounded `reason` label of
 * `cbc_jwt_backend_errors_total`. Shared by every backend.
 */
export const BACKEND_ERROR_REASONS = [
  /** file missing, Vault 404 */
  'not_found',
  /** EACCES/EPERM, Vault 401/403, a failed Vault login */
  'forbidden',
  /** connection refused, DNS failure, TLS failure */
  'unreachable',
  /** no answer within the request timeout */
  'timeout',
  /** Vault answers 503 (sealed or in standby) */
  'sealed',
  /** Vault 5xx other than 503, or a status the client does not expect */
  'server_error',
  /** a response that is not the envelope the API documents (not JSON, wrong shape, redirect) */
  'bad_response',
  /** the keyset document is not JSON */
  'invalid_json',
  /** the keyset document fails the schema or the semantic checks */
  'invalid_keyset',
  /** the keyset path is not a regular file (a FIFO, a device such as /dev/zero, a directory) */
  'not_a_file',
  /** any other I/O failure reading the backend */
  'io_error',
] as const

export type BackendErrorReason = (typeof BACKEND_ERROR_REASONS)[number]
