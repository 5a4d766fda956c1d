import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, it } from 'node:test'

// Node 20 deadlocks when a garbage collection runs inside `export({ format: 'jwk' })` of a key
// that `generateKeyPairSync` returned as an object (found with gdb; Ed25519 hangs within
// seconds under `--max-semi-space-size=1`). A hung key helper hangs `npm test` at random, so the
// tests make keys one way only: generated as PEM and imported (test/support/keys.ts).

const root = fileURLToPath(new URL('../..', import.meta.url))
const helper = path.join('test', 'support', 'keys.ts')
const self = path.join('test', 'packaging', 'test-keys.test.ts')

function sources(dir: string): string[] {
  return fs.readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) return sources(p)
    return /\.(ts|mts|mjs|js)$/.test(e.name) ? [p] : []
  })
}

describe('test keys never take the path that deadlocks Node 20', () => {
  it('no test or bench file calls generateKeyPairSync except the PEM helper', () => {
    const offenders = [...sources('test'), ...sources('bench'), ...sources('scripts')].filter(
      (f) => f !== helper && f !== self && fs.readFileSync(path.join(root, f), 'utf8').includes('generateKeyPairSync('),
    )
    assert.deepEqual(offenders, [])
    assert.match(fs.readFileSync(path.join(root, helper), 'utf8'), /privateKeyEncoding: \{ type: 'pkcs8', format: 'pem' \}/)
  })

  it('400 Ed25519 and P-256 keys made and exported as JWK with a 1 MiB young generation (GC in every export)', () => {
    const script = `
      import { makeKey } from ${JSON.stringify(new URL('../support/keys.ts', import.meta.url).href)}
      const keep = []
      for (let i = 0; i < 200; i++) {
        keep.push(makeKey('EdDSA', 'k-' + i).jwk, makeKey('ES256', 'e-' + i).jwk)
        if (keep.length > 50) keep.splice(0, 25)
      }
      process.stdout.write('done')
    `
    const out = execFileSync(process.execPath, ['--max-semi-space-size=1', '--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: root,
      timeout: 60_000,
      encoding: 'utf8',
    })
    assert.equal(out, 'done')
  })
})
