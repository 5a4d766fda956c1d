import assert from 'node:assert/strict'
import fs from 'node:fs'
import http from 'node:http'
import { after, before, describe, it } from 'node:test'
import { keysBody } from '../../../src/lib/core/keys-view.js'
import { generateKeyset } from '../../../src/lib/keyset/generate.js'
import { loadKeyset, parseKeysetText } from '../../../src/lib/keyset/load.js'
import { serializeKeyset } from '../../../src/lib/keyset/serialize.js'
import { startKubeDouble, type KubeDouble } from '../../support/kube-double.js'
import { startVaultDouble, type VaultDouble } from '../../support/vault-double.js'
import { at, cbcJwt, keysetFixture, oneLine, readJson, tempDir } from './cli.js'

// A staged key is timed from its created_at: that is when its projection published it. When the
// projection verifiers read lacks it (its write failed, it was deleted or edited outside
// cbc-jwt), the promotion's own write publishes it milliseconds before the keyset it signs in:
// every verifier refuses every new token until it has loaded the projection again (up to the
// propagation window). Found checking the time-based promotion, left open by the last session.

const T0 = '2026-11-25T00:00:00Z'
const plus = (iso: string, ms: number) => new Date(Date.parse(iso) + ms).toISOString().replace('.000Z', 'Z')
const MIN = 60_000
const HOUR = 60 * MIN
const DAY = 24 * HOUR

interface Key {
  kid: string
  not_after?: string
  jwk: Record<string, unknown>
}
const kids = (text: string | undefined): string[] => (text === undefined ? [] : (JSON.parse(text) as { keys: Key[] }).keys.map((k) => k.kid))
/** The projection text without `kid`. */
const without = (text: string, kid: string) => {
  const doc = JSON.parse(text) as { keys: Key[] }
  return `${JSON.stringify({ ...doc, keys: doc.keys.filter((k) => k.kid !== kid) }, null, 2)}\n`
}
/** The projection text with another key's public material under `kid`. */
const swapped = async (text: string, kid: string) => {
  const other = (await generateKeyset('ES256')).keys[0]!.jwk as unknown as Record<string, unknown>
  const doc = JSON.parse(text) as { keys: Key[] }
  const { d: _d, ...pub } = other
  return `${JSON.stringify({ ...doc, keys: doc.keys.map((k) => (k.kid === kid ? { ...k, jwk: pub } : k)) }, null, 2)}\n`
}
const REFUSED = (kid: string) =>
  new RegExp(
    `^cbc-jwt: refusing to promote ${kid}: the verification projection does not hold it \\((.+)\\), so no verifier has it and every token it signs would be refused until they have loaded it; nothing changed: stage a fresh key with rotate --stage \\(it retires this one, which never signed\\) and promote that one after the propagation window, or use --force \\(this promotion publishes it first\\)$`,
  )

describe('rotate promotes no staged key the verification projection lacks: the file backend, for real', { concurrency: true }, () => {
  const tmp = tempDir('rotate-unpublished')
  after(tmp.cleanup)
  let n = 0
  /** A keyset file (key created at T0) with K staged at T0 + 1d, published to keyset.public.json. */
  async function stagedFile(): Promise<{ file: string; projection: string; kid: string; old: string }> {
    const file = await keysetFixture(tmp.file(`keyset-${n++}.json`), { at: T0 })
    const old = readJson(file).current as string
    const staged = await cbcJwt(['rotate', '--stage', '--keyset-file', file], { env: at(plus(T0, DAY)) })
    assert.equal(staged.code, 0, staged.stderr)
    const kid = (readJson(file).keys as Key[]).find((k) => k.kid !== old)!.kid
    const projection = file.replace(/\.json$/, '.public.json')
    assert.ok(kids(fs.readFileSync(projection, 'utf8')).includes(kid), 'published by --stage')
    return { file, projection, kid, old }
  }
  const late = at(plus(T0, DAY + HOUR)) // past the window since created_at

  it('--promote: refused, one line, exit 1, keyset and projection byte for byte as they were; --force publishes it first', async () => {
    const { file, projection, kid } = await stagedFile()
    fs.writeFileSync(projection, without(fs.readFileSync(projection, 'utf8'), kid))
    const kept = [fs.readFileSync(file), fs.readFileSync(projection)]
    const r = await cbcJwt(['rotate', '--promote', '--keyset-file', file], { env: late })
    assert.equal(r.code, 1, r.stdout + r.stderr)
    const line = oneLine(r.stderr)
    assert.match(line, REFUSED(kid))
    assert.equal(REFUSED(kid).exec(line)![1], `${projection} lacks it`)
    assert.deepEqual([fs.readFileSync(file), fs.readFileSync(projection)], kept, 'nothing changed')

    // --force overrides a timing check, and this is one: the promotion's own write publishes the
    // key (the projection before the keyset), verifiers get it within the window.
    const forced = await cbcJwt(['rotate', '--promote', '--force', '--keyset-file', file], { env: late })
    assert.equal(forced.code, 0, forced.stderr)
    assert.match(forced.stdout, new RegExp(`note: forced: ${kid} was not in the verification projection \\(${projection} lacks it\\); published now`))
    assert.match(forced.stdout, new RegExp(`\\nwrote the verification projection ${projection}\\nwrote ${file}\\n`))
    assert.equal(readJson(file).current, kid)
    assert.ok(kids(fs.readFileSync(projection, 'utf8')).includes(kid))
  })

  it('--promote: a projection unreadable, holding another key under the kid, or cutting it off, is refused the same way', async () => {
    for (const [what, damage] of [
      ['is not a keyset its verifiers would load', (p: string) => fs.writeFileSync(p, '{"version": 1, ')],
      ['holds another key under that kid', async (p: string, kid: string) => fs.writeFileSync(p, await swapped(fs.readFileSync(p, 'utf8'), kid))],
      [
        'cuts it off (not_after 2026-11-26T00:30:00Z)',
        (p: string, kid: string) => {
          const doc = JSON.parse(fs.readFileSync(p, 'utf8')) as { keys: Key[] }
          for (const k of doc.keys) if (k.kid === kid) k.not_after = plus(T0, DAY + 30 * MIN)
          fs.writeFileSync(p, JSON.stringify(doc))
        },
      ],
    ] as const) {
      const { file, projection, kid } = await stagedFile()
      await damage(projection, kid)
      const kept = fs.readFileSync(file)
      const r = await cbcJwt(['rotate', '--promote', '--keyset-file', file], { env: late })
      assert.equal(r.code, 1, `${what}: ${r.stdout}${r.stderr}`)
      assert.equal(REFUSED(kid).exec(oneLine(r.stderr))?.[1], `${projection} ${what}`, r.stderr)
      assert.deepEqual(fs.readFileSync(file), kept, `${what}: nothing changed`)
    }
  })

  it('--promote on the replica gate: the replicas decide, and a refusal says they will never load a key the projection lacks', async () => {
    const { file, projection, kid } = await stagedFile()
    // A replica on the projection: its /v1/keys as the service makes it of that file, read when asked.
    const now = Date.parse(plus(T0, DAY + HOUR))
    const server = http.createServer((_req, res) => {
      const keyset = loadKeyset(parseKeysetText(fs.readFileSync(projection, 'utf8')), now)
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(keysBody({ keyset: () => keyset }, now)))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
      fs.writeFileSync(projection, without(fs.readFileSync(projection, 'utf8'), kid))
      const kept = fs.readFileSync(file)
      const r = await cbcJwt(['rotate', '--promote', '--replica', url, '--keyset-file', file], { env: late })
      assert.equal(r.code, 1, r.stdout + r.stderr)
      assert.match(
        oneLine(r.stderr),
        new RegExp(
          `^cbc-jwt: refusing to promote ${kid}: 1 of 1 replicas do not verify with it yet: .*; nothing changed, but the verification projection does not hold it \\(${projection} lacks it\\), so they never will: stage a fresh key with rotate --stage \\(it retires this one, which never signed\\) and promote that one$`,
        ),
      )
      assert.deepEqual(fs.readFileSync(file), kept)
    } finally {
      server.closeAllConnections()
      server.close()
    }
  })

  it('--stage retires a staged key the projection lacks and stages a fresh one, which promotes after the window', async () => {
    const { file, projection, kid } = await stagedFile()
    fs.writeFileSync(projection, without(fs.readFileSync(projection, 'utf8'), kid))
    const restaged = await cbcJwt(['rotate', '--stage', '--keyset-file', file], { env: late })
    assert.equal(restaged.code, 0, restaged.stderr)
    assert.match(
      restaged.stdout,
      new RegExp(`note: staged key ${kid} is not in the verification projection \\(${projection} lacks it\\): retired \\(it never signed\\)`),
    )
    const doc = readJson(file)
    assert.equal((doc.keys as Key[]).find((k) => k.kid === kid)!.not_after, plus(T0, DAY + HOUR))
    const fresh = (doc.keys as Key[]).find((k) => k.kid !== kid && k.kid !== doc.current && k.not_after === undefined)!.kid
    assert.ok(kids(fs.readFileSync(projection, 'utf8')).includes(fresh))
    const early = await cbcJwt(['rotate', '--promote', '--keyset-file', file], { env: at(plus(T0, DAY + HOUR + MIN)) })
    assert.equal(early.code, 1)
    assert.match(oneLine(early.stderr), /was published 1m ago/)
    const ok = await cbcJwt(['rotate', '--promote', '--keyset-file', file], { env: at(plus(T0, DAY + HOUR + 150_000)) })
    assert.equal(ok.code, 0, ok.stderr)
    assert.equal(readJson(file).current, fresh)
  })

  it('--auto: a due standby the projection lacks is not promoted: retired, a fresh standby published now', async () => {
    const { file, projection, kid, old } = await stagedFile()
    fs.writeFileSync(projection, without(fs.readFileSync(projection, 'utf8'), kid))
    // 4 days on: the standby has waited past half of 6d - 150s, due for promotion.
    const r = await cbcJwt(['rotate', '--auto', '--every', '6d', '--keyset-file', file], { env: at(plus(T0, 4 * DAY)) })
    assert.equal(r.code, 0, r.stderr)
    const doc = readJson(file)
    assert.equal(doc.current, old, 'not promoted')
    assert.match(
      r.stdout,
      new RegExp(`note: staged key ${kid} is not in the verification projection \\(${projection} lacks it\\): retired \\(it never signed\\)`),
    )
    assert.equal((doc.keys as Key[]).find((k) => k.kid === kid)!.not_after, plus(T0, 4 * DAY))
    const fresh = (doc.keys as Key[]).find((k) => k.kid !== kid && k.kid !== old)!.kid
    assert.ok(kids(fs.readFileSync(projection, 'utf8')).includes(fresh), 'the fresh standby is published')
    // The next run after the window promotes it (the old key is due).
    const next = await cbcJwt(['rotate', '--auto', '--every', '6d', '--keyset-file', file], { env: at(plus(T0, 6 * DAY)) })
    assert.equal(next.code, 0, next.stderr)
    assert.equal(readJson(file).current, fresh)
  })

  it('--compromised: a standby the projection lacks is not taken as "on every replica already": a fresh key signs', async () => {
    const { file, projection, kid } = await stagedFile()
    fs.writeFileSync(projection, without(fs.readFileSync(projection, 'utf8'), kid))
    const r = await cbcJwt(['rotate', '--compromised', '--keyset-file', file], { env: late })
    assert.equal(r.code, 0, r.stderr)
    const doc = readJson(file)
    assert.notEqual(doc.current, kid)
    assert.equal((doc.keys as Key[]).find((k) => k.kid === kid)!.not_after, plus(T0, DAY + HOUR), 'cut off with the rest')
    assert.match(
      r.stdout,
      new RegExp(`note: the standby ${kid} is not in the verification projection \\(${projection} lacks it\\): not promoted; ${doc.current} is new`),
    )
    assert.doesNotMatch(r.stdout, /promoted the standby/)
  })

  it('a projection that holds the staged key: every mode goes ahead as before', async () => {
    const { file, kid } = await stagedFile()
    const r = await cbcJwt(['rotate', '--promote', '--keyset-file', file], { env: late })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(readJson(file).current, kid)
    const other = await stagedFile()
    const c = await cbcJwt(['rotate', '--compromised', '--keyset-file', other.file], { env: late })
    assert.equal(c.code, 0, c.stderr)
    assert.equal(readJson(other.file).current, other.kid)
    assert.match(c.stdout, /promoted the standby/)
  })

  it('a projection that is not there lacks nothing: its verifiers keep what they loaded; promoted on time, published again first', async () => {
    // Deleted after the stage: its verifiers keep the last projection they read, which held the key.
    const { file, projection, kid } = await stagedFile()
    fs.rmSync(projection)
    const r = await cbcJwt(['rotate', '--promote', '--keyset-file', file], { env: late })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(readJson(file).current, kid)
    assert.match(r.stdout, new RegExp(`\\nwrote the verification projection ${projection}\\nwrote ${file}\\n`))
    assert.ok(kids(fs.readFileSync(projection, 'utf8')).includes(kid))

    // Never written: a keyset made by hand (or whose verifiers read it directly), its standby staged a day ago.
    const handMade = tmp.file(`keyset-${n++}.json`)
    const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>
    const standby = await generateKeyset('ES256', new Date(plus(T0, DAY)))
    const entry = { ...standby.keys[0]!, kid: 'k-standby' }
    fs.writeFileSync(handMade, JSON.stringify({ ...doc, keys: [...(doc.keys as Key[]), entry] }))
    const handProjection = handMade.replace(/\.json$/, '.public.json')
    assert.equal(fs.existsSync(handProjection), false)
    const h = await cbcJwt(['rotate', '--promote', '--kid', 'k-standby', '--keyset-file', handMade], { env: at(plus(T0, DAY + 2 * HOUR)) })
    assert.equal(h.code, 0, h.stderr)
    assert.equal(readJson(handMade).current, 'k-standby')
    assert.ok(kids(fs.readFileSync(handProjection, 'utf8')).includes('k-standby'))
  })

  it('an HS* keyset has no projection (its verifiers read the keyset itself): nothing to compare, promoted on time', async () => {
    const file = await keysetFixture(tmp.file(`keyset-${n++}.json`), { at: T0, alg: 'HS256' })
    assert.equal((await cbcJwt(['rotate', '--stage', '--keyset-file', file], { env: at(plus(T0, DAY)) })).code, 0)
    assert.equal(fs.existsSync(file.replace(/\.json$/, '.public.json')), false)
    const r = await cbcJwt(['rotate', '--promote', '--keyset-file', file], { env: late })
    assert.equal(r.code, 0, r.stderr)
  })

  it('with - (no projection: the pipeline carries the private keyset only), nothing to compare: promoted on time', async () => {
    const { file, kid } = await stagedFile()
    const r = await cbcJwt(['rotate', '--promote', '-'], { env: late, input: fs.readFileSync(file, 'utf8') })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(JSON.parse(r.stdout).current, kid)
  })
})

describe('rotate --promote, the staged key missing from the Vault projection (Vault test double)', () => {
  const SECRET = 'cbc/jwt-keyset'
  let vault: VaultDouble
  before(async () => {
    vault = await startVaultDouble()
  })
  after(() => vault.close())
  const env = (iso: string) => ({ ...at(iso), CBC_JWT_BACKEND: 'vault', VAULT_ADDR: vault.addr, VAULT_TOKEN: vault.token, CBC_JWT_VAULT_RETRIES: '0' })
  const projection = () => String(vault.secret(`${SECRET}-public`)!['jwt-keyset'])

  it('refused with nothing written; --stage replaces the key; --force publishes it first', async () => {
    vault.setSecret(SECRET, { 'jwt-keyset': serializeKeyset(await generateKeyset('ES256', new Date(T0))) })
    assert.equal((await cbcJwt(['rotate', '--stage'], { env: env(plus(T0, DAY)) })).code, 0)
    const doc = JSON.parse(String(vault.secret(SECRET)!['jwt-keyset']))
    const kid = (doc.keys as Key[]).find((k) => k.kid !== doc.current)!.kid
    vault.setSecret(`${SECRET}-public`, { 'jwt-keyset': without(projection(), kid) })
    const versions = () => ['', '-public', '-last-good'].map((s) => vault.version(`${SECRET}${s}`))
    const kept = versions()
    const r = await cbcJwt(['rotate', '--promote'], { env: env(plus(T0, DAY + HOUR)) })
    assert.equal(r.code, 1, r.stdout + r.stderr)
    assert.equal(REFUSED(kid).exec(oneLine(r.stderr))?.[1], `vault:secret/${SECRET}-public lacks it`)
    assert.deepEqual(versions(), kept, 'nothing written')

    const forced = await cbcJwt(['rotate', '--promote', '--force'], { env: env(plus(T0, DAY + HOUR)) })
    assert.equal(forced.code, 0, forced.stderr)
    assert.match(forced.stdout, new RegExp(`wrote the verification projection vault:secret/${SECRET}-public\\nwrote vault:secret/${SECRET}\\n`))
    assert.ok(kids(projection()).includes(kid))
  })
})

describe('rotate --promote, the staged key missing from the projection Secret (Kubernetes API test double)', () => {
  const NS = 'cbc'
  let double: KubeDouble
  const tmp = tempDir('rotate-unpublished-kube')
  let base: Record<string, string>
  before(async () => {
    double = await startKubeDouble()
    base = { CBC_JWT_BACKEND: 'kubernetes', KUBECONFIG: double.writeKubeconfig(tmp.file('kubeconfig'), { namespace: NS }), HOME: tmp.dir }
  })
  after(async () => {
    await double.close()
    tmp.cleanup()
  })
  const env = (iso: string, more: Record<string, string> = {}) => ({ ...at(iso), ...base, ...more })
  const decode = (b64: string | undefined) => (b64 === undefined ? undefined : Buffer.from(b64, 'base64').toString())
  const keyset = () => JSON.parse(decode(double.secret(NS, 'cbc-secrets')!.data['jwt-keyset'])!)

  it('one namespace of two lacks it (an old manifest applied): refused, nothing written; deleted there, it lacks nothing', async () => {
    const many = { CBC_JWT_KUBERNETES_PUBLIC_NAMESPACES: 'cbc,orders' }
    double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': serializeKeyset(await generateKeyset('ES256', new Date(T0))) })
    assert.equal((await cbcJwt(['rotate', '--stage'], { env: env(plus(T0, DAY), many) })).code, 0)
    const kid = (keyset().keys as Key[]).find((k) => k.kid !== keyset().current)!.kid
    assert.ok(kids(decode(double.secret('orders', 'cbc-jwt-verification')?.data['jwt-keyset'])).includes(kid))
    // The namespace's projection written again without the key (an old manifest applied).
    const text = decode(double.secret(NS, 'cbc-jwt-verification')!.data['jwt-keyset'])!
    double.setSecret('orders', 'cbc-jwt-verification', { 'jwt-keyset': without(text, kid) })
    const writes = () => double.calls.filter((c) => c.verb !== 'get' && c.verb !== 'list' && c.verb !== 'watch').length
    const before = writes()
    const again = await cbcJwt(['rotate', '--promote'], { env: env(plus(T0, DAY + HOUR), many) })
    assert.equal(again.code, 1, again.stdout + again.stderr)
    assert.equal(REFUSED(kid).exec(oneLine(again.stderr))?.[1], 'kubernetes:orders/cbc-jwt-verification#jwt-keyset lacks it')
    assert.equal(writes(), before, 'nothing written')
    assert.notEqual(keyset().current, kid)

    // Published in both again (by the stage that replaces it), a fresh key promotes on time.
    const restaged = await cbcJwt(['rotate', '--stage'], { env: env(plus(T0, DAY + HOUR), many) })
    assert.equal(restaged.code, 0, restaged.stderr)
    const fresh = (keyset().keys as Key[]).find((k) => k.kid !== kid && k.kid !== keyset().current && k.not_after === undefined)!.kid
    const ok = await cbcJwt(['rotate', '--promote'], { env: env(plus(T0, DAY + 2 * HOUR), many) })
    assert.equal(ok.code, 0, ok.stderr)
    assert.equal(keyset().current, fresh)

    // Deleted in one namespace after a stage: its replicas keep the projection they loaded, which
    // held the key (one started since has no keys at all): promoted on time, published there again.
    assert.equal((await cbcJwt(['rotate', '--stage'], { env: env(plus(T0, 2 * DAY), many) })).code, 0)
    const next = (keyset().keys as Key[]).find((k) => k.kid !== keyset().current && k.not_after === undefined)!.kid
    double.deleteSecret('orders', 'cbc-jwt-verification')
    const promoted = await cbcJwt(['rotate', '--promote'], { env: env(plus(T0, 2 * DAY + HOUR), many) })
    assert.equal(promoted.code, 0, promoted.stderr)
    assert.equal(keyset().current, next)
    assert.ok(kids(decode(double.secret('orders', 'cbc-jwt-verification')?.data['jwt-keyset'])).includes(next))
  })
})
