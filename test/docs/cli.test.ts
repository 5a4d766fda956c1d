// docs/cli.md documents every command under a heading that is its synopsis: each command has
// one, and every flag and --backend choice a heading names is one the command's --help has. Its
// console examples of the file commands are run, and print what the page shows.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { COMMANDS } from '../../src/ops/cli/run.js'
import { at, cbcJwt, readJson, tempDir } from '../ops/cli/cli.js'
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

/** Each `$ cbc-jwt …` line of the page's console blocks, with the lines it shows printed. */
function consoleExamples(markdown: string): Map<string, string[]> {
  const examples = new Map<string, string[]>()
  for (const [, block] of markdown.matchAll(/```console\n([\s\S]*?)```/g)) {
    let printed: string[] | undefined
    for (const line of block!.split('\n')) {
      if (line.startsWith('$ cbc-jwt ')) examples.set(line.slice(2), (printed = []))
      else if (line.startsWith('$ ')) printed = undefined
      else if (printed && line !== '') printed.push(line)
    }
  }
  return examples
}

describe('docs/cli.md: the console examples of the file commands', () => {
  const examples = consoleExamples(CLI_DOC)
  const tmp = tempDir('docs-examples')
  const tmpStatus = tempDir('docs-status')
  after(() => {
    tmp.cleanup()
    tmpStatus.cleanup()
  })
  // The page's folder, kids and times stand for this run's.
  const shape = (text: string) =>
    text
      .replaceAll(tmp.dir, '/etc/cbc')
      .replaceAll(tmpStatus.dir, '/etc/cbc')
      .replace(/k-\d{8}-[0-9a-f]{4,}/g, 'KID')
      .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/g, 'TIME')
  /** stdout then stderr, line by line, as the page shows them; a line ending in … shows its start. */
  const assertPrints = (example: string, result: { stdout: string; stderr: string }) => {
    const shown = examples.get(example)
    assert.ok(shown, `no console example "${example}"`)
    const printed = shape(result.stdout + result.stderr)
      .split('\n')
      .filter((l) => l !== '')
    assert.equal(printed.length, shown.length, `${example}: printed\n${printed.join('\n')}`)
    shown.forEach((line, i) => {
      const want = shape(line)
      if (want.endsWith('…') || want.endsWith('…}'))
        assert.ok(printed[i]!.startsWith(want.slice(0, want.lastIndexOf('…'))), `${example}: ${printed[i]} / ${want}`)
      else assert.equal(printed[i], want, example)
    })
  }
  const keyset = tmp.file('keyset.json')

  it('keyset init, then rotate', async () => {
    const init = await cbcJwt(['keyset', 'init', '--alg', 'ES256', '--keyset-file', keyset], { env: at('2026-11-18T21:16:00Z') })
    assert.equal(init.code, 0, init.stderr)
    assertPrints('cbc-jwt keyset init --alg ES256 --keyset-file /etc/cbc/keyset.json', init)
    const rotate = await cbcJwt(['rotate', '--keyset-file', keyset], { env: at('2026-11-25T21:16:00Z') })
    assert.equal(rotate.code, 0, rotate.stderr)
    assertPrints('cbc-jwt rotate --keyset-file keyset.json', rotate)
  })

  it('rotate --promote a minute after --stage', async () => {
    const staged = await cbcJwt(['rotate', '--stage', '--keyset-file', keyset], { env: at('2026-11-25T21:20:00Z') })
    assert.equal(staged.code, 0, staged.stderr)
    const promote = await cbcJwt(['rotate', '--promote', '--keyset-file', keyset], { env: at('2026-11-25T21:21:00Z') })
    assert.equal(promote.code, 1)
    assertPrints('cbc-jwt rotate --promote --keyset-file keyset.json', promote)
  })

  it('status a day after a rotation, a minute after a stage', async () => {
    const file = tmpStatus.file('keyset.json')
    const steps: Array<[string[], string]> = [
      [['keyset', 'init'], '2026-11-25T00:00:00Z'],
      [['rotate'], '2026-11-27T00:00:00Z'],
      [['rotate', '--stage'], '2026-11-27T12:00:00Z'],
    ]
    for (const [args, now] of steps) {
      const r = await cbcJwt([...args, '--keyset-file', file], { env: at(now) })
      assert.equal(r.code, 0, r.stderr)
    }
    const status = await cbcJwt(['status', '--keyset-file', file], { env: at('2026-11-27T12:01:00Z') })
    assert.equal(status.code, 0, status.stderr)
    assertPrints('cbc-jwt status --keyset-file keyset.json', status)
  })

  it('keyset validate of a document with three problems', async () => {
    const bad = readJson(keyset)
    bad.version = 2
    bad.keys[0].alg = 'ES999'
    bad.keys[0].notafter = '2026-11-26T00:00:00Z'
    fs.writeFileSync(keyset, JSON.stringify(bad))
    const validate = await cbcJwt(['keyset', 'validate', '--keyset-file', keyset], { env: at('2026-11-25T21:22:00Z') })
    assert.equal(validate.code, 1)
    assertPrints('cbc-jwt keyset validate --keyset-file keyset.json', validate)
  })
})

describe('the docs: every cbc-jwt command in code', () => {
  const pages = ['README.md', 'CONTRIBUTING.md', ...fs.readdirSync(path.join(PROJECT_ROOT, 'docs')).flatMap((f) => (f.endsWith('.md') ? [`docs/${f}`] : []))]
  const byLength = [...COMMANDS].sort((a, b) => b.name.length - a.name.length)

  /** `cbc-jwt …` in code blocks and code spans, each with its page and line, up to a pipe, `;` or the span's end. */
  function commandsIn(page: string, markdown: string): Array<{ where: string; text: string }> {
    const found: Array<{ where: string; text: string }> = []
    let fenced = false
    markdown.split('\n').forEach((line, i) => {
      if (line.startsWith('```')) fenced = !fenced
      else
        for (const code of fenced ? [line] : [...line.matchAll(/`([^`]*)`/g)].map((m) => m[1]!))
          for (const m of code.matchAll(/cbc-jwt ([a-z][^|;`]*)/g)) found.push({ where: `${page}:${i + 1}`, text: m[1]! })
    })
    return found
  }

  /** The flags a command line names that its command's --help lacks (undefined: not a command, e.g. prose). */
  const unknownFlags = (text: string): string[] | undefined => {
    const command = byLength.find((c) => text === c.name || text.startsWith(`${c.name} `))
    return command && flagsIn(text).filter((f) => f !== '--help' && !command.help.includes(f))
  }

  it('the check can fail: a flag the command lacks is found', () => {
    assert.deepEqual(unknownFlags('rotate --stage --bogus 1'), ['--bogus'])
    assert.deepEqual(unknownFlags('rotate --stage --reason x'), [])
  })

  it("names only flags that the command's --help has", () => {
    const all = pages.flatMap((page) => commandsIn(page, fs.readFileSync(path.join(PROJECT_ROOT, page), 'utf8')))
    assert.ok(all.filter((c) => unknownFlags(c.text) !== undefined).length > 100, 'the commands were not found')
    const wrong = all.flatMap((c) => (unknownFlags(c.text) ?? []).map((flag) => `${c.where} cbc-jwt ${c.text.trim()}: ${flag}`))
    assert.deepEqual(wrong, [])
  })
})
