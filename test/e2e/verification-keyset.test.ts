/**
 * Done-when of issue 17: verifiers on the verification projection behave exactly as on the
 * private keyset, and hold no private byte.
 *
 * The CLI writes a private keyset (ES256, then an RS256 key: d, p, q, dp, dq, qi) and, on every
 * write, its projection. Two identical fleets run side by side, one on each document: the real
 * service process, the Fastify plugin and the Express middleware (each an app process on the
 * built package). Every step asks both fleets the same questions, in the same order, and the
 * answers must be equal: every route (whoami, forward auth with and without a scope, JWKS,
 * /v1/keys, health, readiness, /metrics with cbc_jwt_active_key_age_seconds and
 * cbc_jwt_key_info), an unannounced staged key (the unknown-kid re-read), the promotion
 * (hot reload), a narrow and a global revocation over cached acceptances, and the rejection
 * log lines. Last, no private value of any key the private keyset ever held appears in the
 * projection, a JWKS, a /v1/keys body, a log or a metrics page.
 *
 * Each process reads its document through a link in a folder of its own (like a volume): a CLI
 * write makes no change event there. `publish()` re-points the links, which is the event (the
 * kubelet's `..data` swap on a Secret volume); until then only the unknown-kid re-read can see
 * a new key. The refresh interval is an hour, so nothing else reads.
 */
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { KeysetDocument } from '../../src/lib/keyset/document.js'
import { loadKeyset } from '../../src/lib/keyset/load.js'
import { toVerificationKeyset } from '../../src/lib/keyset/projection.js'
import { privateValues } from '../lib/keyset/fixtures.js'
import { cbcJwtProcess } from '../ops/cli/cli.js'
import { signToken, validClaims, type TestAlg, type TestKey, makeKey } from '../support/keys.js'
import { parseExposition } from '../support/metrics-text.js'
import { runApp, type RunningApp } from '../support/packed-app.js'
import { CLI_MAIN, PROJECT_ROOT, SERVER_MAIN, startService } from '../support/service.js'
import { waitFor } from '../support/wait.js'

const APP = path.join(PROJECT_ROOT, 'test/support/verifier-app.mjs')
const SIDES = ['private', 'projection'] as const
type SideName = (typeof SIDES)[number]

/** One runner's routes: the service's own, or the adapter app's. */
interface Runner {
  /** `service`, `fastify` or `express`: the same for both fleets, so their answers line up. */
  kind: string
  name: string
  base: string
  routes: { whoami: string; scoped: string; jwks: string; keys: string; ready: string; metrics: string }
  output(): string
  stop(): Promise<void>
}

const SERVICE_ROUTES = {
  whoami: '/v1/whoami',
  scoped: '/v1/auth?scope=orders:read',
  jwks: '/.well-known/jwks.json',
  keys: '/v1/keys',
  ready: '/readyz',
  metrics: '/metrics',
}
const APP_ROUTES = { whoami: '/v1/whoami', scoped: '/v1/orders', jwks: '/jwks', keys: '/keys', ready: '/ready', metrics: '/metrics' }
/** Answer headers compared side by side (dates and lengths aside). */
const HEADERS = [
  'www-authenticate',
  'cache-control',
  'content-type',
  'x-auth-subject',
  'x-auth-client-id',
  'x-auth-scope',
  'x-auth-kid',
  'x-auth-expires',
  'x-auth-reason',
]

describe('verifiers on the verification projection answer exactly as on the private keyset', { timeout: 300_000 }, () => {
  let dir: string
  let store: string
  const fleets = {} as Record<SideName, Runner[]>
  /** Every private keyset the CLI wrote, and every body and page read: checked for private bytes last. */
  const privateDocs: KeysetDocument[] = []
  const seen: Array<{ what: string; text: string }> = []

  const privateFile = () => path.join(store, 'keyset.json')
  const projectionFile = () => path.join(store, 'keyset.public.json')
  const readPrivate = () => JSON.parse(fs.readFileSync(privateFile(), 'utf8')) as KeysetDocument
  const volume = (side: SideName) => path.join(dir, `volume-${side}`)

  /** Runs the built CLI on the private keyset (it publishes the projection itself). */
  async function cli(...args: string[]): Promise<string> {
    const r = await cbcJwtProcess([...args, '--keyset-file', privateFile()])
    assert.equal(r.code, 0, `cbc-jwt ${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stdout, /wrote the verification projection .*keyset\.public\.json\n/, 'every write publishes the projection')
    privateDocs.push(readPrivate())
    seen.push({ what: 'the projection', text: fs.readFileSync(projectionFile(), 'utf8') }, { what: `cbc-jwt ${args[0]} output`, text: r.stdout + r.stderr })
    return r.stdout
  }

  /** The change event: each volume's link is replaced (rename over it), as the kubelet swaps `..data`. */
  function publish(): void {
    for (const side of SIDES) {
      const link = path.join(volume(side), 'jwt-keyset')
      const tmp = `${link}.tmp`
      fs.rmSync(tmp, { force: true })
      fs.symlinkSync(side === 'private' ? privateFile() : projectionFile(), tmp)
      fs.renameSync(tmp, link)
    }
  }

  /** A signer for one key of the private keyset (made here with node:crypto, not by the code under test). */
  function signer(kid: string): TestKey {
    const entry = readPrivate().keys.find((k) => k.kid === kid)!
    const jwk = entry.jwk as crypto.JsonWebKey
    return { kid, alg: entry.alg as TestAlg, jwk, signingKey: crypto.createPrivateKey({ key: jwk, format: 'jwk' }) }
  }
  const bearer = (key: TestKey, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}) =>
    `Bearer ${signToken(key, validClaims(claims), header)}`

  async function ask(runner: Runner, route: string, authorization?: string) {
    const res = await fetch(runner.base + route, { headers: authorization ? { authorization } : {}, signal: AbortSignal.timeout(15_000) })
    const text = await res.text()
    seen.push({ what: `${runner.name} ${route}`, text })
    let body: unknown = text
    try {
      body = JSON.parse(text)
    } catch {
      // Not JSON (the metrics page, an empty 200 of forward auth): compared as text.
    }
    return { status: res.status, headers: Object.fromEntries(HEADERS.flatMap((h) => (res.headers.has(h) ? [[h, res.headers.get(h)]] : []))), body }
  }

  /** The answers of one fleet to the same tokens, on the protected route and the scoped one. */
  async function answers(side: SideName, tokens: Record<string, string | undefined>) {
    const out: Record<string, unknown> = {}
    for (const runner of fleets[side]) {
      for (const [name, authorization] of Object.entries(tokens)) {
        out[`${runner.kind} ${name} whoami`] = await ask(runner, runner.routes.whoami, authorization)
        out[`${runner.kind} ${name} scoped`] = await ask(runner, runner.routes.scoped, authorization)
        // The service's forward auth, without a scope: the identity headers.
        if (runner.routes === SERVICE_ROUTES) out[`${runner.kind} ${name} forward`] = await ask(runner, '/v1/auth', authorization)
      }
    }
    return out
  }

  /** Asks both fleets and requires equal answers; returns them (the private side's). */
  async function sameAnswers(tokens: Record<string, string | undefined>) {
    const [priv, proj] = [await answers('private', tokens), await answers('projection', tokens)]
    assert.deepEqual(proj, priv, 'the projection fleet answers as the private one')
    return priv
  }

  /** The key-related state of a runner: JWKS, /v1/keys (ages aside), readiness and the cbc_jwt_ metrics. */
  async function state(runner: Runner) {
    const keys = (await ask(runner, runner.routes.keys)).body as { keys: Array<Record<string, unknown>> }
    const metricsText = (await ask(runner, runner.routes.metrics)).body as string
    const samples = parseExposition(metricsText).samples.filter((s) => s.name.startsWith('cbc_jwt_'))
    const age = samples.filter((s) => s.name === 'cbc_jwt_active_key_age_seconds')
    return {
      jwks: (await ask(runner, runner.routes.jwks)).body,
      keys: { ...keys, keys: keys.keys.map(({ age_seconds: _age, ...row }) => row) },
      ready: (await ask(runner, runner.routes.ready)).status,
      // Time-dependent values are compared apart: the key's age (below) and the last read's time.
      metrics: samples
        .filter((s) => s.name !== 'cbc_jwt_keyset_last_success_timestamp_seconds' && s.name !== 'cbc_jwt_active_key_age_seconds')
        .map((s) => `${s.name}${JSON.stringify(s.labels)} ${s.value}`)
        .sort(),
      activeKey: age.map((s) => s.labels),
      ageSeconds: age.map((s) => s.value),
    }
  }

  async function sameState() {
    const states = {} as Record<SideName, Array<Awaited<ReturnType<typeof state>>>>
    for (const side of SIDES) states[side] = await Promise.all(fleets[side].map(state))
    for (const [i, priv] of states.private.entries()) {
      const proj = states.projection[i]!
      const { ageSeconds: a, ...privRest } = priv
      const { ageSeconds: b, ...projRest } = proj
      assert.deepEqual(projRest, privRest, `${fleets.projection[i]!.name}: the same keys, readiness and metrics on the projection`)
      assert.equal(a.length, 1, 'exactly one cbc_jwt_active_key_age_seconds series')
      assert.ok(Math.abs(a[0]! - b[0]!) <= 5, `${fleets.projection[i]!.name}: the same active key age (${a[0]} vs ${b[0]})`)
    }
    return states.private
  }

  /** Waits until every runner of both fleets has `current` in force, with `check` holding on its /v1/keys body. */
  async function inForce(what: string, check: (keys: { current: string; revoked_before: string | null; keys: Array<{ kid: string }> }) => boolean) {
    for (const side of SIDES) {
      for (const runner of fleets[side]) {
        await waitFor(
          async () => {
            const res = await fetch(runner.base + runner.routes.keys, { signal: AbortSignal.timeout(5000) })
            return res.status === 200 && check((await res.json()) as never)
          },
          { timeoutMs: 30_000, intervalMs: 100, what: `${what} on ${runner.name}` },
        )
      }
    }
  }

  const metric = (samples: readonly string[], name: string) => samples.filter((s) => s.startsWith(`${name}{`))
  /** `kid alg status` of every cbc_jwt_key_info series whose value is 1, sorted. */
  const keyInfo = (samples: readonly string[]) =>
    metric(samples, 'cbc_jwt_key_info')
      .filter((s) => s.endsWith(' 1'))
      .map((s) => JSON.parse(s.slice('cbc_jwt_key_info'.length, s.lastIndexOf(' '))) as Record<string, string>)
      .map((l) => `${l.kid} ${l.alg} ${l.status}`)
      .sort()

  before(async () => {
    assert.ok(fs.existsSync(SERVER_MAIN) && fs.existsSync(CLI_MAIN), 'dist/ is missing: run npm run build first')
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-verification-'))
    store = path.join(dir, 'store')
    fs.mkdirSync(store)
    const init = await cbcJwtProcess(['keyset', 'init', '--alg', 'ES256', '--keyset-file', privateFile()])
    assert.equal(init.code, 0, init.stderr)
    privateDocs.push(readPrivate())
    for (const side of SIDES) fs.mkdirSync(volume(side))
    publish()
    const env = (side: SideName) => ({
      CBC_JWT_KEYSET_FILE: path.join(volume(side), 'jwt-keyset'),
      CBC_JWT_REFRESH_INTERVAL_SECONDS: '3600',
      // Every unknown kid is re-read at once: the staged key below is found by that read alone.
      CBC_JWT_UNKNOWN_KID_COOLDOWN_SECONDS: '0',
      // Accepted tokens are logged on first use only, never by chance: the two fleets' logs compare.
      CBC_JWT_SUCCESS_LOG_SAMPLE: '0',
      // Every line the code can write, for the private-material check of the logs.
      CBC_JWT_LOG_LEVEL: 'trace',
    })
    const started = await Promise.all(
      SIDES.map(async (side) => {
        const [service, fastify, express] = await Promise.all([
          startService({ env: env(side) }),
          runApp(PROJECT_ROOT, [APP], { ...env(side), ADAPTER: 'fastify' }, '/ready'),
          runApp(PROJECT_ROOT, [APP], { ...env(side), ADAPTER: 'express' }, '/ready'),
        ])
        const app = (kind: string, a: RunningApp): Runner => ({
          kind,
          name: `${kind} (${side})`,
          base: a.base,
          routes: APP_ROUTES,
          output: a.output,
          stop: a.stop,
        })
        const runners: Runner[] = [
          { kind: 'service', name: `service (${side})`, base: service.url, routes: SERVICE_ROUTES, output: service.output, stop: service.stop },
          app('fastify', fastify),
          app('express', express),
        ]
        return [side, runners] as const
      }),
    )
    for (const [side, runners] of started) fleets[side] = runners
    await inForce('the first keyset', (k) => k.keys.length === 1)
  })

  after(async () => {
    await Promise.all(Object.values(fleets).flatMap((runners) => runners.map((r) => r.stop())))
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
  })

  test('the projection the CLI wrote is the private keyset without private members; it verifies and cannot sign', async () => {
    const projection = JSON.parse(fs.readFileSync(projectionFile(), 'utf8'))
    assert.deepEqual(projection, toVerificationKeyset(readPrivate()))
    assert.equal(loadKeyset(projection).signing, false)
    assert.equal(fs.statSync(projectionFile()).mode & 0o777, 0o644)
    const issue = await cbcJwtProcess(['token', 'issue', '--sub', 'alice', '--keyset-file', projectionFile()])
    assert.equal(issue.code, 1)
    assert.match(issue.stderr, /^cbc-jwt: ERR_NO_SIGNING_KEY: /)
  })

  test('every route and metric answers the same: whoami, forward auth, scope, JWKS, /v1/keys, health, readiness, /metrics', async () => {
    const current = signer(readPrivate().current)
    const stranger = makeKey('ES256', 'k-forged')
    const valid = bearer(current, { sub: 'alice', client_id: 'orders-web', scope: 'orders:read profile' })
    const [h, p] = valid.slice('Bearer '.length).split('.')
    const got = await sameAnswers({
      valid,
      'valid again (cached)': valid,
      'without the scope': bearer(current, { scope: 'profile' }),
      missing: undefined,
      malformed: 'Bearer not.a.token',
      expired: bearer(current, { iat: Math.floor(Date.now() / 1000) - 7200, exp: Math.floor(Date.now() / 1000) - 3600 }),
      'bad signature': `Bearer ${h}.${p}.${Buffer.alloc(64).toString('base64url')}`,
      'wrong audience': bearer(current, { aud: 'another-api' }),
      'alg none': `Bearer ${Buffer.from(JSON.stringify({ alg: 'none', kid: current.kid })).toString('base64url')}.${p}.`,
      'forged kid': bearer(stranger),
    })
    // What the answers are, not only that they agree.
    assert.equal((got['service valid whoami'] as { status: number }).status, 200)
    assert.equal((got['service valid forward'] as { headers: Record<string, string> }).headers['x-auth-subject'], 'alice')
    assert.equal((got['fastify without the scope scoped'] as { status: number }).status, 403)
    assert.equal((got['express forged kid whoami'] as { body: { reason: string } }).body.reason, 'unknown_kid')
    assert.equal((got['service alg none whoami'] as { body: { reason: string } }).body.reason, 'unsupported_alg')
    for (const side of SIDES) {
      const service = fleets[side][0]!
      assert.equal((await ask(service, '/healthz')).status, 200)
    }
    const [svc] = await sameState()
    assert.equal(svc!.ready, 200)
    assert.deepEqual(svc!.activeKey, [{ kid: current.kid }])
    assert.deepEqual(keyInfo(svc!.metrics), [`${current.kid} ES256 current`])
    for (const runner of [...fleets.private, ...fleets.projection]) {
      const hits = metric((await state(runner)).metrics, 'cbc_jwt_token_cache_hits_total')
      assert.ok(hits.length === 1 && !hits[0]!.endsWith(' 0'), `${runner.name} answered the repeated token from its cache (${hits})`)
    }
    assert.deepEqual(
      (svc!.jwks as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid),
      [current.kid],
    )
  })

  test('a key staged by the CLI and not yet announced: the unknown-kid re-read finds it on both', async () => {
    const out = await cli('rotate', '--stage', '--alg', 'RS256')
    const staged = readPrivate().keys.find((k) => k.alg === 'RS256')!.kid
    assert.match(out, new RegExp(`${staged}`))
    // No event was published: the key is not loaded anywhere until a token asks for it.
    for (const runner of [...fleets.private, ...fleets.projection]) {
      const keys = (await ask(runner, runner.routes.keys)).body as { keys: Array<{ kid: string }> }
      assert.ok(!keys.keys.some((k) => k.kid === staged), `${runner.name} loaded ${staged} without being asked`)
    }
    const got = await sameAnswers({ 'staged key': bearer(signer(staged), { sub: 'bob', client_id: 'orders-batch', scope: 'orders:read' }) })
    for (const [name, answer] of Object.entries(got)) assert.equal((answer as { status: number }).status, 200, `${name}: ${JSON.stringify(answer)}`)
    const [svc] = await sameState()
    assert.deepEqual(keyInfo(svc!.metrics), [`${readPrivate().current} ES256 current`, `${staged} RS256 staged`].sort())
  })

  test('the promotion written by the CLI is hot-reloaded on both: new key current, old one verify-only, one rotation counted', async () => {
    const before = readPrivate()
    const staged = before.keys.find((k) => k.kid !== before.current)!.kid
    await cli('rotate', '--promote', '--force', '--kid', staged)
    publish()
    await inForce('the promotion', (k) => k.current === staged)
    const got = await sameAnswers({
      'new key': bearer(signer(staged), { client_id: 'orders-web', scope: 'orders:read' }),
      'old key (grace)': bearer(signer(before.current), { client_id: 'orders-web' }),
    })
    for (const [name, answer] of Object.entries(got)) {
      if (name.endsWith('whoami')) assert.equal((answer as { status: number }).status, 200, name)
    }
    const [svc] = await sameState()
    assert.deepEqual(svc!.activeKey, [{ kid: staged }], 'the old kid’s series is gone')
    assert.deepEqual(metric(svc!.metrics, 'cbc_jwt_key_rotations_total'), ['cbc_jwt_key_rotations_total{} 1'])
    assert.deepEqual(keyInfo(svc!.metrics), [`${staged} RS256 current`, `${before.current} ES256 verify-only`].sort())
  })

  test('revocation: a narrow rule, then the global one, end cached acceptances alike on both', async () => {
    const current = signer(readPrivate().current)
    const web = bearer(current, { sub: 'carol', client_id: 'orders-web', scope: 'orders:read' })
    const batch = bearer(current, { sub: 'dave', client_id: 'orders-batch', scope: 'orders:read' })
    // Both accepted, and asked twice: the second answer comes from each runner's token cache.
    await sameAnswers({ web, batch, 'web again': web, 'batch again': batch })

    await cli('revoke', '--client-id', 'orders-web', '--issued-before', 'now')
    publish()
    for (const runner of [...fleets.private, ...fleets.projection]) {
      await waitFor(
        async () => {
          const res = await fetch(runner.base + runner.routes.metrics, { signal: AbortSignal.timeout(5000) })
          return /^cbc_jwt_revocation_rules 1$/m.test(await res.text())
        },
        { timeoutMs: 30_000, intervalMs: 100, what: `the client rule in force on ${runner.name}` },
      )
    }
    const narrow = await sameAnswers({ web, batch })
    assert.equal((narrow['express web whoami'] as { body: { reason: string } }).body.reason, 'revoked')
    assert.equal((narrow['service web forward'] as { headers: Record<string, string> }).headers['x-auth-reason'], 'revoked')
    assert.equal((narrow['fastify batch whoami'] as { status: number }).status, 200)

    await cli('revoke', '--issued-before', 'now')
    const revokedBefore = readPrivate().revoked_before!
    publish()
    await inForce('revoked_before', (k) => k.revoked_before === revokedBefore)
    const fresh = bearer(current, { sub: 'erin', client_id: 'orders-batch', iat: Math.ceil(Date.parse(revokedBefore) / 1000) })
    const global = await sameAnswers({ batch, fresh })
    assert.equal((global['service batch whoami'] as { body: { reason: string } }).body.reason, 'revoked')
    assert.equal((global['fastify fresh whoami'] as { status: number }).status, 200)
    await sameState()
  })

  test('the rejection log lines are the same on both', () => {
    for (const [i, runner] of fleets.private.entries()) {
      const lines = (r: Runner) =>
        r
          .output()
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .filter((l) => l.event === 'auth_rejected' || l.event === 'auth_accepted' || l.event === 'key_rotated')
          .map((l) => [l.event, l.reason, l.kid, l.client_id, l.from, l.to].map((v) => v ?? null))
      const priv = lines(runner)
      assert.ok(
        priv.some((l) => l[0] === 'auth_rejected' && l[1] === 'revoked'),
        `${runner.name} logged its rejections`,
      )
      assert.deepEqual(lines(fleets.projection[i]!), priv, runner.name)
    }
  })

  test('no private value of any key, nor a 12-character slice of one, in the projection, a JWKS, /v1/keys, a log or /metrics', () => {
    const values = [...new Set(privateDocs.flatMap((doc) => privateValues(doc)))]
    const members = new Set(privateDocs.flatMap((doc) => doc.keys.flatMap((k) => Object.keys(k.jwk))))
    for (const m of ['d', 'p', 'q', 'dp', 'dq', 'qi']) assert.ok(members.has(m), `the private keyset held ${m} (an RSA and an EC key)`)
    const texts = [
      ...seen,
      ...Object.values(fleets)
        .flat()
        .map((r) => ({ what: `${r.name} log`, text: r.output() })),
    ]
    assert.ok(texts.length > 100)
    for (const value of values) {
      for (let i = 0; i + 12 <= value.length; i += 12) {
        const slice = value.slice(i, i + 12)
        for (const { what, text } of texts) {
          assert.ok(!text.includes(slice), `${what} contains private key material (${slice}…)`)
        }
      }
    }
  })
})
