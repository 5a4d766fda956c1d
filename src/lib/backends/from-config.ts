import type { Logger } from 'pino'
import type { ServiceConfig } from '../config.js'
import { ensureDevKeyset } from './dev-keyset.js'
import type { KeysetBackend } from './backend.js'
import { createFileBackend } from './file-backend.js'
import { createVaultBackend, vaultOptionsFromEnv } from './vault/index.js'

/**
 * The backend the configuration names: Vault KV v2, a keyset file (or Kubernetes secret
 * volume), or — with `CBC_JWT_BACKEND=file` and no `CBC_JWT_KEYSET_FILE` — the development
 * keyset. With a file or Vault configured, nothing is ever generated.
 */
export async function createBackendFromConfig(
  config: Pick<ServiceConfig, 'backend' | 'keysetFile'>,
  env: NodeJS.ProcessEnv,
  logger: Logger,
): Promise<KeysetBackend> {
  if (config.backend === 'vault') return createVaultBackend(vaultOptionsFromEnv(env), { logger })
  return createFileBackend(config.keysetFile ?? (await ensureDevKeyset(logger)))
}
