// Dependencies point one way: ops → server → adapters → lib. A file may import its own folder
// or one below it, never one above: the request-path library must not grow a dependency on the
// service or the operator's tooling, or every API that verifies a token would carry them.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { describe, it } from 'node:test'
import { PROJECT_ROOT } from '../support/service.js'

const SRC = path.join(PROJECT_ROOT, 'src')

/** The top-level folders of src/, lowest first: each may import only its own rank or lower. */
export const LAYERS = ['lib', 'adapters', 'server', 'ops'] as const
type Layer = (typeof LAYERS)[number]

/**
 * Packages the request-path library must not load: they belong to the adapters and the service.
 * A type-only import loads nothing and is allowed.
 */
const NOT_IN_LIB = ['fastify', 'fastify-plugin', 'express', 'pino']
/** Packages loaded only with `import()`: an app that verifies never loads them (test/architecture/verifying-app.test.ts). */
const LAZY_BELOW_OPS = ['jose']

export interface ImportRef {
  specifier: string
  dynamic: boolean
  /** `import type` / `export type … from`: erased from the JavaScript (verbatimModuleSyntax), nothing loads. */
  typeOnly: boolean
  line: number
}

/**
 * The module specifiers a TypeScript file imports: static imports (`import type` too), re-exports,
 * side-effect imports, `import()` and `require()`. Comments are blanked first (keeping line
 * numbers) so that an `@example` in a doc comment is not read as an import.
 */
export function importsOf(source: string): ImportRef[] {
  const blank = (s: string) => s.replace(/[^\n]/g, ' ')
  const code = source.replace(/\/\*[\s\S]*?\*\//g, blank).replace(/(^|[\s;{}()])\/\/[^\n]*/g, (m, lead: string) => lead + blank(m.slice(lead.length)))
  const lineAt = (index: number) => code.slice(0, index).split('\n').length
  const found: ImportRef[] = []
  const patterns: Array<[RegExp, boolean]> = [
    [/\b(?:import|export)\s[^'"`;]*?\sfrom\s*(['"])([^'"]+)\1/g, false],
    [/\bimport\s*(['"])([^'"]+)\1/g, false],
    [/\bimport\s*\(\s*(['"])([^'"]+)\1\s*\)/g, true],
    [/\brequire\s*\(\s*(['"])([^'"]+)\1\s*\)/g, true],
  ]
  for (const [pattern, dynamic] of patterns) {
    for (const m of code.matchAll(pattern)) {
      found.push({ specifier: m[2]!, dynamic, typeOnly: /^(?:import|export)\s+type\s/.test(m[0]), line: lineAt(m.index) })
    }
  }
  return found.sort((a, b) => a.line - b.line)
}

/** `src/index.ts` is the library's entry; every other file belongs to its top-level folder. */
export function layerOf(relativeToSrc: string): Layer | undefined {
  if (relativeToSrc === 'index.ts') return 'lib'
  const top = relativeToSrc.split(path.sep)[0]
  return (LAYERS as readonly string[]).includes(top!) ? (top as Layer) : undefined
}

/** The rule a single import breaks, or undefined. `from` and `to` are paths relative to src/. */
export function violation(from: string, ref: ImportRef, to: string | undefined): string | undefined {
  const fromLayer = layerOf(from)!
  const where = `${from}:${ref.line} imports '${ref.specifier}'`
  if (to === undefined) {
    const pkg = /^(@[^/]+\/[^/]+|[^/]+)/.exec(ref.specifier)![1]!
    if (pkg === 'cbc-jwt') return `${where}: the package imports itself by name; use a relative path`
    if (fromLayer === 'lib' && NOT_IN_LIB.includes(pkg) && !ref.typeOnly)
      return `${where}: ${pkg} belongs to the adapters or the service, not the request-path library`
    if (fromLayer !== 'ops' && LAZY_BELOW_OPS.includes(pkg) && !ref.dynamic)
      return `${where}: load ${pkg} with import() where it is needed, so that verifying never loads it`
    return undefined
  }
  const toLayer = layerOf(to)
  if (toLayer === undefined) return `${where}: ${to} is outside the layers ${LAYERS.join(', ')}`
  if (LAYERS.indexOf(toLayer) > LAYERS.indexOf(fromLayer)) return `${where}: ${fromLayer} must not depend on ${toLayer} (ops → server → adapters → lib)`
  const [fromAdapter, toAdapter] = [from, to].map((p) => (p.startsWith(`adapters${path.sep}`) ? p.split(path.sep)[1] : undefined))
  if (fromAdapter && toAdapter && fromAdapter !== toAdapter) return `${where}: one adapter must not depend on another`
  return undefined
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) return sourceFiles(p)
    return e.name.endsWith('.ts') ? [p] : []
  })
}

/** Resolves a relative specifier (`../lib/x.js`) to its `.ts` source, relative to src/. */
function resolveRelative(fromFile: string, specifier: string): string {
  const target = path.resolve(path.dirname(fromFile), specifier).replace(/\.js$/, '.ts')
  assert.ok(fs.existsSync(target), `${path.relative(SRC, fromFile)} imports '${specifier}', which is not a file in src/`)
  return path.relative(SRC, target)
}

function allImports() {
  return sourceFiles(SRC).flatMap((file) =>
    importsOf(fs.readFileSync(file, 'utf8'))
      .filter((ref) => !ref.specifier.startsWith('node:'))
      .map((ref) => {
        const from = path.relative(SRC, file)
        const to = ref.specifier.startsWith('.') ? resolveRelative(file, ref.specifier) : undefined
        return { from, ref, to }
      }),
  )
}

describe('import rules: dependencies point one way (ops → server → adapters → lib)', () => {
  it('every file of src/ lives in one of the layers', () => {
    for (const file of sourceFiles(SRC)) assert.ok(layerOf(path.relative(SRC, file)), `${path.relative(SRC, file)} is in no layer`)
  })

  it('no import in src/ points upward, across adapters, at jose eagerly or at the package by name', () => {
    const imports = allImports()
    // The scan sees what is there: the service's import of the Fastify plugin, ops' lazy start of the server.
    assert.ok(imports.some((i) => i.from === path.join('server', 'app.ts') && i.to === path.join('adapters', 'fastify', 'plugin.ts')))
    assert.ok(imports.some((i) => i.from.startsWith('ops') && i.ref.dynamic && i.to?.startsWith(`server${path.sep}`)))
    const broken = imports.map((i) => violation(i.from, i.ref, i.to)).filter((v) => v !== undefined)
    assert.deepEqual(broken, [])
  })

  it('the scan reads every kind of import and skips comments', () => {
    const source = [
      "import type { A } from '../a.js'",
      'import {',
      '  b,',
      "} from '../b.js'",
      "export { c } from './c.js'",
      "import './side-effect.js'",
      "const d = await import('./d.js')",
      "const e = require('e') as typeof import('e')",
      "// import { x } from './commented.js'",
      "/** @example import { y } from 'cbc-jwt' */",
      "const url = 'http://example.test/from'",
    ].join('\n')
    assert.deepEqual(
      importsOf(source).map((r) => `${r.line}:${r.typeOnly ? 'type ' : ''}${r.dynamic ? 'dynamic ' : ''}${r.specifier}`),
      ['1:type ../a.js', '2:../b.js', '5:./c.js', '6:./side-effect.js', '7:dynamic ./d.js', '8:dynamic e', '8:dynamic e'],
    )
  })

  it('names the rule an upward, cross-adapter or eager import breaks', () => {
    const ref = (specifier: string, dynamic = false, typeOnly = false) => ({ specifier, dynamic, typeOnly, line: 1 })
    const j = path.join
    assert.match(violation(j('lib', 'config.ts'), ref('../ops/rotation/duration.js'), j('ops', 'rotation', 'duration.ts'))!, /lib must not depend on ops/)
    assert.match(violation(j('lib', 'backends', 'x.ts'), ref('../../server/dev-keyset.js'), j('server', 'dev-keyset.ts'))!, /lib must not depend on server/)
    assert.match(
      violation(j('adapters', 'fastify', 'x.ts'), ref('../express/index.js'), j('adapters', 'express', 'index.ts'))!,
      /one adapter must not depend on another/,
    )
    assert.match(violation('index.ts', ref('./server/index.js'), j('server', 'index.ts'))!, /lib must not depend on server/)
    assert.match(violation(j('lib', 'keyset', 'generate.ts'), ref('jose'), undefined)!, /load jose with import\(\)/)
    assert.match(violation(j('lib', 'core', 'logger.ts'), ref('pino'), undefined)!, /pino belongs to the adapters or the service/)
    assert.equal(violation(j('lib', 'backends', 'from-config.ts'), ref('pino', false, true), undefined), undefined)
    assert.match(violation(j('server', 'x.ts'), ref('cbc-jwt/fastify'), undefined)!, /imports itself by name/)
    assert.equal(violation(j('ops', 'cli', 'x.ts'), ref('../../server/main.js', true), j('server', 'main.ts')), undefined)
    assert.equal(violation(j('server', 'app.ts'), ref('../adapters/fastify/plugin.js'), j('adapters', 'fastify', 'plugin.ts')), undefined)
    assert.equal(violation(j('lib', 'core', 'sign.ts'), ref('jose', true), undefined), undefined)
    assert.equal(violation(j('ops', 'cli', 'commands', 'token-issue.ts'), ref('jose'), undefined), undefined)
  })
})
