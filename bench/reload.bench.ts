/**
 * Keyset reload cost: how long `loadKeyset` (parse, schema, meaning, import, self-test) blocks
 * the event loop for a 50-key keyset — loaded from nothing, reloaded unchanged, and reloaded
 * with one key's material changed (the incremental path reuses the other 49).
 *
 * `node --import tsx bench/reload.bench.ts` (also part of `npm run bench`). BENCH_RELOAD_KEYS
 * (default 50), BENCH_RELOAD_REPS (default 9).
 */
import crypto from 'node:crypto'
import { loadKeyset, loadKeysetYielding, parseKeysetText, type LoadedKeyset } from '../src/lib/keyset/load.js'
import { makeKeyset, type TestAlg, type TestKey } from '../test/support/keys.js'
import { median, table } from './measure.js'

const KEYS = Number(process.env.BENCH_RELOAD_KEYS ?? 50)
const REPS = Number(process.env.BENCH_RELOAD_REPS ?? 9)

async function makeKeyAsync(alg: TestAlg, kid: string): Promise<TestKey> {
  const gen = (type: 'rsa' | 'ec' | 'ed25519', opts: object) =>
    new Promise<crypto.KeyObject>((resolve, reject) =>
      crypto.generateKeyPair(type as 'rsa', opts as crypto.RSAKeyPairKeyObjectOptions, (err, _pub, priv) => (err ? reject(err) : resolve(priv))),
    )
  const signingKey = alg.startsWith('HS')
    ? crypto.createSecretKey(crypto.randomBytes(32))
    : alg.startsWith('RS') || alg.startsWith('PS')
      ? await gen('rsa', { modulusLength: 2048 })
      : alg === 'EdDSA'
        ? await gen('ed25519', {})
        : await gen('ec', { namedCurve: 'P-256' })
  return { kid, alg, signingKey, jwk: signingKey.export({ format: 'jwk' }) }
}

export interface ReloadFigures {
  label: string
  /** CPU of a full load, all of it (the synchronous `loadKeyset` the CLI uses). */
  fullMs: number
  /** The longest the event loop waited during a full load as the keyring does it (yielding). */
  fullBlockMs: number
  unchangedMs: number
  /** The longest the event loop waited during a reload with one key changed (keyring path). */
  oneChangedBlockMs: number
}

/**
 * The longest stretch during `fn` in which the event loop could not run anything else: a
 * setImmediate chain records the largest gap between two of its turns, in this process's CPU
 * time (a wall-clock gap would also count the time the OS gave the CPU to other processes —
 * on a shared 2-core machine that is most of it).
 */
async function longestBlock(fn: () => Promise<unknown>): Promise<number> {
  const cpuMs = () => {
    const u = process.cpuUsage()
    return (u.user + u.system) / 1000
  }
  let last = cpuMs()
  let max = 0
  let running = true
  const tick = () => {
    const t = cpuMs()
    max = Math.max(max, t - last)
    last = t
    if (running) setImmediate(tick)
  }
  setImmediate(tick)
  await fn()
  running = false
  tick()
  return max
}

/** Times one keyset mix; every figure is the median of REPS synchronous loads. */
export async function reloadBench(label: string, algs: TestAlg[], keys = KEYS, reps = REPS): Promise<ReloadFigures> {
  const list = await Promise.all(Array.from({ length: keys }, (_, i) => makeKeyAsync(algs[i % algs.length]!, `k-${String(i).padStart(3, '0')}`)))
  const now = Date.now()
  const text = JSON.stringify(makeKeyset(list))
  const time = (fn: () => unknown) => {
    const t0 = process.cpuUsage()
    fn()
    const d = process.cpuUsage(t0)
    return (d.user + d.system) / 1000
  }
  const full: number[] = []
  const fullBlock: number[] = []
  const unchanged: number[] = []
  const changed: number[] = []
  let previous: LoadedKeyset = loadKeyset(parseKeysetText(text), now)
  for (let r = 0; r < reps; r++) {
    full.push(time(() => loadKeyset(parseKeysetText(text), now)))
    fullBlock.push(await longestBlock(() => loadKeysetYielding(parseKeysetText(text), now)))
    unchanged.push(await longestBlock(async () => (previous = await loadKeysetYielding(parseKeysetText(text), now, previous))))
  }
  // One changed key per reload: a fresh key under the kid of a non-current key, as a repair would.
  for (let r = 0; r < reps; r++) {
    const victim = 1 + (r % (keys - 1))
    list[victim] = await makeKeyAsync(list[victim]!.alg, list[victim]!.kid)
    const changedText = JSON.stringify(makeKeyset(list))
    changed.push(await longestBlock(async () => (previous = await loadKeysetYielding(parseKeysetText(changedText), now, previous))))
  }
  return { label, fullMs: median(full), fullBlockMs: median(fullBlock), unchangedMs: median(unchanged), oneChangedBlockMs: median(changed) }
}

export function printReload(rows: ReloadFigures[]) {
  console.log(
    `\nkeyset load, ${KEYS} keys, median of ${REPS}; "block" = the longest the event loop could not run anything else (targets: full < 30 ms, one changed < 5 ms):`,
  )
  const ms = (n: number) => `${n.toFixed(1)} ms`
  console.log(
    table(
      ['keys', 'full load, CPU (sync, CLI)', 'full load, block (keyring)', 'reload unchanged, block', 'reload one changed, block'],
      rows.map((r) => [r.label, ms(r.fullMs), ms(r.fullBlockMs), ms(r.unchangedMs), ms(r.oneChangedBlockMs)]),
    ),
  )
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows: ReloadFigures[] = []
  for (const [label, algs] of [
    ['50 × ES256', ['ES256']],
    ['50 × EdDSA', ['EdDSA']],
    ['50 × HS256', ['HS256']],
    ['50 × RS256', ['RS256']],
    ['mixed ES/RS/Ed/HS', ['ES256', 'RS256', 'EdDSA', 'HS256']],
  ] as Array<[string, TestAlg[]]>) {
    rows.push(await reloadBench(label, algs))
  }
  printReload(rows)
}
