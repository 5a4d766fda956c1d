/**
 * cbc-jwt as a library (docs/adopting.md): `createCbcJwt` for an API, and the pieces it is built
 * from. Importing this entry loads neither Fastify nor pino: the adapters are
 * `cbc-jwt/fastify` and `cbc-jwt/express`, the service is `cbc-jwt/server`.
 */
export { createCbcJwt } from './lib/core/compose.js'
export type { CbcJwt, RequestContext } from './lib/core/cbc-jwt.js'
export type { CbcJwtOptions } from './lib/core/options.js'
export type { TrustedIssuer } from './lib/issuers/trusted-issuers.js'
export type { AuthResult, AuthSuccess, AuthRejection, RejectionReason } from './lib/core/rejection.js'
export type { SignOptions } from './lib/core/sign.js'
export type { JwksBody, KeysBody, PublicJwk } from './lib/core/keys-view.js'
export type { CbcJwtLogger } from './lib/core/logger.js'
export type { CbcJwtAuth, CbcJwtAdapterOptions } from './lib/core/adapter.js'
export { bearerCredential, authorizationFromRawHeaders } from './lib/core/bearer.js'
export type { AuthorizationHeader, BearerCredential } from './lib/core/bearer.js'
export { hasScope } from './lib/core/scope.js'
export { AUTH_FAILURE_REASONS, BACKEND_ERROR_REASONS } from './lib/reasons.js'
export type { AuthFailureReason, BackendErrorReason } from './lib/reasons.js'
export {
  BackendError,
  CasConflictError,
  CbcJwtError,
  ConfigError,
  ERROR_CODES,
  ERROR_REGISTRY,
  InputError,
  KeysetInvalidError,
  NoSigningKeyError,
  RefusedError,
  UsageError,
} from './lib/errors.js'
export type { ErrorCode, KeysetProblem } from './lib/errors.js'
export { TtlTooLongError } from './lib/core/sign.js'
export { ALGORITHMS } from './lib/keyset/algorithms.js'
export type { Alg } from './lib/keyset/algorithms.js'
export type { KeyEntry, KeyStatus, KeysetDocument } from './lib/keyset/document.js'
export { KEYSET_SCHEMA_URL } from './lib/keyset/schema.js'
export { loadKeyset, parseKeysetText } from './lib/keyset/load.js'
export type { LoadedKey, LoadedKeyset } from './lib/keyset/load.js'
export { generateKeyset, generateKeyEntry } from './lib/keyset/generate.js'
export type { KeysetBackend, KeysetSnapshot } from './lib/backends/backend.js'
export { createFileBackend } from './lib/backends/file-backend.js'
export { createVaultBackend, vaultOptionsFromEnv, VAULT_DEFAULTS } from './lib/backends/vault/index.js'
export type { VaultAuthMethod, VaultBackendDeps, VaultBackendOptions, VaultLogger, VaultSettings } from './lib/backends/vault/index.js'
export { createKeyring } from './lib/keyring/keyring.js'
export type { Keyring, KeyringOptions } from './lib/keyring/keyring.js'
export { createVerifier } from './lib/verifier/verifier.js'
export type { Verifier, VerifierOptions, VerifyOptions, VerifyResult } from './lib/verifier/verifier.js'
export type { JwtClaims } from './lib/verifier/claims.js'
export { createMetrics } from './lib/metrics/metrics.js'
export type { Metrics } from './lib/metrics/metrics.js'
export { METRIC_NAMES } from './lib/metrics/names.js'
export { cbcJwtConfigFromEnv } from './lib/config.js'
export type { CbcJwtConfig } from './lib/config.js'
