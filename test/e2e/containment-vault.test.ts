/**
 * The containment drill on the Vault backend: three real service processes reading the
 * verification projection from Vault KV v2 (the TEST DOUBLE, test/support/vault-double.ts) on
 * the default refresh interval (30 s; Vault has no watch), a standby key staged, a client
 * sending valid tokens to all three all along, and the real CLI running `rotate --compromised`
 * against the same Vault. Measured from the moment the command returns:
 *
 * - leaked-key tokens (one cached on every replica, fresh ones) are rejected by each replica at
 *   its next interval read: within the interval (plus one read), never later;
 * - the replacement key's tokens are never refused: with a standby it is loaded already; with
 *   `--fresh-key` (no standby) the unknown-kid re-read asks Vault, so its first token is
 *   accepted at once;
 * - no valid token is refused on any replica at any time.
 */
import assert from 'node:assert/strict'
import type crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { toVerificationKeyset } from '../../src/lib/keyset/projection.js'
import { cbcJwt } from '../ops/cli/cli.js'
import { makeKey, makeKeyset, signerOf, signToken, validClaims, type TestKey } from '../support/keys.js'
import { startService, type RunningService } from '../support/service.js'
import { startVaultDouble, type VaultDouble } from '../support/vault-double.js'

const INTERVAL_S = 30
const READ_ALLOWANCE_MS = 2000
const HOUR = 3600_000
const PRIVATE = 'cbc/jwt-keyset'

interface KeysetDoc {
  current: string
  keys: Array<{ kid: string; alg: string; jwk: crypto.JsonWebKey }>
}

describe('containment on Vault: rotate --compromised on three replicas reading the projection every 30 s', () => {
  let vault: VaultDouble
  let dir: string
  let cliEnv: Record<string, string>
  const replicas: Array<{ name: string; service: RunningService }> = []
  const leaked = makeKey('ES256', 'k-vault-leaked')
  const standby = makeKey('ES256', 'k-vault-standby')

  const privateDoc = () => JSON.parse(vault.secret(PRIVATE)!['jwt-keyset'] as string) as KeysetDoc
  const signerFor = (kid: string): TestKey => signerOf(privateDoc(), kid)
  const fresh = (key: TestKey) => signToken(key, validClaims({ iat: Math.floor(Date.now() / 1000) }))
  const status = async (r: RunningService, token: string) => (await r.get('/v1/whoami', { authorization: `Bearer ${token}` })).status

  before(async () => {
    vault = await startVaultDouble()
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-containment-vault-'))
    const doc = makeKeyset([
      { key: leaked, opts: { createdAt: new Date(Date.now() - 24 * HOUR) } },
      { key: standby, opts: { createdAt: new Date(Date.now() - HOUR) } },
    ])
    vault.setSecret(PRIVATE, { 'jwt-keyset': JSON.stringify(doc) })
    vault.setSecret(`${PRIVATE}-public`, { 'jwt-keyset': JSON.stringify(toVerificationKeyset(doc as never)) })
    cliEnv = { CBC_JWT_BACKEND: 'vault', VAULT_ADDR: vault.addr, VAULT_TOKEN: vault.token, HOME: dir }
    const env = { ...cliEnv, CBC_JWT_VAULT_PATH: `${PRIVATE}-public`, CBC_JWT_REFRESH_INTERVAL_SECONDS: String(INTERVAL_S) }
    // Started one after the other: their interval reads fall at different moments, as in a fleet.
    for (const name of ['a', 'b', 'c']) replicas.push({ name: `vault-${name}`, service: await startService({ env }) })
  })

  after(async () => {
    await Promise.all(replicas.map((r) => r.service.stop()))
    await vault?.close()
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
  })

  /**
   * Runs the rotation under a client's load; returns, per replica, how long after the command
   * returned the leaked key's tokens (cached and fresh) were refused, and what the client saw.
   */
  async function drill(args: string[], leakedKey: TestKey) {
    const cached = signToken(leakedKey, validClaims())
    for (const r of replicas) assert.equal(await status(r.service, cached), 200, `${r.name} accepts the cached token before`)
    const refused: string[] = []
    let sent = 0
    let running = true
    // From the moment the emergency command starts, a leaked-key token is not a valid token: the
    // projection, which the replicas read, is written before the private keyset the client reads.
    let rotating = false
    const client = (async () => {
      for (let i = 0; running; i++) {
        const kid = privateDoc().current
        const r = replicas[i % replicas.length]!
        const code = await status(r.service, fresh(signerFor(kid)))
        sent++
        if (code !== 200 && !(kid === leakedKey.kid && rotating)) refused.push(`${r.name} ${code} kid ${kid}`)
        await sleep(10)
      }
    })()
    await sleep(300)
    const load = os.loadavg()[0]!
    rotating = true
    const startedAt = Date.now()
    const rotation = await cbcJwt(['rotate', '--compromised', ...args, '--reason', 'containment drill on Vault'], { env: cliEnv })
    const returnedAt = Date.now()
    assert.equal(rotation.code, 0, rotation.stderr)
    const replacement = signerFor(privateDoc().current)
    // The replacement key's first token on each replica, at once: accepted (standby loaded, or the re-read).
    const firstNew = await Promise.all(
      replicas.map(async (r) => {
        const res = await r.service.get('/v1/whoami', { authorization: `Bearer ${fresh(replacement)}` })
        return {
          name: r.name,
          code: res.status,
          reason: String(res.json?.reason ?? res.json?.error_description ?? res.headers.get('www-authenticate') ?? ''),
          ms: Date.now() - returnedAt,
        }
      }),
    )
    const containedAfter = new Map<string, number>()
    await Promise.all(
      replicas.map(async (r) => {
        const deadline = returnedAt + INTERVAL_S * 1000 + 15_000
        for (;;) {
          const [c, f] = await Promise.all([status(r.service, cached), status(r.service, fresh(leakedKey))])
          if (c === 401 && f === 401) return void containedAfter.set(r.name, Date.now() - returnedAt)
          if (Date.now() > deadline) return void containedAfter.set(r.name, Number.POSITIVE_INFINITY)
          await sleep(100)
        }
      }),
    )
    running = false
    await client
    return { rotation, ranMs: returnedAt - startedAt, firstNew, containedAfter, refused, sent, load }
  }

  function report(t: { diagnostic(m: string): void }, what: string, d: Awaited<ReturnType<typeof drill>>) {
    t.diagnostic(
      `${what}: command ran ${d.ranMs} ms; replacement key's first token: ${d.firstNew.map((f) => `${f.name} ${f.code}${f.code === 200 ? '' : ` (${f.reason})`} after ${f.ms} ms`).join(', ')}; leaked key refused after: ${[...d.containedAfter].map(([n, ms]) => `${n} ${ms} ms`).join(', ')}; ${d.sent} valid requests, ${d.refused.length} refused; load average ${d.load.toFixed(1)} → ${os.loadavg()[0]!.toFixed(1)}`,
    )
    for (const f of d.firstNew) assert.equal(f.code, 200, `${f.name}: the replacement key's first token`)
    for (const [name, ms] of d.containedAfter)
      assert.ok(ms <= INTERVAL_S * 1000 + READ_ALLOWANCE_MS, `${name} contained after ${ms} ms: more than one interval + one read`)
    assert.deepEqual(d.refused, [], 'no valid token refused on any replica')
  }

  test("with a standby: the replacement verifies at once everywhere, the leaked key stops at each replica's next read", async (t) => {
    const d = await drill([], leaked)
    assert.match(d.rotation.stdout, /promoted the standby k-vault-standby/)
    report(t, 'standby', d)
  })

  test('without one (--fresh-key): the unknown-kid re-read asks Vault, so the new key is accepted at once too', async (t) => {
    const d = await drill(['--fresh-key'], standby)
    report(t, 'fresh key', d)
  })
})
