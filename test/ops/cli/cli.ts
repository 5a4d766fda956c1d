import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Readable, Writable } from 'node:stream'
import type { Alg } from '../../../src/lib/keyset/algorithms.js'
import { generateKeyset } from '../../../src/lib/keyset/generate.js'
import { clockFromEnv, println } from '../../../src/ops/cli/context.js'
import { runCli } from '../../../src/ops/cli/run.js'
import { serializeKeyset } from '../../../src/lib/keyset/serialize.js'
import type { KubeDouble } from '../../support/kube-double.js'
import { runChild, type ChildResult } from '../../support/run-child.js'
import { CLI_MAIN } from '../../support/service.js'

export type CliResult = ChildResult

export interface CliOptions {
  /** Added to a minimal environment (PATH, HOME); nothing else is inherited. */
  env?: Record<string, string>
  /** Written to stdin, which is then closed (closed at once when absent). */
  input?: string
  timeoutMs?: number
  /** In-process runs only: stdout reports itself a terminal (`isTTY`), as a shell's does. */
  stdoutIsTTY?: boolean
}

const cliEnv = (opts: CliOptions): Record<string, string> => ({ PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...opts.env })

/**
 * Runs `cbc-jwt ARGS` in this process, through the runner the binary uses (src/ops/cli/run.ts)
 * with what src/ops/cli/main.ts adds (the clock from CBC_JWT_NOW, exit 2 when it is bad): the
 * same exit code, stdout and stderr as the binary, without a process start per case. Tests of
 * the process itself (the built bin, a pipe closed early, memory limits) use `cbcJwtProcess`.
 */
export async function cbcJwt(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  await inProcessSlots.acquire()
  try {
    return await runInProcess(args, opts)
  } finally {
    inProcessSlots.release()
  }
}

/**
 * In-process runs share this process's event loop and libuv threadpool: a suite of concurrent
 * cases (RSA generation on the pool, several commands at once) held a file read past the
 * CLI's 5 s read deadline on a loaded machine, which separate processes did not. One at a
 * time: an in-process run takes milliseconds, the suite stays fast.
 */
const inProcessSlots = (() => {
  let free = 1
  const waiting: Array<() => void> = []
  return {
    acquire: (): Promise<void> => {
      if (free > 0) {
        free--
        return Promise.resolve()
      }
      return new Promise((resolve) => waiting.push(resolve))
    },
    release: (): void => {
      const next = waiting.shift()
      if (next) next()
      else free++
    },
  }
})()

async function runInProcess(args: string[], opts: CliOptions): Promise<CliResult> {
  const env = cliEnv(opts)
  let stdout = ''
  let stderr = ''
  // Writes reach these callbacks synchronously: nothing is still buffered when runCli resolves.
  const sink = (append: (text: string) => void) =>
    new Writable({
      write(chunk: Buffer | string, _encoding, done) {
        append(chunk.toString())
        done()
      },
    })
  const out = Object.assign(
    sink((text) => (stdout += text)),
    opts.stdoutIsTTY ? { isTTY: true } : {},
  )
  const err = sink((text) => (stderr += text))
  let now: () => number
  try {
    now = clockFromEnv(env)
  } catch (error) {
    println(err, `cbc-jwt: ${(error as Error).message}`)
    return { code: 2, stdout, stderr }
  }
  const stdin = Readable.from(opts.input === undefined ? [] : [Buffer.from(opts.input)])
  const timeoutMs = opts.timeoutMs ?? 60_000
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`cbc-jwt ${args.join(' ')} did not finish in ${timeoutMs / 1000} s; stdout: ${stdout}\nstderr: ${stderr}`)),
      timeoutMs,
    )
  })
  try {
    const code = await Promise.race([runCli(args, { env, stdin, stdout: out, stderr: err, now }), timeout])
    return { code, stdout, stderr }
  } finally {
    clearTimeout(timer)
  }
}

/** Runs the built `cbc-jwt` (dist/ops/cli/main.js) as a child process. */
export function cbcJwtProcess(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return runChild(process.execPath, [CLI_MAIN, ...args], {
    env: cliEnv(opts),
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

/**
 * The CLI's environment for the Kubernetes backend against `double` (namespace `cbc`), with a
 * keyset made there by `keyset init`.
 */
export async function kubernetesKeyset(double: KubeDouble, tmp: ReturnType<typeof tempDir>): Promise<Record<string, string>> {
  const env = { CBC_JWT_BACKEND: 'kubernetes', KUBECONFIG: double.writeKubeconfig(tmp.file('kubeconfig'), { namespace: 'cbc' }), HOME: tmp.dir }
  const init = await cbcJwt(['keyset', 'init'], { env })
  if (init.code !== 0) throw new Error(`keyset init on the Kubernetes double: ${init.stderr}`)
  return env
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
