/**
 * The HTTP benchmark with peers: each contender (bench/peers/server.ts) in its own process,
 * loaded by wrk (one thread, a separate process) over loopback with the same token bytes, in
 * the same run, alternating contenders within each round so load elsewhere on the machine falls
 * on all alike. Ratios are per round; the table gives their median and min–max.
 *
 * - cold: caches off, 5000 distinct tokens per algorithm (every request is a full verification);
 * - warm: caches on (the product's default size for every peer that has one), 1000 clients each
 *   reusing its token — the common case of a client holding its token until it expires.
 *
 * `node --import tsx bench/peers/run.ts` (also part of `npm run bench`). Environment:
 * BENCH_PEER_SECONDS (per contender per round, default 3), BENCH_PEER_ROUNDS (default 3),
 * BENCH_PEER_ALGS (default HS256,ES256,RS256,EdDSA), BENCH_PEER_MODES (default cold,warm),
 * BENCH_PEER_SAMPLES=1 (print every sample as it is taken).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { makeKey, makeKeyset, type TestAlg } from '../../test/support/keys.js'
import { writeTokenFile } from '../fixtures.js'
import { cpuTicks, TICKS } from '../proc.js'
import { fmtOps, fmtRatio, median, rotatingRounds, table } from '../measure.js'
import { PEER_KINDS, type PeerKind } from './server.js'

const run = promisify(execFile)
const HERE = path.dirname(fileURLToPath(import.meta.url))
const SERVER = path.join(HERE, 'server.ts')
const LUA = path.join(HERE, 'tokens.lua')

export interface PeerOptions {
  seconds: number
  rounds: number
  connections: number
  algs: TestAlg[]
  modes: Array<'cold' | 'warm'>
}

interface Sample {
  rps: number
  cpuMicrosPerRequest: number
}

type Target = `${PeerKind}:whoami` | 'bare-fastify:healthz' | 'cbc-jwt:healthz'

export interface PeerResult {
  alg: TestAlg
  mode: 'cold' | 'warm'
  samples: Map<Target, Sample[]>
}

async function startServer(kind: PeerKind, keysetFile: string, alg: TestAlg, cache: boolean): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER, kind, keysetFile, alg, cache ? 'on' : 'off'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, NODE_ENV: 'production' },
  })
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`${kind} did not start`)), 60_000)
    const onData = (d: Buffer) => {
      out += d
      const m = /LISTENING (\S+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        // From here the server's output is drained unread: keeping and rescanning it (the
        // product's sampled `auth_accepted` lines) cost this process CPU that grew with every
        // line, taken from the same two cores while the product was measured.
        child.stdout!.off('data', onData)
        resolve(m[1]!)
      }
    }
    child.stdout!.on('data', onData)
    child.on('exit', (code) => reject(new Error(`${kind} exited with ${code}`)))
  })
  child.stdout!.resume()
  return { child, url }
}

async function wrk(url: string, seconds: number, connections: number, tokensFile: string | undefined, pid: number): Promise<Sample> {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`]
  if (tokensFile) args.push('-s', LUA, url, '--', tokensFile)
  else args.push(`${url}/healthz`)
  const cpu0 = cpuTicks(pid)
  const { stdout } = await run('wrk', args)
  const cpu = ((cpuTicks(pid) - cpu0) / TICKS) * 1e6
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? NaN)
  const requests = Number(/(\d+) requests in/.exec(stdout)?.[1] ?? NaN)
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)
  // A benchmark of 401s is worthless.
  if (non2xx) throw new Error(`${url}: ${non2xx[1]} responses were not 2xx`)
  if (!(rps > 0)) throw new Error(`cannot read wrk output:\n${stdout}`)
  return { rps, cpuMicrosPerRequest: cpu / requests }
}

/** One algorithm, one mode: every contender started, then `rounds` alternating rounds. */
export async function peerRun(alg: TestAlg, mode: 'cold' | 'warm', opts: PeerOptions): Promise<PeerResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-peers-'))
  const key = makeKey(alg, `bench-${alg.toLowerCase()}`)
  const keysetFile = path.join(dir, 'keyset.json')
  fs.writeFileSync(keysetFile, JSON.stringify(makeKeyset([key])))
  const tokens = writeTokenFile(dir, 'tokens.txt', key, mode === 'cold' ? 5000 : 1000)
  const servers = new Map<PeerKind, { child: ChildProcess; url: string }>()
  try {
    for (const kind of PEER_KINDS) servers.set(kind, await startServer(kind, keysetFile, alg, mode === 'warm'))
    // In this cyclic order cbc-jwt's whoami comes right before its own healthz, and that right
    // before bare fastify's: the two ratios of a server against a floor are taken from adjacent
    // samples (except where a round's rotation wraps between them), so a burst of load from
    // elsewhere on the machine seldom falls on one side of them only.
    const targets: Array<[Target, PeerKind, string | undefined]> = [
      ...PEER_KINDS.map((k): [Target, PeerKind, string | undefined] => [`${k}:whoami`, k, tokens]),
      ['cbc-jwt:healthz', 'cbc-jwt', undefined],
      ['bare-fastify:healthz', 'bare-fastify', undefined],
    ]
    for (const [, kind, file] of targets) {
      const s = servers.get(kind)!
      await wrk(s.url, 1, opts.connections, file, s.child.pid!) // warm-up: JIT, sockets, caches filled
    }
    const byTarget = await rotatingRounds(targets, { rounds: opts.rounds, shift: 3 }, async ([target, kind, file], round) => {
      const s = servers.get(kind)!
      const sample = await wrk(s.url, opts.seconds, opts.connections, file, s.child.pid!)
      if (process.env.BENCH_PEER_SAMPLES)
        console.log(`${alg} ${mode} round ${round} ${target}: ${Math.round(sample.rps)} req/s, ${sample.cpuMicrosPerRequest.toFixed(1)} µs CPU/request`)
      return sample
    })
    const samples = new Map<Target, Sample[]>(targets.map((t) => [t[0], byTarget.get(t)!]))
    return { alg, mode, samples }
  } finally {
    for (const { child } of servers.values()) child.kill('SIGTERM')
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** Per-round ratios of two targets: median and min–max. */
export function ratio(r: PeerResult, a: Target, b: Target) {
  const xs = r.samples.get(a)!.map((s, i) => s.rps / r.samples.get(b)![i]!.rps)
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) }
}

const fmtR = (x: ReturnType<typeof ratio>) => `${fmtRatio(x.median)} (${x.min.toFixed(2)}–${x.max.toFixed(2)})`

export function printPeers(results: PeerResult[], opts: PeerOptions) {
  console.log(
    `\nHTTP with peers (wrk -t1 -c${opts.connections}, ${opts.rounds} alternating rounds × ${opts.seconds} s per target; req/s median of rounds; ratios: median (min–max) of per-round ratios):`,
  )
  const rows = results.map((r) => {
    const rps = (t: Target) => fmtOps(median(r.samples.get(t)!.map((s) => s.rps)))
    return [
      `${r.alg} ${r.mode}`,
      ...PEER_KINDS.map((k) => rps(`${k}:whoami`)),
      fmtR(ratio(r, 'cbc-jwt:whoami', 'fastify-jwt:whoami')),
      fmtR(ratio(r, 'cbc-jwt:whoami', 'jose-hook:whoami')),
      fmtR(ratio(r, 'cbc-jwt:whoami', 'fast-jwt-hook:whoami')),
      fmtR(ratio(r, 'cbc-jwt:whoami', 'cbc-jwt:healthz')),
      fmtR(ratio(r, 'cbc-jwt:healthz', 'bare-fastify:healthz')),
    ]
  })
  console.log(
    table(['whoami', ...PEER_KINDS.map((k) => `${k} req/s`), 'cbc/@fastify-jwt', 'cbc/jose', 'cbc/fast-jwt', 'cbc whoami/healthz', 'cbc healthz/bare'], rows),
  )
  const cpuRows = results.map((r) => [
    `${r.alg} ${r.mode}`,
    ...PEER_KINDS.map((k) => `${median(r.samples.get(`${k}:whoami`)!.map((s) => s.cpuMicrosPerRequest)).toFixed(0)} µs`),
    `${median(r.samples.get('cbc-jwt:healthz')!.map((s) => s.cpuMicrosPerRequest)).toFixed(0)} µs`,
    `${median(r.samples.get('bare-fastify:healthz')!.map((s) => s.cpuMicrosPerRequest)).toFixed(0)} µs`,
  ])
  console.log('\nserver CPU per request (all threads of the server process, /proc):')
  console.log(table(['whoami', ...PEER_KINDS, 'cbc-jwt healthz', 'bare healthz'], cpuRows))
}

export function peerOptionsFromEnv(): PeerOptions {
  return {
    seconds: Number(process.env.BENCH_PEER_SECONDS ?? 3),
    rounds: Number(process.env.BENCH_PEER_ROUNDS ?? 3),
    connections: 32,
    algs: (process.env.BENCH_PEER_ALGS ?? 'HS256,ES256,RS256,EdDSA').split(',') as TestAlg[],
    modes: (process.env.BENCH_PEER_MODES ?? 'cold,warm').split(',') as Array<'cold' | 'warm'>,
  }
}

export async function peersBench(opts: PeerOptions = peerOptionsFromEnv()): Promise<PeerResult[]> {
  const results: PeerResult[] = []
  for (const mode of opts.modes) for (const alg of opts.algs) results.push(await peerRun(alg, mode, opts))
  printPeers(results, opts)
  return results
}

if (import.meta.url === `file://${process.argv[1]}`) {
  peersBench().catch((err: unknown) => {
    console.error(err)
    process.exitCode = 1
  })
}
