// docs/architecture.md matches the tree: it names every top-level folder of src/ and every folder
// of src/lib/ and src/ops/, and every src/ path it names exists. The README's layout names the
// same folders.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { describe, it } from 'node:test'
import { PROJECT_ROOT } from '../support/service.js'

const DOC = fs.readFileSync(path.join(PROJECT_ROOT, 'docs/architecture.md'), 'utf8')
const README = fs.readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8')
const foldersIn = (dir: string) =>
  fs
    .readdirSync(path.join(PROJECT_ROOT, dir), { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort()
const topFolders = () => foldersIn('src')
/** The folders of src/lib/ and src/ops/, each as `src/lib/core`. */
const secondFolders = () => ['lib', 'ops'].flatMap((top) => foldersIn(`src/${top}`).map((f) => `src/${top}/${f}`))

/** The README's Layout block: the fenced tree under `## Layout`. */
function readmeLayout(markdown: string): string {
  const section = markdown.split(/^## Layout$/m)[1] ?? ''
  return /```\n([\s\S]*?)```/.exec(section)?.[1] ?? ''
}

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

  it('names every folder of src/lib/ and src/ops/ in its table', () => {
    const folders = secondFolders()
    assert.ok(folders.includes('src/lib/core') && folders.includes('src/ops/cli'), folders.join(', '))
    for (const folder of folders) assert.match(DOC, new RegExp(`^\\| [^|]*\`${folder}/\``, 'm'), `${folder}/ has no line in the table`)
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

describe("the README's list of docs", () => {
  it('links every page of docs/', () => {
    const list = README.split(/^## Docs$/m)[1]?.split(/^## /m)[0] ?? ''
    const pages = fs.readdirSync(path.join(PROJECT_ROOT, 'docs')).filter((f) => f.endsWith('.md'))
    assert.ok(pages.length >= 10)
    for (const page of pages) assert.ok(list.includes(`(docs/${page})`), `docs/${page} is not in the README's Docs list`)
  })
})

describe("the README's layout", () => {
  it('names every folder of test/ that does not mirror one of src/', () => {
    const line = readmeLayout(README)
      .split('\n')
      .find((l) => l.startsWith('test/ '))
    assert.ok(line, 'no test/ line')
    const mirrored = new Set(topFolders())
    for (const folder of foldersIn('test').filter((f) => !mirrored.has(f)))
      assert.match(line, new RegExp(`\\b${folder}/`), `test/${folder}/ is not in the layout`)
  })

  it('names every folder of src/lib/ and src/ops/ under its parent', () => {
    const layout = readmeLayout(README)
    assert.match(layout, /^src\/$/m)
    for (const folder of secondFolders()) {
      const [, top, name] = folder.split('/')
      const parent = layout.indexOf(`\n  ${top}/ `)
      const next = layout.slice(parent + 1).search(/\n {2}\S/)
      const block = layout.slice(parent, next < 0 ? undefined : parent + 1 + next)
      assert.ok(parent >= 0, `${top}/ is not in the layout`)
      assert.match(block, new RegExp(`^ {4}(?:[\\w-]+/, )*${name}/(?:,|\\s)`, 'm'), `${folder}/ is not in the layout under ${top}/`)
    }
  })
})
