// docs/vault.md's first block, run as written against the Vault test double: `cbc-jwt keyset
// init --backend vault` creates the keyset with check-and-set 0, then `npm start` (its start
// script) serves it and generates no development keyset.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { cbcJwtProcess } from '../ops/cli/cli.js'
import { runApp, type RunningApp } from '../support/packed-app.js'
import { PROJECT_ROOT } from '../support/service.js'
import { PROCESS_LEVEL } from '../support/tier.js'
import { startVaultDouble, type VaultDouble } from '../support/vault-double.js'
import { waitFor } from '../support/wait.js'

const VAULT_DOC = fs.readFileSync(path.join(PROJECT_ROOT, 'docs/vault.md'), 'utf8')

/** The first sh block: the variables it exports, the cbc-jwt command's arguments, and whether it then runs npm start. */
function quickStart(): { env: Record<string, string>; cliArgs: string[]; npmStart: boolean } {
  const block = /```sh\n([\s\S]*?)```/.exec(VAULT_DOC)?.[1] ?? ''
  const lines = block.split('\n').map((l) => l.replace(/\s+#.*$/, '').trim())
  const env = Object.fromEntries(
    lines
      .filter((l) => l.startsWith('export '))
      .flatMap((l) => l.slice('export '.length).split(/\s+/))
      .map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]),
  )
  const cli = lines.find((l) => l.startsWith('npx cbc-jwt '))
  assert.ok(cli, block)
  return { env, cliArgs: cli.slice('npx cbc-jwt '.length).split(/\s+/), npmStart: lines.includes('npm start') }
}

describe('docs/vault.md: keyset init into Vault, then npm start', PROCESS_LEVEL, () => {
  let vault: VaultDouble
  let dir: string
  let app: RunningApp
  let init: { code: number | null; stdout: string; stderr: string }
  let env: Record<string, string>

  before(async () => {
    vault = await startVaultDouble()
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-vault-doc-'))
    const block = quickStart()
    assert.ok(block.npmStart)
    assert.equal(block.env.VAULT_TOKEN, '…', 'the block leaves the token to the reader')
    env = { ...block.env, VAULT_ADDR: vault.addr, VAULT_TOKEN: vault.token }
    init = await cbcJwtProcess(block.cliArgs, { env })
    app = await runApp(dir, [path.join(PROJECT_ROOT, 'scripts/start.mjs')], { ...env, CBC_JWT_LOG_LEVEL: 'warn' }, '/healthz')
  })
  after(async () => {
    await app?.stop()
    await vault?.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it('keyset init creates the keyset at the configured path, written with cas=0', () => {
    assert.equal(init.code, 0, init.stderr)
    const writes = vault.requests.filter((r) => r.method !== 'GET' && r.path === '/v1/secret/data/cbc/jwt-keyset')
    assert.equal(writes.length, 1)
    assert.deepEqual((writes[0]!.body as { options: unknown }).options, { cas: 0 })
    assert.ok(vault.secret('cbc/jwt-keyset')?.['jwt-keyset'])
  })

  it('npm start serves that keyset and generates no development keyset', async () => {
    const current = JSON.parse(String(vault.secret('cbc/jwt-keyset')!['jwt-keyset'])).current
    const keys = await waitFor(
      async () => {
        const res = await fetch(`${app.base}/v1/keys`)
        return res.status === 200 && ((await res.json()) as { current: string })
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'the service to load the keyset from Vault' },
    )
    assert.equal(keys.current, current)
    assert.equal(fs.existsSync(path.join(dir, '.cbc-jwt')), false, 'a development keyset was generated')
  })
})
