import assert from 'node:assert/strict'
import fs from 'node:fs'
import { after, describe, it } from 'node:test'
import { loadKeyset } from '../../../src/lib/keyset/load.js'
import { freePort } from '../../support/free-port.js'
import { at, cbcJwt, keysetFixture, oneLine, readJson, tempDir } from './cli.js'

const tmp = tempDir('rotate')
after(tmp.cleanup)

const T0 = '2026-11-25T00:00:00Z'
const plus = (iso: string, ms: number) => new Date(Date.parse(iso) + ms).toISOString().replace('.000Z', 'Z')
const MIN = 60_000
const HOUR = 60 * MIN
const DAY = 24 * HOUR

let n = 0
/** A keyset file with one key created at T0, with `mode`. */
function keysetFile(mode = 0o600): Promise<string> {
  return keysetFixture(tmp.file(`keyset-${n++}.json`), { at: T0, mode })
}

describe('cbc-jwt rotate', { concurrency: true }, () => {
  it('makes a new key current, gives the old one now + 24h, keeps the file mode (0640 stays 0640)', async () => {
    const file = await keysetFile(0o640)
    const old = readJson(file).current
    const now = plus(T0, 3 * DAY)
    const r = await cbcJwt(['rotate', '--keyset-file', file], { env: at(now) })
    assert.equal(r.code, 0, r.stderr)
    const doc = readJson(file)
    assert.notEqual(doc.current, old)
    assert.match(doc.current, /^k-20261128-[0-9a-f]{6}$/)
    const oldEntry = doc.keys.find((k: { kid: string }) => k.kid === old)
    assert.equal(oldEntry.not_after, plus(now, DAY))
    assert.equal(fs.statSync(file).mode & 0o777, 0o640)
    assert.match(r.stdout, new RegExp(`^rotated ${old} → ${doc.current}:`))
    assert.match(r.stdout, new RegExp(`changed  ${old}  current → verify-only, not_after ${plus(now, DAY)}`))
    assert.match(r.stdout, /wrote .*keyset-\d+\.json\n$/)
    loadKeyset(doc, Date.parse(now))
  })

  it('round-trips stdin to stdout; the report goes to stderr', async () => {
    const input = fs.readFileSync(await keysetFixture(tmp.file('eddsa.json'), { at: T0, alg: 'EdDSA' }), 'utf8')
    const r = await cbcJwt(['rotate', '--alg', 'ES384', '-'], { env: at(plus(T0, HOUR)), input })
    assert.equal(r.code, 0, r.stderr)
    const doc = JSON.parse(r.stdout)
    assert.equal(doc.keys.length, 2)
    assert.equal(doc.keys.find((k: { kid: string }) => k.kid === doc.current).alg, 'ES384')
    assert.match(r.stderr, /^rotated k-/)
    loadKeyset(doc, Date.parse(T0) + HOUR)
  })

  it('leaves an invalid keyset byte-for-byte untouched (exit 1, one line)', async () => {
    const file = await keysetFixture(tmp.file('broken.json'))
    const doc = readJson(file)
    doc.keys[0].jwk.crv = 'P-384'
    fs.writeFileSync(file, JSON.stringify(doc))
    const bytes = fs.readFileSync(file)
    const r = await cbcJwt(['rotate', '--keyset-file', file])
    assert.equal(r.code, 1)
    assert.match(oneLine(r.stderr), /broken\.json: invalid keyset: keys\[0\]\.jwk\.crv: ES256 needs P-256$/)
    assert.deepEqual(fs.readFileSync(file), bytes)
    assert.equal(r.stdout, '')
  })

  // A keyset with thousands of bad keys made a 245 KB "line"; keyset validate lists them all.
  it('an invalid keyset with many problems: one line naming the first few and the count, all listed by keyset validate', async () => {
    const file = await keysetFixture(tmp.file('many-problems.json'))
    const doc = readJson(file)
    for (let i = 0; i < 500; i++) doc.keys.push({ ...doc.keys[0], kid: `k-bad-${i}`, created_at: 'yesterday' })
    fs.writeFileSync(file, JSON.stringify(doc))
    const r = await cbcJwt(['rotate', '--keyset-file', file])
    assert.equal(r.code, 1)
    const line = oneLine(r.stderr)
    assert.match(
      line,
      /many-problems\.json: invalid keyset: keys\[1\]\.created_at: must be an RFC 3339 date-time .*; … and 490 more problem\(s\) \(cbc-jwt keyset validate lists them all\)$/,
    )
    assert.ok(line.length < 2000, `${line.length} characters`)
    const all = await cbcJwt(['keyset', 'validate', '--keyset-file', file])
    assert.equal(all.code, 1)
    assert.equal(all.stdout.trim().split('\n').length, 500)
  })

  it('refuses a grace below 24h or below the max token TTL (exit 2), writing nothing', async () => {
    const file = await keysetFile()
    const bytes = fs.readFileSync(file)
    const short = await cbcJwt(['rotate', '--grace', '12h', '--keyset-file', file])
    assert.equal(short.code, 2)
    assert.match(oneLine(short.stderr), /--grace 12h is below the 24h minimum/)
    const belowTtl = await cbcJwt(['rotate', '--grace', '30h', '--keyset-file', file], { env: { CBC_JWT_MAX_TOKEN_TTL: '48h' } })
    assert.equal(belowTtl.code, 2)
    assert.match(oneLine(belowTtl.stderr), /--grace 30h is shorter than the longest token lifetime \(2d/)
    const flag = await cbcJwt(['rotate', '--grace', '30h', '--max-token-ttl', '36h', '--keyset-file', file], { env: { CBC_JWT_MAX_TOKEN_TTL: '12h' } })
    assert.equal(flag.code, 2, 'the flag beats the environment')
    assert.deepEqual(fs.readFileSync(file), bytes)
  })

  it('accepts a grace of exactly 24h, or exactly the max token TTL: both bounds are minimums', async () => {
    const now = plus(T0, DAY)
    for (const [grace, env, ms] of [
      ['24h', {}, DAY],
      ['36h', { CBC_JWT_MAX_TOKEN_TTL: '36h' }, 36 * HOUR],
    ] as const) {
      const file = await keysetFile()
      const old = readJson(file).current
      const r = await cbcJwt(['rotate', '--grace', grace, '--keyset-file', file], { env: at(now, env) })
      assert.equal(r.code, 0, r.stderr)
      assert.equal(readJson(file).keys.find((k: { kid: string }) => k.kid === old).not_after, plus(now, ms), grace)
    }
  })

  it('defaults the grace to the max token TTL when it is longer than 24h', async () => {
    const file = await keysetFile()
    const old = readJson(file).current
    const r = await cbcJwt(['rotate', '--keyset-file', file], { env: at(plus(T0, DAY), { CBC_JWT_MAX_TOKEN_TTL: '172800' }) })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(readJson(file).keys.find((k: { kid: string }) => k.kid === old).not_after, plus(T0, 3 * DAY))
  })

  it('--dry-run prints the change and writes nothing; with - stdout is the input unchanged', async () => {
    const file = await keysetFile()
    const bytes = fs.readFileSync(file)
    const r = await cbcJwt(['rotate', '--dry-run', '--keyset-file', file], { env: at(plus(T0, DAY)) })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^dry run, nothing written — rotated k-\S+ → k-\S+:\n {2}added {4}k-\S+ {2}ES256 current\n {2}changed/)
    assert.deepEqual(fs.readFileSync(file), bytes)

    const piped = await cbcJwt(['rotate', '--dry-run', '-'], { env: at(plus(T0, DAY)), input: bytes.toString() })
    assert.equal(piped.code, 0)
    assert.equal(piped.stdout, bytes.toString())
    assert.match(piped.stderr, /^dry run, nothing written/)
  })

  it('repairs a keyset whose current key has expired (every token failing); --auto refuses it', async () => {
    const file = await keysetFile()
    const doc = readJson(file)
    doc.keys[0].not_after = plus(T0, DAY)
    fs.writeFileSync(file, JSON.stringify(doc))
    const env = { env: at(plus(T0, 2 * DAY)) }
    const auto = await cbcJwt(['rotate', '--auto', '--keyset-file', file], env)
    assert.equal(auto.code, 1)
    assert.match(oneLine(auto.stderr), /keys\[0\]\.not_after: the current key is past its not_after/)
    const r = await cbcJwt(['rotate', '--keyset-file', file], env)
    assert.equal(r.code, 0, r.stderr)
    assert.notEqual(readJson(file).current, doc.current)
    assert.equal((await cbcJwt(['keyset', 'validate', '--keyset-file', file], env)).code, 0)
  })

  it('prunes keys past not_after', async () => {
    const file = await keysetFile()
    const first = readJson(file).current
    assert.equal((await cbcJwt(['rotate', '--keyset-file', file], { env: at(plus(T0, DAY)) })).code, 0)
    const r = await cbcJwt(['rotate', '--keyset-file', file], { env: at(plus(T0, 3 * DAY)) })
    assert.equal(r.code, 0, r.stderr)
    assert.ok(!readJson(file).keys.some((k: { kid: string }) => k.kid === first))
    assert.match(r.stdout, new RegExp(`pruned {3}${first}  \\(was verify-only\\)`))
  })

  it('pointed at the verification projection (keyset.public.json), every mode says so (exit 1), writing nothing', async () => {
    const file = await keysetFile()
    assert.equal((await cbcJwt(['revoke', '--issued-before', 'now', '--keyset-file', file], { env: at(plus(T0, HOUR)) })).code, 0)
    const projection = file.replace(/\.json$/, '.public.json')
    const bytes = fs.readFileSync(projection)
    for (const mode of [[], ['--stage'], ['--auto'], ['--compromised']]) {
      const r = await cbcJwt(['rotate', ...mode, '--keyset-file', projection], { env: at(plus(T0, HOUR)) })
      assert.equal(r.code, 1, `rotate ${mode.join(' ')}: ${r.stdout}`)
      assert.match(oneLine(r.stderr), /^cbc-jwt: .*keyset-\d+\.public\.json is a verification keyset \(no private key\): rotate needs the private keyset/)
      assert.deepEqual(fs.readFileSync(projection), bytes)
    }
  })
})

describe('cbc-jwt rotate --stage / --promote', { concurrency: true }, () => {
  it('the replica gate is never dropped by its configuration: an empty CBC_JWT_PROMETHEUS_URL, or credentials in a URL, is bad usage', async () => {
    const file = await keysetFile()
    assert.equal((await cbcJwt(['rotate', '--stage', '--keyset-file', file], { env: at(plus(T0, DAY)) })).code, 0)
    const bytes = fs.readFileSync(file)
    // Past the time window: without the gate, the promotion would go through on time alone.
    const later = at(plus(T0, 2 * DAY))
    for (const [args, env, message] of [
      [['--promote'], { CBC_JWT_PROMETHEUS_URL: ' ' }, /^cbc-jwt: CBC_JWT_PROMETHEUS_URL is set but empty/],
      [['--auto'], { CBC_JWT_PROMETHEUS_URL: '' }, /^cbc-jwt: CBC_JWT_PROMETHEUS_URL is set but empty/],
      [['--promote', '--prometheus', 'http://ops:s3cret@prometheus:9090'], {}, /^cbc-jwt: --prometheus: a URL with credentials .* not sent/],
      [['--promote', '--replica', 'http://ops:s3cret@10.0.0.7:8000'], {}, /^cbc-jwt: --replica: a URL with credentials .* not sent/],
    ] as const) {
      const r = await cbcJwt(['rotate', ...args, '--keyset-file', file], { env: { ...later, ...env } })
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`)
      assert.match(oneLine(r.stderr), message)
      assert.doesNotMatch(r.stderr, /s3cret/, 'the password is never printed')
      assert.deepEqual(fs.readFileSync(file), bytes, 'nothing promoted')
    }
  })

  it('stages, refuses an early promotion saying how long to wait, promotes after the window', async () => {
    const file = await keysetFile()
    const old = readJson(file).current
    const staged = await cbcJwt(['rotate', '--stage', '--keyset-file', file], { env: at(plus(T0, DAY)) })
    assert.equal(staged.code, 0, staged.stderr)
    const stagedDoc = readJson(file)
    const kid = stagedDoc.keys.find((k: { kid: string }) => k.kid !== old).kid
    assert.equal(stagedDoc.current, old)
    assert.equal(stagedDoc.keys.find((k: { kid: string }) => k.kid === kid).not_after, undefined)
    assert.match(staged.stdout, new RegExp(`added {4}${kid}  ES256 staged`))

    const bytes = fs.readFileSync(file)
    const early = await cbcJwt(['rotate', '--promote', '--keyset-file', file], { env: at(plus(T0, DAY + MIN)) })
    assert.equal(early.code, 1)
    assert.match(oneLine(early.stderr), new RegExp(`${kid} was published 1m ago; .* Promote it in 1m30s \\(propagation window 2m30s\\), or use --force`))
    assert.deepEqual(fs.readFileSync(file), bytes)

    const promoted = await cbcJwt(['rotate', '--promote', '--keyset-file', file], { env: at(plus(T0, DAY + 150_000)) })
    assert.equal(promoted.code, 0, promoted.stderr)
    const doc = readJson(file)
    assert.equal(doc.current, kid)
    assert.equal(doc.keys.find((k: { kid: string }) => k.kid === old).not_after, plus(T0, 2 * DAY + 150_000))
  })

  it('derives the window from CBC_JWT_REFRESH_INTERVAL_SECONDS; --propagation and --force override', async () => {
    const file = await keysetFile()
    assert.equal((await cbcJwt(['rotate', '--stage', '--keyset-file', file], { env: at(plus(T0, DAY)) })).code, 0)
    const later = at(plus(T0, DAY + 100_000), { CBC_JWT_REFRESH_INTERVAL_SECONDS: '5' }) // window 2 × 5 s + 90 s
    const longer = await cbcJwt(['rotate', '--promote', '--propagation', '10m', '--keyset-file', file], { env: later })
    assert.equal(longer.code, 1)
    assert.match(longer.stderr, /Promote it in 8m20s/)
    const ok = await cbcJwt(['rotate', '--promote', '--keyset-file', file], { env: later })
    assert.equal(ok.code, 0, ok.stderr)

    assert.equal((await cbcJwt(['rotate', '--stage', '--keyset-file', file], { env: at(plus(T0, 2 * DAY)) })).code, 0)
    const bytes = fs.readFileSync(file)
    for (const mode of [['--promote'], ['--auto']]) {
      // A window of nothing is --force by another name, and --auto has no --force at all.
      const zero = await cbcJwt(['rotate', ...mode, '--propagation', '0s', '--keyset-file', file], { env: at(plus(T0, 2 * DAY + 1000)) })
      assert.equal(zero.code, 2, `${mode}: ${zero.stderr}`)
      assert.match(oneLine(zero.stderr), /--propagation 0 would promote a staged key before any replica has loaded it: use --promote --force/)
    }
    assert.deepEqual(fs.readFileSync(file), bytes)
    const forced = await cbcJwt(['rotate', '--promote', '--force', '--keyset-file', file], { env: at(plus(T0, 2 * DAY + 1000)) })
    assert.equal(forced.code, 0, forced.stderr)
    assert.match(forced.stdout, /note: forced/)
  })

  it('refuses a second --stage and a --promote with nothing staged (exit 1)', async () => {
    const file = await keysetFile()
    const none = await cbcJwt(['rotate', '--promote', '--keyset-file', file])
    assert.equal(none.code, 1)
    assert.match(oneLine(none.stderr), /no staged key to promote/)
    assert.equal((await cbcJwt(['rotate', '--stage', '--keyset-file', file])).code, 0)
    const twice = await cbcJwt(['rotate', '--stage', '--keyset-file', file])
    assert.equal(twice.code, 1)
    assert.match(oneLine(twice.stderr), /is already staged/)
  })
})

describe('cbc-jwt rotate --auto', { concurrency: true }, () => {
  it('keeps a standby and is idempotent: the second run writes nothing (same bytes, same mtime) and says "nothing to do"', async () => {
    const file = await keysetFile()
    const run = (iso: string) => cbcJwt(['rotate', '--auto', '--every', '6d', '--keyset-file', file], { env: at(iso) })
    const stage = await run(plus(T0, DAY))
    assert.equal(stage.code, 0, stage.stderr)
    assert.match(stage.stdout, /added {4}k-20261126-\S+ {2}ES256 staged/)
    assert.match(stage.stdout, /as the standby/)
    const afterStage = fs.readFileSync(file)
    const old = Math.floor(Date.now() / 1000) - 60
    fs.utimesSync(file, old, old)
    const again = await run(plus(T0, 2 * DAY))
    assert.equal(again.code, 0)
    assert.match(again.stdout, /^nothing to do\n {2}k-\S+ is the standby; it becomes current from 2026-11-28T23:58:45Z/)
    assert.deepEqual(fs.readFileSync(file), afterStage)
    assert.equal(fs.statSync(file).mtimeMs, old * 1000)

    // Half of 6d - 150s after it was staged, the standby signs and a new one is staged.
    const promote = await run(plus(T0, 4 * DAY))
    assert.equal(promote.code, 0, promote.stderr)
    assert.match(promote.stdout, /^scheduled rotation: rotated /)
    assert.match(promote.stdout, /added {4}k-20261129-\S+ {2}ES256 staged/)
    const afterPromote = fs.readFileSync(file)
    const third = await run(plus(T0, 4 * DAY))
    assert.match(third.stdout, /^nothing to do\n/)
    assert.deepEqual(fs.readFileSync(file), afterPromote)
  })

  it('with -, a run with nothing to do prints the input unchanged (a pipeline stays a no-op)', async () => {
    const file = await keysetFile()
    assert.equal((await cbcJwt(['rotate', '--stage', '--keyset-file', file], { env: at(plus(T0, HOUR)) })).code, 0) // the standby
    const input = fs.readFileSync(file, 'utf8')
    const r = await cbcJwt(['rotate', '--auto', '-'], { env: at(plus(T0, DAY)), input })
    assert.equal(r.code, 0)
    assert.equal(r.stdout, input)
    assert.match(r.stderr, /^nothing to do/)
  })

  it('refuses a period over the 7-day SLA or not above twice the window (exit 2)', async () => {
    const file = await keysetFile()
    const long = await cbcJwt(['rotate', '--auto', '--every', '8d', '--keyset-file', file])
    assert.equal(long.code, 2)
    assert.match(oneLine(long.stderr), /--every 8d is longer than the 7-day key-age SLA/)
    const short = await cbcJwt(['rotate', '--auto', '--every', '4m', '--keyset-file', file])
    assert.equal(short.code, 2)
    assert.match(oneLine(short.stderr), /more than twice the propagation window \(2m30s\)/)
  })

  it('accepts a period of exactly 7 days, and one just above twice the window; exactly twice is refused', async () => {
    for (const [every, code] of [
      ['7d', 0],
      ['301s', 0],
      ['5m', 2],
    ] as const) {
      const r = await cbcJwt(['rotate', '--auto', '--every', every, '--keyset-file', await keysetFile()], { env: at(plus(T0, DAY)) })
      assert.equal(r.code, code, `--every ${every}: ${r.stderr}`)
    }
  })
})

describe('cbc-jwt rotate --compromised and revoke', { concurrency: true }, () => {
  it('--compromised: the standby signs, every other key ends now, revoked_before = now, a new standby', async () => {
    const file = await keysetFile()
    const first = readJson(file).current
    assert.equal((await cbcJwt(['rotate', '--grace', '48h', '--keyset-file', file], { env: at(plus(T0, 2 * DAY)) })).code, 0)
    assert.equal((await cbcJwt(['rotate', '--stage', '--keyset-file', file], { env: at(plus(T0, 3 * DAY)) })).code, 0)
    const before = readJson(file)
    const now = plus(T0, 3 * DAY + HOUR)
    const r = await cbcJwt(['rotate', '--compromised', '--keyset-file', file], { env: at(now) })
    assert.equal(r.code, 0, r.stderr)
    const doc = readJson(file)
    const standby = before.keys.at(-1).kid
    assert.equal(doc.current, standby, 'the staged standby signs: every replica already has it')
    assert.equal(doc.revoked_before, now)
    for (const k of before.keys) if (k.kid !== standby) assert.equal(doc.keys.find((e: { kid: string }) => e.kid === k.kid).not_after, now, k.kid)
    assert.ok(before.keys.some((k: { kid: string }) => k.kid === first))
    const successor = doc.keys.find((k: { kid: string; not_after?: string }) => k.kid !== standby && !before.keys.some((b: { kid: string }) => b.kid === k.kid))
    assert.ok(successor && successor.not_after === undefined, 'a new standby is staged')
    assert.match(r.stdout, /^EMERGENCY rotation /)
    assert.match(r.stdout, /promoted the standby/)
    // the next operation prunes what --compromised cut off
    const next = await cbcJwt(['rotate', '--auto', '--keyset-file', file], { env: at(plus(now, 1000)) })
    assert.equal(next.code, 0, next.stderr)
    assert.deepEqual(
      readJson(file)
        .keys.map((k: { kid: string }) => k.kid)
        .sort(),
      [doc.current, successor.kid].sort(),
    )
  })

  it('revoke --issued-before now|TIME sets revoked_before; the future and nonsense are refused (exit 2)', async () => {
    const file = await keysetFile()
    const now = plus(T0, HOUR)
    const r = await cbcJwt(['revoke', '--issued-before', 'now', '--keyset-file', file], { env: at(now) })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(readJson(file).revoked_before, now)
    assert.match(r.stdout, new RegExp(`revoked_before {2}\\(none\\) → ${now}`))
    const bytes = fs.readFileSync(file)
    const future = await cbcJwt(['revoke', '--issued-before', plus(now, 2 * MIN), '--keyset-file', file], { env: at(now) })
    assert.equal(future.code, 2)
    assert.match(oneLine(future.stderr), /is in the future/)
    const bad = await cbcJwt(['revoke', '--issued-before', 'last tuesday', '--keyset-file', file], { env: at(now) })
    assert.equal(bad.code, 2)
    assert.match(oneLine(bad.stderr), /"last tuesday" is not an RFC 3339 time/)
    const back = await cbcJwt(['revoke', '--issued-before', T0, '--keyset-file', file], { env: at(now) })
    assert.equal(back.code, 1)
    assert.match(oneLine(back.stderr), /would accept tokens that are revoked now/)
    assert.deepEqual(fs.readFileSync(file), bytes)
    const soon = await cbcJwt(['revoke', '--issued-before', plus(now, 30_000), '--keyset-file', file], { env: at(now) })
    assert.equal(soon.code, 0, 'less than a minute ahead is clock skew, accepted')
  })

  it('--selector or --wait on the command line asks for the confirmation (CBC_JWT_PROMETHEUS_URL as the Prometheus); never silently ignored', async () => {
    const prometheus = `http://127.0.0.1:${await freePort()}`
    const env = { ...at(plus(T0, HOUR)), CBC_JWT_PROMETHEUS_URL: prometheus }
    for (const args of [
      ['rotate', '--compromised', '--selector', 'job="cbc-jwt",namespace="cbc"', '--wait', '1s'],
      ['revoke', '--issued-before', 'now', '--selector', 'job="cbc-jwt",namespace="cbc"'],
      ['revoke', '--client-id', 'acme', '--issued-before', 'now', '--wait', '1s'],
    ]) {
      const file = await keysetFile()
      const r = await cbcJwt([...args, '--keyset-file', file], { env })
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`)
      assert.match(
        r.stderr,
        /^NOT confirmed after \d+s: cannot ask Prometheus http:\/\/127\.0\.0\.1:\d+ \{job="cbc-jwt"(,namespace="cbc")?\}: ECONNREFUSED/m,
        args.join(' '),
      )
    }
    // No Prometheus anywhere: bad usage, before anything is written.
    for (const args of [
      ['rotate', '--compromised', '--selector', 'job="cbc-jwt"'],
      ['revoke', '--issued-before', 'now', '--selector', 'job="cbc-jwt"'],
    ]) {
      const file = await keysetFile()
      const bytes = fs.readFileSync(file)
      const r = await cbcJwt([...args, '--keyset-file', file], { env: at(plus(T0, HOUR)) })
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
      assert.match(oneLine(r.stderr), /--selector needs --prometheus URL \(or CBC_JWT_PROMETHEUS_URL\)/)
      assert.deepEqual(fs.readFileSync(file), bytes)
    }
  })

  it('an audit log that cannot be appended after the write does not skip the confirmation: both are reported, exit 1', async () => {
    const replica = `http://127.0.0.1:${await freePort()}`
    for (const command of [
      ['rotate', '--compromised'],
      ['revoke', '--client-id', 'acme', '--issued-before', 'now'],
    ]) {
      const file = await keysetFile()
      // /dev/full opens for appending, and every write to it fails (ENOSPC): a full disk.
      const r = await cbcJwt([...command, '--audit-log', '/dev/full', '--replica', replica, '--wait', '1s', '--keyset-file', file], {
        env: at(plus(T0, HOUR)),
      })
      assert.equal(r.code, 1, `${command.join(' ')}: ${r.stdout}${r.stderr}`)
      assert.match(r.stdout + r.stderr, /NOT contained after 1s on 1 replica\(s\)/, 'the confirmation ran')
      assert.match(r.stderr, /the keyset was changed, but --audit-log "\/dev\/full" could not be appended \(ENOSPC\)/)
    }
  })

  it('-: a keyset streamed to stdout reaches the replicas only after the command ends, so confirming it is bad usage (exit 2), before anything is read', async () => {
    const file = await keysetFile()
    const input = fs.readFileSync(file, 'utf8')
    const replica = `http://127.0.0.1:${await freePort()}`
    for (const args of [
      ['rotate', '--compromised', '-', '--replica', replica, '--wait', '1s'],
      ['revoke', '--issued-before', 'now', '--keyset-file', '-', '--replica', replica],
      ['revoke', '--client-id', 'acme', '--issued-before', 'now', '-', '--prometheus', replica],
    ]) {
      const r = await cbcJwt(args, { env: at(plus(T0, HOUR)), input })
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`)
      assert.equal(r.stdout, '', 'no keyset on stdout')
      assert.match(oneLine(r.stderr), /cannot confirm a keyset streamed to stdout: the replicas get it only once this command has ended/)
    }
  })
})
