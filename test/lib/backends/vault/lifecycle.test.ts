import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { PROJECT_ROOT } from '../../../support/service.js'
import { startVaultDouble, type VaultDouble } from '../../../support/vault-double.js'
import { SECRET_PATH } from './fixtures.js'
import { PROCESS_LEVEL } from '../../../support/tier.js'

/**
 * Runs a backend in a child process that never calls process.exit: it ends only when
 * nothing (socket, timer) is left holding its event loop.
 */
const SCRIPT = `
import { createVaultBackend } from ${JSON.stringify(path.join(PROJECT_ROOT, 'src/lib/backends/vault/index.ts'))}
const backend = createVaultBackend({
  addr: process.env.ADDR, token: process.env.TOKEN, skipVerify: false, mount: 'secret',
  path: ${JSON.stringify(SECRET_PATH)}, auth: 'token', k8sMount: 'kubernetes', k8sTokenPath: '/x',
  timeoutMs: 20000, retries: 2,
})
const pending = backend.read().then((s) => 'read ' + s.version, (e) => 'failed ' + e.reason)
if (process.env.CLOSE_AFTER_MS) setTimeout(() => void backend.close(), Number(process.env.CLOSE_AFTER_MS))
console.log(await pending)
`

function run(script: string, env: Record<string, string>): Promise<{ code: number | null; out: string; ms: number }> {
  const started = Date.now()
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: PROJECT_ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d))
  child.stderr.on('data', (d: Buffer) => (out += d))
  return new Promise((resolve) => {
    const killer = setTimeout(() => child.kill('SIGKILL'), 8000)
    child.on('exit', (code) => {
      clearTimeout(killer)
      resolve({ code, out: out.trim(), ms: Date.now() - started })
    })
  })
}

describe('vault backend lifecycle', PROCESS_LEVEL, () => {
  let double: VaultDouble
  let dir: string
  let script: string
  before(async () => {
    double = await startVaultDouble()
    double.setSecret(SECRET_PATH, { 'jwt-keyset': '{}' })
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vault-lifecycle-'))
    script = path.join(dir, 'run.mts')
    fs.writeFileSync(script, SCRIPT)
  })
  after(async () => {
    await double.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it('leaves nothing holding the process after a read, even without close()', async () => {
    const res = await run(script, { ADDR: double.addr, TOKEN: double.token })
    assert.equal(res.out, 'read 1')
    assert.equal(res.code, 0)
  })

  it('close() aborts an in-flight request, so the process ends at once instead of at the 20 s timeout', async () => {
    double.requests.length = 0
    await double.setFault({ kind: 'slow', delayMs: 30_000 })
    const res = await run(script, { ADDR: double.addr, TOKEN: double.token, CLOSE_AFTER_MS: '300' })
    await double.setFault(null)
    assert.equal(res.out, 'failed io_error')
    assert.equal(res.code, 0)
    // Well under the 20 s request timeout, with room for a child process starting on a loaded machine.
    assert.ok(res.ms < 15_000, `took ${res.ms} ms`)
    assert.equal(double.requests.filter((r) => r.method === 'GET').length, 1)
  })
})
