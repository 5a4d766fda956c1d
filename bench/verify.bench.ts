/**
 * `npm run bench`: token verification throughput of cbc-jwt against the node:crypto floor,
 * fast-jwt and jose; the HTTP cost of a verified request; heap growth over 1e5 verifications.
 *
 * Environment: BENCH_SECONDS (per contender per round, default 0.5), BENCH_ROUNDS (default 5),
 * BENCH_HTTP_SECONDS (per route per round, default 1), BENCH_HTTP=0 to skip the HTTP part,
 * BENCH_RELOAD=0 to skip the keyset reload part (bench/reload.bench.ts), BENCH_HEAP=0 to skip the
 * token cache's heap under a flood (bench/token-cache-heap.bench.ts), BENCH_PEERS=0 to skip
 * the HTTP benchmark with peers (bench/peers/run.ts, its own BENCH_PEER_* variables),
 * BENCH_REVOCATIONS=0 to skip 10 000 revocation rules vs none (bench/revocations.bench.ts),
 * BENCH_TRUSTED=0 to skip a trusted issuer's token against the keyset's own and jose's
 * createRemoteJWKSet (bench/trusted-issuer.bench.ts).
 * Method and figures: docs/performance.md.
 */
import os from 'node:os'
import { CONTENDERS, makeContenders, type Contender, type ContenderName } from './contenders.js'
import { BENCH_ALGS, makeFixture, payloadBytes, type BenchAlg, type Fixture } from './fixtures.js'
import { httpBench } from './http.bench.js'
import { fmtOps, fmtRatio, heapAround, interleaved, median, table } from './measure.js'
import { peersBench } from './peers/run.js'
import { printReload, reloadBench } from './reload.bench.js'
import { printRevocations, revocationBench } from './revocations.bench.js'
import { HEAP_FLOODS, printHeapFlood } from './token-cache-heap.bench.js'
import { printTrustedIssuer, trustedIssuerBench, TRUSTED_TARGETS } from './trusted-issuer.bench.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 0.5)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const HTTP_SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 1)
const HTTP_ROUNDS = 4
const SLICES = 30
const WARMUP_MS = 200
const HEAP_CALLS = 100_000
/** Heap growth is measured on these: the cheapest signature (the rest of the path dominates) and the HTTP one. */
const HEAP_ALGS: readonly BenchAlg[] = ['HS256', 'ES256']
/** The target on asymmetric algorithms, as a fraction of the floor. */
const FLOOR_TARGET = 0.9

/** Per contender, one ops/s figure per round. */
type Samples = Record<ContenderName, number[]>

async function main() {
  const started = performance.now()
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU'
  console.log(`cbc-jwt verify bench — Node ${process.version}, OpenSSL ${process.versions.openssl}, ${os.cpus().length}× ${cpu}`)
  const load = os.loadavg()[0]!
  if (load > 0.5) console.log(`WARNING: load average ${load.toFixed(1)} before the run — other work shares the CPUs; absolute figures will be low and noisy`)
  console.log(`${ROUNDS} rounds × ${SECONDS} s per contender, each round in ${SLICES} alternating slices; medians reported\n`)

  const fixtures = BENCH_ALGS.map(makeFixture)
  const contenders = new Map<BenchAlg, Contender[]>()
  for (const f of fixtures) contenders.set(f.alg, await makeContenders(f)) // asserts every one accepts
  console.log(`token: ${fixtures[0]!.token.length} chars (HS256), payload ${payloadBytes(fixtures[0]!.token)} bytes; all contenders accept it\n`)

  for (const f of fixtures) await interleaved(contenders.get(f.alg)!, f.token, WARMUP_MS, 1) // warm-up: JIT, key caches
  const samples = new Map<BenchAlg, Samples>(fixtures.map((f) => [f.alg, emptySamples()]))
  for (let round = 0; round < ROUNDS; round++) {
    for (const f of fixtures) {
      const list = contenders.get(f.alg)!
      const rates = await interleaved(list, f.token, SECONDS * 1000, SLICES)
      for (const [i, c] of list.entries()) samples.get(f.alg)![c.name].push(rates[i]!)
    }
  }
  const verdicts = printVerify(samples)
  printHeap(
    fixtures.filter((f) => HEAP_ALGS.includes(f.alg)),
    contenders,
  )
  let trustedMet: boolean | undefined
  if (process.env.BENCH_TRUSTED !== '0') trustedMet = printTrustedIssuer(await trustedIssuerBench({ seconds: SECONDS, rounds: ROUNDS, slices: SLICES }))

  if (process.env.BENCH_HTTP !== '0') {
    const es256 = fixtures.find((f) => f.alg === 'ES256')!
    const http = await httpBench(es256, { seconds: HTTP_SECONDS, rounds: HTTP_ROUNDS, connections: 32 })
    console.log(
      `\nHTTP over loopback (${http.tool} in a child process, 32 connections, ${HTTP_ROUNDS} alternating rounds × ${HTTP_SECONDS} s per route, median):`,
    )
    const { healthz, whoami } = http
    console.log(
      table(
        ['route', 'req/s', 'vs /healthz', 'server CPU/req'],
        [
          ['GET /healthz (no auth)', fmtOps(healthz.rps), fmtRatio(1), `${healthz.cpuMicrosPerRequest.toFixed(0)} µs`],
          ['GET /v1/whoami (ES256 bearer)', fmtOps(whoami.rps), fmtRatio(http.ratio), `${whoami.cpuMicrosPerRequest.toFixed(0)} µs`],
        ],
      ),
    )
  }

  if (process.env.BENCH_RELOAD !== '0') {
    printReload([
      await reloadBench('50 × ES256', ['ES256']),
      await reloadBench('50 × RS256', ['RS256']),
      await reloadBench('mixed ES/RS/Ed/HS', ['ES256', 'RS256', 'EdDSA', 'HS256']),
    ])
  }
  if (process.env.BENCH_REVOCATIONS !== '0') printRevocations(await revocationBench())
  if (process.env.BENCH_HEAP !== '0') printHeapFlood(await HEAP_FLOODS())
  if (process.env.BENCH_PEERS !== '0') await peersBench()

  const overall = verdicts.includes('NO') ? 'NOT MET' : verdicts.includes('≈') ? 'MET within noise (≈: a tie on this machine)' : 'MET'
  console.log(`\ntarget (cbc-jwt ≥ fast-jwt on every alg, ≥ ${FLOOR_TARGET}× floor on asymmetric): ${overall}`)
  if (trustedMet !== undefined) {
    console.log(
      `target (trusted issuer ≥ ${TRUSTED_TARGETS.own}× own cold and cached, ≥ ${TRUSTED_TARGETS.jose}× jose remote): ${trustedMet ? 'MET' : 'NOT MET'}`,
    )
  }
  console.log(`(${((performance.now() - started) / 1000).toFixed(0)} s)`)
}

function emptySamples(): Samples {
  return Object.fromEntries(CONTENDERS.map((n) => [n, [] as number[]])) as Samples
}

type Verdict = 'yes' | '≈' | 'NO'

/**
 * Per-round ratios `a / b`: within a round the contenders alternate, so a burst of load
 * elsewhere on the machine moves all of them alike.
 */
function ratios(s: Samples, a: ContenderName, b: ContenderName) {
  const r = s[a].map((x, i) => x / s[b][i]!)
  return { median: median(r), min: Math.min(...r), max: Math.max(...r) }
}

/**
 * `yes` when the median ratio reaches the threshold; `≈` when it misses by under 2 % and at
 * least one round reached it (a tie within this machine's noise); `NO` otherwise.
 */
function verdict(r: ReturnType<typeof ratios>, threshold: number): Verdict {
  if (r.median >= threshold) return 'yes'
  return r.median >= threshold * 0.98 && r.max >= threshold ? '≈' : 'NO'
}

const withRange = (r: ReturnType<typeof ratios>) => `${fmtRatio(r.median)} (${r.min.toFixed(2)}–${r.max.toFixed(2)})`

/** Prints ops/s (median of rounds) and ratios; returns, per alg, whether the target is met. */
function printVerify(samples: Map<BenchAlg, Samples>): Verdict[] {
  const verdicts: Verdict[] = []
  const rows = [...samples].map(([alg, s]) => {
    const cbcFloor = ratios(s, 'cbc-jwt', 'floor')
    const cbcFast = ratios(s, 'cbc-jwt', 'fast-jwt')
    const checks = [verdict(cbcFast, 1), ...(alg === 'HS256' ? [] : [verdict(cbcFloor, FLOOR_TARGET)])]
    const v: Verdict = checks.includes('NO') ? 'NO' : checks.includes('≈') ? '≈' : 'yes'
    verdicts.push(v)
    return [
      alg,
      ...CONTENDERS.map((n) => fmtOps(median(s[n]))),
      withRange(cbcFloor),
      fmtRatio(ratios(s, 'fast-jwt', 'floor').median),
      fmtRatio(ratios(s, 'jose', 'floor').median),
      withRange(cbcFast),
      v,
    ]
  })
  console.log('verifications per second (median of rounds); ratios: median (min–max) of the per-round ratios')
  console.log(table(['alg', ...CONTENDERS.map((n) => `${n} ops/s`), 'cbc/floor', 'fast/floor', 'jose/floor', 'cbc/fast', 'target'], rows))
  return verdicts
}

/** Heap after a full GC, before and after 1e5 cbc-jwt verifications: no per-request growth. */
function printHeap(fixtures: Fixture[], contenders: Map<BenchAlg, Contender[]>) {
  const rows = fixtures.map((f) => {
    const cbc = contenders.get(f.alg)!.find((c) => c.name === 'cbc-jwt')!
    const { before, after } = heapAround(cbc.verify, f.token, HEAP_CALLS)
    const kib = (n: number) => `${(n / 1024).toFixed(0)} KiB`
    return [f.alg, kib(before), kib(after), `${((after - before) / 1024).toFixed(1)} KiB`, `${((after - before) / HEAP_CALLS).toFixed(2)} B`]
  })
  console.log(`\nheap used after a full GC, around ${HEAP_CALLS.toLocaleString('en-US')} cbc-jwt verifications:`)
  console.log(table(['alg', 'before', 'after', 'growth', 'per call'], rows))
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
