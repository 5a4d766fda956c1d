/**
 * The gateway bench (issue 23): an API protected at the gateway, on this machine, the same
 * upstream and the same ES256 tokens for every contender, loaded by wrk (one thread, its own
 * process), contenders alternating within each round so load from elsewhere falls on all
 * alike. Ratios are taken per round; the tables give their median and min–max.
 *
 * Contenders (every process single-threaded where it can be: nginx 1 worker, HAProxy 1 thread):
 * - `nginx`: nginx proxying to the API with no authentication (the ceiling);
 * - `nginx+cbc-jwt`: the nginx block of docs/forward-auth.md as documented, cbc-jwt's service
 *   (the production defaults: token cache on) answering its auth subrequest;
 * - `haproxy`: HAProxy 2.6's native `jwt_verify` (alg, signature, iss, aud, exp; no cache);
 * - `cbc /v1/auth`, `cbc /v1/auth (cache off)`, `cbc /v1/whoami`: cbc-jwt asked directly (what
 *   forward auth costs against the library's own route, and the cache on misses).
 * Each target that reaches cbc-jwt has a cbc-jwt process of its own, so that one target's
 * tokens never warm another's cache.
 *
 * Modes: warm = 1,000 distinct tokens repeating (clients holding their token); cold = distinct
 * tokens in turn, enough that no server sees one twice in the run (a cache that keeps what it
 * has under a flood of one-off tokens would otherwise answer the tokens it kept when they come
 * round again): every one is a miss, and the run checks it from cbc-jwt's own cache counters.
 *
 *   node --import tsx bench/gateway/run.ts      (needs nginx with headers-more, haproxy, wrk)
 *
 * Environment: BENCH_GATEWAY_SECONDS (per target per round, default 3), BENCH_GATEWAY_ROUNDS
 * (default 5), BENCH_GATEWAY_MODES (default warm,cold), BENCH_GATEWAY_CONNECTIONS (wrk's, default
 * 32), BENCH_GATEWAY_SAMPLES=1 (print every sample as it is taken).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { freePort } from '../../test/support/free-port.js'
import { parseExposition, valueOf as metricValue } from '../../test/support/metrics-text.js'
import { makeKey, makeKeyset } from '../../test/support/keys.js'
import { startNginx, type RunningNginx } from '../../test/support/nginx.js'
import { stopChild } from '../../test/support/stop-child.js'
import { waitFor } from '../../test/support/wait.js'
import { p1363ToDer } from '../../src/lib/verifier/ecdsa-der.js'
import { AUDIENCE, ISSUER, writeTokenFile } from '../fixtures.js'
import { fmtOps, median, rotatingRounds, table } from '../measure.js'
import { apiBlock, documentedNginxBlock, haproxyConfig, nginxAloneBlock } from './configs.js'
import { cpuTicks, TICKS } from '../proc.js'

const run = promisify(execFile)
const HERE = path.dirname(fileURLToPath(import.meta.url))
const LUA = path.join(HERE, 'tokens.lua')
const PEER_SERVER = path.join(HERE, '../peers/server.ts')

type Mode = 'warm' | 'cold'
type Proc = 'api' | 'nginx' | 'haproxy' | 'cbc' | 'cbc-auth' | 'cbc-off' | 'cbc-whoami'
interface Target {
  name: string
  url: string
  path: string
  /** The processes whose CPU the request costs (the API and wrk's are left out of the sum). */
  procs: Proc[]
  /** cbc-jwt's metrics, when the target asks a cbc-jwt with its cache on: the sample counts its hits. */
  metrics?: string
}
interface Sample {
  rps: number
  /** Share of the cache's lookups that were hits during the sample (cache-on cbc-jwt targets only). */
  hitRatio?: number
  /** µs of CPU per request, per process (all its threads, /proc). */
  cpu: Partial<Record<Proc, number>>
}

export interface GatewayOptions {
  seconds: number
  rounds: number
  connections: number
  modes: Mode[]
}

export function gatewayOptionsFromEnv(): GatewayOptions {
  return {
    seconds: Number(process.env.BENCH_GATEWAY_SECONDS ?? 3),
    rounds: Number(process.env.BENCH_GATEWAY_ROUNDS ?? 5),
    connections: Number(process.env.BENCH_GATEWAY_CONNECTIONS ?? 32),
    modes: (process.env.BENCH_GATEWAY_MODES ?? 'warm,cold').split(',') as Mode[],
  }
}

interface CbcProcess {
  child: ChildProcess
  port: number
}

async function startCbc(keysetFile: string, cache: boolean): Promise<CbcProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', PEER_SERVER, 'cbc-jwt', keysetFile, 'ES256', cache ? 'on' : 'off'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, NODE_ENV: 'production' },
  })
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    const onData = (d: Buffer) => {
      out += d
      const m = /LISTENING (\S+)/.exec(out)
      if (m) {
        child.stdout!.off('data', onData)
        child.stdout!.resume() // drained unread: the 1 % sampled accept lines
        resolve(m[1]!)
      }
    }
    child.stdout!.on('data', onData)
    child.once('exit', (code) => reject(new Error(`cbc-jwt exited with ${code}`)))
  })
  return { child, port: Number(new URL(url).port) }
}

async function startHaproxy(dir: string, config: string, port: number): Promise<ChildProcess> {
  const file = path.join(dir, 'haproxy.cfg')
  fs.writeFileSync(file, config)
  const child = spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'inherit', 'inherit'] })
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`haproxy exited with ${child.exitCode}`)
      await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) })
      return true
    },
    { timeoutMs: 15_000, intervalMs: 100, what: 'haproxy to listen' },
  )
  return child
}

/**
 * Where the next run starts in the token file, per server that verifies: each run goes on where
 * the last one against the same server stopped, so that with 20,000 tokens a cold token is one
 * that server last saw 20,000 requests ago, long evicted from its 10,000 entries — whichever
 * target (the gateway or a direct route) sent it.
 */
const cursors = new Map<string, number>()

/**
 * One sample: wrk against the target for `seconds`. `slice` (cold tokens) hands wrk only the
 * tokens the sample can use, from where the server's last sample stopped: a whole cold file
 * in wrk's Lua heap made its collector a cost of every request.
 */
async function wrk(target: Target, seconds: number, connections: number, tokens: string, pids: Record<Proc, number>, slice: boolean): Promise<Sample> {
  const before = Object.fromEntries(target.procs.map((p) => [p, cpuTicks(pids[p])]))
  const server = target.procs.find((p) => p !== 'api' && p !== 'nginx') ?? target.name
  const cursor = `${server} ${tokens}`
  const start = cursors.get(cursor) ?? 0
  const cacheBefore = target.metrics ? await cacheCounts(target.metrics) : undefined
  const range = slice ? [String(start), String(seconds * COLD_RATE_CEILING)] : [String(start)]
  const { stdout } = await run('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '-s', LUA, target.url, '--', tokens, target.path, ...range])
  const requests = Number(/(\d+) requests in/.exec(stdout)?.[1] ?? NaN)
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? NaN)
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)
  // A benchmark of 401s is worthless.
  if (non2xx) throw new Error(`${target.name}: ${non2xx[1]} responses were not 2xx`)
  if (!(rps > 0)) throw new Error(`cannot read wrk output:\n${stdout}`)
  // wrk counts the answers, not what it sent: past the last answer up to one request per
  // connection was in flight. The next sample starts after those too, or it repeats them.
  cursors.set(cursor, start + requests + connections)
  const cpu: Sample['cpu'] = {}
  for (const p of target.procs) cpu[p] = (((cpuTicks(pids[p]) - before[p]!) / TICKS) * 1e6) / requests
  if (!cacheBefore) return { rps, cpu }
  const cacheAfter = await cacheCounts(target.metrics!)
  const hits = cacheAfter.hits - cacheBefore.hits
  return { rps, cpu, hitRatio: hits / (hits + cacheAfter.misses - cacheBefore.misses) }
}

/** The token cache's hit and miss counters, read from cbc-jwt's own metrics. */
async function cacheCounts(metricsUrl: string): Promise<{ hits: number; misses: number }> {
  const expo = parseExposition(await (await fetch(metricsUrl)).text())
  return { hits: metricValue(expo, 'cbc_jwt_token_cache_hits_total') ?? NaN, misses: metricValue(expo, 'cbc_jwt_token_cache_misses_total') ?? NaN }
}

export interface GatewayResult {
  mode: Mode
  targets: Target[]
  samples: Map<string, Sample[]>
  /** µs of CPU per bare `crypto.verify` of one of the run's tokens, once per round (this process). */
  verifyFloor: number[]
}

/** The floor of a cold request: CPU per `crypto.verify` (P-256, SHA-256), measured here, on the same machine at the same time. */
function verifyFloorMicros(publicKey: crypto.KeyObject, token: string): number {
  const dot = token.lastIndexOf('.')
  const input = Buffer.from(token.slice(0, dot))
  // As DER, the form cbc-jwt hands OpenSSL (src/lib/verifier/ecdsa-der.ts): the cheapest call.
  const signature = p1363ToDer(Buffer.from(token.slice(dot + 1), 'base64url'))
  const n = 2000
  const before = process.cpuUsage()
  for (let i = 0; i < n; i++) if (!crypto.verify('sha256', input, publicKey, signature)) throw new Error('the floor must verify')
  const used = process.cpuUsage(before)
  return (used.user + used.system) / n
}

/**
 * Cold tokens for a run in which no server sees one twice: each server takes one target's
 * warm-up second and `rounds` samples, and none of them answers more than COLD_RATE_CEILING
 * requests a second.
 */
function coldTokenCount(opts: GatewayOptions): number {
  return Math.max(20_000, (opts.rounds * opts.seconds + 1) * COLD_RATE_CEILING)
}

/** Above any target's cold req/s on a 2-core machine (the fastest, cbc-jwt's `/v1/auth` asked directly, answers 8,000–14,000). */
const COLD_RATE_CEILING = 16_000

/** Every process started once; then, per mode, `rounds` rounds in a rotating order. */
export async function gatewayBench(opts: GatewayOptions = gatewayOptionsFromEnv()): Promise<GatewayResult[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-gateway-bench-'))
  const key = makeKey('ES256', 'bench-gateway')
  const keysetFile = path.join(dir, 'keyset.json')
  fs.writeFileSync(keysetFile, JSON.stringify(makeKeyset([key])))
  const publicKeyPem = path.join(dir, 'public.pem')
  const publicKey = crypto.createPublicKey({ key: key.jwk as crypto.JsonWebKey, format: 'jwk' })
  fs.writeFileSync(publicKeyPem, publicKey.export({ type: 'spki', format: 'pem' }))
  const tokens: Record<Mode, string> = { warm: writeTokenFile(dir, 'warm.txt', key, 1000), cold: writeTokenFile(dir, 'cold.txt', key, coldTokenCount(opts)) }
  const floorToken = fs.readFileSync(tokens.warm, 'utf8').split('\n')[0]!
  const nginxes: RunningNginx[] = []
  const children: ChildProcess[] = []
  try {
    const [apiPort, plainPort, gatewayPort, haproxyPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()])
    const api = await startNginx(path.join(dir, 'api'), apiBlock(apiPort!), apiPort!, { workerConnections: 1024 })
    nginxes.push(api)
    const started = await Promise.allSettled([true, true, true, false].map((cache) => startCbc(keysetFile, cache)))
    // Every one that did start is stopped in `finally`, whichever failed.
    for (const s of started) if (s.status === 'fulfilled') children.push(s.value.child)
    const [cbc, cbcAuth, cbcWhoami, cbcOff] = started.map((s) => {
      if (s.status === 'rejected') throw s.reason
      return s.value
    }) as [CbcProcess, CbcProcess, CbcProcess, CbcProcess]
    const front = await startNginx(
      path.join(dir, 'front'),
      nginxAloneBlock({ nginx: plainPort!, api: apiPort! }) + documentedNginxBlock({ nginx: gatewayPort!, cbc: cbc.port, api: apiPort! }),
      plainPort!,
      { workerConnections: 1024 },
    )
    nginxes.push(front)
    const haproxy = await startHaproxy(
      dir,
      haproxyConfig({ port: haproxyPort!, api: apiPort!, publicKeyPem, issuer: ISSUER, audience: AUDIENCE }),
      haproxyPort!,
    )
    children.push(haproxy)
    const pids: Record<Proc, number> = {
      api: api.process.pid!,
      nginx: front.process.pid!,
      haproxy: haproxy.pid!,
      cbc: cbc.child.pid!,
      'cbc-auth': cbcAuth.child.pid!,
      'cbc-off': cbcOff.child.pid!,
      'cbc-whoami': cbcWhoami.child.pid!,
    }
    const at = (port: number) => `http://127.0.0.1:${port}`
    // Order: the three gateways side by side, then cbc-jwt's own routes side by side.
    const targets: Target[] = [
      { name: 'nginx', url: at(plainPort!), path: '/orders', procs: ['nginx', 'api'] },
      { name: 'nginx+cbc-jwt', url: at(gatewayPort!), path: '/orders', procs: ['nginx', 'cbc', 'api'], metrics: `${at(cbc.port)}/metrics` },
      { name: 'haproxy', url: at(haproxyPort!), path: '/orders', procs: ['haproxy', 'api'] },
      { name: 'cbc /v1/auth', url: at(cbcAuth.port), path: '/v1/auth', procs: ['cbc-auth'], metrics: `${at(cbcAuth.port)}/metrics` },
      { name: 'cbc /v1/auth (cache off)', url: at(cbcOff.port), path: '/v1/auth', procs: ['cbc-off'] },
      { name: 'cbc /v1/whoami', url: at(cbcWhoami.port), path: '/v1/whoami', procs: ['cbc-whoami'], metrics: `${at(cbcWhoami.port)}/metrics` },
    ]
    const results: GatewayResult[] = []
    for (const mode of opts.modes) {
      for (const t of targets) await wrk(t, 1, opts.connections, tokens[mode], pids, mode === 'cold') // warm-up: JIT, pools, caches
      const verifyFloor: number[] = []
      const byTarget = await rotatingRounds(
        targets,
        { rounds: opts.rounds, shift: 2, beforeRound: () => verifyFloor.push(verifyFloorMicros(publicKey, floorToken)) },
        async (t, round) => {
          const s = await wrk(t, opts.seconds, opts.connections, tokens[mode], pids, mode === 'cold')
          if (process.env.BENCH_GATEWAY_SAMPLES) {
            const cpu = Object.entries(s.cpu)
              .map(([p, us]) => `${p} ${us.toFixed(1)}`)
              .join(', ')
            const hits = s.hitRatio === undefined ? '' : `; cache hits ${(s.hitRatio * 100).toFixed(1)} %`
            console.log(`${mode} round ${round} ${t.name}: ${Math.round(s.rps)} req/s; µs CPU/request: ${cpu}${hits}`)
          }
          return s
        },
      )
      const samples = new Map(targets.map((t) => [t.name, byTarget.get(t)!]))
      results.push({ mode, targets, samples, verifyFloor })
    }
    printGateway(results, opts)
    return results
  } finally {
    for (const child of children)
      await stopChild(child, new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', () => resolve()))))
    for (const n of nginxes) await n.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** Per-round ratio of two targets' req/s: median and min–max. */
export function gatewayRatio(r: GatewayResult, a: string, b: string) {
  const xs = r.samples.get(a)!.map((s, i) => s.rps / r.samples.get(b)![i]!.rps)
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) }
}

const fmtR = (x: ReturnType<typeof gatewayRatio>) => `${x.median.toFixed(2)}× (${x.min.toFixed(2)}–${x.max.toFixed(2)})`

function printGateway(results: GatewayResult[], opts: GatewayOptions) {
  console.log(
    `\nGateway bench, ES256 (cbc-jwt on Node ${process.versions.node}, OpenSSL ${process.versions.openssl}; wrk -t1 -c${opts.connections}, ${opts.rounds} rotating rounds × ${opts.seconds} s per target; req/s median of rounds; ratios: median (min–max) of per-round ratios; load average at the end ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}):`,
  )
  const rows = results.map((r) => [
    r.mode,
    ...r.targets.map((t) => fmtOps(median(r.samples.get(t.name)!.map((s) => s.rps)))),
    fmtR(gatewayRatio(r, 'nginx+cbc-jwt', 'haproxy')),
    fmtR(gatewayRatio(r, 'nginx+cbc-jwt', 'nginx')),
    fmtR(gatewayRatio(r, 'cbc /v1/auth', 'cbc /v1/whoami')),
    fmtR(gatewayRatio(r, 'cbc /v1/auth', 'cbc /v1/auth (cache off)')),
  ])
  const names = results[0]?.targets.map((t) => `${t.name} req/s`) ?? []
  console.log(table(['tokens', ...names, 'nginx+cbc / haproxy', 'nginx+cbc / nginx', 'auth / whoami', 'auth cache on / off'], rows))
  console.log('\nCPU per request (µs, median of rounds; every thread of the process, /proc):')
  const cpuRows = results.flatMap((r) =>
    r.targets.map((t) => {
      const per = t.procs.map((p) => `${p} ${median(r.samples.get(t.name)!.map((s) => s.cpu[p]!)).toFixed(0)}`)
      const sum = median(r.samples.get(t.name)!.map((s) => t.procs.filter((p) => p !== 'api').reduce((acc, p) => acc + s.cpu[p]!, 0)))
      const ratios = r.samples.get(t.name)!.flatMap((s) => (s.hitRatio === undefined ? [] : [s.hitRatio * 100]))
      const hits = ratios.length === 0 ? '' : `${Math.min(...ratios).toFixed(1)}–${Math.max(...ratios).toFixed(1)} %`
      return [r.mode, t.name, per.join(', '), `${sum.toFixed(0)}`, hits]
    }),
  )
  console.log(table(['tokens', 'target', 'per process', 'gateway total (API left out)', 'cache hits (min–max of rounds)'], cpuRows))
  const repeated = results
    .filter((r) => r.mode === 'cold')
    .flatMap((r) => r.targets.filter((t) => r.samples.get(t.name)!.some((s) => (s.hitRatio ?? 0) > 0.01)))
  if (repeated.length > 0)
    console.log(`
WARNING: cold tokens were answered from the cache (> 1 % hits) for ${repeated.map((t) => t.name).join(', ')}: those cold figures are not cold.`)
  const warm = results.find((r) => r.mode === 'warm')
  const cold = results.find((r) => r.mode === 'cold')
  if (warm && cold) {
    const cpu = (r: GatewayResult, target: string) => median(r.samples.get(target)!.map((s) => Object.values(s.cpu)[0]!))
    const floor = median([...warm.verifyFloor, ...cold.verifyFloor])
    const cached = cpu(warm, 'cbc /v1/auth')
    const coldAuth = cpu(cold, 'cbc /v1/auth')
    console.log(
      `\ncbc-jwt /v1/auth CPU per request: cached ${cached.toFixed(1)} µs, cold ${coldAuth.toFixed(1)} µs; crypto.verify floor ${floor.toFixed(1)} µs (min–max ${Math.min(...warm.verifyFloor, ...cold.verifyFloor).toFixed(1)}–${Math.max(...warm.verifyFloor, ...cold.verifyFloor).toFixed(1)}); cold / (cached + floor) = ${(coldAuth / (cached + floor)).toFixed(2)}`,
    )
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  gatewayBench().catch((err: unknown) => {
    console.error(err)
    process.exitCode = 1
  })
}
