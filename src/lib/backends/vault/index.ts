/**
 * The Vault KV v2 backend: `vaultOptionsFromEnv` reads the configuration, `createVaultBackend`
 * builds a `KeysetBackend` over the secret's `jwt-keyset` field.
 */
export { createVaultBackend, KEYSET_FIELD, type VaultBackendDeps } from './vault-backend.js'
export { vaultOptionsFromEnv, VAULT_DEFAULTS, type VaultAuthMethod, type VaultBackendOptions, type VaultSettings } from './options.js'
export type { VaultLogger } from './auth.js'
