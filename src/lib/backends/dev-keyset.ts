import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Logger } from 'pino'
import { generateKeyset } from '../keyset/generate.js'
import { writeFileAtomic } from './write-file-atomic.js'

/** The package folder: two levels above this module, in src/ and in dist/ alike. */
const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
/**
 * The project folder: this clone (`npm start`), or — when cbc-jwt is an installed package
 * (`npx cbc-jwt serve`) — the directory it is run from, never a folder inside node_modules.
 */
export const PROJECT_ROOT = PACKAGE_ROOT.split(path.sep).includes('node_modules') ? process.cwd() : PACKAGE_ROOT
export const DEV_KEYSET_FILE = path.join(PROJECT_ROOT, '.cbc-jwt', 'dev-keyset.json')

/**
 * The embedded development default: with no backend configured, an ES256 keyset is made
 * once under the project folder and reused. Never called when a backend is configured.
 */
export async function ensureDevKeyset(logger: Pick<Logger, 'warn'>, file = DEV_KEYSET_FILE): Promise<string> {
  if (fs.existsSync(file)) {
    logger.warn({ event: 'dev_keyset', file, generated: false }, 'no backend configured: using the development keyset (not for production)')
    return file
  }
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
  await writeFileAtomic(file, `${JSON.stringify(await generateKeyset('ES256'), null, 2)}\n`)
  logger.warn({ event: 'dev_keyset', file, generated: true }, 'no backend configured: generated a development keyset (not for production)')
  return file
}
