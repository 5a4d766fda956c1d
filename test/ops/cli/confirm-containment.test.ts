/**
 * `rotate --compromised` and `revoke` confirmed on replicas (`--replica`), in process: each
 * replica is a real loopback server answering /v1/keys with what the real loader and key view
 * make of the keyset file at the moment it is asked (a replica that follows), or with what they
 * made of it before the write (a replica that does not). The clock is pinned: keys cut off get
 * `not_after` = that instant, the instant the confirmation compares them with.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs'
import http from 'node:http'
import { after, describe, it } from 'node:test'
import { keysBody } from '../../../src/lib/core/keys-view.js'
import { loadKeyset, parseKeysetText } from '../../../src/lib/keyset/load.js'
import { containmentFleet, DEFAULT_CONTAINMENT_WAIT_MS } from '../../../src/ops/cli/confirm-containment.js'
import { at, cbcJwt, keysetFixture, readJson, tempDir } from './cli.js'

const tmp = tempDir('confirm-containment')
const NOW = '2026-11-25T12:00:00Z'
const closers: Array<() => void> = []
after(() => {
  for (const close of closers) close()
  tmp.cleanup()
})
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** The /v1/keys body a replica with this keyset file in force shows at NOW; `extra` changes it. */
function keysOf(file: string, extra: (body: any) => void = () => {}): string {
  const now = Date.parse(NOW)
  const keyset = loadKeyset(parseKeysetText(fs.readFileSync(file, 'utf8')), now)
  const body: any = keysBody({ keyset: () => keyset }, now)
  extra(body)
  return JSON.stringify(body)
}

async function replica(answer: () => string): Promise<string> {
  const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(answer()))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  closers.push(() => server.close())
  closers.push(() => server.closeAllConnections())
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`
}

/** A keyset at T0 with a staged standby, and a replica that loads the file whenever it is asked. */
async function fleetOf(name: string): Promise<{ file: string; following: string }> {
  const file = await keysetFixture(tmp.file(`${name}.json`), { at: '2026-11-24T00:00:00Z' })
  assert.equal((await cbcJwt(['rotate', '--stage', '--keyset-file', file], { env: at('2026-11-24T01:00:00Z') })).code, 0)
  return { file, following: await replica(() => keysOf(file)) }
}

const run = (args: string[], file: string) => cbcJwt([...args, '--keyset-file', file, '--audit-log', tmp.file('audit.log')], { env: at(NOW) })

describe('confirming a containment on the replicas', { concurrency: true }, () => {
  it('rotate --compromised: each replica that follows, then every replica, on stdout; exit 0', async () => {
    const { file, following } = await fleetOf('follows')
    // Loads the new keyset only 300 ms after it is first asked (a volume that syncs late).
    const frozen = keysOf(file)
    let first: number | undefined
    const late = await replica(() => (Date.now() - (first ??= Date.now()) < 300 ? frozen : keysOf(file)))
    const r = await run(['rotate', '--compromised', '--replica', following, '--replica', late, '--wait', '3s'], file)
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.match(r.stdout, new RegExp(`^contained on ${escape(following)} after \\d+\\.\\ds$`, 'm'))
    const after = Number(new RegExp(`^contained on ${escape(late)} after (\\d+\\.\\d)s$`, 'm').exec(r.stdout)?.[1])
    assert.ok(after >= 0.3, r.stdout)
    assert.match(r.stdout, /^contained on every replica \(2, seen through --replica http:/m)
    assert.doesNotMatch(r.stderr, /contained|confirmed/)
  })

  it('a replica still on the keyset before the write: named on stderr with the keys it has, exit 1; the others on stdout', async () => {
    const { file, following } = await fleetOf('stale')
    const old = readJson(file).current
    const frozen = keysOf(file)
    const stale = await replica(() => frozen)
    const r = await run(['rotate', '--compromised', '--replica', following, '--replica', stale, '--wait', '300ms'], file)
    assert.equal(r.code, 1, r.stdout + r.stderr)
    assert.match(r.stdout, new RegExp(`^contained on ${escape(following)} after \\d+\\.\\ds$`, 'm'))
    assert.doesNotMatch(r.stdout, new RegExp(escape(stale)))
    assert.match(
      r.stderr,
      new RegExp(
        `^NOT contained after 300ms on 1 replica\\(s\\): ${escape(stale)} \\(has ${old} current, .*\\) — they may still accept the old keys: restart those pods$`,
        'm',
      ),
    )
  })

  it('attack: a cut-off key still verifying (not_after is now: it verifies no more), or the new key only staged: not contained', async () => {
    const { file, following } = await fleetOf('half')
    const old = readJson(file).current
    const before = JSON.parse(keysOf(file)).keys.find((k: { kid: string }) => k.kid === old)
    // The written state, plus the old current key as a replica would list it had it missed the cut-off.
    const half = await replica(() => keysOf(file, (body) => body.keys.push({ ...before, status: 'verify-only' })))
    const r = await run(['rotate', '--compromised', '--replica', following, '--replica', half, '--wait', '300ms'], file)
    assert.equal(r.code, 1, r.stdout + r.stderr)
    assert.match(r.stderr, new RegExp(`NOT contained after 300ms on 1 replica\\(s\\): ${escape(half)} \\(has .*${old} verify-only.*\\)`))
    // The key cut off got not_after = the instant of the write, the instant the confirmation compares with.
    assert.equal(readJson(file).keys.find((k: { kid: string }) => k.kid === old).not_after, NOW)
    // The new state but for the new key, loaded and only staged there: it signs nowhere yet.
    const staged = await replica(() =>
      keysOf(file, (body) => {
        for (const k of body.keys) if (k.kid === body.current) k.status = 'staged'
      }),
    )
    const again = await run(['rotate', '--compromised', '--replica', following, '--replica', staged, '--wait', '300ms'], file)
    assert.equal(again.code, 1, again.stdout + again.stderr)
    assert.match(again.stderr, new RegExp(`NOT contained after 300ms on 1 replica\\(s\\): ${escape(staged)} \\(has [^)]* staged`))
  })

  it('revoke --issued-before: a replica without the new revoked_before is named by the one it has; the revoked tokens, not keys', async () => {
    const { file, following } = await fleetOf('revoked-before')
    const frozen = keysOf(file)
    const stale = await replica(() => frozen)
    const ok = await run(['revoke', '--issued-before', 'now', '--replica', following, '--wait', '2s'], file)
    assert.equal(ok.code, 0, ok.stdout + ok.stderr)
    assert.match(ok.stdout, /^contained on every replica \(1, /m)
    const r = await run(['revoke', '--issued-before', 'now', '--replica', following, '--replica', stale, '--wait', '300ms'], file)
    assert.equal(r.code, 1, r.stdout + r.stderr)
    assert.match(
      r.stderr,
      new RegExp(
        `^NOT contained after 300ms on 1 replica\\(s\\): ${escape(stale)} \\(revoked_before none\\) — they may still accept the revoked tokens: restart those pods$`,
        'm',
      ),
    )
  })

  it('revoke --client-id: a replica without the new rule is named by its newest rule, even with revoked_before and keys unchanged', async () => {
    const { file, following } = await fleetOf('rules')
    const frozen = keysOf(file)
    const stale = await replica(() => frozen)
    const ok = await run(['revoke', '--client-id', 'acme', '--issued-before', 'now', '--replica', following, '--wait', '2s'], file)
    assert.equal(ok.code, 0, ok.stdout + ok.stderr)
    const r = await run(['revoke', '--client-id', 'web', '--issued-before', 'now', '--replica', following, '--replica', stale, '--wait', '300ms'], file)
    assert.equal(r.code, 1, r.stdout + r.stderr)
    assert.match(
      r.stderr,
      new RegExp(`^NOT contained after 300ms on 1 replica\\(s\\): ${escape(stale)} \\(newest rule none\\) — they may still accept the revoked tokens`, 'm'),
    )
  })

  it('a Prometheus that matches no target, or stalls after its headers: NOT confirmed, exit 1, within the wait and one read', async () => {
    const prometheus = async (answer: (query: string, res: http.ServerResponse) => void) => {
      const server = http.createServer((req, res) => answer(new URL(req.url!, 'http://x').searchParams.get('query')!, res))
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      closers.push(() => server.close())
      closers.push(() => server.closeAllConnections())
      return `http://127.0.0.1:${(server.address() as { port: number }).port}`
    }
    const empty = await prometheus((_q, res) => res.writeHead(200).end(JSON.stringify({ status: 'success', data: { resultType: 'vector', result: [] } })))
    const stalled = await prometheus((_q, res) => res.writeHead(200, { 'content-type': 'application/json' }).write('{"status":"succ'))
    for (const [url, why] of [
      [empty, 'the selector matches no scraped target, so no replica can be seen'],
      [stalled, 'no answer within 1000 ms; nothing can be known about the replicas'],
    ] as const) {
      const { file } = await fleetOf(`unseen-${url === empty ? 'empty' : 'stalled'}`)
      const started = Date.now()
      const r = await run(['rotate', '--compromised', '--prometheus', url, '--wait', '300ms'], file)
      const took = Date.now() - started
      assert.equal(r.code, 1, r.stdout + r.stderr)
      assert.doesNotMatch(r.stdout, /contained/)
      assert.match(r.stderr, new RegExp(`^NOT confirmed after 300ms: .*${escape(why)} — the change is written: confirm it on each replica`, 'm'))
      assert.ok(took < 10_000, `took ${took} ms`)
    }
  })

  it('attack: a lagging target named by a label full of control characters reaches the terminal escaped', async () => {
    const { file } = await fleetOf('hostile')
    const server = http.createServer((req, res) => {
      const query = new URL(req.url!, 'http://x').searchParams.get('query')!
      const target = { job: 'cbc-jwt', instance: '10.0.0.9:8000', pod: 'cbc-jwt-\u001b]0;pwned\u0007\u009b2J' }
      const result = query.startsWith('up{') ? [{ metric: { __name__: 'up', ...target }, value: [0, '0'] }] : []
      res.writeHead(200).end(JSON.stringify({ status: 'success', data: { resultType: 'vector', result } }))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    closers.push(() => server.close())
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
    const r = await run(['rotate', '--compromised', '--prometheus', url, '--wait', '300ms'], file)
    assert.equal(r.code, 1, r.stdout + r.stderr)
    assert.doesNotMatch(r.stdout + r.stderr, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/, JSON.stringify(r.stderr))
    assert.match(
      r.stderr,
      /NOT contained after 300ms on 1 replica\(s\): cbc-jwt-\\x1b\]0;pwned\\x07\\x9b2J \(10\.0\.0\.9:8000\) \(down: Prometheus cannot scrape it\)/,
    )
  })

  it('--wait with no Prometheus and no replica to wait for is bad usage, before anything is written: never ignored', async () => {
    const file = await keysetFixture(tmp.file('wait-alone.json'), { at: '2026-11-24T00:00:00Z' })
    const bytes = fs.readFileSync(file)
    for (const args of [
      ['rotate', '--compromised', '--wait', '1s'],
      ['revoke', '--issued-before', 'now', '--wait', '1s'],
    ]) {
      const r = await run(args, file)
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`)
      assert.match(r.stderr, /^cbc-jwt: --wait needs --prometheus URL \(or CBC_JWT_PROMETHEUS_URL\) or --replica URL$/m)
      assert.deepEqual(fs.readFileSync(file), bytes)
    }
  })

  it('without --wait the confirmation waits 30 s, as the help says; without any replica flag nothing is waited for', () => {
    assert.equal(DEFAULT_CONTAINMENT_WAIT_MS, 30_000)
    assert.equal(containmentFleet({}, { replica: ['http://127.0.0.1:1'] })?.waitMs, 30_000)
    assert.equal(containmentFleet({}, { replica: ['http://127.0.0.1:1'], wait: '2s' })?.waitMs, 2000)
    assert.equal(containmentFleet({ CBC_JWT_PROMETHEUS_URL: 'http://127.0.0.1:1' }, {}), undefined, 'the environment alone never makes a write wait')
    assert.ok(containmentFleet({ CBC_JWT_PROMETHEUS_URL: 'http://127.0.0.1:1' }, { selector: ['job="cbc-jwt"'] }))
  })
})
