// The docs and the code's comments are self-contained: no reader is sent to a contract document
// that is not in the repository or the package. What such a document says, the repository's
// own docs (README.md, docs/*.md, the schema) state.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { describe, it } from 'node:test'
import { PROJECT_ROOT } from '../support/service.js'

/** What the package ships and a reader of the repository reads first. */
const ROOTS = ['src', 'docs', 'schema', 'deploy', 'README.md', 'CONTRIBUTING.md']

function files(p: string): string[] {
  const abs = path.join(PROJECT_ROOT, p)
  if (!fs.existsSync(abs)) return []
  if (fs.statSync(abs).isFile()) return [p]
  return fs.readdirSync(abs).flatMap((name) => files(path.join(p, name)))
}

export function outsideReferences(text: string): string[] {
  return text.split('\n').flatMap((line, i) => (/\bCONTRACT\b/.test(line) ? [`${i + 1}: ${line.trim()}`] : []))
}

describe('docs are self-contained', () => {
  it('src/, docs/, schema/, deploy/ and the README name no CONTRACT document', () => {
    const all = ROOTS.flatMap(files)
    assert.ok(all.some((f) => f.startsWith(`src${path.sep}`)) && all.some((f) => f.startsWith(`docs${path.sep}`)), 'the walk found the trees')
    const found = all.flatMap((f) => outsideReferences(fs.readFileSync(path.join(PROJECT_ROOT, f), 'utf8')).map((hit) => `${f}:${hit}`))
    assert.deepEqual(found, [])
  })

  it('spots a reference wherever it stands in a line', () => {
    assert.deepEqual(outsideReferences('ok\n * the cache (CONTRACT §8) never\nCONTRACT.md'), ['2: * the cache (CONTRACT §8) never', '3: CONTRACT.md'])
    assert.deepEqual(outsideReferences('a contract, contracted'), [])
  })
})
