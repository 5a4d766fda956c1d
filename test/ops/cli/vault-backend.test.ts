import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { generateKeyset } from '../../../src/lib/keyset/generate.js'
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

  it('a Vault that refuses the token is a backend error (exit 1, one line, no token in it)', async () => {
    const r = await cbcJwt(['status'], { env: { ...env(), VAULT_TOKEN: 'hvs.not-a-real-token' } })
    assert.equal(r.code, 1)
    const line = oneLine(r.stderr)
    assert.match(line, /^cbc-jwt: /)
    assert.doesNotMatch(line, /hvs\.not-a-real-token/)
  })
})
