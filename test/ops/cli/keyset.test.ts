import assert from 'node:assert/strict'
import { toVerificationKeyset } from '../../../src/lib/keyset/projection.js'
import fs from 'node:fs'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { loadKeyset } from '../../../src/lib/keyset/load.js'
import { generateKeyset } from '../../../src/lib/keyset/generate.js'
import { at, cbcJwt, keysetFixture, oneLine, readJson, tempDir } from './cli.js'

const tmp = tempDir('keyset')
after(tmp.cleanup)
const NOW = '2026-11-25T00:00:00Z'

describe('cbc-jwt keyset init', { concurrency: true }, () => {
  it('writes a valid keyset with one current ES256 key to stdout by default', async () => {
    const r = await cbcJwt(['keyset', 'init'], { env: at(NOW) })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stderr, '')
    const doc = JSON.parse(r.stdout)
    assert.equal(doc.keys.length, 1)
    assert.equal(doc.current, doc.keys[0].kid)
    assert.match(doc.current, /^k-20261125-[0-9a-f]{6}$/)
    assert.equal(doc.keys[0].alg, 'ES256')
    assert.equal(doc.keys[0].created_at, NOW)
    assert.equal(loadKeyset(doc, Date.parse(NOW)).current.kid, doc.current)
  })

  it('--force with stdout is bad usage: there is nothing there to replace (the flag would be silently ignored)', async () => {
    for (const args of [['--force'], ['-', '--force'], ['--keyset-file', '-', '--force']]) {
      const r = await cbcJwt(['keyset', 'init', ...args])
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
      assert.equal(r.stdout, '')
      assert.match(r.stderr, /^cbc-jwt: keyset init: --force replaces a stored keyset; stdout holds none \(give --keyset-file PATH or --backend\)\n$/)
    }
  })

  it('takes --alg', async () => {
    const r = await cbcJwt(['keyset', 'init', '--alg', 'HS512'])
    assert.equal(r.code, 0, r.stderr)
    const doc = JSON.parse(r.stdout)
    assert.equal(doc.keys[0].alg, 'HS512')
    assert.equal(Buffer.from(doc.keys[0].jwk.k, 'base64url').length, 64)
  })

  it('creates a new file 0600, and refuses to overwrite a valid keyset without --force', async () => {
    const file = tmp.file('init.json')
    const first = await cbcJwt(['keyset', 'init', '--keyset-file', file])
    assert.equal(first.code, 0, first.stderr)
    assert.match(first.stdout, /^wrote the verification projection .*init\.public\.json\ncreated .*init\.json: ES256 key k-\d{8}-[0-9a-f]{6} \(current\)\n$/)
    assert.equal(fs.statSync(file).mode & 0o777, 0o600)
    // The projection beside it: world-readable, no private member, the same keys.
    const publicFile = tmp.file('init.public.json')
    assert.equal(fs.statSync(publicFile).mode & 0o777, 0o644)
    const projection = readJson(publicFile)
    assert.deepEqual(projection, toVerificationKeyset(readJson(file)))
    assert.equal(loadKeyset(projection).signing, false)
    const bytes = fs.readFileSync(file)

    const again = await cbcJwt(['keyset', 'init', '--keyset-file', file, '--alg', 'ES384'])
    assert.equal(again.code, 1)
    assert.match(oneLine(again.stderr), /already holds a valid keyset \(current k-.*\); use --force/)
    assert.deepEqual(fs.readFileSync(file), bytes)

    fs.chmodSync(file, 0o640)
    const forced = await cbcJwt(['keyset', 'init', '--keyset-file', file, '--alg', 'ES384', '--force'])
    assert.equal(forced.code, 0, forced.stderr)
    assert.equal(readJson(file).keys[0].alg, 'ES384')
    assert.equal(fs.statSync(file).mode & 0o777, 0o640, 'the mode of the file replaced is kept')
  })

  // It said the file "was created by another writer" and wrote the projection alone.
  it('through a symlink whose file was deleted: the file it names is created, the link kept', async () => {
    fs.mkdirSync(tmp.file('dangling-real'))
    const link = tmp.file('dangling.json')
    fs.symlinkSync(path.join('dangling-real', 'keyset.json'), link)
    const r = await cbcJwt(['keyset', 'init', '--keyset-file', link])
    assert.equal(r.code, 0, r.stderr)
    assert.ok(fs.lstatSync(link).isSymbolicLink())
    assert.equal(readJson(tmp.file('dangling-real/keyset.json')).version, 1)
    assert.deepEqual(readJson(tmp.file('dangling.public.json')), toVerificationKeyset(readJson(link)))
  })

  it('--force with an HS* algorithm over a keyset whose projection is published: refused, both files untouched', async () => {
    const file = tmp.file('init-hs.json')
    assert.equal((await cbcJwt(['keyset', 'init', '--keyset-file', file])).code, 0)
    const publicFile = tmp.file('init-hs.public.json')
    const [keyset, published] = [fs.readFileSync(file), fs.readFileSync(publicFile)]
    const r = await cbcJwt(['keyset', 'init', '--keyset-file', file, '--alg', 'HS256', '--force'])
    assert.equal(r.code, 1, r.stdout)
    assert.match(
      oneLine(r.stderr),
      /refusing to replace the keyset with HS\* \(oct\) keys: the verification projection .*init-hs\.public\.json .*nothing was written/,
    )
    assert.deepEqual(fs.readFileSync(file), keyset)
    assert.deepEqual(fs.readFileSync(publicFile), published)
  })

  it('refuses a file that holds something else, but fills an empty one', async () => {
    const other = tmp.file('notes.txt')
    fs.writeFileSync(other, 'precious notes\n')
    const r = await cbcJwt(['keyset', 'init', '--keyset-file', other])
    assert.equal(r.code, 1)
    assert.match(oneLine(r.stderr), /already exists and is not empty/)
    assert.equal(fs.readFileSync(other, 'utf8'), 'precious notes\n')

    const empty = tmp.file('empty.json')
    fs.writeFileSync(empty, '')
    assert.equal((await cbcJwt(['keyset', 'init', '--keyset-file', empty])).code, 0)
    assert.equal(readJson(empty).version, 1)
  })

  it('refuses an unknown algorithm with exit 2 and creates nothing', async () => {
    const file = tmp.file('never.json')
    const r = await cbcJwt(['keyset', 'init', '--alg', 'RS1024', '--keyset-file', file])
    assert.equal(r.code, 2)
    assert.match(oneLine(r.stderr), /^cbc-jwt: --alg: unknown algorithm "RS1024"/)
    assert.equal(fs.existsSync(file), false)
  })
})

describe('cbc-jwt keyset validate', { concurrency: true }, () => {
  it('accepts a valid keyset (exit 0)', async () => {
    const file = await keysetFixture(tmp.file('valid.json'))
    const r = await cbcJwt(['keyset', 'validate', '--keyset-file', file])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /valid keyset, 1 key\(s\), current k-/)
  })

  it('lists every schema problem with its JSON path (exit 1)', async () => {
    const file = await keysetFixture(tmp.file('typos.json'))
    const doc = readJson(file)
    doc.version = 2
    doc.keys[0].alg = 'ES257'
    doc.keys[0].created_at = 'yesterday'
    doc.keys[0].notafter = '2026-12-01T00:00:00Z'
    doc.revoked = true
    fs.writeFileSync(file, JSON.stringify(doc))
    const r = await cbcJwt(['keyset', 'validate', '--keyset-file', file])
    assert.equal(r.code, 1)
    const lines = r.stdout.trim().split('\n').sort()
    assert.deepEqual(lines, [
      'keys[0].alg: must be one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA',
      'keys[0].created_at: must be an RFC 3339 date-time (e.g. 2026-11-25T21:16:00Z)',
      'keys[0].notafter: unknown field',
      'revoked: unknown field',
      'version: must be 1',
    ])
    assert.match(oneLine(r.stderr), /typos\.json: invalid keyset \(5 problems\)$/)
  })

  it('lists every semantic problem too: duplicate kid, missing current, material that does not fit', async () => {
    const a = (await generateKeyset('ES256')).keys[0]!
    const b = (await generateKeyset('HS256')).keys[0]!
    const doc = { version: 1, current: 'k-missing', keys: [a, { ...a }, { ...b, alg: 'HS512' }] }
    const r = await cbcJwt(['keyset', 'validate', '--json', '-'], { input: JSON.stringify(doc) })
    assert.equal(r.code, 1)
    const out = JSON.parse(r.stdout)
    assert.equal(out.valid, false)
    assert.deepEqual(out.problems.map((p: { path: string }) => p.path).sort(), ['current', 'keys[1].kid', 'keys[2].jwk.k'])
  })

  // CONTRACT.md §4: the raw keyset, not a Kubernetes object. `kubectl get secret -o json` piped
  // in gave seven problems (version, current, keys required; apiVersion, kind… unknown) and no hint.
  it('a Kubernetes Secret object instead of the keyset: one problem saying how to get the keyset out of it', async () => {
    const keyset = fs.readFileSync(await keysetFixture(tmp.file('in-secret.json')), 'utf8')
    const secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'cbc-secrets', namespace: 'cbc' },
      type: 'Opaque',
      data: { 'jwt-keyset': Buffer.from(keyset).toString('base64') },
    }
    const r = await cbcJwt(['keyset', 'validate', '-'], { input: JSON.stringify(secret) })
    assert.equal(r.code, 1)
    assert.match(
      r.stdout,
      /^\(document\): a Kubernetes Secret object, not a keyset document: the keyset is its data\.jwt-keyset, base64-decoded \(kubectl get secret cbc-secrets -o jsonpath='\{\.data\.jwt-keyset\}' \| base64 -d\)\n$/,
    )
    const rotate = await cbcJwt(['rotate', '-'], { input: JSON.stringify(secret) })
    assert.equal(rotate.code, 1)
    assert.match(oneLine(rotate.stderr), /^cbc-jwt: stdin: invalid keyset: a Kubernetes Secret object, not a keyset document/)
    assert.equal(rotate.stdout, '')
  })

  it('reports text that is not JSON', async () => {
    const r = await cbcJwt(['keyset', 'validate', '-'], { input: '{"version": 1,' })
    assert.equal(r.code, 1)
    assert.match(r.stdout, /^\(document\): not valid JSON/)
  })
})
