import fs from 'node:fs'
import path from 'node:path'
import type { Logger } from 'pino'
import { ConfigError } from '../errors.js'
import { generateKeyset } from '../keyset/generate.js'
import { writeFileAtomic } from './write-file-atomic.js'

/** Where the development keyset lives, relative to the folder the service is started from. */
export const DEV_KEYSET_PATH = path.join('.cbc-jwt', 'dev-keyset.json')

/** The development keyset of a folder: `<cwd>/.cbc-jwt/dev-keyset.json` (git-ignored, by the folder itself). */
export function devKeysetFile(cwd: string = process.cwd()): string {
  return path.join(path.resolve(cwd), DEV_KEYSET_PATH)
}

/**
 * The development keyset, made once and reused. Only ever called when it was asked for
 * explicitly (`cbc-jwt serve --dev`, `CBC_JWT_DEV_KEYSET=true`, which `npm start` on a fresh
 * clone passes); the caller has already refused it under `NODE_ENV=production`. Never inside
 * an installed package (a folder below `node_modules`): that copy would be shared, lost on
 * the next install, and invisible to its owner. Every failure is a `ConfigError` naming what
 * to set, for a one-line start-up error.
 */
export async function ensureDevKeyset(logger: Pick<Logger, 'warn'>, file: string = devKeysetFile()): Promise<string> {
  if (file.split(path.sep).includes('node_modules')) {
    throw new ConfigError(`refusing to create a development keyset inside node_modules (${file}): start from your project folder, or set CBC_JWT_KEYSET_FILE`)
  }
  if (fs.existsSync(file)) {
    // One an earlier version made has no .gitignore beside it. Best effort: the keyset is usable
    // in a folder this process cannot write.
    try {
      ignoreFolder(path.dirname(file))
    } catch {}
    logger.warn({ event: 'dev_keyset', file, generated: false }, 'using the development keyset (asked for by --dev / CBC_JWT_DEV_KEYSET; not for production)')
    return file
  }
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
    ignoreFolder(path.dirname(file))
    await writeFileAtomic(file, `${JSON.stringify(await generateKeyset('ES256'), null, 2)}\n`, { exclusive: true })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    // Another start made it meanwhile: use it. Only when it is there now — an EEXIST of mkdir
    // (a file named `.cbc-jwt` in the way) retried for ever, into a stack overflow.
    if (code === 'EEXIST' && fs.existsSync(file)) return ensureDevKeyset(logger, file)
    const folder = path.dirname(file)
    const why =
      code === 'EACCES' || code === 'EPERM'
        ? 'permission denied'
        : code === 'EROFS'
          ? 'read-only file system'
          : (code === 'EEXIST' || code === 'ENOTDIR') && !isFolder(folder)
            ? `${folder} is not a folder`
            : (code ?? 'failed')
    throw new ConfigError(
      `cannot create the development keyset ${file} (${why}): start from a writable folder, or set CBC_JWT_KEYSET_FILE to a keyset (npx cbc-jwt keyset init --keyset-file PATH makes one)`,
    )
  }
  logger.warn({ event: 'dev_keyset', file, generated: true }, 'generated a development keyset (not for production; asked for by --dev / CBC_JWT_DEV_KEYSET)')
  return file
}

function isFolder(dir: string): boolean {
  try {
    return fs.statSync(dir).isDirectory()
  } catch {
    return false
  }
}

/**
 * The folder ignores itself (a `.gitignore` of `*`), written before the key: the private key is
 * git-ignored in any repository it is generated in — an API's own, not only this project's, whose
 * .gitignore names `.cbc-jwt/` — so a `git add .` there never commits it.
 */
function ignoreFolder(dir: string): void {
  try {
    fs.writeFileSync(path.join(dir, '.gitignore'), '# the cbc-jwt development keyset: a private key, never committed\n*\n', { flag: 'wx' })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
}
