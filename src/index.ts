/**
 * cbc-jwt as a library: the pieces the service is built from, for embedding the keyring and
 * verifier in another Node.js server. Everything else is internal.
 */
export { AUTH_FAILURE_REASONS, BACKEND_ERROR_REASONS } from './reasons.js'
export type { AuthFailureReason, BackendErrorReason } from './reasons.js'
export {
  BackendError,
  CasConflictError,
  CbcJwtError,
  ConfigError,
  ERROR_CODES,
  KeysetInvalidError,
  RefusedError,
  UsageError,
} from './errors.js'
export type { ErrorCode, KeysetProblem } from './errors.js'
export { ALGORITHMS } from './keyset/algorithms.js'
export type { Alg } from './keyset/algorithms.js'
export type { KeyEntry, KeyStatus, KeysetDocument } from './keyset/document.js'
export { KEYSET_SCHEMA_URL } from './keyset/schema.js'
export { loadKeyset, parseKeysetText } from './keyset/load.js'
export type { LoadedKey, LoadedKeyset } from './keyset/load.js'
export { generateKeyset, generateKeyEntry } from './keyset/generate.js'
export type { KeysetBackend, KeysetSnapshot } from './backends/backend.js'
export { createFileBackend } from './backends/file-backend.js'
export { createKeyring } from './keyring/keyring.js'
export type { Keyring, KeyringOptions } from './keyring/keyring.js'
export { createVerifier } from './verifier/verifier.js'
export type { Verifier, VerifierOptions, VerifyResult } from './verifier/verifier.js'
export type { JwtClaims } from './verifier/claims.js'
export { createMetrics } from './metrics/metrics.js'
export type { Metrics } from './metrics/metrics.js'
export { METRIC_NAMES } from './metrics/names.js'
export { serviceConfigFromEnv } from './config.js'
export type { ServiceConfig } from './config.js'
export { createService } from './server/service.js'
export type { Service } from './server/service.js'
