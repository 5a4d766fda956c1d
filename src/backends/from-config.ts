import type { Logger } from 'pino'
import type { ServiceConfig } from '../config.js'
import { ensureDevKeyset } from '../server/dev-keyset.js'
import type { KeysetBackend } from './backend.js'
import { createFileBackend } from './file-backend.js'

/**
 * The backend the configuration names. With `CBC_JWT_BACKEND=file` and no
 * `CBC_JWT_KEYSET_FILE`, the development keyset; with a file set, nothing is ever generated.
 */
export async function createBackendFromConfig(config: ServiceConfig, _env: NodeJS.ProcessEnv, logger: Logger): Promise<KeysetBackend> {
  return createFileBackend(config.keysetFile ?? (await ensureDevKeyset(logger)))
}
