import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { Alg } from '../../../src/lib/keyset/algorithms.js'
import { generateKeyset } from '../../../src/lib/keyset/generate.js'
import { serializeKeyset } from '../../../src/ops/rotation/update-keyset.js'
import { runChild, type ChildResult } from '../../support/run-child.js'
import { CLI_MAIN } from '../../support/service.js'

export type CliResult = ChildResult

export interface CliOptions {
  /** Added to a minimal environment (PATH, HOME); nothing else is inherited. */
  env?: Record<string, string>
  /** Written to stdin, which is then closed (closed at once when absent). */
  input?: string
  timeoutMs?: number
}

/** Runs the built `cbc-jwt` (dist/ops/cli/main.js) as a child process. */
export function cbcJwt(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return runChild(process.execPath, [CLI_MAIN, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...opts.env },
    ...(opts.input !== undefined ? { input: opts.input } : {}),
    timeoutMs: opts.timeoutMs ?? 60_000,
    what: `cbc-jwt ${args.join(' ')}`,
  })
}

/** A fresh temp directory, removed by the returned function. */
export function tempDir(prefix: string): { dir: string; file: (name: string) => string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `cbc-cli-${prefix}-`))
  return { dir, file: (name) => path.join(dir, name), cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) }
}

/** The environment that pins the CLI's clock. */
export const at = (iso: string, extra: Record<string, string> = {}) => ({ CBC_JWT_NOW: iso, ...extra })

export function readJson(file: string): any {
  return JSON.parse(fs.readFileSync(file, 'utf8'))
}

/** stderr is exactly one line (the contract's "one clear line"). */
export function oneLine(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l !== '')
  if (lines.length !== 1) throw new Error(`expected one line on stderr, got ${lines.length}:\n${stderr}`)
  return lines[0]!
}

/** Decodes a compact JWS's header and payload. */
export function decodeJwt(token: string): { header: any; claims: any } {
  const [h, p] = token.split('.')
  return { header: JSON.parse(Buffer.from(h!, 'base64url').toString()), claims: JSON.parse(Buffer.from(p!, 'base64url').toString()) }
}

/**
 * A keyset made in-process (the same generator `keyset init` uses), written with `mode`:
 * fixtures cost no process spawn; `keyset init` itself is tested in keyset.test.ts.
 */
export async function keysetFixture(file: string, opts: { at?: string; alg?: Alg; mode?: number } = {}): Promise<string> {
  const doc = await generateKeyset(opts.alg ?? 'ES256', new Date(opts.at ?? Date.now()))
  fs.writeFileSync(file, serializeKeyset(doc), { mode: opts.mode ?? 0o600 })
  fs.chmodSync(file, opts.mode ?? 0o600)
  return file
}
