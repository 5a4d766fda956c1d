import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { createFileBackend } from '../src/lib/backends/file-backend.js'
import { DEFAULTS, type ServiceConfig } from '../src/lib/config.js'
import { createLogger } from '../src/server/logger.js'
import { createService } from '../src/server/service.js'
import type { Fixture } from './fixtures.js'
import { cpuMicros, median } from './measure.js'

const run = promisify(execFile)
const AUTOCANNON = fileURLToPath(new URL('../node_modules/autocannon/autocannon.js', import.meta.url))

export interface HttpOptions {
  seconds: number
  rounds: number
  connections: number
}

export interface RouteFigures {
  /** Requests per second (median of rounds). */
  rps: number
  /** Server CPU time per request, µs (median of rounds): robust to load elsewhere on the machine. */
  cpuMicrosPerRequest: number
}

export interface HttpResult {
  tool: string
  healthz: RouteFigures
  whoami: RouteFigures
  /** whoami req/s ÷ healthz req/s: median of the per-round ratios. */
  ratio: number
}

interface LoadResult {
  rps: number
  requests: number
  non2xx: number
  /** Filled in by the caller: server CPU µs during the run. */
  cpuMicros: number
}

/**
 * The service in this process (createService, file backend on a temp keyset, log level
 * `warn` so an accepted request writes nothing), loaded over loopback by a separate process
 * — wrk when installed, else autocannon's CLI — so the load generator never shares this event
 * loop. `/healthz` is the same server without authentication: the ratio is what verifying an
 * ES256 bearer token costs per request.
 */
export async function httpBench(f: Fixture, opts: HttpOptions): Promise<HttpResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-bench-'))
  const file = path.join(dir, 'keyset.json')
  fs.writeFileSync(file, JSON.stringify(f.document))
  const config: ServiceConfig = { ...DEFAULTS, port: 0, host: '127.0.0.1', keysetFile: file, logLevel: 'warn' }
  const service = createService({ config, backend: createFileBackend(file), logger: createLogger(config.logLevel) })
  try {
    const base = await service.start()
    const auth = { authorization: `Bearer ${f.token}` }
    const check = await fetch(`${base}/v1/whoami`, { headers: auth })
    if (check.status !== 200) throw new Error(`GET /v1/whoami answered ${check.status}: ${await check.text()}`)

    const load = (await hasWrk()) ? wrk : autocannon
    const routes = [
      { name: 'healthz' as const, url: `${base}/healthz`, headers: {} },
      { name: 'whoami' as const, url: `${base}/v1/whoami`, headers: auth },
    ]
    for (const r of routes) await load(r.url, r.headers, 1, opts.connections) // warm-up: JIT, sockets
    const samples = { healthz: [] as LoadResult[], whoami: [] as LoadResult[] }
    for (let round = 0; round < opts.rounds; round++) {
      for (const r of round % 2 ? [...routes].reverse() : routes) {
        const cpu0 = process.cpuUsage() // the load generator is another process: this is the server's
        const result = await load(r.url, r.headers, opts.seconds, opts.connections)
        // A benchmark of 401s is worthless.
        if (result.non2xx > 0) throw new Error(`${r.url}: ${result.non2xx} responses were not 2xx`)
        samples[r.name].push({ ...result, cpuMicros: cpuMicros(cpu0) })
      }
    }
    const figures = (list: LoadResult[]): RouteFigures => ({
      rps: median(list.map((x) => x.rps)),
      cpuMicrosPerRequest: median(list.map((x) => x.cpuMicros / x.requests)),
    })
    return {
      tool: load === wrk ? 'wrk' : 'autocannon',
      healthz: figures(samples.healthz),
      whoami: figures(samples.whoami),
      ratio: median(samples.whoami.map((w, i) => w.rps / samples.healthz[i]!.rps)),
    }
  } finally {
    await service.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

async function hasWrk(): Promise<boolean> {
  try {
    await run('wrk', ['--version'])
    return true
  } catch (err) {
    // wrk prints its usage and exits 1 on --version; only "not found" means absent.
    return (err as NodeJS.ErrnoException).code !== 'ENOENT'
  }
}

async function wrk(url: string, headers: Record<string, string>, seconds: number, connections: number): Promise<LoadResult> {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]), url]
  const { stdout } = await run('wrk', args)
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(stdout)
  if (!rps) throw new Error(`cannot read wrk output:\n${stdout}`)
  const requests = /(\d+) requests in/.exec(stdout)
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)
  const errors = /Socket errors:.*/.exec(stdout)
  if (errors) throw new Error(`wrk: ${errors[0]}`)
  return { rps: Number(rps[1]), requests: Number(requests?.[1] ?? NaN), non2xx: non2xx ? Number(non2xx[1]) : 0, cpuMicros: 0 }
}

async function autocannon(url: string, headers: Record<string, string>, seconds: number, connections: number): Promise<LoadResult> {
  const args = ['-j', '-c', String(connections), '-d', String(seconds), ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}=${v}`]), url]
  const { stdout } = await run(process.execPath, [AUTOCANNON, ...args], { maxBuffer: 16 * 1024 * 1024 })
  const out = JSON.parse(stdout) as { requests: { average: number; total: number }; non2xx: number; errors: number }
  if (out.errors > 0) throw new Error(`autocannon: ${out.errors} errors`)
  return { rps: out.requests.average, requests: out.requests.total, non2xx: out.non2xx, cpuMicros: 0 }
}
