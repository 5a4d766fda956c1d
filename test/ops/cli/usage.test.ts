import assert from 'node:assert/strict'
import fs from 'node:fs'
import { after, describe, it } from 'node:test'
import { loadKeyset } from '../../../src/lib/keyset/load.js'
import { CLI_MAIN } from '../../support/service.js'
import { at, cbcJwt, cbcJwtProcess, keysetFixture, oneLine, tempDir } from './cli.js'
import { PROCESS_LEVEL } from '../../support/tier.js'

const tmp = tempDir('usage')
after(tmp.cleanup)

const COMMANDS = [
  'keyset init',
  'keyset validate',
  'keyset restore',
  'rotate',
  'revoke',
  'token issue',
  'token verify',
  'status',
  'verify-rotation',
  'failures',
  'serve',
]

describe('cbc-jwt --help', { concurrency: true }, () => {
  it('lists every command (exit 0)', async () => {
    const r = await cbcJwt(['--help'])
    assert.equal(r.code, 0)
    assert.match(r.stdout, /^Usage: cbc-jwt <command> \[options\]/)
    for (const c of COMMANDS) assert.match(r.stdout, new RegExp(`^  ${c} +\\S`, 'm'), c)
    assert.match(r.stdout, /Exit status: 0 success, 1 failed check .*, 2 bad usage/)
  })

  it('every command has its own --help (exit 0) naming its usage and exit status', async () => {
    await Promise.all(
      COMMANDS.map(async (c) => {
        const r = await cbcJwt([...c.split(' '), '--help'])
        assert.equal(r.code, 0, c)
        assert.ok(r.stdout.startsWith(`Usage: cbc-jwt ${c} `), `${c}: ${r.stdout.slice(0, 60)}`)
        assert.match(r.stdout, /Exit status: 0 /, c)
      }),
    )
    const group = await cbcJwt(['token', '-h'])
    assert.equal(group.code, 0)
    assert.match(group.stdout, /token issue .*\n.*token verify/)
  })

  // --auto keeps a standby staged from its first run (docs/rotation.md); the help said it
  // stages a key only once the current one is due.
  it('rotate --help describes --auto as it runs: a standby kept staged, promoted after half its life', async () => {
    const r = await cbcJwt(['rotate', '--help'])
    assert.equal(r.code, 0)
    const auto = r.stdout.slice(r.stdout.indexOf('  --auto '), r.stdout.indexOf('  --compromised '))
    assert.match(auto, /keeping a standby staged/)
    assert.match(auto, /half of/)
    assert.match(auto, /stage a new standby whenever none is staged/)
    assert.doesNotMatch(auto, /stage a new one when\s+the current key is due/)
  })

  // Bad usage is one line on stderr: the help (37 lines, 7 for a group) was printed there instead.
  it('without a command: one line naming the commands (exit 2), for a group too; --version prints the package version', async () => {
    const r = await cbcJwt([])
    assert.equal(r.code, 2)
    assert.equal(r.stdout, '')
    assert.match(oneLine(r.stderr), /^cbc-jwt: give a command: keyset, rotate, revoke, token, status, verify-rotation, failures, serve \(see cbc-jwt --help\)$/)
    for (const [group, subs] of [
      ['keyset', 'init, validate, restore'],
      ['token', 'issue, verify'],
    ]) {
      const g = await cbcJwt([group!])
      assert.equal(g.code, 2, group)
      assert.match(oneLine(g.stderr), new RegExp(`^cbc-jwt: ${group}: give a command: ${subs} \\(see cbc-jwt ${group} --help\\)$`))
      const help = await cbcJwt([group!, '--help'])
      assert.equal(help.code, 0)
      assert.match(help.stdout, new RegExp(`^Usage: cbc-jwt ${group}`))
    }
    const pkg = JSON.parse(fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'))
    assert.equal((await cbcJwt(['--version'])).stdout, `cbc-jwt ${pkg.version}\n`)
  })

  it('the built bin starts with a node shebang', PROCESS_LEVEL, () => {
    assert.equal(fs.readFileSync(CLI_MAIN, 'utf8').split('\n')[0], '#!/usr/bin/env node')
  })

  it('the built bin is executable', PROCESS_LEVEL, () => {
    assert.ok(fs.statSync(CLI_MAIN).mode & 0o111)
  })

  it('the built bin, as a process, exits with the status the in-process runs show (0, 1, 2)', PROCESS_LEVEL, async () => {
    const file = await keysetFixture(tmp.file('process-k.json'))
    const [help, missing, unknown, badClock] = await Promise.all([
      cbcJwtProcess(['--help']),
      cbcJwtProcess(['status', '--keyset-file', `${file}.missing`]),
      cbcJwtProcess(['frobnicate']),
      cbcJwtProcess(['status', '--keyset-file', file], { env: { CBC_JWT_NOW: 'tomorrow' } }),
    ])
    assert.equal(help.code, 0, help.stderr)
    assert.match(help.stdout, /^Usage: cbc-jwt <command>/)
    assert.equal(missing.code, 1)
    assert.match(oneLine(missing.stderr), /^cbc-jwt: cannot read .*process-k\.json\.missing: ENOENT$/)
    assert.equal(unknown.code, 2)
    assert.match(oneLine(unknown.stderr), /^cbc-jwt: unknown command "frobnicate"/)
    assert.equal(badClock.code, 2)
    assert.match(oneLine(badClock.stderr), /^cbc-jwt: CBC_JWT_NOW must be an RFC 3339 time/)
  })
})

describe('bad input: one line on stderr, exit 2 (usage) or 1 (failed check), nothing written', { concurrency: true }, () => {
  const cases: Array<{ args: (file: string) => string[]; env?: Record<string, string>; code: number; line: RegExp }> = [
    { args: () => ['frobnicate'], code: 2, line: /^cbc-jwt: unknown command "frobnicate" \(see cbc-jwt --help\)$/ },
    { args: () => ['keyset', 'burn'], code: 2, line: /^cbc-jwt: unknown command "keyset burn"/ },
    { args: (f) => ['rotate', '--keyset-file', f, '--graec', '48h'], code: 2, line: /^cbc-jwt: rotate: unknown option --graec \(see cbc-jwt rotate --help\)$/ },
    { args: (f) => ['rotate', '--keyset-file', f, '--grace'], code: 2, line: /^cbc-jwt: rotate: option --grace needs a value/ },
    { args: (f) => ['rotate', '--keyset-file', f, '--dry-run=yes'], code: 2, line: /option --dry-run takes no value/ },
    // A one-value option given twice kept the last silently: verify-rotation checked one of two
    // instances and passed; a keyset or a cut-off was not the one the operator read first.
    ...[
      (_f: string) => ['verify-rotation', '--url', 'http://127.0.0.1:1', '--url', 'http://127.0.0.1:2'],
      (f: string) => ['rotate', '--keyset-file', f, '--keyset-file', `${f}.other`],
      (f: string) => ['revoke', '--keyset-file', f, '--issued-before', 'now', '--issued-before=2026-11-01T00:00:00Z'],
    ].map((args) => ({ args, code: 2, line: /^cbc-jwt: [a-z -]+: option --[a-z-]+ given more than once: it takes one value/ })),
    // parseArgs takes a value starting with "-" for an option: the line says how to give one.
    {
      args: (f) => ['revoke', '--keyset-file', f, '--client-id', '-svc', '--issued-before', 'now'],
      code: 2,
      line: /^cbc-jwt: revoke: option --client-id needs a value \(one starting with "-" is given as --client-id=VALUE\)/,
    },
    {
      args: (f) => ['rotate', '--keyset-file', f, '--grace', '2days'],
      code: 2,
      line: /^cbc-jwt: --grace: "2days" is not a duration \(use e\.g\. 90s, 15m, 24h, 6d\)$/,
    },
    // Added to now, it would leave the range of a date (it was an "unexpected error", exit 1).
    { args: (f) => ['rotate', '--keyset-file', f, '--grace', '999999999d'], code: 2, line: /^cbc-jwt: --grace: 999999999d is longer than 100 years$/ },
    { args: (f) => ['rotate', '--keyset-file', f, '--alg', 'none'], code: 2, line: /^cbc-jwt: --alg: unknown algorithm "none"/ },
    { args: (f) => ['rotate', '--keyset-file', f, '--stage', '--compromised'], code: 2, line: /choose one of --stage, --compromised/ },
    { args: (f) => ['rotate', '--keyset-file', f, '--compromised', '--grace', '48h'], code: 2, line: /--grace has no effect with --compromised/ },
    { args: (f) => ['rotate', f], code: 2, line: /unexpected argument ".*k\.json" \(use --keyset-file PATH, or - for stdin\/stdout\)/ },
    { args: (f) => ['status', '--keyset-file', f], env: { CBC_JWT_NOW: 'tomorrow' }, code: 2, line: /^cbc-jwt: CBC_JWT_NOW must be an RFC 3339 time/ },
    {
      args: (f) => ['status', '--keyset-file', f],
      env: { CBC_JWT_REFRESH_INTERVAL_SECONDS: 'often' },
      code: 2,
      line: /CBC_JWT_REFRESH_INTERVAL_SECONDS must be a number/,
    },
    { args: (f) => ['rotate', '--keyset-file', f], env: { CBC_JWT_MAX_TOKEN_TTL: 'long' }, code: 2, line: /CBC_JWT_MAX_TOKEN_TTL must be a duration/ },
    { args: (f) => ['rotate', '--backend', 'vault', '--keyset-file', f], code: 2, line: /--backend vault cannot be combined with --keyset-file/ },
    { args: () => ['status', '--backend', 'consul'], code: 2, line: /--backend must be one of file, vault, kubernetes \(got "consul"\)/ },
    { args: () => ['status', '--backend', 'vault'], code: 2, line: /^cbc-jwt: VAULT_ADDR is required when CBC_JWT_BACKEND=vault$/ },
    { args: (f) => ['rotate', '--keyset-file', `${f}.missing`], code: 1, line: /^cbc-jwt: cannot read .*k\.json\.missing: ENOENT$/ },
    { args: () => ['rotate', '-'], code: 1, line: /^cbc-jwt: stdin is empty: expected a keyset document$/ },
    { args: () => ['verify-rotation'], code: 2, line: /--url URL is required/ },
    { args: () => ['verify-rotation', '--url', 'localhost:8000'], code: 2, line: /--url must be http or https/ },
    // Paths are appended to the base: a query would end up before them.
    ...[
      ['verify-rotation', '--url', 'http://127.0.0.1:8000/?debug=1'],
      ['verify-rotation', '--prometheus', 'http://prometheus:9090/#x'],
    ].map((args) => ({ args: () => args, code: 2, line: /^cbc-jwt: --(url|prometheus): a URL with a query or fragment is refused/ })),
    // Credentials in a URL were never sent and were printed in every line naming the URL.
    ...[
      ['verify-rotation', '--url', 'http://admin:S3cretPass@127.0.0.1:8000'],
      ['verify-rotation', '--prometheus', 'https://admin:S3cretPass@prometheus.example:9090'],
      ['verify-rotation', '--replica', 'http://127.0.0.1:8000', '--replica', 'http://admin:S3cretPass@127.0.0.1:8001'],
    ].map((args) => ({
      args: () => args,
      code: 2,
      line: /^cbc-jwt: --(url|prometheus|replica): a URL with credentials \(user:password@\) is refused: they are not sent, and would be printed/,
    })),
    { args: () => ['token', 'verify'], code: 2, line: /give the TOKEN to verify/ },
    // A pasted Authorization value (`Bearer eyJ…`): the error names the mistake, never the token.
    ...[['token', 'verify', 'Bearer'], ['token', 'issue', '--sub', 'a'], ['status']].map((words) => ({
      args: () => [...words, 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl'],
      code: 2,
      line: /^cbc-jwt: [a-z ]+: unexpected argument: a token \(not shown\)(?![\s\S]*eyJ)/,
    })),
    // A file name of three dotted words is not a token: named, so the mistake can be seen.
    ...[['status'], ['keyset', 'validate']].map((words) => ({
      args: () => [...words, 'keyset.public.json'],
      code: 2,
      line: /^cbc-jwt: [a-z ]+: unexpected argument "keyset\.public\.json" \(use --keyset-file PATH\)/,
    })),
    // An argument is foreign text: escaped, never a terminal escape sequence.
    { args: () => ['rotate', 'x\u001b]0;pwn\u0007'], code: 2, line: /^cbc-jwt: rotate: unexpected argument "x\\x1b\]0;pwn\\x07"/ },
    // So is a flag's value named in its refusal, and a command word: a token pasted as one is not shown.
    ...[
      (f: string) => ['rotate', '--keyset-file', f, '--grace', 'x\u001b]0;pwn\u0007'],
      (f: string) => ['rotate', '--keyset-file', f, '--alg', 'x\u001b]0;pwn\u0007'],
      () => ['status', '--backend', 'x\u001b]0;pwn\u0007'],
      (f: string) => ['revoke', '--keyset-file', f, '--issued-before', 'x\u001b]0;pwn\u0007'],
      (f: string) => ['revoke', '--keyset-file', f, '--jti', 'j', '--expires-at', 'x\u001b]0;pwn\u0007'],
      () => ['verify-rotation', '--url', 'http://127.0.0.1:1', '--compromised', '--previous-kid', 'k', '--revoked-before', 'x\u001b]0;pwn\u0007'],
      () => ['failures', '--since', 'x\u001b]0;pwn\u0007'],
      () => ['failures', '--reason', 'x\u001b]0;pwn\u0007'],
      () => ['failures', '--top', 'x\u001b]0;pwn\u0007'],
      () => ['verify-rotation', '--prometheus', 'http://127.0.0.1:1', '--selector', '{x\u001b]0;pwn\u0007}'],
      () => ['x\u001b]0;pwn\u0007'],
      () => ['keyset', 'x\u001b]0;pwn\u0007'],
    ].map((args) => ({ args, code: 2, line: /^cbc-jwt: [^\u001b\u0007]*x\\x1b\]0;pwn\\x07[^\u001b\u0007]*$/ })),
    ...[[], ['token']].map((words) => ({
      args: () => [...words, 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl'],
      code: 2,
      line: /^cbc-jwt: unknown [a-z ]*command.*a token \(not shown\)(?![\s\S]*eyJ)/,
    })),
    // Date.parse reads these as other days (March 2, November 26): a typo must not move the cut-off.
    ...['2026-02-30T20:00:00Z', '2026-11-25T24:00:00Z', '2026-11-25T20:00:00+01:75'].map((time) => ({
      args: (f: string) => ['revoke', '--keyset-file', f, '--issued-before', time],
      env: { CBC_JWT_NOW: '2026-12-01T00:00:00Z' },
      code: 2,
      line: new RegExp(`^cbc-jwt: --issued-before: "${time.replace('+', '\\+')}" is not an RFC 3339 time`),
    })),
  ]

  let n = 0
  for (const c of cases) {
    it(`${c.args('k.json').join(' ')}${c.env ? ` (${Object.keys(c.env).join(', ')})` : ''} → exit ${c.code}`, async () => {
      const file = await keysetFixture(tmp.file(`${n++}-k.json`))
      const bytes = fs.readFileSync(file)
      const r = await cbcJwt(c.args(file), c.env ? { env: c.env } : {})
      assert.equal(r.code, c.code, r.stderr)
      assert.match(oneLine(r.stderr), c.line)
      assert.equal(r.stdout, '')
      assert.deepEqual(fs.readFileSync(file), bytes)
    })
  }

  it('an unreadable keyset file is a failed check (exit 1)', { skip: process.getuid?.() === 0 && 'root reads every file' }, async () => {
    const file = await keysetFixture(tmp.file('locked.json'), { mode: 0o000 })
    const r = await cbcJwt(['status', '--keyset-file', file], { env: at('2026-11-25T00:00:00Z') })
    assert.equal(r.code, 1)
    assert.match(oneLine(r.stderr), /cannot read .*locked\.json: EACCES/)
  })
})

// §10: no command prints private key material to a terminal unless a flag whose name says so
// asks. With -, a dry run or "nothing to do" echoes the input keyset: it went to the terminal.
describe('a keyset with private keys never reaches a terminal', { concurrency: true }, () => {
  const keyset = async (name: string): Promise<string> => fs.readFileSync(await keysetFixture(tmp.file(name)), 'utf8')

  it('keyset init without a destination, rotate/revoke with - on a terminal: refused (exit 2) whatever the outcome', async () => {
    const input = await keyset('tty.json')
    const standby = await cbcJwt(['rotate', '--auto', '-'], { input })
    assert.equal(standby.code, 0, standby.stderr)
    for (const [args, stdin] of [
      [['rotate', '-'], input],
      [['rotate', '-', '--dry-run'], input],
      [['rotate', '--auto', '-'], standby.stdout],
      [['revoke', '--issued-before', 'now', '-', '--dry-run'], input],
      [['keyset', 'init'], ''],
      [['keyset', 'init', '--alg', 'EdDSA', '-'], ''],
    ] as const) {
      const r = await cbcJwt([...args], { input: stdin, stdoutIsTTY: true })
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
      assert.match(oneLine(r.stderr), /^cbc-jwt: refusing to print a keyset with private keys to the terminal/, args.join(' '))
      assert.equal(r.stdout, '', args.join(' '))
    }
  })

  it('--print-private-key says so: the dry run prints the input keyset', async () => {
    const input = await keyset('tty-asked.json')
    const r = await cbcJwt(['rotate', '-', '--dry-run', '--print-private-key'], { input, stdoutIsTTY: true })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, input)
    const init = await cbcJwt(['keyset', 'init', '--print-private-key'], { stdoutIsTTY: true })
    assert.equal(init.code, 0, init.stderr)
    assert.equal(loadKeyset(JSON.parse(init.stdout)).signing, true)
  })
})

describe('docs/cli.md does not drift', () => {
  it('documents every command the CLI has, under its own heading', async () => {
    const { COMMANDS: registered } = await import('../../../src/ops/cli/run.js')
    assert.deepEqual(
      registered.map((c) => c.name),
      COMMANDS,
    )
    const doc = fs.readFileSync(new URL('../../../docs/cli.md', import.meta.url), 'utf8')
    for (const c of COMMANDS) assert.match(doc, new RegExp(`^### \`${c}[ \`]`, 'm'), c)
    for (const code of ['0', '1', '2']) assert.match(doc, new RegExp(`^\\| \`${code}\` \\|`, 'm'))
  })
})
