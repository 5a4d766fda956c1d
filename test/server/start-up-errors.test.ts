import assert from 'node:assert/strict'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { runChild } from '../support/run-child.js'
import { CLI_MAIN, SERVER_MAIN } from '../support/service.js'
import { PROCESS_LEVEL } from '../support/tier.js'

/** Runs the built server with `env` until it exits (≤ 60 s: a loaded machine starts Node slowly). */
function run(env: Record<string, string>) {
  return runChild(process.execPath, [SERVER_MAIN], {
    env: { PATH: process.env.PATH ?? '', HOME: '/tmp', CBC_JWT_KEYSET_FILE: '/nonexistent/keyset.json', CBC_JWT_LOG_LEVEL: 'silent', ...env },
    timeoutMs: 60_000,
    what: 'the server',
  })
}

function assertOneLine(stderr: string, pattern: RegExp) {
  assert.match(stderr, pattern)
  assert.equal(stderr.trim().split('\n').length, 1, `more than one line: ${stderr}`)
  assert.doesNotMatch(stderr, /\s+at .+:\d+:\d+/, 'a stack trace')
}

describe('start-up errors: one clear line and exit 1, never a stack trace', PROCESS_LEVEL, () => {
  const busy = net.createServer()
  let port = 0
  before(
    () =>
      new Promise<void>((resolve) =>
        busy.listen(0, '127.0.0.1', () => {
          port = (busy.address() as net.AddressInfo).port
          resolve()
        }),
      ),
  )
  after(() => new Promise<void>((resolve) => busy.close(() => resolve())))

  it('a busy port', async () => {
    const r = await run({ PORT: String(port), HOST: '127.0.0.1' })
    assert.equal(r.code, 1)
    assertOneLine(r.stderr, new RegExp(`^cbc-jwt: cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use`))
  })

  it('a HOST that is not an address of this machine', async () => {
    const r = await run({ PORT: '0', HOST: '192.0.2.1' }) // TEST-NET-1: never local
    assert.equal(r.code, 1)
    assertOneLine(r.stderr, /^cbc-jwt: cannot listen on 192\.0\.2\.1:0: HOST "192\.0\.2\.1" is not an address of this machine; set HOST/)
  })

  it('a HOST that does not resolve', async () => {
    const r = await run({ PORT: '0', HOST: 'no-such-host.invalid' })
    assert.equal(r.code, 1)
    assertOneLine(r.stderr, /^cbc-jwt: cannot listen on no-such-host\.invalid:0: HOST "no-such-host\.invalid" does not resolve/)
  })

  it('bad configuration, as before', async () => {
    const r = await run({ PORT: 'eighty' })
    assert.equal(r.code, 1)
    assertOneLine(r.stderr, /^cbc-jwt: ERR_CONFIG: PORT must be a number/)
  })
})

/**
 * Fail closed (the start-up matrix): a service with no keyset, an empty variable or the
 * development keyset where it must not be made never serves. Each case is one line naming
 * what to set, and exit 1.
 */
describe('fail closed at start-up: nothing configured is never "use a made-up keyset"', PROCESS_LEVEL, () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-startup-'))
  after(() => fs.rmSync(tmp, { recursive: true, force: true }))
  const base = { PATH: process.env.PATH ?? '', HOME: '/tmp', CBC_JWT_LOG_LEVEL: 'silent', PORT: '0', HOST: '127.0.0.1' }

  /** The built server (or `cbc-jwt serve`), from a fresh folder, with exactly `env`. */
  async function start(env: Record<string, string>, args: string[] = [], opts: { cli?: boolean; cwd?: string; uid?: number } = {}) {
    const cwd = opts.cwd ?? fs.mkdtempSync(path.join(tmp, 'cwd-'))
    const r = await runChild(process.execPath, opts.cli ? [CLI_MAIN, 'serve', ...args] : [SERVER_MAIN, ...args], {
      env: { ...base, ...env },
      cwd,
      timeoutMs: 60_000,
      what: 'the server',
      ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
    })
    assert.ok(!fs.existsSync(path.join(cwd, '.cbc-jwt')), 'a development keyset was generated')
    return r
  }

  const cases: Array<[string, Record<string, string>, string[], RegExp]> = [
    [
      'no variable at all',
      {},
      [],
      /^cbc-jwt: ERR_CONFIG: no keyset configured: set CBC_JWT_KEYSET_FILE to the keyset path \(or CBC_JWT_BACKEND=vault or kubernetes\); for a local development keyset, run cbc-jwt serve --dev or set CBC_JWT_DEV_KEYSET=true\n$/,
    ],
    [
      'CBC_JWT_KEYSET_FILE set but empty',
      { CBC_JWT_KEYSET_FILE: '' },
      [],
      /^cbc-jwt: ERR_CONFIG: CBC_JWT_KEYSET_FILE is set but empty: set it to the keyset path/,
    ],
    ['CBC_JWT_KEYSET_FILE set to blanks', { CBC_JWT_KEYSET_FILE: '  ' }, [], /^cbc-jwt: ERR_CONFIG: CBC_JWT_KEYSET_FILE is set but empty/],
    [
      '--dev under NODE_ENV=production',
      { NODE_ENV: 'production' },
      ['--dev'],
      /^cbc-jwt: ERR_CONFIG: the development keyset \(--dev, CBC_JWT_DEV_KEYSET=true\) is refused under NODE_ENV=production: set CBC_JWT_KEYSET_FILE/,
    ],
    [
      'CBC_JWT_DEV_KEYSET=true under NODE_ENV=production',
      { NODE_ENV: 'production', CBC_JWT_DEV_KEYSET: 'true' },
      [],
      /^cbc-jwt: ERR_CONFIG: the development keyset .* is refused under NODE_ENV=production/,
    ],
    [
      // Spelt as a person or a template writes it, production is still production: no made-up keyset there.
      'CBC_JWT_DEV_KEYSET=true under NODE_ENV=Production (any case, blanks around)',
      { NODE_ENV: ' Production ', CBC_JWT_DEV_KEYSET: 'true' },
      [],
      /^cbc-jwt: ERR_CONFIG: the development keyset .* is refused under NODE_ENV=production/,
    ],
    [
      '--dev beside a configured keyset file',
      { CBC_JWT_KEYSET_FILE: '/nonexistent/keyset.json' },
      ['--dev'],
      /^cbc-jwt: ERR_CONFIG: the development keyset \(--dev, CBC_JWT_DEV_KEYSET=true\) and CBC_JWT_KEYSET_FILE are both set: unset one/,
    ],
    [
      'a malformed CBC_JWT_DEV_KEYSET',
      { CBC_JWT_DEV_KEYSET: 'yes please' },
      [],
      /^cbc-jwt: ERR_CONFIG: CBC_JWT_DEV_KEYSET must be true or false \(got "yes please"\)\n$/,
    ],
    ['an empty CBC_JWT_DEV_KEYSET', { CBC_JWT_DEV_KEYSET: '' }, [], /^cbc-jwt: ERR_CONFIG: CBC_JWT_DEV_KEYSET is set but empty/],
    ['a malformed CBC_JWT_BACKEND', { CBC_JWT_BACKEND: 'vualt' }, [], /^cbc-jwt: ERR_CONFIG: CBC_JWT_BACKEND must be/],
  ]
  for (const [name, env, args, pattern] of cases) {
    it(name, async () => {
      const r = await start(env, args)
      assert.equal(r.code, 1, r.stderr)
      assertOneLine(r.stderr, pattern)
    })
  }

  it('cbc-jwt serve with nothing configured: the same line, exit 1', async () => {
    const r = await start({}, [], { cli: true })
    assert.equal(r.code, 1, r.stderr)
    assertOneLine(r.stderr, /^cbc-jwt: ERR_CONFIG: no keyset configured: set CBC_JWT_KEYSET_FILE/)
  })

  it('an unknown argument is bad usage (exit 2), not ignored', async () => {
    const r = await start({ CBC_JWT_KEYSET_FILE: '/nonexistent/keyset.json' }, ['--prod'])
    assert.equal(r.code, 2)
    assertOneLine(r.stderr, /^cbc-jwt: unexpected argument "--prod" \(the only flag is --dev/)
  })

  it('an unknown argument reaches the terminal escaped: a line break or an escape sequence in it is shown, not obeyed', async () => {
    const r = await start({ CBC_JWT_KEYSET_FILE: '/nonexistent/keyset.json' }, ['--x\n\u001b[2Jforged'])
    assert.equal(r.code, 2)
    assertOneLine(r.stderr, /^cbc-jwt: unexpected argument "--x\\x0a\\x1b\[2Jforged" \(the only flag is --dev/)
  })

  it('--dev in a folder the service cannot write (a read-only container): one line naming the folder and the variable', async () => {
    const cwd = fs.mkdtempSync(path.join(tmp, 'readonly-'))
    // As root, permissions do not stop a write: run the service as nobody instead, in a folder
    // it cannot write (root's, 0755). As another user, take write permission away.
    const asRoot = process.getuid?.() === 0
    if (asRoot) fs.chmodSync(cwd, 0o755)
    else fs.chmodSync(cwd, 0o555)
    try {
      const r = await start({}, ['--dev'], { cwd, ...(asRoot ? { uid: 65534 } : {}) })
      assert.equal(r.code, 1, r.stderr)
      assertOneLine(
        r.stderr,
        new RegExp(
          `^cbc-jwt: ERR_CONFIG: cannot create the development keyset ${cwd.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/\\.cbc-jwt/dev-keyset\\.json \\(permission denied\\): start from a writable folder, or set CBC_JWT_KEYSET_FILE`,
        ),
      )
    } finally {
      fs.chmodSync(cwd, 0o755)
    }
  })

  // A file named `.cbc-jwt` where the folder should be: the service overflowed its stack retrying,
  // and said so in three lines of V8 trace.
  it('--dev with a file named .cbc-jwt in the way: one line naming it, the file left as it was', async () => {
    const cwd = fs.mkdtempSync(path.join(tmp, 'file-in-the-way-'))
    fs.writeFileSync(path.join(cwd, '.cbc-jwt'), 'not a folder\n')
    const r = await runChild(process.execPath, [SERVER_MAIN, '--dev'], { env: base, cwd, timeoutMs: 60_000, what: 'the server' })
    assert.equal(r.code, 1, r.stderr)
    assertOneLine(
      r.stderr,
      /^cbc-jwt: ERR_CONFIG: cannot create the development keyset .*\/\.cbc-jwt\/dev-keyset\.json \(.*\/\.cbc-jwt is not a folder\): start from a writable folder/,
    )
    assert.equal(fs.readFileSync(path.join(cwd, '.cbc-jwt'), 'utf8'), 'not a folder\n')
  })

  it("--dev inside node_modules (an installed package's folder) is refused", async () => {
    const cwd = path.join(tmp, 'node_modules', 'cbc-jwt')
    fs.mkdirSync(cwd, { recursive: true })
    const r = await start({}, ['--dev'], { cwd })
    assert.equal(r.code, 1, r.stderr)
    assertOneLine(r.stderr, /^cbc-jwt: ERR_CONFIG: refusing to create a development keyset inside node_modules/)
  })
})
