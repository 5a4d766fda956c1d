import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

// `npm run bench` starts node without --expose-gc; turn it on here so heap figures, and the
// start of every timed slice, are not at the mercy of the garbage another contender left.
setFlagsFromString('--expose-gc')
export const gc = runInNewContext('gc') as (options?: { type: 'major' | 'minor' }) => void

/** Calls between two clock reads: a slice overshoots by at most this many calls. */
const BATCH = 8

// Results go somewhere observable (exported: another module could read it) so no call can be
// optimised away.
export let sink: unknown

export interface Timed {
  async: boolean
  verify(token: string): unknown
}

/**
 * Operations per second of each of `list`, measured in `slices` short slices that alternate
 * between them (the starting one rotating) for `msEach` ms per contender in all. Load from
 * elsewhere on the machine then falls on every contender alike, so ratios stay meaningful
 * on a shared machine even when absolute figures move.
 */
export async function interleaved(list: readonly Timed[], token: string, msEach: number, slices: number): Promise<number[]> {
  const ops = list.map(() => 0)
  const ms = list.map(() => 0)
  for (let s = 0; s < slices; s++) {
    for (let k = 0; k < list.length; k++) {
      const i = (k + s) % list.length
      gc({ type: 'minor' }) // each slice starts with an empty young generation
      const c = list[i]!
      const start = performance.now()
      const end = start + msEach / slices
      let now = start
      while (now < end) {
        if (c.async) for (let j = 0; j < BATCH; j++) sink = await c.verify(token)
        else for (let j = 0; j < BATCH; j++) sink = c.verify(token)
        ops[i]! += BATCH
        now = performance.now()
      }
      ms[i]! += now - start
    }
  }
  return ops.map((n, i) => (n * 1000) / ms[i]!)
}

/** CPU microseconds (user + system) this process has used since `since`. */
export function cpuMicros(since: NodeJS.CpuUsage): number {
  const { user, system } = process.cpuUsage(since)
  return user + system
}

/** `heapUsed` after a full GC, before and after `n` calls (sync). */
export function heapAround(verify: (token: string) => unknown, token: string, n: number): { before: number; after: number } {
  gc()
  gc()
  const before = process.memoryUsage().heapUsed
  for (let i = 0; i < n; i++) sink = verify(token)
  sink = undefined
  gc()
  gc()
  return { before, after: process.memoryUsage().heapUsed }
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

export const fmtOps = (n: number) => Math.round(n).toLocaleString('en-US')
export const fmtRatio = (n: number) => `${n.toFixed(2)}×`

/** A plain text table, columns padded; the first column left-aligned, the rest right-aligned. */
export function table(head: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

/**
 * `rounds` rounds over `targets`, each round starting `shift` targets further along, so no
 * target always runs right after the same neighbour and a burst of load from elsewhere on the
 * machine falls on different targets each round. `beforeRound` runs first in each round.
 * Returns each target's samples, in round order.
 */
export async function rotatingRounds<T, S>(
  targets: readonly T[],
  opts: { rounds: number; shift: number; beforeRound?: (round: number) => void },
  measure: (target: T, round: number) => Promise<S>,
): Promise<Map<T, S[]>> {
  const samples = new Map<T, S[]>(targets.map((t) => [t, []]))
  for (let round = 0; round < opts.rounds; round++) {
    opts.beforeRound?.(round)
    for (let i = 0; i < targets.length; i++) {
      const target = targets[(i + round * opts.shift) % targets.length]!
      samples.get(target)!.push(await measure(target, round))
    }
  }
  return samples
}
