import { spawn } from 'node:child_process'
import { CLI_MAIN } from './service.js'

/**
 * mulberry32: a tiny seeded PRNG (32-bit state), so a run that found a bad kill point can be
 * replayed exactly from its printed seed.
 */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * The seed for kill points: `CBC_JWT_CRASH_SEED` when set (replay), a fixed one when `CI` is
 * set (a CI failure is reproducible as is), else a fresh random one (local runs explore).
 */
export function crashSeed(env: NodeJS.ProcessEnv = process.env): number {
  if (env.CBC_JWT_CRASH_SEED) return Number(env.CBC_JWT_CRASH_SEED) >>> 0
  if (env.CI) return 0x8b8b_2026
  return Math.floor(Math.random() * 2 ** 32) >>> 0
}

export interface KillableRun {
  code: number | null
  /** True when the process died of the SIGKILL this helper sent (not when it had finished first). */
  killed: boolean
  stdout: string
  stderr: string
  /** Wall time from spawn to exit. */
  ms: number
}

export interface Trigger {
  /** SIGKILLs the process (a no-op once it has exited). */
  kill(): void
  /** Resolves when the process has exited. */
  exited: Promise<void>
}

export interface KillableOptions {
  env: Record<string, string>
  cwd?: string
  /**
   * Called right after spawn: arms whatever decides the kill point (a timer, a watcher, a
   * proxy hook) and returns the function that disarms it once the process has exited.
   */
  arm?: (trigger: Trigger) => () => void
  /** A process still running after this is killed and the run rejects. @default 60000 */
  timeoutMs?: number
}

/** Runs the built CLI (dist/ops/cli/main.js) with only the given environment; see `KillableOptions.arm`. */
export function runKillable(args: string[], opts: KillableOptions): Promise<KillableRun> {
  const started = Date.now()
  const child = spawn(process.execPath, [CLI_MAIN, ...args], { env: opts.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  let sent = false
  child.stdout.on('data', (d: Buffer) => (stdout += d))
  child.stderr.on('data', (d: Buffer) => (stderr += d))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const kill = () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    sent = true
    child.kill('SIGKILL')
  }
  const disarm = opts.arm?.({ kill, exited }) ?? (() => {})
  return new Promise((resolve, reject) => {
    const timeoutMs = opts.timeoutMs ?? 60_000
    const deadline = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`cbc-jwt ${args.join(' ')} still running after ${timeoutMs} ms; stderr: ${stderr}`))
    }, timeoutMs)
    child.once('error', reject)
    child.once('close', (code, signal) => {
      clearTimeout(deadline)
      disarm()
      resolve({ code, killed: sent && signal === 'SIGKILL', stdout, stderr, ms: Date.now() - started })
    })
  })
}
