// The development keyset's folder ignores itself (CONTRACT §2 "git-ignored"); starting the
// service in a real folder, and git over it, is test/e2e/dev-keyset.test.ts.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { DEV_KEYSET_PATH, ensureDevKeyset } from '../../../src/lib/backends/dev-keyset.js'
import { ConfigError } from '../../../src/lib/errors.js'
import { generateKeyset } from '../../../src/lib/keyset/generate.js'

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-dev-keyset-'))
after(() => fs.rmSync(root, { recursive: true, force: true }))
const silent = { warn() {} }

describe('ensureDevKeyset: the folder ignores itself', () => {
  it('a dev keyset an earlier version generated (no .gitignore beside it) is git-ignored from the next start on', async () => {
    // Before the folder ignored itself, a start in an API's own repository left the private key
    // to the next `git add .`; reusing that keyset must not leave it so.
    const file = path.join(root, 'upgraded', DEV_KEYSET_PATH)
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
    const text = `${JSON.stringify(await generateKeyset('ES256'), null, 2)}\n`
    fs.writeFileSync(file, text, { mode: 0o600 })
    assert.equal(await ensureDevKeyset(silent, file), file)
    assert.equal(fs.readFileSync(file, 'utf8'), text, 'the keyset is reused as it is')
    assert.match(fs.readFileSync(path.join(path.dirname(file), '.gitignore'), 'utf8'), /^\*$/m)
  })

  it('an existing .gitignore in the folder is kept as it is', async () => {
    const file = path.join(root, 'kept', DEV_KEYSET_PATH)
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
    fs.writeFileSync(path.join(path.dirname(file), '.gitignore'), 'dev-keyset.json\n')
    fs.writeFileSync(file, `${JSON.stringify(await generateKeyset('ES256'), null, 2)}\n`, { mode: 0o600 })
    await ensureDevKeyset(silent, file)
    assert.equal(fs.readFileSync(path.join(path.dirname(file), '.gitignore'), 'utf8'), 'dev-keyset.json\n')
  })
})

describe('ensureDevKeyset: a file in the way of its folder', () => {
  // Found by probing `cbc-jwt serve --dev` in a folder holding a file named `.cbc-jwt`: the
  // EEXIST of mkdir was taken for "another start made it meanwhile" and retried for ever — a
  // stack overflow, two lines of V8 trace on stderr, "cannot start: Maximum call stack size
  // exceeded".
  it('a file named .cbc-jwt: one ConfigError naming it, no retry loop', async () => {
    const cwd = path.join(root, 'file-in-the-way')
    fs.mkdirSync(cwd, { recursive: true })
    fs.writeFileSync(path.join(cwd, '.cbc-jwt'), 'not a folder\n')
    const file = path.join(cwd, DEV_KEYSET_PATH)
    await assert.rejects(ensureDevKeyset(silent, file), (err: Error) => {
      assert.ok(err instanceof ConfigError, String(err))
      assert.match(
        err.message,
        /cannot create the development keyset .*\.cbc-jwt\/dev-keyset\.json \(.*\.cbc-jwt is not a folder\): start from a writable folder, or set CBC_JWT_KEYSET_FILE/,
      )
      return true
    })
    assert.equal(fs.readFileSync(path.join(cwd, '.cbc-jwt'), 'utf8'), 'not a folder\n', 'the file is left as it was')
  })
})
