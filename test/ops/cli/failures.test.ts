/**
 * `cbc-jwt failures` over real log output: two real service processes reject real tokens,
 * their stdout is saved as files (and prefixed the way `kubectl logs --prefix` does), and the
 * built CLI reads them from files and from stdin.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import { after, before, describe, it } from 'node:test'
import { makeKey, makeKeyset, signToken, validClaims } from '../../support/keys.js'
import { CLI_MAIN, startService, type RunningService } from '../../support/service.js'
import { at, cbcJwt, tempDir } from './cli.js'
import { PROCESS_LEVEL } from '../../support/tier.js'

const tmp = tempDir('failures')
const key = makeKey('ES256', 'k-failures')
const forger = makeKey('ES256', key.kid) // the right kid, another key: bad_signature

/** The stdout lines of a service, as `kubectl logs --prefix` prints them for pod `pod`. */
const prefixed = (service: RunningService, pod: string) =>
  service
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => `[pod/${pod}/cbc-jwt] ${l}`)
    .join('\n')

describe('cbc-jwt failures', { concurrency: true, ...PROCESS_LEVEL }, () => {
  let replicaA: RunningService
  let replicaB: RunningService
  let fileA: string
  let fileB: string
  let started: number

  before(async () => {
    const keysetFile = tmp.file('keyset.json')
    fs.writeFileSync(keysetFile, JSON.stringify(makeKeyset([key])))
    const env = { CBC_JWT_KEYSET_FILE: keysetFile }
    ;[replicaA, replicaB] = await Promise.all([startService({ env, timeoutMs: 40_000 }), startService({ env, timeoutMs: 40_000 })])
    started = Date.now()
    const expired = (client: string) => signToken(key, validClaims({ client_id: client, iat: 1_700_000_000, exp: 1_700_000_600 }))
    const send = (s: RunningService, token: string | undefined, n: number) =>
      Promise.all(Array.from({ length: n }, () => s.get('/v1/whoami', token === undefined ? {} : { authorization: `Bearer ${token}` })))
    // replica A: 5 expired tokens of "acme", 2 forged, 1 without a token; B: 3 expired of "acme", 1 of "beta"
    await send(replicaA, expired('acme'), 5)
    await send(replicaA, signToken(forger, validClaims({ client_id: 'mallory' })), 2)
    await send(replicaA, undefined, 1)
    await send(replicaB, expired('acme'), 3)
    await send(replicaB, expired('beta'), 1)
    await send(replicaB, signToken(key, validClaims({ client_id: 'ok' })), 1)
    const rejected = (s: RunningService) => s.logs().filter((l) => l.event === 'auth_rejected').length
    assert.equal(rejected(replicaA), 8)
    assert.equal(rejected(replicaB), 4)
    fileA = tmp.file('replica-a.log')
    fileB = tmp.file('replica-b.log')
    // A's raw stdout plus a line of another process; B as kubectl --prefix prints it.
    fs.writeFileSync(fileA, `${replicaA.output()}Error: some other process wrote this token=eyJhbGciOi.secret\n`)
    fs.writeFileSync(fileB, `${prefixed(replicaB, 'cbc-jwt-b')}\n`)
  })
  after(async () => {
    await Promise.all([replicaA?.stop(), replicaB?.stop()])
    tmp.cleanup()
  })

  it('groups the rejections of several replicas by client id and reason, busiest first (--json)', async () => {
    const r = await cbcJwt(['failures', '--json', fileA, fileB])
    assert.equal(r.code, 0, r.stderr)
    const rows = JSON.parse(r.stdout) as Array<Record<string, unknown>>
    assert.deepEqual(
      rows.map((g) => [g.client_id, g.verified, g.reason, g.count]),
      [
        ['acme', true, 'expired', 8],
        ['mallory', false, 'bad_signature', 2], // the id the forged tokens claim (client_id_unverified)
        [null, true, 'missing', 1],
        ['beta', true, 'expired', 1],
      ],
    )
    for (const row of rows) {
      assert.deepEqual(Object.keys(row), ['client_id', 'verified', 'reason', 'count', 'first_seen', 'last_seen', 'spike_start'])
      assert.equal(row.spike_start, row.first_seen, 'one burst each: the spike starts with it')
      const first = Date.parse(String(row.first_seen))
      const last = Date.parse(String(row.last_seen))
      assert.ok(first >= started - 60_000 && first <= last && last <= Date.now(), JSON.stringify(row))
    }
    // The summary is on stderr in --json mode, and counts the foreign line without echoing it.
    assert.match(r.stderr, /12 rejection\(s\), \d+ other cbc-jwt line\(s\), 1 skipped \(not cbc-jwt JSON lines\)/)
    assert.doesNotMatch(r.stdout + r.stderr, /some other process|eyJhbGciOi/)
  })

  it("reads stdin, prints a table with the replicas, each group's spike start and the revoke commands", async () => {
    const input = `${prefixed(replicaA, 'cbc-jwt-a')}\n${fs.readFileSync(fileB, 'utf8')}`
    const r = await cbcJwt(['failures', '-'], { input })
    assert.equal(r.code, 0, r.stderr)
    const lines = r.stdout.split('\n')
    assert.match(lines[0]!, /^COUNT +REASON +CLIENT_ID +FIRST_SEEN +LAST_SEEN +SPIKE_START +REPLICAS +REMOTE$/)
    assert.match(lines[1]!, /^ +8 +expired +acme +\S+Z +\S+Z +\S+Z +2 +127\.0\.0\.1$/)
    assert.match(r.stdout, /^ +2 +bad_signature +mallory \(unverified\) +\S+Z +\S+Z +\S+Z +1 +127\.0\.0\.1$/m)
    const rejections = [replicaA, replicaB].flatMap((s) => s.logs().filter((l) => l.event === 'auth_rejected'))
    const first = Math.min(...rejections.map((l) => l.time as number))
    assert.match(r.stdout, new RegExp(`first rejection at ${new Date(first).toISOString()}`))
    // Each client's command starts at its own group's first rejection, rounded up to the second.
    const startOf = (client: string) => {
      const ms = Math.min(...rejections.filter((l) => (l.client_id ?? l.client_id_unverified) === client).map((l) => l.time as number))
      return new Date(Math.ceil(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z')
    }
    assert.match(
      r.stdout,
      new RegExp(`^spike start for "cbc-jwt revoke --issued-before" \\(every client's tokens; the busiest group's, expired acme\\): ${startOf('acme')}$`, 'm'),
    )
    assert.match(r.stdout, new RegExp(`^ {2}cbc-jwt revoke --client-id acme --issued-before ${startOf('acme')} {3}# 8 expired from `, 'm'))
    assert.match(
      r.stdout,
      new RegExp(
        `^ {2}cbc-jwt revoke --client-id mallory --issued-before ${startOf('mallory')} {3}# 2 bad_signature from \\S+; the id is only claimed by tokens whose signature did not verify`,
        'm',
      ),
    )
    assert.match(r.stdout, new RegExp(`^ {2}cbc-jwt revoke --client-id beta --issued-before ${startOf('beta')} `, 'm'))
    // No FILE at all reads stdin too.
    const bare = await cbcJwt(['failures', '--json'], { input })
    assert.equal(JSON.parse(bare.stdout).length, 4)
  })

  it('--reason and --since narrow the rows and the spike start', async () => {
    const r = await cbcJwt(['failures', '--json', '--reason', 'bad_signature,missing', fileA, fileB])
    assert.deepEqual(
      JSON.parse(r.stdout).map((g: { reason: string }) => g.reason),
      ['bad_signature', 'missing'],
    )
    assert.match(r.stderr, /3 rejection\(s\), 9 outside --since\/--until\/--reason\/--kid/)
    const byKid = await cbcJwt(['failures', '--json', '--kid', key.kid, fileA, fileB])
    assert.equal(
      JSON.parse(byKid.stdout).reduce((n: number, g: { count: number }) => n + g.count, 0),
      11,
      'every rejection but the missing token names the kid',
    )
    assert.deepEqual(JSON.parse((await cbcJwt(['failures', '--json', '--kid', 'k-other', fileA])).stdout), [])
    const later = await cbcJwt(['failures', '--json', '--since', '2099-01-01T00:00:00Z', fileA], {})
    assert.deepEqual(JSON.parse(later.stdout), [])
    assert.match(later.stderr, /^no rejections$/m)
    const recent = await cbcJwt(['failures', '--json', '--since', '1h', fileA], { env: at(new Date(Date.now() + 2 * 3_600_000).toISOString()) })
    assert.deepEqual(JSON.parse(recent.stdout), [], '--since 1h, two hours later: nothing')
  })

  it('reads the claimed client id of an unverified token, marks it, and never prints a control character', async () => {
    const file = tmp.file('unverified.log')
    const line = (o: Record<string, unknown>) =>
      `2026-11-25T20:00:0${o.s}.000000000Z ${JSON.stringify({ level: 40, time: Date.parse(`2026-11-25T20:00:0${o.s}Z`), service: 'cbc-jwt', event: 'auth_rejected', ...o, s: undefined })}`
    fs.writeFileSync(
      file,
      [
        line({ s: 1, reason: 'bad_signature', client_id: null, client_id_unverified: 'acme', remote_addr: '10.0.0.7' }),
        line({ s: 2, reason: 'bad_signature', client_id: null, client_id_unverified: 'acme', remote_addr: '10.0.0.7' }),
        line({ s: 3, reason: 'unknown_kid', client_id: null, client_id_unverified: 'evil\u001b[2Jname' }),
        line({ s: 4, reason: 'unknown_kid', client_id: null, client_id_unverified: 'c1\u009b2J\u202ebidi' }),
        '{"event":"auth_rejected","reason":"not_a_reason","time":1}',
        '{"event":"auth_rejected","reason":"expired"}',
        '[broken prefix {"event":"auth_rejected"}',
      ].join('\n'),
    )
    const r = await cbcJwt(['failures', file])
    assert.equal(r.code, 0, r.stderr)
    assert.match(
      r.stdout,
      /\n +2 +bad_signature +acme \(unverified\) +2026-11-25T20:00:01\.000Z +2026-11-25T20:00:02\.000Z +2026-11-25T20:00:01\.000Z +- +10\.0\.0\.7\n/,
    )
    // The forged id with a control character gets no command, only a pointer to --json.
    assert.match(r.stdout, /^ {2}\(client id "evil\\x1b\[2Jname" is not printable ASCII: take it from --json\) # 1 unknown_kid/m)
    assert.match(r.stdout, /unknown_kid +"evil\\x1b\[2Jname" \(unverified\)/)
    // C1 controls (U+009B is a CSI by itself) and bidi overrides are escaped like C0 ones.
    assert.match(r.stdout, /unknown_kid +"c1\\x9b2J\\u202ebidi" \(unverified\)/)
    assert.match(r.stdout, /^[\x09\x0a\x20-\x7e…]*$/)
    assert.match(r.stdout, /4 rejection\(s\), 0 other cbc-jwt line\(s\), 3 skipped/)
    const json = JSON.parse((await cbcJwt(['failures', '--json', file])).stdout)
    assert.deepEqual(json[0], {
      client_id: 'acme',
      verified: false,
      reason: 'bad_signature',
      count: 2,
      first_seen: '2026-11-25T20:00:01.000Z',
      last_seen: '2026-11-25T20:00:02.000Z',
      spike_start: '2026-11-25T20:00:01.000Z',
    })
  })

  it('the spike start is per client and reason: a stray rejection eleven minutes earlier moves nothing', async () => {
    const line = (ms: number, o: Record<string, unknown>) => JSON.stringify({ time: ms, service: 'cbc-jwt', event: 'auth_rejected', ...o })
    const T = Date.parse('2026-11-25T20:00:00.400Z')
    const lines = [
      line(T - 11 * 60_000, { reason: 'expired', client_id: 'someone-else' }), // another client, another reason
      line(T - 11 * 60_000, { reason: 'bad_signature', client_id_unverified: 'acme-batch' }), // the same group, a stray one
      ...Array.from({ length: 30 }, (_, i) => line(T + i * 100, { reason: 'bad_signature', client_id_unverified: 'acme-batch' })),
    ]
    const r = await cbcJwt(['failures', '-'], { input: lines.join('\n') })
    assert.equal(r.code, 0, r.stderr)
    assert.match(
      r.stdout,
      /^ {2}cbc-jwt revoke --client-id acme-batch --issued-before 2026-11-25T20:00:01Z {3}# 30 bad_signature from 2026-11-25T20:00:00\.400Z/m,
    )
    assert.match(
      r.stdout,
      /^spike start for "cbc-jwt revoke --issued-before" \(every client's tokens; the busiest group's, bad_signature acme-batch \(unverified\)\): 2026-11-25T20:00:01Z$/m,
    )
    const none = await cbcJwt(['failures', '--offenders', '0', '-'], { input: lines.join('\n') })
    assert.doesNotMatch(none.stdout, /cbc-jwt revoke --client-id/)
  })

  it("an id that is the tokens' sub (no client_id, no azp) gets a --subject command: a rule by client would not match them", async () => {
    const line = (ms: number, o: Record<string, unknown>) => JSON.stringify({ time: ms, service: 'cbc-jwt', event: 'auth_rejected', ...o })
    const T = Date.parse('2026-11-25T20:00:00.400Z')
    const lines = [
      ...Array.from({ length: 9 }, (_, i) => line(T + i * 100, { reason: 'expired', client_id: 'svc-a', client_id_claim: 'sub' })),
      ...Array.from({ length: 4 }, (_, i) => line(T + i * 100, { reason: 'expired', client_id: 'svc-a' })),
      ...Array.from({ length: 2 }, (_, i) => line(T + i * 100, { reason: 'expired', client_id: 'partner-7', client_id_claim: 'azp' })),
    ]
    const r = await cbcJwt(['failures', '-'], { input: lines.join('\n') })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^ {2}cbc-jwt revoke --subject svc-a --issued-before 2026-11-25T20:00:01Z {3}# 9 expired from /m)
    assert.match(
      r.stdout,
      /^ {2}cbc-jwt revoke --client-id svc-a --issued-before 2026-11-25T20:00:01Z {3}# 4 expired from /m,
      'a client svc-a is another group',
    )
    assert.match(r.stdout, /^ {2}cbc-jwt revoke --client-id partner-7 /m, 'a rule by client matches azp')
    assert.match(r.stdout, /^ +9 +expired +svc-a \(sub\) /m)
    const json = await cbcJwt(['failures', '--json', '-'], { input: lines.join('\n') })
    assert.deepEqual(
      JSON.parse(json.stdout).map((g: { client_id: string; subject?: boolean }) => [g.client_id, g.subject]),
      [
        ['svc-a', true],
        ['svc-a', undefined],
        ['partner-7', undefined],
      ],
    )
  })

  it('--max-groups caps memory against forged client ids and says what it did not group', async () => {
    const lines = Array.from({ length: 50 }, (_, i) =>
      JSON.stringify({ time: 1_764_633_600_000 + i, service: 'cbc-jwt', event: 'auth_rejected', reason: 'bad_signature', client_id_unverified: `forged-${i}` }),
    )
    const r = await cbcJwt(['failures', '--json', '--max-groups', '10', '-'], { input: lines.join('\n') })
    assert.equal(JSON.parse(r.stdout).length, 10)
    assert.match(r.stderr, /40 rejection\(s\) of further client ids past --max-groups were counted but not grouped/)
    assert.match(r.stderr, /first rejection at 2025-12-02T00:00:00\.000Z, last at 2025-12-02T00:00:00\.049Z: 50 rejection\(s\)/)
  })

  it('streams: 40 MB of log and one endless line read within a 32 MB heap', async () => {
    const file = tmp.file('big.log')
    const fd = fs.openSync(file, 'w')
    const block = Array.from(
      { length: 1000 },
      (_, i) =>
        `[pod/cbc-jwt-${i % 3}/cbc-jwt] ${JSON.stringify({ level: 40, time: 1_764_633_600_000 + i, service: 'cbc-jwt', event: 'auth_rejected', reason: i % 2 ? 'expired' : 'bad_signature', client_id: `client-${i % 7}`, kid: 'k-1', padding: 'x'.repeat(100) })}`,
    ).join('\n')
    for (let i = 0; i < 200; i++) fs.writeSync(fd, `${block}\n`)
    fs.writeSync(fd, 'y'.repeat(3 * 1024 * 1024)) // one line of 3 MB, no newline
    fs.closeSync(fd)
    assert.ok(fs.statSync(file).size > 40e6)
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['--max-old-space-size=32', CLI_MAIN, 'failures', '--json', file], { stdio: ['ignore', 'pipe', 'pipe'] })
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (d: Buffer) => (stdout += d))
      child.stderr.on('data', (d: Buffer) => (stderr += d))
      child.on('close', (code) => resolve({ code, stdout, stderr }))
    })
    assert.equal(r.code, 0, r.stderr.slice(0, 500))
    const rows = JSON.parse(r.stdout) as Array<{ count: number }>
    assert.equal(rows.length, 14)
    assert.equal(
      rows.reduce((n, g) => n + g.count, 0),
      200_000,
    )
    assert.match(r.stderr, /read 200001 line\(s\): 200000 rejection\(s\), 0 other cbc-jwt line\(s\), 1 skipped/)
  })

  it('bad usage exits 2, an unreadable file exits 1, each with one line', async () => {
    for (const args of [
      ['--reason', 'nope'],
      ['--since', 'yesterday'],
      ['--top', '-1'],
      ['-', '-'],
      // Found by an audit: an --until before --since selected nothing, and said only "0 rejections".
      ['--since', '2026-11-25T21:00:00Z', '--until', '2026-11-25T20:00:00Z'],
    ]) {
      const r = await cbcJwt(['failures', ...args])
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
      assert.match(r.stderr, /^cbc-jwt: .+\n$/)
    }
    const inverted = await cbcJwt(['failures', '--since', '2026-11-25T21:00:00Z', '--until', '2026-11-25T20:00:00Z'])
    assert.match(
      inverted.stderr,
      /^cbc-jwt: --until 2026-11-25T20:00:00\.000Z is not after --since 2026-11-25T21:00:00\.000Z: no rejection can be between them\n$/,
    )
    const missing = await cbcJwt(['failures', tmp.file('nope.log')])
    assert.equal(missing.code, 1)
    assert.match(missing.stderr, /^cbc-jwt: failures: cannot read .*nope\.log: ENOENT\n$/)
  })
})
