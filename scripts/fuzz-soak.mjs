#!/usr/bin/env node
// Runs the fuzz tests (test/security/fuzz-*.test.ts) again and again with fresh seeds for N
// minutes, and prints what they covered: cases run per property, reasons reached, seeds.
// Not part of `npm test` (that runs each fuzzer once, within a minute). A failing seed is
// printed with the command that replays it.
//   node scripts/fuzz-soak.mjs [minutes=5] [scale=10]
import { spawnSync } from 'node:child_process'
import path from 'node:path'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const minutes = Number(process.argv[2] ?? 5)
const scale = Number(process.argv[3] ?? 10)
const files = [
  'test/security/fuzz-tokens.test.ts',
  'test/security/fuzz-keysets.test.ts',
  'test/security/fuzz-log-lines.test.ts',
  'test/security/fuzz-backend-messages.test.ts',
  'test/security/fuzz-claim-shapes.test.ts',
]
const deadline = Date.now() + minutes * 60_000
const totals = {}
const failures = []
let rounds = 0

while (Date.now() < deadline) {
  const seed = Math.floor(Math.random() * 2 ** 31)
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--test', ...files], {
    cwd: root,
    env: { ...process.env, FC_SEED: String(seed), CBC_JWT_FUZZ_SCALE: String(scale), CBC_JWT_FUZZ_REPORT: '1' },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  })
  rounds++
  for (const line of `${run.stdout}\n${run.stderr}`.split('\n')) {
    const at = line.indexOf('fuzz-coverage ')
    if (at < 0) continue
    const { name, seed: _seed, ...counts } = JSON.parse(line.slice(at + 'fuzz-coverage '.length))
    totals[name] ??= {}
    for (const [k, v] of Object.entries(counts)) totals[name][k] = (totals[name][k] ?? 0) + v
  }
  if (run.status !== 0) {
    failures.push(seed)
    console.log(`round ${rounds}: FAILED — replay: FC_SEED=${seed} CBC_JWT_FUZZ_SCALE=${scale} node --import tsx --test ${files.join(' ')}`)
  } else {
    console.log(`round ${rounds}: ok (seed ${seed})`)
  }
}

console.log(`\n${rounds} rounds in ${minutes} min at scale ${scale}; ${failures.length} failed`)
for (const [name, counts] of Object.entries(totals)) console.log(`${name}: ${JSON.stringify(counts)}`)
process.exit(failures.length ? 1 : 0)
