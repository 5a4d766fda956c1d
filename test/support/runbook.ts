import fs from 'node:fs'
import path from 'node:path'
import { PROJECT_ROOT } from './service.js'

export const RUNBOOK_FILE = path.join(PROJECT_ROOT, 'docs/runbook.md')

/** The text under the heading whose text (backticks dropped) is `title`, up to the next heading of its level or above. */
export function runbookSection(markdown: string, title: string): string {
  const lines = markdown.split('\n')
  let fenced = false
  const heading = lines.map((l) => {
    if (/^\s*```/.test(l)) fenced = !fenced
    const m = !fenced && /^(#{1,6})\s+(.*)$/.exec(l)
    return m ? { level: m[1]!.length, text: m[2]!.replace(/`/g, '').trim() } : undefined
  })
  const start = heading.findIndex((h) => h?.text === title)
  if (start < 0) throw new Error(`docs/runbook.md has no section "${title}"`)
  const level = heading[start]!.level
  const end = heading.findIndex((h, i) => i > start && h !== undefined && h.level <= level)
  return lines.slice(start + 1, end < 0 ? undefined : end).join('\n')
}

/** The ```bash blocks of a section, in order, dedented (blocks inside list items are indented). */
export function bashBlocks(markdown: string, title: string): string[] {
  const text = runbookSection(markdown, title)
  return [...text.matchAll(/^([ \t]*)```bash\n([\s\S]*?)^[ \t]*```/gm)].map((m) => {
    const indent = m[1]!.length
    return m[2]!
      .split('\n')
      .map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length)))
      .join('\n')
  })
}

export function readRunbook(): string {
  return fs.readFileSync(RUNBOOK_FILE, 'utf8')
}
