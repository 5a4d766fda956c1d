// `npm start` with no backend configured: a development keyset is generated once under the
// project folder, reused on the next start, and the log says which.
//
// The dev keyset's location is derived from the module's location (<project>/.cbc-jwt/), with
// no variable to move it. So that a developer's own dev keyset is never touched (and no other
// test running at the same time sees it vanish), the built service runs from a throwaway copy
// of the project: dist/ copied, package.json copied, schema/ and node_modules/ linked. The code
// is the same build; only its folder differs.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { loadKeyset } from '../../src/lib/keyset/load.js'
import { freePort } from '../support/free-port.js'
import { PROJECT_ROOT } from '../support/service.js'
import { waitFor } from '../support/wait.js'

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-dev-'))
const project = path.join(root, 'project')
const cwd = path.join(root, 'elsewhere')
const devDir = path.join(project, '.cbc-jwt')
const devFile = path.join(devDir, 'dev-keyset.json')

interface Run {
  ready: { status: number; json: { current?: string } }
  logs: Array<Record<string, unknown>>
  output: string
}

/** Starts the copied service with no keyset configured, waits for /readyz 200, stops it. */
async function runOnce(): Promise<Run> {
  const port = await freePort()
  const child = spawn(process.execPath, [path.join(project, 'dist/server/main.js')], {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let output = ''
  child.stdout.on('data', (d: Buffer) => void ((stdout += d), (output += d)))
  child.stderr.on('data', (d: Buffer) => void (output += d))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  try {
    const ready = await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`service exited with ${child.exitCode}: ${output.slice(-600)}`)
        const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(2000) })
        const json = (await res.json()) as { current?: string }
        // The "listening" line is written just after the first load: wait for it too.
        return res.status === 200 && stdout.includes('"event":"listening"') && { status: res.status, json }
      },
      { timeoutMs: 15_000, intervalMs: 100, what: 'the dev service to be ready' },
    )
    return {
      ready,
      output,
      logs: stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>),
    }
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
      await exited
      clearTimeout(timer)
    }
  }
}

describe('no backend configured: the development keyset', () => {
  let first: Run
  let second: Run
  let fileAfterFirst: { text: string; mtimeMs: number; ino: number }

  before(async () => {
    fs.mkdirSync(project, { recursive: true })
    fs.mkdirSync(cwd)
    fs.cpSync(path.join(PROJECT_ROOT, 'dist'), path.join(project, 'dist'), { recursive: true })
    fs.copyFileSync(path.join(PROJECT_ROOT, 'package.json'), path.join(project, 'package.json'))
    fs.symlinkSync(path.join(PROJECT_ROOT, 'schema'), path.join(project, 'schema'))
    fs.symlinkSync(path.join(PROJECT_ROOT, 'node_modules'), path.join(project, 'node_modules'))
    assert.equal(fs.existsSync(devDir), false)
    first = await runOnce()
    const st = fs.statSync(devFile)
    fileAfterFirst = { text: fs.readFileSync(devFile, 'utf8'), mtimeMs: st.mtimeMs, ino: st.ino }
    second = await runOnce()
  })
  after(() => fs.rmSync(root, { recursive: true, force: true }))

  it('the first start generates it under the project folder (not the cwd), private to the owner', () => {
    assert.ok(fs.existsSync(devFile))
    assert.deepEqual(fs.readdirSync(cwd), [], 'something was written under the cwd')
    assert.equal(fs.statSync(devFile).mode & 0o777, 0o600)
    assert.equal(fs.statSync(devDir).mode & 0o777, 0o700)
    const ks = loadKeyset(JSON.parse(fileAfterFirst.text))
    assert.equal(ks.current.alg, 'ES256')
    assert.equal(first.ready.json.current, ks.current.kid)
  })

  it('the log says it was generated, where, and that it is not for production', () => {
    const events = first.logs.filter((l) => l.event === 'dev_keyset')
    assert.equal(events.length, 1)
    assert.equal(events[0]!.generated, true)
    assert.equal(events[0]!.file, devFile)
    assert.match(String(events[0]!.msg), /generated a development keyset \(not for production\)/)
    const listening = first.logs.find((l) => l.event === 'listening')
    assert.equal(listening?.location, devFile)
  })

  it('the second start reuses it: same current kid, file untouched, log says generated false', () => {
    assert.equal(second.ready.json.current, first.ready.json.current)
    const st = fs.statSync(devFile)
    assert.equal(fs.readFileSync(devFile, 'utf8'), fileAfterFirst.text)
    assert.equal(st.mtimeMs, fileAfterFirst.mtimeMs)
    assert.equal(st.ino, fileAfterFirst.ino)
    const events = second.logs.filter((l) => l.event === 'dev_keyset')
    assert.deepEqual(events.map((e) => e.generated), [false])
    assert.match(String(events[0]!.msg), /using the development keyset/)
  })

  it('the private key never reaches the log', () => {
    const d = (JSON.parse(fileAfterFirst.text) as { keys: Array<{ jwk: { d: string } }> }).keys[0]!.jwk.d
    assert.ok(!first.output.includes(d) && !second.output.includes(d))
  })
})
