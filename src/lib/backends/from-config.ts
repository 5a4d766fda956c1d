import type { Logger } from 'pino'
import type { ServiceConfig } from '../config.js'
import { ConfigError } from '../errors.js'
import type { KeysetBackend } from './backend.js'
import { chooseBackend, isKubernetesBackend } from './choose.js'
import { devKeysetFile, ensureDevKeyset } from './dev-keyset.js'
import { createFileBackend } from './file-backend.js'

/**
 * The service's backend (`chooseBackend`): Vault KV v2, the Kubernetes Secret through the API
 * (listed and watched), a keyset file (or Kubernetes secret volume), or — only when asked for
 * explicitly (`devKeyset`) — the development keyset under the current folder. Fails closed:
 * with nothing configured, with the development keyset under `NODE_ENV=production`, or with it
 * beside a configured keyset, a `ConfigError` names the variable to set; nothing is ever
 * generated unasked.
 */
export async function createBackendFromConfig(
  config: Pick<ServiceConfig, 'backend' | 'keysetFile' | 'devKeyset'>,
  env: NodeJS.ProcessEnv,
  logger: Logger,
): Promise<KeysetBackend> {
  const configured = config.backend !== 'file' ? `CBC_JWT_BACKEND=${config.backend}` : config.keysetFile !== undefined ? 'CBC_JWT_KEYSET_FILE' : undefined
  if (config.devKeyset === true) {
    // `Production`, ` production`: a hand-written or templated value still means production.
    if (env.NODE_ENV?.trim().toLowerCase() === 'production') {
      throw new ConfigError(
        'the development keyset (--dev, CBC_JWT_DEV_KEYSET=true) is refused under NODE_ENV=production: set CBC_JWT_KEYSET_FILE (or CBC_JWT_BACKEND=vault) to the real keyset',
      )
    }
    if (configured) {
      throw new ConfigError(
        `the development keyset (--dev, CBC_JWT_DEV_KEYSET=true) and ${configured} are both set: unset one (a configured keyset is used as it is)`,
      )
    }
    return createFileBackend(await ensureDevKeyset(logger, devKeysetFile()), { logger })
  }
  const backend = chooseBackend(config, {
    env,
    logger,
    whenNothingConfigured: () => {
      throw new ConfigError(
        'no keyset configured: set CBC_JWT_KEYSET_FILE to the keyset path (or CBC_JWT_BACKEND=vault or kubernetes); for a local development keyset, run cbc-jwt serve --dev or set CBC_JWT_DEV_KEYSET=true',
      )
    },
  })
  // The Secret through the API server: no kubeconfig and not in a pod is one line at start-up, exit 1.
  if (isKubernetesBackend(backend)) await backend.connect()
  return backend
}
