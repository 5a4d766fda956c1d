// docs/cli.md documents every command under a heading that is its synopsis: each command has
// one, and every flag and --backend choice a heading names is one the command's --help has.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { describe, it } from 'node:test'
import { COMMANDS } from '../../src/ops/cli/run.js'
import { PROJECT_ROOT } from '../support/service.js'

const CLI_DOC = fs.readFileSync(path.join(PROJECT_ROOT, 'docs/cli.md'), 'utf8')

/** The `### \`…\`` headings of the Commands section, each a synopsis. */
function synopses(markdown: string): string[] {
  return markdown
    .split('\n')
    .filter((l) => l.startsWith('### `'))
    .map((l) => l.slice(4).replace(/`/g, ''))
}

const flagsIn = (text: string): string[] => [...new Set([...text.matchAll(/(?<![\w-])--[a-z][a-z-]*/g)].map((m) => m[0]))]
const backendChoices = (text: string): string | undefined => /--backend ([a-z|]+\|[a-z]+)/.exec(text)?.[1]

describe('docs/cli.md', () => {
  const headings = synopses(CLI_DOC)

  it('has a heading for every command', () => {
    for (const { name } of COMMANDS)
      assert.ok(
        headings.some((h) => h === name || h.startsWith(`${name} `)),
        name,
      )
  })

  it("names only flags and --backend choices that the command's --help has", () => {
    for (const heading of headings) {
      const command = [...COMMANDS].sort((a, b) => b.name.length - a.name.length).find((c) => heading.startsWith(c.name))
      assert.ok(command, heading)
      for (const flag of flagsIn(heading)) assert.ok(command.help.includes(flag), `${heading}: ${flag} is not in "cbc-jwt ${command.name} --help"`)
      const choices = backendChoices(heading)
      if (choices !== undefined) assert.equal(choices, backendChoices(command.help), `${heading}: --backend choices`)
    }
  })
})
