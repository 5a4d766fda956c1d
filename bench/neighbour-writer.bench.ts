/**
 * A busy neighbour file in the keyset's directory: the CPU a process watching the keyset spends
 * while another process rewrites a file beside it as fast as it can, in CPU-seconds per 3 s.
 * The target is below 0.3 (the neighbour's events must be dropped by name, before any syscall).
 *
 * `node --import tsx bench/neighbour-writer.bench.ts [runs]`. BENCH_WRITER=append makes the writer
 * append to two neighbours in turn (no event merged by the kernel: the most events per write);
 * the default rewrites one neighbour with writeFileSync. BENCH_SRC points at another
 * checkout's `src/` to measure it the same way (a before/after pair in one run).
 * The machine is shared: compare figures of one run, never across runs.
 */
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { makeKey, makeKeyset } from '../test/support/keys.js'

const RUNS = Number(process.argv[2] ?? 3)
const WINDOW_MS = 3000
const src = path.resolve(process.env.BENCH_SRC ?? new URL('../src', import.meta.url).pathname)

async function once(): Promise<{ cpuSeconds: number; writes: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-neighbour-'))
  const file = path.join(dir, 'keyset.json')
  fs.writeFileSync(file, JSON.stringify(makeKeyset([makeKey('ES256', 'k-bench')])))
  const watcher = `
    import { createFileBackend } from ${JSON.stringify(pathToFileURL(path.join(src, 'lib/backends/file-backend.ts')).href)}
    import { createKeyring } from ${JSON.stringify(pathToFileURL(path.join(src, 'lib/keyring/keyring.ts')).href)}
    const log = { info() {}, warn() {}, error() {} }
    const keyring = createKeyring({ backend: createFileBackend(${JSON.stringify(file)}), logger: log })
    await keyring.start()
    process.stdout.write('ready\\n')
    process.stdin.once('data', () => {
      const start = process.cpuUsage()
      setTimeout(() => {
        const used = process.cpuUsage(start)
        process.stdout.write(JSON.stringify({ cpuSeconds: (used.user + used.system) / 1e6 }) + '\\n')
        process.exit(0)
      }, ${WINDOW_MS})
    })
  `
  const writer = `
    const fs = require('node:fs')
    const names = [${JSON.stringify(path.join(dir, 'app.log'))}, ${JSON.stringify(path.join(dir, 'audit.log'))}]
    const until = Date.now() + ${WINDOW_MS + 500}
    let n = 0
    const mode = process.env.BENCH_WRITER ?? 'rewrite'
    if (mode === 'rewrite') while (Date.now() < until) { fs.writeFileSync(names[0], String(n)); n++ }
    else while (Date.now() < until) fs.appendFileSync(names[n++ % 2], 'x')
    process.stdout.write(String(n))
  `
  const w = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', watcher], { stdio: ['pipe', 'pipe', 'inherit'] })
  let out = ''
  w.stdout.on('data', (d) => (out += d))
  await new Promise<void>((resolve) => w.stdout.on('data', () => out.includes('ready') && resolve()))
  const wr = spawn(process.execPath, ['-e', writer], { stdio: ['ignore', 'pipe', 'inherit'] })
  let writes = ''
  wr.stdout.on('data', (d) => (writes += d))
  w.stdin.write('go\n')
  await Promise.all([new Promise((r) => w.on('exit', r)), new Promise((r) => wr.on('exit', r))])
  fs.rmSync(dir, { recursive: true, force: true })
  const line = out.split('\n').find((l) => l.startsWith('{'))
  return { cpuSeconds: JSON.parse(line!).cpuSeconds as number, writes: Number(writes) }
}

const results = []
for (let i = 0; i < RUNS; i++) results.push(await once())
for (const r of results) {
  console.log(
    `watcher CPU ${r.cpuSeconds.toFixed(3)} s per ${WINDOW_MS / 1000} s; neighbour writes ${r.writes} (${((r.cpuSeconds * 1e6) / r.writes).toFixed(1)} µs each)`,
  )
}
const cpu = results.map((r) => r.cpuSeconds).sort((a, b) => a - b)
console.log(`${src}: median ${cpu[Math.floor(cpu.length / 2)]!.toFixed(3)} s (min ${cpu[0]!.toFixed(3)}, max ${cpu.at(-1)!.toFixed(3)}), target < 0.3 s`)
