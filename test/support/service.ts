import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from './free-port.js'
import { parseExposition, type Exposition } from './metrics-text.js'
import { waitFor } from './wait.js'
import { stopChild } from './stop-child.js'

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
/** The built server entry point; `npm test` builds before it runs the tests. */
export const SERVER_MAIN = path.join(PROJECT_ROOT, 'dist/server/main.js')
/** The built CLI. */
export const CLI_MAIN = path.join(PROJECT_ROOT, 'dist/ops/cli/main.js')

export interface RunningService {
  url: string
  port: number
  process: ChildProcess
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string
  /** Parsed JSON log lines from stdout so far. */
  logs(): Array<Record<string, unknown>>
  get(route: string, headers?: Record<string, string>): Promise<{ status: number; headers: Headers; body: string; json: any }>
  metrics(): Promise<Exposition>
  /** SIGTERM, then SIGKILL after 3 s; resolves when the process has exited. */
  stop(): Promise<void>
}

export interface StartOptions {
  env?: Record<string, string>
  /** Wait for /readyz 200 (default) or only /healthz 200. */
  waitFor?: 'ready' | 'alive'
  cwd?: string
  timeoutMs?: number
}

/** Starts the real service process on a free loopback port. */
export async function startService(opts: StartOptions = {}): Promise<RunningService> {
  // A given PORT (a restart on the same address) is kept; else a free one.
  const port = opts.env?.PORT ? Number(opts.env.PORT) : await freePort()
  const child = spawn(process.execPath, [SERVER_MAIN], {
    cwd: opts.cwd ?? PROJECT_ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      PORT: String(port),
      HOST: '127.0.0.1',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let stdout = ''
  child.stdout!.on('data', (d: Buffer) => {
    out += d
    stdout += d
  })
  child.stderr!.on('data', (d: Buffer) => {
    out += d
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const url = `http://127.0.0.1:${port}`
  const get: RunningService['get'] = async (route, headers = {}) => {
    const res = await fetch(url + route, { headers, signal: AbortSignal.timeout(5000) })
    const body = await res.text()
    let json: unknown
    try {
      json = JSON.parse(body)
    } catch {
      json = undefined
    }
    return { status: res.status, headers: res.headers, body, json }
  }
  const service: RunningService = {
    url,
    port,
    process: child,
    output: () => out,
    logs: () =>
      stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    get,
    metrics: async () => parseExposition((await get('/metrics')).body),
    stop: async () => {
      await stopChild(child, exited)
    },
  }
  const route = opts.waitFor === 'alive' ? '/healthz' : '/readyz'
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`service exited with ${child.exitCode}: ${out.slice(-600)}`)
        return (await get(route)).status === 200
      },
      { timeoutMs: opts.timeoutMs ?? 60_000, intervalMs: 100, what: `${route} 200` },
    )
  } catch (err) {
    await service.stop()
    throw new Error(`${(err as Error).message}\n--- service output ---\n${out.slice(-2000)}`)
  }
  return service
}
