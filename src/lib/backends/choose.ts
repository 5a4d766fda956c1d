import type { KeysetBackend, WatchLogger } from './backend.js'
import { createFileBackend } from './file-backend.js'
import { createKubernetesBackend, kubernetesOptionsFromEnv, type KubernetesKeysetBackend } from './kubernetes/index.js'
import { createVaultBackend, vaultOptionsFromEnv, type VaultLogger } from './vault/index.js'

/** What a configuration says about where the keyset is (`CBC_JWT_BACKEND`, `CBC_JWT_KEYSET_FILE`). */
export interface BackendChoice {
  backend: 'file' | 'vault' | 'kubernetes'
  /** The keyset file of the `file` backend; undefined: none configured. */
  keysetFile: string | undefined
}

export interface ChooseBackendDeps<R> {
  /** Where Vault's and Kubernetes' own variables are read. */
  env: NodeJS.ProcessEnv
  /** Receives the Vault backend's warnings and login notices, and the Kubernetes watch's. */
  logger?: (VaultLogger & WatchLogger) | undefined
  /**
   * What "nothing configured" (`file` without a keyset file) means to this caller: return the
   * backend to use instead, or throw the caller's error naming what to set.
   */
  whenNothingConfigured: () => R
}

/**
 * The one place that turns a configuration into a keyset backend, for the service, the library
 * and the CLI alike: `vault` (Vault's variables), `kubernetes` (the Secret through the API
 * server), `file` (the keyset file) — and, when nothing is configured, whatever the caller's
 * `whenNothingConfigured` says (the service and the library refuse; the CLI uses an existing
 * development keyset). With a backend configured, nothing is ever generated.
 *
 * @example
 * const backend = chooseBackend(config, { env, logger, whenNothingConfigured: () => { throw new ConfigError('no keyset configured: …') } })
 */
export function chooseBackend<R>(choice: BackendChoice, deps: ChooseBackendDeps<R>): KeysetBackend | KubernetesKeysetBackend | R {
  const logger = deps.logger === undefined ? {} : { logger: deps.logger }
  switch (choice.backend) {
    case 'vault':
      return createVaultBackend(vaultOptionsFromEnv(deps.env), logger)
    case 'kubernetes':
      return createKubernetesBackend(kubernetesOptionsFromEnv(deps.env), { env: deps.env, ...logger })
    case 'file':
      return choice.keysetFile === undefined ? deps.whenNothingConfigured() : createFileBackend(choice.keysetFile, logger)
  }
}

/** A backend `chooseBackend` made for `kubernetes`: it can find the API server before the first read. */
export function isKubernetesBackend(backend: KeysetBackend): backend is KubernetesKeysetBackend {
  return backend.kind === 'kubernetes' && typeof (backend as Partial<KubernetesKeysetBackend>).connect === 'function'
}
