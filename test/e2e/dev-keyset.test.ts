// `npm start` on a fresh clone: no keyset configured, so the start script asks for the
// development keyset (--dev). It is generated once under the folder the service is started
// from (./.cbc-jwt/dev-keyset.json, git-ignored), reused on the next start, and the log says
// which. Runs from a throwaway folder, so a developer's own dev keyset is never touched. The
// fail-closed cases (nothing asked for, production, read-only folder) are in
// test/server/start-up-errors.test.ts. The second start also runs the README's "Try it" block.
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { loadKeyset } from '../../src/lib/keyset/load.js'
import { freePort } from '../support/free-port.js'
import { CLI_MAIN, PROJECT_ROOT } from '../support/service.js'
import { waitFor } from '../support/wait.js'

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-dev-'))
const cwd = path.join(root, 'clone')
const devDir = path.join(cwd, '.cbc-jwt')
const devFile = path.join(devDir, 'dev-keyset.json')
/** What `npm start` runs (after its prestart build). */
const START_SCRIPT = path.join(PROJECT_ROOT, 'scripts/start.mjs')

interface Run {
  ready: { status: number; json: { current?: string } }
  logs: Array<Record<string, unknown>>
  output: string
}

/** The README's "Try it" block: the token command's arguments, and the paths its curls ask. */
function readmeTryIt(): { tokenArgs: string[]; whoami: string; metrics: string } {
  const readme = fs.readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8')
  const block = /Try it:\n\n```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? ''
  const token = /^TOKEN=\$\(npx cbc-jwt (.*)\)$/m.exec(block)
  const whoami = /^curl -s localhost:8000(\/\S+) -H "authorization: Bearer \$TOKEN"$/m.exec(block)
  const metrics = /^curl -s localhost:8000(\/\S+) \| grep cbc_jwt$/m.exec(block)
  assert.ok(token && whoami && metrics, `the README's Try it block changed:\n${block}`)
  return { tokenArgs: token[1]!.split(' '), whoami: whoami[1]!, metrics: metrics[1]! }
}

/** Runs the start script with no keyset configured, waits for /readyz 200, calls `whileUp`, stops it. */
async function runOnce(whileUp?: (port: number) => Promise<void>): Promise<Run> {
  const port = await freePort()
  const child = spawn(process.execPath, [START_SCRIPT], {
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
      { timeoutMs: 60_000, intervalMs: 100, what: 'the dev service to be ready' },
    )
    await whileUp?.(port)
    return {
      ready,
      output,
      logs: stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
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

describe('npm start with no keyset configured: the development keyset, asked for explicitly', () => {
  let first: Run
  let second: Run
  let fileAfterFirst: { text: string; mtimeMs: number; ino: number }
  let tryIt: { whoami: { status: number; body: Record<string, unknown> }; metrics: string }

  before(async () => {
    fs.mkdirSync(cwd, { recursive: true })
    assert.equal(fs.existsSync(devDir), false)
    first = await runOnce()
    const st = fs.statSync(devFile)
    fileAfterFirst = { text: fs.readFileSync(devFile, 'utf8'), mtimeMs: st.mtimeMs, ino: st.ino }
    second = await runOnce(async (port) => {
      const { tokenArgs, whoami, metrics } = readmeTryIt()
      const token = execFileSync(process.execPath, [CLI_MAIN, ...tokenArgs], { cwd, encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } }).trim()
      const res = await fetch(`http://127.0.0.1:${port}${whoami}`, { headers: { authorization: `Bearer ${token}` } })
      tryIt = {
        whoami: { status: res.status, body: (await res.json()) as Record<string, unknown> },
        metrics: await (await fetch(`http://127.0.0.1:${port}${metrics}`)).text(),
      }
    })
  })
  after(() => fs.rmSync(root, { recursive: true, force: true }))

  it('the first start generates it under the folder it is started from, private to the owner; nothing else', () => {
    assert.ok(fs.existsSync(devFile))
    assert.deepEqual(fs.readdirSync(cwd), ['.cbc-jwt'], 'something else was written under the cwd')
    assert.deepEqual(fs.readdirSync(devDir).sort(), ['.gitignore', 'dev-keyset.json'])
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
    assert.match(String(events[0]!.msg), /generated a development keyset \(not for production/)
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
    assert.deepEqual(
      events.map((e) => e.generated),
      [false],
    )
    assert.match(String(events[0]!.msg), /using the development keyset/)
  })

  it("the README's Try it block: a token from the dev keyset is accepted, and the metrics are served", () => {
    assert.equal(tryIt.whoami.status, 200, JSON.stringify(tryIt.whoami.body))
    assert.equal(tryIt.whoami.body.sub, 'alice')
    assert.equal(tryIt.whoami.body.client_id, 'demo')
    assert.match(tryIt.metrics, /^cbc_jwt_keys_loaded 1$/m)
  })

  it('a clone ignores it: .cbc-jwt/ is in .gitignore', () => {
    assert.ok(fs.readFileSync(path.join(PROJECT_ROOT, '.gitignore'), 'utf8').split('\n').includes('.cbc-jwt/'))
  })

  // §2 "(git-ignored)": cbc-jwt serve --dev in an API's own repository, whose .gitignore does not
  // name .cbc-jwt/, left the private key to the next `git add .`. The folder ignores itself.
  it('any repository ignores it: git sees nothing to add in the folder it was generated in', () => {
    const gitDir = path.join(root, 'repo', '.git')
    const git = (...args: string[]) =>
      execFileSync('git', [`--git-dir=${gitDir}`, `--work-tree=${cwd}`, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', HOME: root } })
    execFileSync('git', ['init', '--quiet', path.dirname(gitDir)])
    assert.equal(git('status', '--porcelain', '--untracked-files=all', '--ignored=no'), '')
    assert.match(git('status', '--porcelain', '--untracked-files=all', '--ignored'), /^!! \.cbc-jwt\//m, 'git would not list it as ignored')
  })

  it('the private key never reaches the log', () => {
    const d = (JSON.parse(fileAfterFirst.text) as { keys: Array<{ jwk: { d: string } }> }).keys[0]!.jwk.d
    assert.ok(!first.output.includes(d) && !second.output.includes(d))
  })
})
