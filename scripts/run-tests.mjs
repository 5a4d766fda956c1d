#!/usr/bin/env node
// Runs every test/**/*.test.ts with node:test through tsx (Node 20's runner does not find .ts
// files by itself). Arguments filter by substring of the path:
//   node scripts/run-tests.mjs keyring verifier
// --unit is the inner loop (`npm run test:unit`): no e2e/, deploy/ or packaging/ tier, the
// suites marked PROCESS_LEVEL (test/support/tier.ts) skipped, and fuzz runs at a quarter
// (CBC_JWT_FUZZ_SCALE; set it to override). `npm test` runs everything, at full scale.
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const unit = process.argv.includes('--unit')
const filters = process.argv.slice(2).filter((a) => a !== '--unit')
/** Tiers that start real processes, servers or packages: `npm test` only. */
const SLOW_TIERS = ['e2e', 'deploy', 'packaging'].map((d) => `test${path.sep}${d}${path.sep}`)

function walk(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) return e.name === 'support' ? [] : walk(p)
    return e.name.endsWith('.test.ts') ? [p] : []
  })
}

const files = walk(path.join(root, 'test'))
  .map((f) => path.relative(root, f))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .filter((f) => !unit || !SLOW_TIERS.some((d) => f.startsWith(d)))
  .sort()
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`)
  process.exit(1)
}
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=3', ...files], {
  cwd: root,
  stdio: 'inherit',
  env: unit ? { ...process.env, CBC_JWT_TEST_TIER: 'unit', CBC_JWT_FUZZ_SCALE: process.env.CBC_JWT_FUZZ_SCALE ?? '0.25' } : process.env,
})
process.exit(result.status ?? 1)
