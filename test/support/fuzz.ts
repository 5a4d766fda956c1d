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

/** Pieces a hostile server or log writer sends to rewrite or hide what an operator reads. */
const HOSTILE_PIECES = [
  '\u001b[2J',
  '\u001b[31m',
  '\u001b]0;pwned\u0007',
  '\u001b]8;;http://evil/\u001b\\',
  '\u009b31m',
  '\u0085',
  '\u009d',
  '\u202e',
  '\u2066',
  '\u200b',
  '\ufeff',
  '\r',
  '\n',
  '\t',
  '\u0000',
  '\u007f',
  '\\',
  '\\x1b',
  '"',
  '…',
  'é',
  '\ud83d\ude00',
  '\ud800',
]

/**
 * Foreign text as a hostile Kubernetes API, Vault, proxy or log writer would send it: terminal
 * escapes, C0/C1 controls, bidi overrides, zero-width characters, lone surrogates and backslashes
 * mixed with ordinary text.
 */
export function hostileText(): fc.Arbitrary<string> {
  return fc
    .array(fc.oneof(fc.constantFrom(...HOSTILE_PIECES), fc.string({ maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 6 })), { maxLength: 30 })
    .map((parts) => parts.join(''))
}
