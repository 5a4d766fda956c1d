// Every relative link of the README, CONTRIBUTING and docs/ leads somewhere: the file exists,
// and a #fragment into a Markdown page is one of its headings' anchors (as GitHub makes them).
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { describe, it } from 'node:test'
import { anchors } from '../support/markdown.js'
import { PROJECT_ROOT } from '../support/service.js'

const PAGES = ['README.md', 'CONTRIBUTING.md', ...fs.readdirSync(path.join(PROJECT_ROOT, 'docs')).flatMap((f) => (f.endsWith('.md') ? [`docs/${f}`] : []))]

/** The relative links of a page outside code blocks, each with its line number. */
function relativeLinks(markdown: string): Array<{ line: number; href: string }> {
  const links: Array<{ line: number; href: string }> = []
  let fenced = false
  markdown.split('\n').forEach((text, i) => {
    if (text.startsWith('```')) fenced = !fenced
    if (fenced) return
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) if (!/^[a-z]+:/.test(m[1]!)) links.push({ line: i + 1, href: m[1]! })
  })
  return links
}

/** Why a link from `page` does not resolve, or undefined when it does. */
function broken(page: string, href: string): string | undefined {
  const [file, fragment] = href.split('#')
  const target = file ? path.posix.normalize(path.posix.join(path.posix.dirname(page), file)) : page
  if (target.startsWith('..') || !fs.existsSync(path.join(PROJECT_ROOT, target))) return `${target} does not exist`
  if (fragment === undefined || !target.endsWith('.md')) return undefined
  return anchors(fs.readFileSync(path.join(PROJECT_ROOT, target), 'utf8')).has(fragment) ? undefined : `${target} has no heading #${fragment}`
}

describe('links between the docs', () => {
  it('reads links the way the check needs', () => {
    const links = relativeLinks('[a](b.md) [c](https://x.org/y) and [d](#e)\n```\n[f](g.md)\n```\n[h](../i.md#j)')
    assert.deepEqual(links, [
      { line: 1, href: 'b.md' },
      { line: 1, href: '#e' },
      { line: 5, href: '../i.md#j' },
    ])
  })

  it('the check can fail: a missing page and a missing heading are found', () => {
    assert.match(broken('docs/cli.md', 'no-such-page.md') ?? '', /does not exist/)
    assert.match(broken('docs/cli.md', 'rotation.md#no-such-heading') ?? '', /has no heading/)
    assert.equal(broken('docs/cli.md', 'rotation.md#the-audit-trail'), undefined)
  })

  for (const page of PAGES) {
    it(`${page}: every relative link resolves`, () => {
      const links = relativeLinks(fs.readFileSync(path.join(PROJECT_ROOT, page), 'utf8'))
      const problems = links.flatMap(({ line, href }) => {
        const why = broken(page, href)
        return why === undefined ? [] : [`${page}:${line} ${href}: ${why}`]
      })
      assert.deepEqual(problems, [])
    })
  }
})
