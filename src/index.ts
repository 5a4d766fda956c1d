/**
 * cbc-jwt as a library (CONTRACT §6): `createCbcJwt` for an API, and the pieces it is built
 * from. Importing this entry loads neither Fastify nor pino: the adapters are
 * `cbc-jwt/fastify` and `cbc-jwt/express`, the service is `cbc-jwt/server`.
 */
export { createCbcJwt } from './core/compose.js'
export type { CbcJwt, RequestContext } from './core/cbc-jwt.js'
export type { CbcJwtOptions } from './core/options.js'
export type { AuthResult, AuthSuccess, AuthRejection, RejectionReason } from './core/rejection.js'
export type { SignOptions } from './core/sign.js'
export type { JwksBody, KeysBody, PublicJwk } from './core/keys-view.js'
export type { CbcJwtLogger } from './core/logger.js'
export type { CbcJwtAuth, CbcJwtAdapterOptions } from './core/adapter.js'
export { bearerCredential, authorizationFromRawHeaders } from './core/bearer.js'
export type { AuthorizationHeader, BearerCredential } from './core/bearer.js'
export { hasScope } from './core/scope.js'
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
export { createVaultBackend, vaultOptionsFromEnv, VAULT_DEFAULTS } from './backends/vault/index.js'
export type { VaultAuthMethod, VaultBackendDeps, VaultBackendOptions, VaultLogger } from './backends/vault/index.js'
export { createKeyring } from './keyring/keyring.js'
export type { Keyring, KeyringOptions } from './keyring/keyring.js'
export { createVerifier } from './verifier/verifier.js'
export type { Verifier, VerifierOptions, VerifyResult } from './verifier/verifier.js'
export type { JwtClaims } from './verifier/claims.js'
export { createMetrics } from './metrics/metrics.js'
export type { Metrics } from './metrics/metrics.js'
export { METRIC_NAMES } from './metrics/names.js'
export { cbcJwtConfigFromEnv } from './config.js'
export type { CbcJwtConfig } from './config.js'
