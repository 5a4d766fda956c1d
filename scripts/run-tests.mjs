#!/usr/bin/env node
// Runs the test files (test/**/*.test.ts) with node:test through tsx (Node 20's runner does not
// find .ts files by itself). Arguments filter by substring of the path:
//   node scripts/run-tests.mjs keyring verifier
// Without --unit (`npm test`): every tier, each file in a process of its own, at full scale.
// --unit is the inner loop (`npm run test:unit`): no e2e/, deploy/ or packaging/ tier, the
// suites marked PROCESS_LEVEL (test/support/tier.ts) skipped, fuzz at a quarter
// (CBC_JWT_FUZZ_SCALE; set it to override), and the files run in one process per core
// (scripts/unit-shard.mjs) instead of one each: why, and what it costs, in CONTRIBUTING.md.
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
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
if (!unit) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=3', ...files], { cwd: root, stdio: 'inherit' })
  process.exit(result.status ?? 1)
}
process.exit(await runShards(files))

/**
 * The unit tier in shards: one process per core, each importing its share of the files
 * (scripts/unit-shard.mjs). Shards are balanced by each file's time in the last run
 * (node_modules/.cache/cbc-jwt/unit-costs.json; a file never timed counts by its size),
 * longest first onto the least loaded shard; one more shard than cores, so one shard's
 * waits (timers, sockets) overlap the others' work. The last line adds the shards up.
 */
async function runShards(files) {
  const costFile = path.join(root, 'node_modules', '.cache', 'cbc-jwt', 'unit-costs.json')
  const known = readJson(costFile) ?? {}
  const bytesPerMs = 20 // a file never timed: about its size in bytes / 20, in ms
  const cost = (f) => known[path.join(root, f)] ?? fs.statSync(path.join(root, f)).size / bytesPerMs
  const count = Math.max(1, Math.min(files.length, Number(process.env.CBC_JWT_TEST_SHARDS) || os.availableParallelism() + 1))
  const shards = Array.from({ length: count }, () => ({ files: [], cost: 0 }))
  for (const f of [...files].sort((a, b) => cost(b) - cost(a))) {
    const lightest = shards.reduce((a, b) => (b.cost < a.cost ? b : a))
    lightest.files.push(f)
    lightest.cost += cost(f)
  }
  const env = { ...process.env, CBC_JWT_TEST_TIER: 'unit', CBC_JWT_FUZZ_SCALE: process.env.CBC_JWT_FUZZ_SCALE ?? '0.25' }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-unit-'))
  const started = Date.now()
  const results = await Promise.all(
    shards.map(
      (shard, i) =>
        new Promise((resolve) => {
          const summary = path.join(tmp, `shard-${i}.json`)
          const args = ['--import', 'tsx', '--test-reporter=spec', '--test-reporter-destination=stdout']
          args.push('--test-reporter', path.join(root, 'scripts', 'unit-costs-reporter.mjs'), '--test-reporter-destination', summary)
          const child = spawn(process.execPath, [...args, path.join(root, 'scripts', 'unit-shard.mjs'), ...shard.files], {
            cwd: root,
            env,
            // The first shard's report streams as it runs; the others' are printed after it.
            stdio: ['ignore', i === 0 ? 'inherit' : 'pipe', i === 0 ? 'inherit' : 'pipe'],
          })
          const held = []
          child.stdout?.on('data', (d) => held.push(d))
          child.stderr?.on('data', (d) => held.push(d))
          child.on('exit', (code, signal) => resolve({ code: code ?? 1, signal, held, summary: readJson(summary) }))
        }),
    ),
  )
  for (const r of results) if (r.held.length > 0) process.stdout.write(Buffer.concat(r.held))
  fs.rmSync(tmp, { recursive: true, force: true })
  const total = { tests: 0, passed: 0, failed: 0, skipped: 0, todo: 0 }
  const costs = { ...known }
  results.forEach((r, i) => {
    if (r.summary === undefined) {
      total.failed++
      console.error(`shard ${i + 1} of ${count} ended (${r.signal ?? `exit ${r.code}`}) before it reported`)
      return
    }
    for (const k of Object.keys(total)) total[k] += r.summary.counts[k]
    // Half the last run, half the runs before: one run on a loaded machine does not reshuffle the shards.
    for (const [file, ms] of Object.entries(r.summary.costs)) costs[file] = known[file] === undefined ? ms : (known[file] + ms) / 2
  })
  fs.mkdirSync(path.dirname(costFile), { recursive: true })
  fs.writeFileSync(costFile, `${JSON.stringify(costs, null, 1)}\n`)
  const failed = total.failed > 0 || results.some((r) => r.code !== 0)
  const seconds = ((Date.now() - started) / 1000).toFixed(1)
  console.log(`\nunit: ${files.length} files in ${count} processes, ${seconds} s`)
  console.log(`${total.passed} passed, ${Math.max(total.failed, failed ? 1 : 0)} failed, ${total.skipped} skipped`)
  return failed ? 1 : 0
}

function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'))
  } catch {
    return undefined
  }
}
