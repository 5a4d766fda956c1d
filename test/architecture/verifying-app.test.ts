// `import 'cbc-jwt'` in an API that only verifies loads the request-path library and what it
// needs, nothing of the operator's tooling, the service or the adapters, and not jose: jose is
// loaded where a key is generated or a token signed. Each probe is a fresh process.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { makeKey, makeKeyset, signToken, validClaims } from '../support/keys.js'
import { PROJECT_ROOT } from '../support/service.js'
import { PROCESS_LEVEL } from '../support/tier.js'

const HOOKS = pathToFileURL(path.join(PROJECT_ROOT, 'test/support/module-trace-hooks.mjs')).href
const REGISTER = `data:text/javascript,${encodeURIComponent(`import { register } from 'node:module'; register(${JSON.stringify(HOOKS)})`)}`

let dir: string
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-modules-'))
})
after(() => fs.rmSync(dir, { recursive: true, force: true }))

/**
 * Runs `body` (an ES module body, after `import * as cbc from 'cbc-jwt'`) in a fresh process;
 * returns every module it loaded — through the ESM loader and through require() — as paths
 * relative to the project (`dist/lib/…`, `node_modules/jose/…`), and what `body` printed.
 */
function probe(name: string, body: string, env: Record<string, string> = {}): { modules: string[]; out: string } {
  const trace = path.join(dir, `${name}.trace`)
  const script = `
import * as cbc from 'cbc-jwt'
import { createRequire } from 'node:module'
${body}
import('node:fs').then((fs) => fs.appendFileSync(${JSON.stringify(trace)}, Object.keys(createRequire(import.meta.url).cache).join('\\n') + '\\n'))`
  const out = execFileSync(process.execPath, ['--import', REGISTER, '--input-type=module', '-e', script], {
    cwd: PROJECT_ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, ...env, MODULE_TRACE_FILE: trace },
  })
  const modules = fs
    .readFileSync(trace, 'utf8')
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('node:'))
    .map((line) => path.relative(PROJECT_ROOT, line.startsWith('file:') ? new URL(line).pathname : line))
  return { modules: [...new Set(modules)].sort(), out }
}

// A package is matched anywhere in the path: node_modules may be a link to another folder.
const under = (modules: string[], prefix: string) => modules.filter((m) => (prefix.startsWith('node_modules/') ? m.includes(prefix) : m.startsWith(prefix)))

describe('an app that only verifies', PROCESS_LEVEL, () => {
  it('loads the library and nothing of ops, server, adapters or jose — through start, authenticate, close', (t) => {
    const key = makeKey('ES256', 'k1')
    const keysetFile = path.join(dir, 'keyset.json')
    fs.writeFileSync(keysetFile, JSON.stringify(makeKeyset([key])))
    const { modules, out } = probe(
      'verify',
      `
const app = cbc.createCbcJwt({ keysetFile: process.env.KEYSET_FILE, env: {}, logger: { info() {}, warn() {}, error() {} } })
await app.start()
const result = await app.authenticate('Bearer ' + process.env.TOKEN)
await app.close()
console.log(JSON.stringify({ ok: result.ok }))`,
      { KEYSET_FILE: keysetFile, TOKEN: signToken(key, validClaims()) },
    )
    // The probe verified a real token: what it loaded is what verifying needs.
    assert.deepEqual(JSON.parse(out), { ok: true })
    t.diagnostic(`${modules.length} modules: ${under(modules, 'dist/').length} of cbc-jwt, ${under(modules, 'node_modules/').length} from packages`)
    assert.ok(under(modules, 'dist/lib/').length > 0, modules.join('\n'))
    for (const prefix of ['dist/ops/', 'dist/server/', 'dist/adapters/', 'node_modules/jose/', 'src/']) {
      assert.deepEqual(under(modules, prefix), [], `a verifying app loaded ${prefix}`)
    }
  })

  it('loads jose when it generates a key, so the probe does see jose', () => {
    const { modules, out } = probe('generate', `const doc = await cbc.generateKeyset('ES256'); console.log(doc.keys.length)`)
    assert.equal(out.trim(), '1')
    assert.ok(under(modules, 'node_modules/jose/').length > 0, modules.join('\n'))
    assert.deepEqual(under(modules, 'dist/ops/'), [])
  })
})
