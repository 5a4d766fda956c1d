/**
 * What 10 000 revocation rules cost a request: the same verifier, the same token, against the
 * same keyset with no rules and with 10 000 (a third each by client, subject and token id, so
 * every lookup runs; the token is named by none of them, as nearly every request is not).
 * Measured on the two paths a request takes: a repeat answered from the verified-token cache
 * (the cheapest path, where a fixed cost shows most) and a full HS256 verification (cache off).
 * Also how long loading such a keyset takes (parse, schema, meaning, the index).
 *
 * `node --import tsx bench/revocations.bench.ts` (also part of `npm run bench`; BENCH_REVOCATIONS=0
 * skips it). BENCH_REVOCATION_ROUNDS (default 7), BENCH_SECONDS (per contender per round, 0.5).
 */
import { loadKeyset, parseKeysetText } from '../src/lib/keyset/load.js'
import { createVerifier } from '../src/lib/verifier/verifier.js'
import { serializeKeyset } from '../src/lib/keyset/serialize.js'
import { AUDIENCE, ISSUER, benchClaims } from './fixtures.js'
import { interleaved, median, table, type Timed } from './measure.js'
import { makeKey, makeKeyset, signToken } from '../test/support/keys.js'

const RULES = 10_000
const ROUNDS = Number(process.env.BENCH_REVOCATION_ROUNDS ?? 7)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 0.5)
const SLICES = 30

export interface RevocationFigures {
  path: string
  /** ns per request, median of rounds, without and with the rules. */
  noneNs: number
  rulesNs: number
  /** Per-round difference (with − without), ns: median, min, max. */
  diff: { median: number; min: number; max: number }
  /** The same measurement of two keysets without rules (A/A): the noise floor of this run. */
  noise: { median: number; min: number; max: number }
}

function rulesDocument(key: ReturnType<typeof makeKey>): Record<string, unknown> {
  const at = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')
  const expires = new Date(Date.now() + 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z')
  const revocations = Array.from({ length: RULES }, (_, i) => {
    const id = `0b5c8f7e-6d2a-4c3b-9a1e-${String(i).padStart(12, '0')}`
    if (i % 3 === 0) return { client_id: `client-${id}`, issued_before: at, created_at: at }
    if (i % 3 === 1) return { sub: `user-${id}`, issued_before: at, created_at: at }
    return { jti: id, expires_at: expires, created_at: at }
  })
  return { ...makeKeyset([key]), revocations }
}

export async function revocationBench(): Promise<{ figures: RevocationFigures[]; loadMs: { none: number; rules: number }; bytes: number }> {
  const key = makeKey('HS256', 'bench-revocations')
  const token = signToken(key, benchClaims())
  const none = loadKeyset(makeKeyset([key]))
  const noneToo = loadKeyset(makeKeyset([key]), Date.now(), none)
  const text = serializeKeyset(rulesDocument(key) as never)
  const ruled = loadKeyset(parseKeysetText(text), Date.now(), none)
  if (ruled.revocations.size !== RULES) throw new Error('the rules did not load')
  const loadTimes = (t: string, previous = none) => {
    const ms: number[] = []
    for (let i = 0; i < 7; i++) {
      const start = performance.now()
      loadKeyset(parseKeysetText(t), Date.now(), previous)
      ms.push(performance.now() - start)
    }
    return median(ms)
  }
  const loadMs = { none: loadTimes(serializeKeyset(makeKeyset([key]) as never)), rules: loadTimes(text) }

  const figures: RevocationFigures[] = []
  const paths: Array<[string, Timed[]]> = []
  for (const [path, cacheEntries] of [
    ['cached repeat (token cache hit)', 10_000],
    ['full HS256 verification (cache off)', 0],
  ] as const) {
    const verifier = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      clockToleranceSeconds: 30,
      maxTokenBytes: 8192,
      tokenCacheEntries: cacheEntries,
      threadpoolFamilies: [],
    })
    for (const keyset of [none, ruled]) {
      const first = verifier.verify(token, keyset)
      if (!('ok' in first) || !first.ok) throw new Error(`the bench token is not accepted: ${JSON.stringify(first)}`)
    }
    paths.push([
      path,
      [
        { async: false, verify: (t) => verifier.verify(t, none) },
        { async: false, verify: (t) => verifier.verify(t, ruled) },
        { async: false, verify: (t) => verifier.verify(t, noneToo) },
      ],
    ])
  }
  for (const [path, contenders] of paths) {
    await interleaved(contenders, token, 200, 4) // warm-up
    const noneNs: number[] = []
    const rulesNs: number[] = []
    const againNs: number[] = []
    for (let r = 0; r < ROUNDS; r++) {
      const [a, b, c] = await interleaved(contenders, token, SECONDS * 1000, SLICES)
      noneNs.push(1e9 / a!)
      rulesNs.push(1e9 / b!)
      againNs.push(1e9 / c!)
    }
    const spread = (d: number[]) => ({ median: median(d), min: Math.min(...d), max: Math.max(...d) })
    figures.push({
      path,
      noneNs: median(noneNs),
      rulesNs: median(rulesNs),
      diff: spread(rulesNs.map((x, i) => x - noneNs[i]!)),
      noise: spread(againNs.map((x, i) => x - noneNs[i]!)),
    })
  }
  return { figures, loadMs, bytes: Buffer.byteLength(text) }
}

export function printRevocations(r: Awaited<ReturnType<typeof revocationBench>>): void {
  const ns = (n: number) => `${n.toFixed(0)} ns`
  console.log(
    `\n${RULES.toLocaleString('en-US')} revocation rules loaded vs none (${ROUNDS} rounds; per request; differences: median (min–max) of the per-round differences; A/A: two keysets without rules, the noise of this run; target < 1 µs):`,
  )
  const range = (d: RevocationFigures['diff']) => `${ns(d.median)} (${d.min.toFixed(0)}–${d.max.toFixed(0)})`
  console.log(
    table(
      ['path', 'no rules', `${RULES} rules`, 'difference', 'A/A', 'target'],
      r.figures.map((f) => [
        f.path,
        ns(f.noneNs),
        ns(f.rulesNs),
        range(f.diff),
        range(f.noise),
        f.diff.median < 1000 ? 'met' : f.diff.median < f.noise.max ? 'within noise' : 'NOT MET',
      ]),
    ),
  )
  console.log(
    `loading the keyset: ${r.loadMs.none.toFixed(1)} ms without rules, ${r.loadMs.rules.toFixed(1)} ms with ${RULES} (${(r.bytes / 1024).toFixed(0)} KiB; median of 7, key import reused)`,
  )
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printRevocations(await revocationBench())
}
