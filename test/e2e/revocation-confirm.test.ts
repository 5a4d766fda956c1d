/**
 * `revoke --client-id/--subject/--jti` confirmed on every replica: real service processes —
 * two that read the keyset file the real CLI writes, one on a copy that is never updated (a
 * replica whose volume stopped syncing) — seen through their /v1/keys (`--replica`) and through
 * the real Prometheus scraping them (`--prometheus`). A replica has a rule in force once its
 * newest rule's created_at reaches the rule just written.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { after, before, describe, it } from 'node:test'
import { cbcJwt, keysetFixture, readJson, tempDir } from '../ops/cli/cli.js'
import { startPrometheus, type RunningPrometheus } from '../support/prometheus.js'
import { startService, type RunningService } from '../support/service.js'
import { waitFor } from '../support/wait.js'

const tmp = tempDir('revocation-confirm')
const JOB = 'cbc-jwt-rules'
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

describe('revoke --client-id/--subject/--jti --wait: every replica confirmed, a stale one named', { timeout: 300_000 }, () => {
  let file: string
  let stale: RunningService
  const following: RunningService[] = []
  let prom: RunningPrometheus
  const cli = (args: string[], input?: string) =>
    cbcJwt([...args, '--keyset-file', file], { env: { USER: 'oncall' }, ...(input !== undefined ? { input } : {}) })
  const replicaFlags = (rs: RunningService[]) => rs.flatMap((r) => ['--replica', r.url])
  const instance = (r: RunningService) => new URL(r.url).host

  before(async () => {
    file = await keysetFixture(tmp.file('keyset.json'), { at: new Date(Date.now() - 3_600_000).toISOString(), mode: 0o644 })
    const staleFile = tmp.file('stale.json')
    fs.copyFileSync(file, staleFile)
    const start = (keyset: string) => startService({ env: { CBC_JWT_KEYSET_FILE: keyset, CBC_JWT_REFRESH_INTERVAL_SECONDS: '1' }, timeoutMs: 40_000 })
    const started = await Promise.all([start(staleFile), start(file), start(file)])
    stale = started[0]!
    following.push(...started.slice(1))

    prom = await startPrometheus({ dir: tmp.file('prometheus'), job: JOB, targets: [...following, stale].map(instance) })
  })
  after(async () => {
    await Promise.all([...following, stale].map((r) => r?.stop()))
    await prom?.stop()
    tmp.cleanup()
  })

  it('--client-id with --replica: each replica and how long it took, then every replica; the rule is in force on each', async () => {
    const r = await cli(['revoke', '--client-id', 'acme-batch', '--issued-before', 'now', ...replicaFlags(following), '--wait', '20s'])
    assert.equal(r.code, 0, r.stdout + r.stderr)
    for (const s of following) assert.match(r.stdout, new RegExp(`^contained on ${escape(s.url)} after \\d+\\.\\ds$`, 'm'))
    assert.match(r.stdout, /^contained on every replica \(2, seen through --replica http/m)
    const rule = readJson(file).revocations.find((x: { client_id?: string }) => x.client_id === 'acme-batch')
    for (const s of following) {
      const keys = (await s.get('/v1/keys')).json
      assert.ok(Date.parse(keys.revocations_newest) >= Date.parse(rule.created_at), `${s.url}: ${keys.revocations_newest} < ${rule.created_at}`)
      assert.equal(keys.revocation_rules, 1)
    }
  })

  it('--jti - with a replica that does not follow: exit 1 naming it (and its newest rule), the others contained', async () => {
    const r = await cli(['revoke', '--jti', '-', ...replicaFlags([...following, stale]), '--wait', '2s'], 'tok-1\ntok-2\ntok-3\n')
    assert.equal(r.code, 1, r.stdout + r.stderr)
    for (const s of following) assert.match(r.stdout, new RegExp(`^contained on ${escape(s.url)} after \\d+\\.\\ds$`, 'm'))
    assert.doesNotMatch(r.stdout, new RegExp(escape(stale.url)))
    assert.match(
      r.stderr,
      new RegExp(
        `NOT contained after 2s on 1 replica\\(s\\): ${escape(stale.url)} \\(newest rule none\\) — they may still accept the revoked tokens: restart those pods`,
      ),
    )
    assert.equal(readJson(file).revocations.length, 4, 'the rules were written all the same')
  })

  it('--subject with --prometheus: the same confirmation from the scraped metric; the stale target is named', async () => {
    await waitFor(async () => (await prom.query(`cbc_jwt_revocation_rules{job="${JOB}"} == 4`)).length === 2, {
      timeoutMs: 30_000,
      intervalMs: 200,
      what: 'Prometheus to scrape the rules written so far',
    })
    const gate = ['--prometheus', prom.url, '--selector', `job="${JOB}"`]
    const r = await cli(['revoke', '--subject', 'alice', '--issued-before', 'now', ...gate, '--wait', '3s'])
    assert.equal(r.code, 1, r.stdout + r.stderr)
    for (const s of following) assert.match(r.stdout, new RegExp(`^contained on ${escape(instance(s))} after \\d+\\.\\ds$`, 'm'))
    assert.match(r.stderr, new RegExp(`NOT contained after 3s on 1 replica\\(s\\): ${escape(instance(stale))} \\(newest rule none\\)`))
    // The followers alone: every replica of that set confirmed.
    const ok = await cli(['revoke', '--subject', 'bob', '--issued-before', 'now', ...replicaFlags(following), '--wait', '20s'])
    assert.equal(ok.code, 0, ok.stdout + ok.stderr)
  })

  // The global form waits for revoked_before: a lagging replica is named by the one it has,
  // and what it may still accept is the revoked tokens (no key changed).
  it('--issued-before alone with a replica that does not follow: named by its revoked_before', async () => {
    const r = await cli(['revoke', '--issued-before', 'now', ...replicaFlags([...following, stale]), '--wait', '2s'])
    assert.equal(r.code, 1, r.stdout + r.stderr)
    for (const s of following) assert.match(r.stdout, new RegExp(`^contained on ${escape(s.url)} after \\d+\\.\\ds$`, 'm'))
    assert.match(
      r.stderr,
      new RegExp(
        `NOT contained after 2s on 1 replica\\(s\\): ${escape(stale.url)} \\(revoked_before none\\) — they may still accept the revoked tokens: restart those pods`,
      ),
    )
  })

  it('--dry-run never waits, even with a replica that will never follow', async () => {
    const before = fs.readFileSync(file, 'utf8')
    const r = await cli(['revoke', '--client-id', 'web', '--issued-before', 'now', '--dry-run', ...replicaFlags([stale]), '--wait', '10m'])
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.doesNotMatch(r.stdout + r.stderr, /contained/)
    assert.equal(fs.readFileSync(file, 'utf8'), before)
  })
})
