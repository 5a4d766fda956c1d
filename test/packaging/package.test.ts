// The package as an adopter gets it: the root entry stays light, the entries resolve for ESM,
// CommonJS and TypeScript (nodenext and bundler), internals are hidden, the server runs from
// the installed package, and every import is a declared dependency.
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import { builtinModules } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { makeKey, makeKeyset } from '../support/keys.js'
import { installPackedTarball, runApp } from '../support/packed-app.js'
import { PROJECT_ROOT } from '../support/service.js'
import { waitFor } from '../support/wait.js'

/** Imports `entry` in a fresh process; which packages did it load, and how long did it take? */
function importProbe(entry: string): { ms: number; cpuMs: number; packages: string[] } {
  const script = `
import { createRequire } from 'node:module'
const t0 = performance.now(); const c0 = process.cpuUsage()
await import(${JSON.stringify(entry)})
const ms = performance.now() - t0; const cpu = process.cpuUsage(c0)
// A CommonJS package imported from ESM is loaded by the CommonJS loader: it is in require.cache.
const loaded = Object.keys(createRequire(import.meta.url).cache)
const packages = [...new Set(loaded.map((p) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(p)?.[1]).filter(Boolean))]
console.log(JSON.stringify({ ms: Math.round(ms), cpuMs: Math.round((cpu.user + cpu.system) / 1000), packages }))`
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: PROJECT_ROOT, encoding: 'utf8', timeout: 60_000 }))
}

describe('the root entry is light', () => {
  it('importing cbc-jwt loads neither fastify nor pino (and the server entry does: the probe can fail)', (t) => {
    const root = importProbe(path.join(PROJECT_ROOT, 'dist/index.js'))
    const server = importProbe(path.join(PROJECT_ROOT, 'dist/server/index.js'))
    t.diagnostic(`import cbc-jwt: ${root.ms} ms wall, ${root.cpuMs} ms CPU; cbc-jwt/server: ${server.ms} ms wall, ${server.cpuMs} ms CPU`)
    for (const heavy of ['fastify', 'pino', 'express', '@kubernetes/client-node'])
      assert.ok(!root.packages.includes(heavy), `${heavy} loaded: ${root.packages.join(', ')}`)
    assert.ok(server.packages.includes('fastify') && server.packages.includes('pino'), server.packages.join(', '))
  })
})

describe('the packed tarball, installed', () => {
  let dir: string
  let pkgDir: string
  let pkg: Record<string, any>
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-package-'))
    pkgDir = installPackedTarball(dir).packageDir
    pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'))
  })
  after(() => fs.rmSync(dir, { recursive: true, force: true }))

  const node = (args: string[]) => spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8', timeout: 60_000 })

  it('publishes no prepare script and an engines range where require() of ESM works unflagged', () => {
    assert.equal(pkg.scripts?.prepare, undefined)
    // The maintained lines (Node 20 reached end of life on 2026-04-30); .ci/run runs the suite on 24 too.
    assert.equal(pkg.engines.node, '^22.12.0 || ^24.0.0')
    assert.ok(!fs.existsSync(path.join(pkgDir, 'src')), 'TypeScript sources shipped')
    assert.ok(!fs.existsSync(path.join(pkgDir, 'test')), 'tests shipped')
  })

  it('every source map is whole: the sources it names are inside it (the package ships no src/)', () => {
    const maps = (fs.readdirSync(path.join(pkgDir, 'dist'), { recursive: true }) as string[]).filter((f) => f.endsWith('.js.map'))
    assert.ok(maps.length > 50, `only ${maps.length} source maps`)
    const dangling = maps.filter((f) => {
      const map = JSON.parse(fs.readFileSync(path.join(pkgDir, 'dist', f), 'utf8')) as { sources: string[]; sourcesContent?: (string | null)[] }
      return map.sources.some(
        (source, i) => typeof map.sourcesContent?.[i] !== 'string' && !fs.existsSync(path.resolve(pkgDir, 'dist', path.dirname(f), source)),
      )
    })
    assert.deepEqual(dangling, [], 'source maps naming files the package does not hold')
  })

  it('ESM: every entry resolves by name; internals are not exported', () => {
    const r = node([
      '--input-type=module',
      '-e',
      `const root = await import('cbc-jwt'); const f = await import('cbc-jwt/fastify'); const e = await import('cbc-jwt/express'); const s = await import('cbc-jwt/server')
       console.log([typeof root.createCbcJwt, typeof root.createVaultBackend, typeof f.default, typeof e.cbcJwt, typeof e.requireScope, typeof s.createService].join(' '))
       try { await import('cbc-jwt/dist/lib/core/compose.js'); console.log('exposed') } catch (err) { console.log(err.code) }`,
    ])
    assert.equal(r.status, 0, r.stderr)
    assert.deepEqual(r.stdout.trim().split('\n'), ['function function function function function function', 'ERR_PACKAGE_PATH_NOT_EXPORTED'])
  })

  it('CommonJS: require() of every entry works on the Node versions engines names', () => {
    const r = node([
      '-e',
      `const { createCbcJwt } = require('cbc-jwt'); const f = require('cbc-jwt/fastify'); const { cbcJwt } = require('cbc-jwt/express')
      console.log(typeof createCbcJwt, typeof f.default, typeof cbcJwt)`,
    ])
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout.trim(), 'function function function')
  })

  for (const resolution of ['nodenext', 'bundler'] as const) {
    it(`TypeScript (moduleResolution ${resolution}): the types resolve, request.auth and req.auth are typed`, () => {
      const src = path.join(dir, `types-${resolution}`)
      fs.mkdirSync(src)
      fs.writeFileSync(
        path.join(src, 'index.ts'),
        `import Fastify from 'fastify'
import express from 'express'
import cbcJwt from 'cbc-jwt/fastify'
import { cbcJwt as middleware, requireScope } from 'cbc-jwt/express'
import { createCbcJwt, type AuthResult, type CbcJwtOptions, type TrustedIssuer } from 'cbc-jwt'

const partner: TrustedIssuer = { issuer: 'https://id.example.com/', audience: 'a', algorithms: ['RS256'] }
const options: CbcJwtOptions = { keysetFile: '/k.json', audience: 'a', trustedIssuers: [partner] }
const cbc = createCbcJwt(options)
export async function check(header: string): Promise<string | undefined> {
  const result: AuthResult = await cbc.authenticate(header)
  return result.ok ? result.kid : result.body.reason
}
const app = Fastify()
await app.register(cbcJwt, { registry: false })
app.get('/x', { onRequest: [app.authenticate, app.requireScope('s')] }, async (request) => {
  const kid: string | undefined = request.auth?.kid
  // @ts-expect-error request.auth is typed, not any
  request.auth?.nope.deeper
  return kid
})
const e = express()
e.use(middleware())
e.get('/x', requireScope('s'), (req, res) => {
  const kid: string | undefined = req.auth?.kid
  // @ts-expect-error req.auth is typed, not any
  req.auth?.nope.deeper
  res.json({ kid })
})
// @ts-expect-error internals are not exported
import('cbc-jwt/dist/lib/core/compose.js')
`,
      )
      fs.writeFileSync(
        path.join(src, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            target: 'ES2022',
            module: resolution === 'nodenext' ? 'nodenext' : 'esnext',
            moduleResolution: resolution,
            strict: true,
            noEmit: true,
            skipLibCheck: true,
            types: ['node'],
          },
          files: ['index.ts'],
        }),
      )
      const r = node([path.join(PROJECT_ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(src, 'tsconfig.json')])
      assert.equal(r.status, 0, `${r.stdout}${r.stderr}`)
    })
  }

  it('every package the shipped code imports is a declared dependency', () => {
    // A peer dependency (prom-client: the app's own copy) is declared too.
    const declared = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})])
    const builtins = new Set(builtinModules)
    const missing = new Set<string>()
    const found = new Set<string>()
    const walk = (d: string): string[] =>
      fs
        .readdirSync(d, { withFileTypes: true })
        .flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : e.name.endsWith('.js') ? [path.join(d, e.name)] : []))
    for (const file of walk(path.join(pkgDir, 'dist'))) {
      for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
        // Import statements (tsc writes them at column 0), dynamic imports and lazy require()s outside comments.
        if (/^\s*(\*|\/\/)/.test(line)) continue
        const m =
          /^(?:import|export)\s[^'"]*?\bfrom '([^'.][^']*)'/.exec(line) ??
          /^import '([^'.][^']*)'/.exec(line) ??
          /\b(?:import|require)\('([^'.][^']*)'\)/.exec(line)
        if (!m) continue
        const spec = m[1]!
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!
        found.add(name)
        if (!spec.startsWith('node:') && !builtins.has(name) && !declared.has(name)) missing.add(`${name} (${path.relative(pkgDir, file)})`)
      }
    }
    assert.deepEqual([...missing], [])
    // The scan sees real imports (it can fail): static, CommonJS-interop and lazy ones.
    for (const name of ['prom-client', 'fastify', 'fastify-plugin', 'jose', 'ajv']) assert.ok(found.has(name), name)
  })

  it('cbc-jwt serve runs the service from the installed package; with --dev, the dev keyset goes under the cwd, not node_modules', async () => {
    const app = await runApp(dir, [path.join(pkgDir, pkg.bin['cbc-jwt']), 'serve', '--dev'], {}, '/healthz')
    try {
      await waitFor(async () => (await fetch(`${app.base}/readyz`)).status === 200, { timeoutMs: 15_000, what: '/readyz 200' })
      const auth = await fetch(`${app.base}/v1/auth/x`)
      assert.equal(auth.status, 401)
      assert.equal(auth.headers.get('x-auth-reason'), 'missing')
      assert.ok(fs.existsSync(path.join(dir, '.cbc-jwt/dev-keyset.json')))
      assert.ok(!fs.existsSync(path.join(pkgDir, '.cbc-jwt')))
    } finally {
      await app.stop()
    }
  })

  it('cbc-jwt serve with a keyset file configured', async () => {
    const file = path.join(dir, 'keyset.json')
    fs.writeFileSync(file, JSON.stringify(makeKeyset([makeKey('ES256', 'k-serve')])))
    const app = await runApp(dir, [path.join(pkgDir, pkg.bin['cbc-jwt']), 'serve'], { CBC_JWT_KEYSET_FILE: file }, '/healthz')
    try {
      await waitFor(async () => (await fetch(`${app.base}/readyz`)).status === 200, { timeoutMs: 15_000, what: '/readyz 200' })
      assert.equal(((await (await fetch(`${app.base}/v1/keys`)).json()) as any).current, 'k-serve')
    } finally {
      await app.stop()
    }
  })
})
