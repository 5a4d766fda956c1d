import assert from 'node:assert/strict'
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

/**
 * `fuzzParameters` never scaled below `numRuns` (the unit tier runs at a quarter): for a
 * property that must reach every reason to mean anything (`assertEveryReasonSeen`).
 */
export function fullFuzzParameters<T>(numRuns: number): fc.Parameters<T> {
  const parameters = fuzzParameters<T>(numRuns)
  return { ...parameters, numRuns: Math.max(numRuns, parameters.numRuns ?? 0), plugins: [fc.unbiased()] }
}

/** The rejection reasons a token past the size and scheme checks can get, and acceptance. */
const DEEP_ANSWERS = ['ok', 'malformed', 'unsupported_alg', 'unknown_kid', 'bad_signature', 'expired', 'not_yet_valid', 'revoked', 'bad_issuer', 'bad_audience']

/** Not vacuous: an oracle property saw every answer at least once. */
export function assertEveryReasonSeen(tally: Record<string, number>): void {
  for (const answer of DEEP_ANSWERS) assert.ok((tally[answer] ?? 0) > 0, `never saw ${answer}: ${JSON.stringify(tally)}`)
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

/** A value where the service writes a string: hostile text, or a value of the wrong type. */
function hostileField(): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 4, arbitrary: hostileText() },
    { weight: 1, arbitrary: fc.constantFrom(null, 42, -1, true, [], {}, ['acme'], { id: 'acme' }, '', 'x'.repeat(300)) },
  )
}

const REJECTION_REASONS = ['expired', 'bad_signature', 'unknown_kid', 'malformed', 'revoked', 'bad_audience', 'missing'] as const

/**
 * Lines a hostile or careless log writer puts before `cbc-jwt failures`: rejection lines of the
 * service's shape with hostile or wrongly typed fields (client ids, claimed ids, addresses,
 * kids, times, reasons), hostile `kubectl logs --prefix` prefixes, lines that are not JSON or
 * are cut short, raw terminal escapes, and lines past the reader's 64 KiB bound.
 */
export function hostileLogLine(): fc.Arbitrary<string> {
  const time = fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: 1_700_000_000_000, max: 1_900_000_000_000 }) },
    { weight: 1, arbitrary: fc.oneof(hostileText(), fc.constantFrom(Number.MAX_VALUE, -1, '2026-11-25T20:00:00Z', '\u001b[2J2026')) },
  )
  const rejection = fc
    .record(
      {
        time,
        reason: fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...REJECTION_REASONS) }, { weight: 1, arbitrary: hostileField() }),
        client_id: hostileField(),
        client_id_unverified: hostileField(),
        remote_addr: hostileField(),
        remote_address: hostileField(),
        kid: hostileField(),
        msg: hostileText(),
      },
      { requiredKeys: ['time', 'reason'] },
    )
    .map((fields) => JSON.stringify({ level: 40, service: 'cbc-jwt', event: 'auth_rejected', ...fields }))
  const prefix = fc.oneof(
    fc.constant(''),
    hostileText().map((t) => `[${t.replace(/[\]\s]/g, '')}] `),
    fc.constant('[pod/cbc-jwt-0/cbc-jwt] 2026-11-25T20:00:00.000000000Z '),
  )
  const line = fc.oneof(
    { weight: 6, arbitrary: fc.tuple(prefix, rejection).map(([p, l]) => p + l) },
    { weight: 1, arbitrary: rejection.chain((l) => fc.nat({ max: l.length }).map((cut) => l.slice(0, cut))) },
    { weight: 1, arbitrary: hostileText() },
    { weight: 1, arbitrary: fc.constantFrom('{', '{"event":"auth_rejected"', '[]', 'null', '{"service":"cbc-jwt","msg":"\u001b[31mred"}') },
    { weight: 1, arbitrary: fc.integer({ min: 64 * 1024, max: 80 * 1024 }).map((n) => `{"event":"auth_rejected","client_id":"${'\u009b'.repeat(n)}"}`) },
  )
  return line
}

/** Property names a token can pick to surprise an object: the prototype's, numeric, long, two-byte, empty. */
const HOSTILE_NAMES = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '0', '4294967295', '-1', '', 'é', '\u0000', 'n'.repeat(200)]

/**
 * Claims a valid token can carry, shaped to cost what its length hides: deep nesting, many empty
 * objects and arrays, long and distinct property names, the prototype's names, two-byte strings,
 * fractional numbers — mixed at random, under the registered claims the verifier checks.
 */
export function claimShape(): fc.Arbitrary<Record<string, unknown>> {
  const { tree } = fc.letrec((tie) => ({
    tree: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.constantFrom(null, true, 0, 0.5, -1e-7, 1e21, '', '€€€€', 'x'.repeat(64)),
      fc.string({ unit: 'binary', maxLength: 20 }),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.constant({}),
      fc.constant([]),
      fc.array(tie('tree'), { maxLength: 12 }),
      fc.dictionary(fc.oneof(fc.constantFrom(...HOSTILE_NAMES), fc.string({ maxLength: 30 })), tie('tree'), { maxKeys: 8 }),
    ),
  }))
  return fc.dictionary(fc.oneof(fc.constantFrom(...HOSTILE_NAMES), fc.string({ maxLength: 12 })), tree, { maxKeys: 10 })
}
