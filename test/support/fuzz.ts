import fc from 'fast-check'

/**
 * fast-check settings shared by the fuzz tests. The seed is random locally (a failure prints
 * it, and `FC_SEED=<seed>` replays it) and pinned when `CI` is set, so CI is repeatable.
 * `CBC_JWT_FUZZ_SCALE` multiplies every run count: `scripts/fuzz-soak.mjs` raises it.
 */
export const FUZZ_SEED = process.env.FC_SEED ? Number(process.env.FC_SEED) : process.env.CI ? 20261202 : Math.floor(Math.random() * 2 ** 31)
const SCALE = Number(process.env.CBC_JWT_FUZZ_SCALE ?? '1')

export function fuzzParameters<T>(numRuns: number): fc.Parameters<T> {
  return { seed: FUZZ_SEED, numRuns: Math.max(1, Math.round(numRuns * SCALE)), endOnFailure: true }
}

/** `count` values of `arb`, reproducible from the seed. */
export function fuzzSample<T>(arb: fc.Arbitrary<T>, count: number): T[] {
  return fc.sample(arb, { seed: FUZZ_SEED, numRuns: Math.max(1, Math.round(count * SCALE)) })
}

/** Counts what a fuzz test covered, printed by the soak script. */
export function coverage(name: string, counts: Record<string, number>): void {
  if (process.env.CBC_JWT_FUZZ_REPORT) process.stderr.write(`fuzz-coverage ${JSON.stringify({ name, seed: FUZZ_SEED, ...counts })}\n`)
}
