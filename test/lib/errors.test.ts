import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { describe, it } from 'node:test'
import { ERROR_CODES, ERROR_REGISTRY, INTERNAL_ERROR_CODES, type ErrorCode } from '../../src/lib/errors.js'
import { PROJECT_ROOT } from '../support/service.js'

const SRC = path.join(PROJECT_ROOT, 'src')
/** Codes of Node's own errors that src/ reads (it never throws them). */
const NODE_CODES = /^ERR_(PARSE_ARGS_|TLS_|SSL_|INVALID_CHAR$)/

function sources(dir: string): Array<{ file: string; text: string }> {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) return sources(p)
    return e.name.endsWith('.ts') ? [{ file: path.relative(PROJECT_ROOT, p), text: fs.readFileSync(p, 'utf8') }] : []
  })
}

/** The rows of a docs/errors.md table: code → [classes, third column]. */
function docsRows(table: 'public' | 'internal'): Map<string, { classes: string[]; third: string }> {
  const rows = new Map<string, { classes: string[]; third: string }>()
  const text = fs.readFileSync(path.join(PROJECT_ROOT, 'docs/errors.md'), 'utf8')
  const [pub, internal = ''] = text.split('## Inside cbc-jwt')
  for (const line of (table === 'public' ? pub! : internal).split('\n')) {
    const m = /^\| `([A-Z_]+)` \| ([^|]+) \| ([^|]+) \|/.exec(line)
    if (m) rows.set(m[1]!, { classes: [...m[2]!.matchAll(/`(\w+)`/g)].map((c) => c[1]!), third: m[3]!.trim() })
  }
  return rows
}

/** Classes declared in src/ extending `base` directly or through another (to a fixed point); `codedError(…)` counts as CbcJwtError. */
function subclassesOf(files: Array<{ text: string }>, base: string): Set<string> {
  const found = new Set([base])
  for (let grew = true; grew; ) {
    grew = false
    for (const { text } of files) {
      for (const m of text.matchAll(/class (\w+) extends (\w+)/g)) {
        const parent = m[2] === 'codedError' ? 'CbcJwtError' : m[2]!
        if (found.has(parent) && !found.has(m[1]!)) {
          found.add(m[1]!)
          grew = true
        }
      }
    }
  }
  return found
}

describe('the error-code registry', () => {
  const files = sources(SRC)
  const registered = new Set(Object.keys(ERROR_REGISTRY))
  const registeredClasses = new Set(Object.values(ERROR_REGISTRY).flatMap((e) => e.classes))

  it('has one entry per code, and docs/errors.md one row per entry with its classes and exit status', () => {
    assert.deepEqual([...registered].sort(), Object.values(ERROR_CODES).sort())
    const docs = docsRows('public')
    assert.deepEqual([...docs.keys()].sort(), [...registered].sort())
    for (const [code, entry] of Object.entries(ERROR_REGISTRY)) {
      assert.deepEqual(docs.get(code), { classes: [...entry.classes], third: String(entry.cliExit) }, code)
    }
  })

  it('docs/errors.md lists the internal codes, each with what the caller gets instead', () => {
    const docs = docsRows('internal')
    assert.deepEqual([...docs.keys()].sort(), Object.keys(INTERNAL_ERROR_CODES).sort())
    for (const [code, entry] of Object.entries(INTERNAL_ERROR_CODES)) {
      assert.deepEqual(docs.get(code)?.classes, [...entry.classes], code)
      assert.ok(docs.get(code)?.third.startsWith(`\`${entry.becomes}\``), code)
    }
  })

  it('ERR_USAGE and ERR_CONFIG end a command with 2, everything else with 1', () => {
    for (const [code, entry] of Object.entries(ERROR_REGISTRY) as Array<[ErrorCode, { cliExit: number }]>) {
      assert.equal(entry.cliExit, code === 'ERR_USAGE' || code === 'ERR_CONFIG' ? 2 : 1, code)
    }
  })

  it('every code written in src/ is registered', () => {
    const found = files.flatMap(({ file, text }) => [...text.matchAll(/['"`](ERR_[A-Z_]+)['"`]/g)].map((m) => ({ file, code: m[1]! })))
    assert.ok(found.length >= Object.keys(ERROR_REGISTRY).length)
    for (const { file, code } of found) if (!NODE_CODES.test(code)) assert.ok(registered.has(code), `${file}: ${code} is not in the registry`)
    for (const { file, text } of files) {
      for (const m of text.matchAll(/ERROR_CODES\.([A-Z_]+)/g)) assert.ok(m[1]! in ERROR_CODES, `${file}: ERROR_CODES.${m[1]}`)
    }
  })

  it('every error class in src/ that carries a code is registered with it', () => {
    const coded = subclassesOf(files, 'CbcJwtError')
    assert.ok(coded.size >= 11, [...coded].join(', '))
    for (const name of coded) assert.ok(registeredClasses.has(name), `${name} is not in the registry`)
    // Each registered class is declared with the code it is registered under.
    for (const [code, entry] of Object.entries(ERROR_REGISTRY)) {
      for (const name of entry.classes) {
        if (name === 'CbcJwtError') continue
        const key = Object.entries(ERROR_CODES).find(([, c]) => c === code)![0]
        const declared = files.some(({ text }) =>
          new RegExp(`class ${name} extends (codedError\\(ERROR_CODES\\.${key}\\)|RefusedError|CbcJwtError)`).test(text),
        )
        assert.ok(declared, `${name} (${code}) is not declared in src/`)
      }
    }
    // Every direct `new CbcJwtError(code, …)` names a registered code whose classes include it.
    for (const { file, text } of files) {
      for (const m of text.matchAll(/new CbcJwtError\(\s*(?:ERROR_CODES\.([A-Z_]+)|'(ERR_[A-Z_]+)')/g)) {
        const code = m[2] ?? ERROR_CODES[m[1] as keyof typeof ERROR_CODES]
        assert.ok(ERROR_REGISTRY[code as ErrorCode]?.classes.includes('CbcJwtError'), `${file}: new CbcJwtError(${code})`)
      }
    }
  })

  it('every other error class in src/ with a fixed code of its own is an internal code', () => {
    const fixed = files.flatMap(({ text }) => [...text.matchAll(/class (\w+) extends Error \{\s*readonly code = '(\w+)'/g)].map((m) => [m[1]!, m[2]!] as const))
    assert.ok(fixed.length >= 1)
    for (const [name, code] of fixed) {
      assert.deepEqual(INTERNAL_ERROR_CODES[code as keyof typeof INTERNAL_ERROR_CODES]?.classes, [name], `${name} (${code}) is not in INTERNAL_ERROR_CODES`)
    }
  })

  it('the class names are the names errors print with', async () => {
    const errors = await import('../../src/lib/errors.js')
    const { TtlTooLongError } = await import('../../src/lib/core/sign.js')
    const { ProjectionWriteError } = await import('../../src/ops/projection/publish.js')
    const made = [
      new errors.ConfigError('x'),
      new errors.UsageError('x'),
      new errors.InputError('x'),
      new errors.RefusedError('x'),
      new TtlTooLongError('x'),
      new ProjectionWriteError('x'),
      new errors.BackendError('forbidden', 'x'),
      new errors.KeysetInvalidError([{ path: '', message: 'x' }]),
    ]
    for (const err of made) {
      assert.ok(err instanceof errors.CbcJwtError)
      assert.equal(err.name, err.constructor.name)
      assert.ok(ERROR_REGISTRY[err.code].classes.includes(err.name), `${err.name} ${err.code}`)
      assert.match(String(err), new RegExp(`^${err.name}: `))
    }
    assert.ok(new TtlTooLongError('x') instanceof errors.RefusedError)
  })
})
