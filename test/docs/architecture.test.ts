// docs/architecture.md matches the tree: it names every top-level folder of src/, and every
// src/ path it names exists.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { describe, it } from 'node:test'
import { PROJECT_ROOT } from '../support/service.js'

const DOC = fs.readFileSync(path.join(PROJECT_ROOT, 'docs/architecture.md'), 'utf8')
const topFolders = () =>
  fs
    .readdirSync(path.join(PROJECT_ROOT, 'src'), { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort()

/** Every `src/…` path the text names, without a trailing slash. */
export function srcPathsIn(text: string): string[] {
  return [...new Set([...text.matchAll(/\bsrc\/[\w./-]*[\w]/g)].map((m) => m[0]))].sort()
}

describe('docs/architecture.md', () => {
  it('names every top-level folder of src/ in its table', () => {
    const folders = topFolders()
    assert.ok(folders.includes('lib') && folders.length >= 4, folders.join(', '))
    for (const folder of folders) assert.match(DOC, new RegExp(`^\\| \`src/${folder}/\` \\| \\S`, 'm'), `src/${folder}/ has no line of its own`)
  })

  it('names no src/ path that does not exist', () => {
    const named = srcPathsIn(DOC)
    assert.ok(named.length > 10, named.join(', '))
    const missing = named.filter((p) => !fs.existsSync(path.join(PROJECT_ROOT, p)))
    assert.deepEqual(missing, [])
  })

  it('reads paths the way the check above needs', () => {
    assert.deepEqual(srcPathsIn('`src/lib/` and src/ops/cli, then src/server (the service). `src/index.ts`'), [
      'src/index.ts',
      'src/lib',
      'src/ops/cli',
      'src/server',
    ])
  })

  it('links to pages that exist', () => {
    for (const [, target] of DOC.matchAll(/\]\(([\w.-]+\.md)(?:#[\w-]*)?\)/g)) {
      assert.ok(fs.existsSync(path.join(PROJECT_ROOT, 'docs', target!)), `docs/${target} is linked but missing`)
    }
  })
})
