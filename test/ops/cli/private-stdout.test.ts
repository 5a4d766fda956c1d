// `cbc-jwt keyset init > keyset.json` is what the terminal refusal suggests; under umask 022 the
// shell creates that file 0644 before cbc-jwt runs, and the private keys in it were left
// readable by every local user. A real shell redirects the built CLI's stdout to a real file.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { after, describe, it } from 'node:test'
import { generateKeyset } from '../../../src/lib/keyset/generate.js'
import { serializeKeyset } from '../../../src/lib/keyset/serialize.js'
import { toVerificationKeyset } from '../../../src/lib/keyset/projection.js'
import { runChild } from '../../support/run-child.js'
import { CLI_MAIN } from '../../support/service.js'
import { PROCESS_LEVEL } from '../../support/tier.js'
import { tempDir } from './cli.js'

const SERVICE_USER = 65534 // nobody
const asRoot = process.getuid?.() === 0
const tmp = tempDir('private-stdout')
fs.chmodSync(tmp.dir, 0o1777)
after(() => tmp.cleanup())

/** `sh -c 'umask 022; cbc-jwt ARGS REDIRECT'`: the shell opens the file, as an operator's does. */
function inShell(args: string[], redirect: string, opts: { input?: string; uid?: number } = {}) {
  const quoted = [CLI_MAIN, ...args].map((a) => `'${a}'`).join(' ')
  return runChild('/bin/sh', ['-c', `umask 022; exec '${process.execPath}' ${quoted} ${redirect}`], {
    env: { PATH: process.env.PATH ?? '', HOME: '/tmp' },
    cwd: tmp.dir,
    timeoutMs: 60_000,
    what: `cbc-jwt ${args.join(' ')} ${redirect}`,
    ...(opts.input !== undefined ? { input: opts.input } : {}),
    ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
  })
}

const modeOf = (file: string) => fs.statSync(file).mode & 0o777

describe('private keys redirected to a file are not left readable by others', PROCESS_LEVEL, () => {
  it('keyset init > FILE under umask 022: the file is made 0600, one note on stderr', async () => {
    const file = tmp.file('init.json')
    const r = await inShell(['keyset', 'init'], `> '${file}'`)
    assert.equal(r.code, 0, r.stderr)
    assert.equal(modeOf(file), 0o600)
    assert.match(r.stderr, /^cbc-jwt: note: stdout is a file others could read \(0644\); made it 0600: it holds private keys\n$/)
    assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).keys.length, 1)
  })

  it('keyset init > FILE 2>&1: the file is still the keyset alone, made 0600', async () => {
    // A cron line or a wrapper that sends both streams to one file: a note written there would
    // precede the keys and leave a file that is no keyset.
    const file = tmp.file('both.json')
    const r = await inShell(['keyset', 'init'], `> '${file}' 2>&1`)
    assert.equal(r.code, 0, r.stderr)
    assert.equal(modeOf(file), 0o600)
    assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).keys.length, 1)
  })

  it('>> onto a file that already holds something others can read (a log): refused, the file untouched', async () => {
    // A parent's own log that stdout inherits, or a file appended to: others may hold it open
    // already (a log shipper, tail -f), which no chmod takes back, and its mode is not ours.
    const log = tmp.file('shared.log')
    fs.writeFileSync(log, 'an earlier line\n')
    fs.chmodSync(log, 0o644)
    const r = await inShell(['keyset', 'init'], `>> '${log}'`)
    assert.equal(r.code, 1, r.stderr)
    assert.match(
      r.stderr,
      /^cbc-jwt: refusing to write private keys to stdout: it is a file that already holds \d+ bytes others could read \(\d+:\d+ 0644\); nothing was written/,
    )
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
    assert.equal(fs.readFileSync(log, 'utf8'), 'an earlier line\n')
    assert.equal(modeOf(log), 0o644)
  })

  it('rotate - > FILE: the same; a verification keyset (no private key) keeps its mode', async () => {
    const doc = await generateKeyset('ES256')
    const rotated = tmp.file('rotated.json')
    const r = await inShell(['rotate', '-'], `> '${rotated}'`, { input: serializeKeyset(doc) })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(modeOf(rotated), 0o600)
    const pub = tmp.file('public.json')
    const p = await inShell(['revoke', '--issued-before', 'now', '-'], `> '${pub}'`, { input: serializeKeyset(toVerificationKeyset(doc)) })
    assert.equal(p.code, 0, p.stderr)
    assert.equal(modeOf(pub), 0o644)
    assert.doesNotMatch(p.stderr, /note: stdout/)
  })

  it('a pipe and /dev/null are left as they are', async () => {
    const piped = tmp.file('piped.json')
    const r = await inShell(['keyset', 'init'], `| cat > '${piped}'`)
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stderr, '')
    assert.equal(modeOf(piped), 0o644)
    const n = await inShell(['keyset', 'init'], '> /dev/null')
    assert.equal(n.code, 0, n.stderr)
    assert.equal(n.stderr, '')
    assert.equal(modeOf('/dev/null'), 0o666)
  })

  it('another user’s file cbc-jwt cannot make private: refused (exit 1), nothing written', {
    skip: asRoot ? false : 'needs root to run as another user',
  }, async () => {
    const file = tmp.file('theirs.json')
    fs.writeFileSync(file, '')
    fs.chmodSync(file, 0o666)
    const r = await inShell(['keyset', 'init'], `>> '${file}'`, { uid: SERVICE_USER })
    assert.equal(r.code, 1, r.stderr)
    assert.match(
      r.stderr,
      /^cbc-jwt: refusing to write private keys to stdout: it is a file others could read \(0:0 0666\) that cbc-jwt cannot make 0600 \(EPERM\); nothing was written/,
    )
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
    assert.equal(fs.readFileSync(file, 'utf8'), '')
    assert.equal(modeOf(file), 0o666)
  })
})
