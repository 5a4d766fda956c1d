import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { composeCbcJwt, type CbcJwtParts } from '../../../src/lib/core/compose.js'
import type { CbcJwtOptions } from '../../../src/lib/core/options.js'

/** A keyset file in a fresh temp dir; `cleanup` removes it. */
export function tempKeyset(doc: unknown): { file: string; write(doc: unknown): void; cleanup(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-core-'))
  const file = path.join(dir, 'keyset.json')
  const write = (d: unknown) => fs.writeFileSync(file, JSON.stringify(d))
  write(doc)
  return { file, write, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) }
}

/** A log sink that keeps every line the library writes. */
export function captureLogger() {
  const lines: Array<Record<string, unknown>> = []
  const at = (level: string) => (obj: object, msg?: string) => void lines.push({ level, ...obj, msg })
  return { lines, logger: { info: at('info'), warn: at('warn'), error: at('error') } }
}

/** The library over a keyset file, reading no environment, logging into `lines`. */
export function coreOn(file: string, options: CbcJwtOptions = {}): CbcJwtParts & { lines: Array<Record<string, unknown>> } {
  const { lines, logger } = captureLogger()
  return { ...composeCbcJwt({ keysetFile: file, env: {}, logger, refreshIntervalSeconds: 3600, ...options }), lines }
}
