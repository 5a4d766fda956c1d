import assert from 'node:assert/strict'
import fs from 'node:fs'
import { after, before, describe, it } from 'node:test'
import { makeKey, makeKeyset, signToken, validClaims } from '../support/keys.js'
import { valueOf } from '../support/metrics-text.js'
import { SERVER_MAIN, startService, type RunningService } from '../support/service.js'
import { startVaultDouble, type VaultDouble, type VaultFault } from '../support/vault-double.js'
import { waitFor } from '../support/wait.js'

const PATH = 'cbc/jwt-keyset'
const k1 = makeKey('ES256', 'k-vault-1')
const k2 = makeKey('ES256', 'k-vault-2')
const k3 = makeKey('EdDSA', 'k-vault-3')
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
// npm test builds first; a missing build must fail loudly, not skip quietly.
assert.ok(fs.existsSync(SERVER_MAIN), `${SERVER_MAIN} is missing: run npm run build`)

describe('service on the Vault backend (e2e)', () => {
  let vault: VaultDouble
  let service: RunningService

  const backendErrors = async (reason: string): Promise<number> => valueOf(await service.metrics(), 'cbc_jwt_backend_errors_total', { reason }) ?? Number.NaN
  const currentKid = async (): Promise<string | undefined> => (await service.get('/v1/keys')).json?.current

  before(async () => {
    vault = await startVaultDouble()
    vault.setSecret(PATH, { 'jwt-keyset': JSON.stringify(makeKeyset([k1])), 'db-password': 'unrelated' })
    service = await startService({
      env: {
        CBC_JWT_BACKEND: 'vault',
        VAULT_ADDR: vault.addr,
        VAULT_TOKEN: vault.token,
        CBC_JWT_REFRESH_INTERVAL_SECONDS: '0.2',
        CBC_JWT_VAULT_TIMEOUT_MS: '300',
        CBC_JWT_VAULT_RETRIES: '1',
      },
    })
  })
  after(async () => {
    await service?.stop()
    await vault?.close()
  })

  it('loads the keyset from the jwt-keyset field and verifies its tokens', async () => {
    assert.equal(await currentKid(), 'k-vault-1')
    const res = await service.get('/v1/whoami', bearer(signToken(k1, validClaims())))
    assert.equal(res.status, 200)
    assert.equal(res.json.kid, 'k-vault-1')
    const kv = vault.requests.find((r) => r.path === `/v1/secret/data/${PATH}`)
    assert.equal(kv?.headers['x-vault-token'], vault.token)
  })

  it('hot-reloads a new version on the refresh interval, no restart', async () => {
    const expo = await service.metrics()
    const rotationsBefore = valueOf(expo, 'cbc_jwt_key_rotations_total') ?? 0
    const notAfter = new Date(Date.now() + 86_400_000)
    vault.setSecret(PATH, { 'jwt-keyset': JSON.stringify(makeKeyset([k2, { key: k1, opts: { notAfter } }])) })
    await waitFor(async () => (await currentKid()) === 'k-vault-2', { what: 'k-vault-2 current', timeoutMs: 5000 })
    const after = await service.metrics()
    assert.equal(valueOf(after, 'cbc_jwt_key_rotations_total'), rotationsBefore + 1)
    assert.equal(valueOf(after, 'cbc_jwt_keys_loaded'), 2)
    assert.ok(valueOf(after, 'cbc_jwt_active_key_age_seconds', { kid: 'k-vault-2' }) !== undefined)
    assert.equal((await service.get('/v1/whoami', bearer(signToken(k2, validClaims())))).status, 200)
    assert.equal((await service.get('/v1/whoami', bearer(signToken(k1, validClaims())))).status, 200)
  })

  const faults: Array<[string, VaultFault | null, string, (() => void)?]> = [
    ['Vault down', { kind: 'down' }, 'unreachable'],
    ['a 500', { kind: '500' }, 'server_error'],
    ['Vault sealed', { kind: 'sealed' }, 'sealed'],
    ['permission denied', { kind: '403' }, 'forbidden'],
    ['requests past the timeout', { kind: 'slow', delayMs: 5000 }, 'timeout'],
    ['a redirect', { kind: 'redirect' }, 'bad_response'],
    ['a body that is not JSON', { kind: 'not_json' }, 'bad_response'],
    ['a secret without the jwt-keyset field', null, 'not_found', () => vault.setSecret(PATH, { jwt_keyset: '{}' })],
    ['a field that is not JSON', null, 'invalid_json', () => vault.setSecret(PATH, { 'jwt-keyset': '{"version":1,' })],
    [
      'a keyset that fails validation',
      null,
      'invalid_keyset',
      () => vault.setSecret(PATH, { 'jwt-keyset': JSON.stringify({ version: 1, current: 'nope', keys: [] }) }),
    ],
  ]
  for (const [what, fault, reason, mutate] of faults) {
    it(`${what}: cbc_jwt_backend_errors_total{reason="${reason}"} rises, valid tokens still get 200`, async () => {
      const good = JSON.stringify(makeKeyset([k2, { key: k1, opts: { notAfter: new Date(Date.now() + 86_400_000) } }]))
      const before = await backendErrors(reason)
      try {
        if (fault) await vault.setFault(fault)
        mutate?.()
        await waitFor(async () => (await backendErrors(reason)) > before, { what: `${reason} counted`, timeoutMs: 6000 })
        assert.equal((await service.get('/v1/whoami', bearer(signToken(k2, validClaims())))).status, 200)
        assert.equal((await service.get('/readyz')).status, 200)
        assert.equal(await currentKid(), 'k-vault-2')
      } finally {
        await vault.setFault(null)
        if (mutate) vault.setSecret(PATH, { 'jwt-keyset': good })
      }
      // Recovery: a successful read after the fault is gone, before the next case counts.
      const cleared = Date.now() / 1000
      await waitFor(async () => (valueOf(await service.metrics(), 'cbc_jwt_keyset_last_success_timestamp_seconds') ?? 0) > cleared, {
        what: 'a successful read after the fault',
        timeoutMs: 5000,
      })
    })
  }

  it('recovers: the next good version is loaded after the faults', async () => {
    vault.setSecret(PATH, { 'jwt-keyset': JSON.stringify(makeKeyset([k3, k2])) })
    await waitFor(async () => (await currentKid()) === 'k-vault-3', { what: 'k-vault-3 current', timeoutMs: 5000 })
    assert.equal((await service.get('/v1/whoami', bearer(signToken(k3, validClaims())))).status, 200)
  })

  it('never writes the Vault token to its output', async () => {
    const out = service.output()
    assert.ok(out.length > 0)
    assert.ok(out.includes('vault:secret/cbc/jwt-keyset'), 'the log names the location')
    assert.ok(!out.includes(vault.token), 'VAULT_TOKEN appears in the service output')
  })
})
