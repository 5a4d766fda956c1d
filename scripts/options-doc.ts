// Writes the README's configuration table from the options table (src/lib/options-table.ts):
//   npm run docs:options
// test/docs/options-table.test.ts fails when the README and this rendering differ.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { OPTIONS, type OptionScope, type OptionSpec } from '../src/lib/options-table.js'

export const README = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'README.md')
const START = '<!-- options-table: generated from src/lib/options-table.ts by `npm run docs:options`; edit the table, not these lines -->'
const END = '<!-- /options-table -->'
/** The scopes the README lists; the CLI's own variables are in docs/cli.md. */
export const README_SCOPES: readonly OptionScope[] = ['service', 'library', 'vault', 'kubernetes', 'projection']

/** How the docs show an option's default. */
export function shownDefault(spec: OptionSpec): string {
  if (spec.shownDefault !== undefined) return spec.shownDefault
  return spec.default === undefined ? '—' : `\`${String(spec.default)}\``
}

export function renderOptionsTable(): string {
  const specs: OptionSpec[] = Object.values(OPTIONS)
  const rows = specs.filter((s) => README_SCOPES.includes(s.scope)).map((s) => `| \`${s.env}\` | ${shownDefault(s)} | ${meaning(s)} |`)
  return [START, '| variable | default | meaning |', '| --- | --- | --- |', ...rows, END].join('\n')
}

/** The option's meaning; with an `emptyHint`, also that an empty value is refused, not read as unset. */
function meaning(spec: OptionSpec): string {
  if (spec.emptyHint === undefined || /set but empty/i.test(spec.doc)) return spec.doc
  return `${spec.doc}. Set but empty is a start-up error`
}

/** `text` with its generated block replaced by a fresh rendering. */
export function withOptionsTable(text: string): string {
  const start = text.indexOf(START)
  const end = text.indexOf(END)
  if (start < 0 || end < start) throw new Error(`README.md has no ${START} … ${END} block`)
  return text.slice(0, start) + renderOptionsTable() + text.slice(end + END.length)
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  fs.writeFileSync(README, withOptionsTable(fs.readFileSync(README, 'utf8')))
}
