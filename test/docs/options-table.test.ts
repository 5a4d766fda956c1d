// The options table (src/lib/options-table.ts) is the one place an option is written: the README
// configuration table is its rendering, every docs table that names a variable agrees with its
// defaults, and every CBC_JWT_* variable the code names is in it.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { describe, it } from 'node:test'
import { README, README_SCOPES, renderOptionsTable, shownDefault, withOptionsTable } from '../../scripts/options-doc.js'
import { DEFAULTS, serviceConfigFromEnv } from '../../src/lib/config.js'
import { OPTIONS, type OptionSpec } from '../../src/lib/options-table.js'

const ROOT = path.dirname(README)
const DOCS = [
  README,
  ...fs
    .readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => path.join(ROOT, 'docs', f)),
]
const SPECS: OptionSpec[] = Object.values(OPTIONS)
const BY_ENV = new Map<string, OptionSpec>(SPECS.map((s) => [s.env, s]))

interface Row {
  file: string
  line: number
  names: string[]
  defaults: string
}

/** Rows of tables whose first column is only variable names and whose second is `default`. */
function variableRows(file: string): Row[] {
  const rows: Row[] = []
  let header: string[] | undefined
  fs.readFileSync(file, 'utf8')
    .split('\n')
    .forEach((text, i) => {
      if (!text.startsWith('|')) {
        header = undefined
        return
      }
      const cells = text
        .split(/(?<!\\)\|/)
        .slice(1, -1)
        .map((c) => c.trim())
      if (header === undefined) {
        header = cells
        return
      }
      if (header[1] !== 'default' || /^-+$/.test(cells[0] ?? '')) return
      const first = cells[0] ?? ''
      if (!/^`[A-Z][A-Z0-9_]*`(, `[A-Z][A-Z0-9_]*`)*$/.test(first)) return
      rows.push({ file: path.relative(ROOT, file), line: i + 1, names: first.split(', ').map((n) => n.slice(1, -1)), defaults: cells[1] ?? '' })
    })
  return rows
}

function sources(dir: string): Array<{ file: string; text: string }> {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) return sources(p)
    return e.name.endsWith('.ts') ? [{ file: path.relative(ROOT, p), text: fs.readFileSync(p, 'utf8') }] : []
  })
}

describe('the options table and the docs', () => {
  it('the README configuration table is the rendering of the options table (`npm run docs:options`)', () => {
    const text = fs.readFileSync(README, 'utf8')
    assert.equal(withOptionsTable(text), text)
    const table = renderOptionsTable()
    assert.ok(text.includes(table))
    for (const spec of SPECS) assert.equal(table.includes(`| \`${spec.env}\` |`), README_SCOPES.includes(spec.scope), spec.env)
  })

  it('every option has a variable of its own, a one-line doc, and a default within its range', () => {
    const envs = SPECS.map((s) => s.env)
    assert.equal(new Set(envs).size, envs.length)
    for (const [name, spec] of Object.entries(OPTIONS) as Array<[string, OptionSpec]>) {
      assert.ok(spec.doc.length > 0 && !spec.doc.includes('\n'), name)
      if (typeof spec.default === 'number') {
        assert.ok(spec.default >= (spec.min ?? -Infinity) && spec.default <= (spec.max ?? Infinity), name)
        if (spec.type === 'integer') assert.ok(Number.isInteger(spec.default), name)
      }
      if (spec.type === 'enum') assert.ok(spec.values?.includes(spec.default as string), name)
    }
  })

  it("the service's configuration from an empty environment is the table's defaults", () => {
    assert.deepEqual(serviceConfigFromEnv({}), { ...DEFAULTS, keysetFile: undefined })
    for (const [name, spec] of Object.entries(OPTIONS) as Array<[string, OptionSpec]>) {
      if ((spec.scope === 'library' || spec.scope === 'service') && spec.default !== undefined)
        assert.deepEqual(DEFAULTS[name as keyof typeof DEFAULTS], spec.default)
    }
  })

  it('every CBC_JWT_* variable named in src/ is in the table, and every variable of the table is named in src/ beside it', () => {
    const files = sources(path.join(ROOT, 'src')).filter((f) => f.file !== path.join('src', 'lib', 'options-table.ts'))
    const named = new Map<string, string>()
    for (const { file, text } of files) for (const m of text.matchAll(/\bCBC_JWT_[A-Z0-9_]*[A-Z0-9]\b/g)) named.set(m[0], file)
    assert.ok(named.size > 20, [...named.keys()].join(', '))
    for (const [name, file] of named) assert.ok(BY_ENV.has(name), `${file} names ${name}, which is not in the options table`)
    const all = files.map((f) => f.text).join('\n')
    // A variable read through the table (`OPTIONS.x.env`, or by scope) need not be spelled out.
    for (const [name, spec] of Object.entries(OPTIONS) as Array<[string, OptionSpec]>) {
      if (spec.scope === 'library' || spec.scope === 'service') continue
      assert.ok(all.includes(spec.env) || all.includes(`OPTIONS.${name}`), `${spec.env} is in the table but nothing in src/ reads it`)
    }
  })

  const rows = DOCS.flatMap(variableRows)
  it('finds the docs tables of variables', () => {
    const files = new Set(rows.map((r) => r.file))
    for (const f of ['README.md', 'docs/vault.md', 'docs/kubernetes.md', 'docs/cli.md']) assert.ok(files.has(f), f)
  })

  for (const row of rows) {
    it(`${row.file}:${row.line} ${row.names.join(', ')}: in the options table, with its default`, () => {
      for (const name of row.names) if (name.startsWith('CBC_JWT_')) assert.ok(BY_ENV.has(name), `${name} is not in the options table`)
      const known = row.names.map((n) => BY_ENV.get(n))
      if (known.every((k) => k === undefined)) return // another program's variables (USER, KUBECONFIG)
      const parts = row.names.length === 1 ? [row.defaults] : row.defaults.split(', ')
      assert.equal(parts.length, row.names.length, `one default per variable: "${row.defaults}"`)
      known.forEach((spec, i) => {
        if (spec === undefined) return
        const cell = parts[i]!
        if (spec.default !== undefined) {
          const expected = spec.shownDefault?.startsWith('`') ? spec.shownDefault : `\`${String(spec.default)}\``
          assert.ok(cell.startsWith(expected), `${spec.env}: the docs say ${cell}, the table ${expected}`)
        } else if (shownDefault(spec).startsWith('—')) {
          assert.ok(!/^`/.test(cell), `${spec.env} has no default; the docs say ${cell}`)
        }
      })
    })
  }
})
