import type { Logger } from 'pino'
import type { ServiceConfig } from '../config.js'
import { ensureDevKeyset } from './dev-keyset.js'
import type { KeysetBackend } from './backend.js'
import { createFileBackend } from './file-backend.js'
import { createVaultBackend, vaultOptionsFromEnv } from './vault/index.js'
import { createKubernetesBackend, kubernetesOptionsFromEnv } from './kubernetes/index.js'

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
  // The Secret through the API server, listed and watched (kubeconfig or in-cluster, as the CLI).
  if (config.backend === 'kubernetes') {
    const backend = createKubernetesBackend(kubernetesOptionsFromEnv(env), { env, logger })
    await backend.connect() // no kubeconfig and not in a pod: one line at start-up, exit 1
    return backend
  }
  return createFileBackend(config.keysetFile ?? (await ensureDevKeyset(logger)))
}
