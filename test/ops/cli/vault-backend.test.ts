import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { generateKeyset } from '../../../src/lib/keyset/generate.js'
import { loadKeyset } from '../../../src/lib/keyset/load.js'
import { toVerificationKeyset } from '../../../src/lib/keyset/projection.js'
import { serializeKeyset } from '../../../src/lib/keyset/serialize.js'
import { startVaultDouble, type VaultDouble } from '../../support/vault-double.js'
import { cbcJwt, oneLine } from './cli.js'

/** The configured backend, Vault branch: the CLI reads and writes the KV v2 secret like the service. */
const SECRET = 'cbc/jwt-keyset'
let vault: VaultDouble
before(async () => {
  vault = await startVaultDouble()
})
after(() => vault.close())

const env = () => ({ CBC_JWT_BACKEND: 'vault', VAULT_ADDR: vault.addr, VAULT_TOKEN: vault.token, CBC_JWT_VAULT_RETRIES: '0' })

describe('cbc-jwt with CBC_JWT_BACKEND=vault', () => {
  it('status and rotate read and write the secret’s jwt-keyset field (check-and-set), other fields kept', async () => {
    const text = serializeKeyset(await generateKeyset('ES256'))
    vault.setSecret(SECRET, { 'jwt-keyset': text, 'other-secret': 'keep me' })
    const status = await cbcJwt(['status', '--json'], { env: env() })
    assert.equal(status.code, 0, status.stderr)
    assert.equal(JSON.parse(status.stdout).location, `vault:secret/${SECRET}`)

    const r = await cbcJwt(['rotate'], { env: env() })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, new RegExp(`wrote vault:secret/${SECRET}\\n$`))
    assert.equal(vault.version(SECRET), 2)
    const stored = vault.secret(SECRET)!
    assert.equal(stored['other-secret'], 'keep me')
    const doc = JSON.parse(String(stored['jwt-keyset']))
    assert.notEqual(doc.current, JSON.parse(text).current)
    assert.equal(doc.keys.length, 2)
    const writes = vault.requests.filter((q) => q.method === 'POST' || q.method === 'PUT')
    assert.equal((writes.at(-1)!.body as { options?: { cas?: number } }).options?.cas, 1, 'written with cas = the version read')
  })

  // Found by probing the CLI against a Vault: with a verifier's settings
  // (CBC_JWT_VAULT_PATH=cbc/jwt-keyset-public), `revoke --client-id` wrote its rule into the
  // projection and exited 0; the next write of the private keyset rewrote the projection and
  // the client was silently accepted again. The file backend refuses the same revoke.
  it('revoke pointed at the Vault projection of a private keyset is refused: the rule would be lost at its next write', async () => {
    const path = 'proj/jwt-keyset'
    vault.setSecret(path, { 'jwt-keyset': serializeKeyset(await generateKeyset('ES256')) })
    const at = { ...env(), CBC_JWT_VAULT_PATH: path }
    assert.equal((await cbcJwt(['revoke', '--issued-before', 'now'], { env: at })).code, 0)
    const before = vault.version(`${path}-public`)
    assert.ok(before > 0, 'the projection was published')
    const r = await cbcJwt(['revoke', '--client-id', 'acme', '--issued-before', 'now'], { env: { ...env(), CBC_JWT_VAULT_PATH: `${path}-public` } })
    assert.equal(r.code, 1, r.stdout + r.stderr)
    assert.match(oneLine(r.stderr), /vault:secret\/proj\/jwt-keyset-public is the verification projection of vault:secret\/proj\/jwt-keyset: revoke there/)
    assert.equal(vault.version(`${path}-public`), before, 'nothing was written to the projection')
    // A verification keyset of its own (no private keyset beside it) takes revocations.
    const own = 'verifiers-only/jwt-keyset-public'
    vault.setSecret(own, { 'jwt-keyset': serializeKeyset(toVerificationKeyset(await generateKeyset('ES256'))) })
    const ok = await cbcJwt(['revoke', '--client-id', 'acme', '--issued-before', 'now'], { env: { ...env(), CBC_JWT_VAULT_PATH: own } })
    assert.equal(ok.code, 0, ok.stderr)
  })

  it('keyset init --force pointed at the Vault projection of a private keyset is refused: verifiers would get the signing key', async () => {
    const path = 'proj-init/jwt-keyset'
    vault.setSecret(path, { 'jwt-keyset': serializeKeyset(await generateKeyset('ES256')) })
    assert.equal((await cbcJwt(['revoke', '--issued-before', 'now'], { env: { ...env(), CBC_JWT_VAULT_PATH: path } })).code, 0)
    const before = vault.version(`${path}-public`)
    assert.ok(before > 0, 'the projection was published')
    const r = await cbcJwt(['keyset', 'init', '--force'], { env: { ...env(), CBC_JWT_VAULT_PATH: `${path}-public` } })
    assert.equal(r.code, 1, r.stdout + r.stderr)
    assert.match(oneLine(r.stderr), /vault:secret\/proj-init\/jwt-keyset-public is the verification projection of vault:secret\/proj-init\/jwt-keyset: /)
    assert.equal(vault.version(`${path}-public`), before, 'a keyset with private keys was written to the projection')
  })

  it('a projection or last-good path with a "." or ".." segment is refused naming its variable, exit 2, before any write', async () => {
    vault.setSecret(SECRET, { 'jwt-keyset': serializeKeyset(await generateKeyset('ES256')) })
    const before = ['', '-public', '-last-good'].map((suffix) => vault.version(`${SECRET}${suffix}`))
    for (const [name, value] of [
      ['CBC_JWT_VAULT_LAST_GOOD_PATH', 'cbc/./jwt-keyset'],
      ['CBC_JWT_VAULT_LAST_GOOD_PATH', 'cbc/x/../jwt-keyset-copy'],
      ['CBC_JWT_VAULT_PUBLIC_PATH', 'cbc/../cbc/jwt-keyset'],
    ] as const) {
      const r = await cbcJwt(['rotate'], { env: { ...env(), [name]: value } })
      assert.equal(r.code, 2, `${name}=${value}: ${r.stderr}`)
      const line = oneLine(r.stderr)
      assert.match(line, new RegExp(`^cbc-jwt: ${name} must be a path`), line)
      assert.doesNotMatch(line, /run the same command again/)
    }
    assert.deepEqual(
      ['', '-public', '-last-good'].map((suffix) => vault.version(`${SECRET}${suffix}`)),
      before,
      'nothing written',
    )
  })

  // §10: a key is published before anything signs with it. keyset init --force published the
  // new keyset's projection alone: when its keyset write then failed (or the CLI was killed, as
  // test/e2e/crash-safety.test.ts found), the keyset in force kept signing with a key no
  // verifier held any more — every token refused until someone ran the command again.
  it('keyset init --force whose keyset write fails: the projection still verifies the keyset in force, beside the new key', async () => {
    const path = 'cbc/init-force'
    const old = await generateKeyset('ES256', new Date(Date.now() - 86_400_000))
    const oldText = serializeKeyset({ ...old, revoked_before: new Date(Date.now() - 3_600_000).toISOString().replace(/\.\d+Z$/, 'Z') })
    vault.setSecret(path, { 'jwt-keyset': oldText })
    vault.setSecret(`${path}-public`, { 'jwt-keyset': serializeKeyset(toVerificationKeyset(JSON.parse(oldText))) })
    const initEnv = { ...env(), CBC_JWT_VAULT_PATH: path }
    await vault.setFault({ kind: '500', method: 'POST', pathEnd: `/${path}`, times: 1 })
    const failed = await cbcJwt(['keyset', 'init', '--force'], { env: initEnv })
    await vault.setFault(null)
    assert.equal(failed.code, 1, failed.stderr)
    assert.match(
      oneLine(failed.stderr),
      /the verification projection \(vault:secret\/cbc\/init-force-public\) already publishes the new keys beside the keyset in force, whose keys still verify there — run the same command again/,
    )
    assert.equal(vault.secret(path)!['jwt-keyset'], oldText, 'the keyset was not written')
    const projection = () => JSON.parse(String(vault.secret(`${path}-public`)!['jwt-keyset']))
    const interim = projection()
    assert.equal(interim.current, old.current, 'the key the keyset in force signs with is still current there')
    assert.equal(interim.keys.length, 2, 'and the new key is published beside it')
    assert.equal(interim.revoked_before, JSON.parse(oldText).revoked_before, "the keyset in force's cut-offs stay in force")
    loadKeyset(interim)

    const again = await cbcJwt(['keyset', 'init', '--force'], { env: initEnv })
    assert.equal(again.code, 0, again.stderr)
    const stored = JSON.parse(String(vault.secret(path)!['jwt-keyset']))
    assert.deepEqual(projection(), toVerificationKeyset(stored), 'once the keyset is stored, the projection is its own: the replaced keys stop verifying')
  })

  it('keyset init --force whose interim projection cannot be replaced after the keyset landed: exit 1, naming it', async () => {
    const path = 'cbc/init-force-level'
    const oldText = serializeKeyset(await generateKeyset('ES256', new Date(Date.now() - 86_400_000)))
    vault.setSecret(path, { 'jwt-keyset': oldText })
    vault.setSecret(`${path}-public`, { 'jwt-keyset': serializeKeyset(toVerificationKeyset(JSON.parse(oldText))) })
    // The interim projection lands; the write that replaces it, after the keyset's, does not.
    await vault.setFault({ kind: '403', method: 'POST', pathEnd: `/${path}-public`, skip: 1, times: 1 })
    const r = await cbcJwt(['keyset', 'init', '--force'], { env: { ...env(), CBC_JWT_VAULT_PATH: path } })
    await vault.setFault(null)
    assert.equal(r.code, 1, r.stderr)
    const stored = JSON.parse(String(vault.secret(path)!['jwt-keyset']))
    assert.notEqual(stored.current, JSON.parse(oldText).current, 'the keyset was written')
    assert.match(r.stdout, /created vault:secret\/cbc\/init-force-level: ES256 key \S+ \(current\)/)
    // The keyset_changed audit line comes first: the keyset did change.
    assert.match(
      r.stderr.trim().split('\n').at(-1)!,
      /^cbc-jwt: the verification projection still verifies the replaced keyset's keys as well, and could not be set to the new keyset \(.*HTTP 403.*\); the next write levels it — run keyset validate --projection/,
    )
    assert.equal(JSON.parse(String(vault.secret(`${path}-public`)!['jwt-keyset'])).current, JSON.parse(oldText).current, 'the interim projection stays')
  })

  // §10: a failure between the two writes names what was and was not written. keyset restore
  // said only the keyset's error, its projection already published.
  it('keyset restore whose keyset write fails after its projection was written: the line names both', async () => {
    const path = 'cbc/restore-fails'
    const copy = serializeKeyset(await generateKeyset('ES256'))
    vault.setSecret(path, { 'jwt-keyset': '{"version": 1, "current": ' })
    vault.setSecret(`${path}-last-good`, { 'jwt-keyset': copy })
    await vault.setFault({ kind: '500', method: 'POST', pathEnd: `/${path}`, times: 1 })
    const r = await cbcJwt(['keyset', 'restore'], { env: { ...env(), CBC_JWT_VAULT_PATH: path } })
    await vault.setFault(null)
    assert.equal(r.code, 1, r.stderr)
    assert.match(
      oneLine(r.stderr),
      /HTTP 500.*; the verification projection \(vault:secret\/cbc\/restore-fails-public\) already holds the change — run the same command again/,
    )
    assert.equal(JSON.parse(String(vault.secret(`${path}-public`)!['jwt-keyset'])).current, JSON.parse(copy).current)
  })

  it('a Vault that refuses the token is a backend error (exit 1, one line, no token in it)', async () => {
    const r = await cbcJwt(['status'], { env: { ...env(), VAULT_TOKEN: 'hvs.not-a-real-token' } })
    assert.equal(r.code, 1)
    const line = oneLine(r.stderr)
    assert.match(line, /^cbc-jwt: /)
    assert.doesNotMatch(line, /hvs\.not-a-real-token/)
  })

  // Found by an audit: with the default retries, an unreachable Vault printed "cbc-jwt: warning:
  // Vault request failed; retrying" twice before the error: three lines for one failure.
  it('an unreachable Vault, retried as configured by default: one line, the error', async () => {
    const r = await cbcJwt(['status'], { env: { CBC_JWT_BACKEND: 'vault', VAULT_ADDR: 'http://127.0.0.1:1', VAULT_TOKEN: 'x' } })
    assert.equal(r.code, 1)
    assert.match(oneLine(r.stderr), /^cbc-jwt: vault:secret\/cbc\/jwt-keyset: read: cannot reach Vault \(ECONNREFUSED\)/)
  })
})
