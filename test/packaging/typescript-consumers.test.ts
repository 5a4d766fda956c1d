// The package as TypeScript users compile against it, from the packed tarball with the real
// tsc: the README's examples under `strict`, claims typed by the user (as jose's
// `jwtVerify<T>`), and the entries' types under `module: commonjs` — the setting of most
// CommonJS projects, whose default resolution (node10) ignores `exports` — compiled and run.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { installPackedTarball } from '../support/packed-app.js'
import { PROJECT_ROOT } from '../support/service.js'

const README = fs.readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8')

/** The compilers: the project's own, and TypeScript 5 (the line most projects still compile with). */
const COMPILERS = [
  { name: `TypeScript ${tscVersion('typescript')}`, tsc: path.join(PROJECT_ROOT, 'node_modules/typescript/bin/tsc') },
  { name: `TypeScript ${tscVersion('typescript-5')}`, tsc: path.join(PROJECT_ROOT, 'node_modules/typescript-5/bin/tsc') },
]

/** The README's fenced block that begins with `first`. */
function readmeBlock(first: string): string {
  const block = README.split('```js\n').find((b) => b.startsWith(first))
  assert.ok(block, `no README example beginning with ${first}`)
  return block.slice(0, block.indexOf('```'))
}

function tscVersion(pkg: string): string {
  return JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'node_modules', pkg, 'package.json'), 'utf8')).version
}

describe('TypeScript consumers of the packed tarball', () => {
  let dir: string
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-ts-'))
    installPackedTarball(dir)
  })
  after(() => fs.rmSync(dir, { recursive: true, force: true }))

  /** Writes `files` and a tsconfig into a fresh folder of the adopter's project; runs tsc there. */
  function compile(name: string, tsc: string, compilerOptions: Record<string, unknown>, files: Record<string, string>, packageType?: string) {
    const src = path.join(dir, name)
    fs.mkdirSync(src)
    for (const [file, text] of Object.entries(files)) fs.writeFileSync(path.join(src, file), text)
    if (packageType) fs.writeFileSync(path.join(src, 'package.json'), JSON.stringify({ type: packageType }))
    fs.writeFileSync(
      path.join(src, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { strict: true, skipLibCheck: true, types: ['node'], ...compilerOptions }, files: Object.keys(files) }),
    )
    const r = spawnSync(process.execPath, [tsc, '-p', path.join(src, 'tsconfig.json')], { cwd: src, encoding: 'utf8', timeout: 120_000 })
    return { src, status: r.status, output: `${r.stdout}${r.stderr}` }
  }

  for (const { name, tsc } of COMPILERS) {
    it(`${name}: the README's Fastify and Express examples compile under strict`, () => {
      const r = compile(
        `readme-${name.replace(/\W+/g, '-')}`,
        tsc,
        { target: 'ES2022', module: 'nodenext', moduleResolution: 'nodenext', noEmit: true },
        {
          'fastify-example.ts': readmeBlock('import Fastify'),
          'express-example.ts': readmeBlock('import express'),
        },
      )
      assert.equal(r.status, 0, r.output)
    })

    it(`${name}: claims typed by the user through authOf<T>, for Fastify and Express`, () => {
      const r = compile(
        `generic-${name.replace(/\W+/g, '-')}`,
        tsc,
        { target: 'ES2022', module: 'nodenext', moduleResolution: 'nodenext', noEmit: true },
        {
          'index.ts': `import Fastify from 'fastify'
import express from 'express'
import cbcJwt, { authOf } from 'cbc-jwt/fastify'
import { authOf as authOfReq, cbcJwt as middleware } from 'cbc-jwt/express'

interface OrderClaims { sub: string; tenant: string; roles: string[] }
const app = Fastify()
await app.register(cbcJwt, { registry: false })
app.get('/orders', { onRequest: app.authenticate }, async (request) => {
  const { kid, claims } = authOf<OrderClaims>(request)
  const tenant: string = claims.tenant
  const first: string | undefined = claims.roles[0]
  const exp: number = claims.exp
  // @ts-expect-error the user's claim type holds: tenant is a string
  const wrong: number = claims.tenant
  // @ts-expect-error without a type argument a claim is unknown, not any
  const untyped: string = authOf(request).claims.sub
  return { kid, tenant, first, exp, wrong, untyped }
})
const e = express()
e.use(middleware({ registry: false }))
e.get('/orders', (req, res) => {
  const tenant: string = authOfReq<OrderClaims>(req).claims.tenant
  res.json({ tenant })
})
`,
        },
      )
      assert.equal(r.status, 0, r.output)
    })

    it(`${name}: under module commonjs, every entry's types resolve; the compiled output runs`, () => {
      const r = compile(
        `commonjs-${name.replace(/\W+/g, '-')}`,
        tsc,
        { target: 'ES2022', module: 'commonjs', esModuleInterop: true, outDir: 'out' },
        {
          'index.ts': `import { createCbcJwt, type AuthResult } from 'cbc-jwt'
import { authOf, cbcJwt, requireScope, type CbcJwtMiddleware } from 'cbc-jwt/express'
import cbcJwtPlugin from 'cbc-jwt/fastify'
import { createService } from 'cbc-jwt/server'

const mw: CbcJwtMiddleware = cbcJwt({ keysetFile: '/nonexistent/keyset.json', env: {}, registry: false, logger: false })
const scope: (req: any, res: any, next: () => void) => void = requireScope('orders:read')
export function typedNotAny() {
  // @ts-expect-error the middleware is typed, not any
  mw.nope()
}
const check = (r: AuthResult): string => (r.ok ? r.kid : r.reason)
console.log([typeof createCbcJwt, typeof cbcJwtPlugin, typeof createService, typeof scope, typeof authOf, typeof check].join(' '))
void mw.cbc.close()
`,
        },
        'commonjs',
      )
      assert.equal(r.status, 0, r.output)
      const run = spawnSync(process.execPath, [path.join(r.src, 'out/index.js')], { cwd: r.src, encoding: 'utf8', timeout: 60_000 })
      assert.equal(run.status, 0, run.stderr)
      assert.equal(run.stdout.trim(), 'function function function function function function')
    })
  }
})
