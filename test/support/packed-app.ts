import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { freePort } from './free-port.js'
import { PROJECT_ROOT } from './service.js'
import { waitFor } from './wait.js'
import { stopChild } from './stop-child.js'

/**
 * `npm pack` of the built package (scripts off: `npm test` has just built dist/), extracted
 * where `npm install <tarball>` would put it: `<dir>/node_modules/cbc-jwt`. The dependencies
 * are this checkout's, linked in (installing them from the registry in a test is slow and
 * needs the network); that the tarball declares every package it imports is checked apart.
 */
export function installPackedTarball(dir: string, { express4 = false } = {}): { tarball: string; packageDir: string } {
  const tarball = packOnce()
  const modules = path.join(dir, 'node_modules')
  fs.mkdirSync(modules, { recursive: true })
  const packageDir = path.join(modules, 'cbc-jwt')
  fs.mkdirSync(packageDir)
  execFileSync('tar', ['-xzf', tarball, '-C', packageDir, '--strip-components=1'])
  for (const name of fs.readdirSync(path.join(PROJECT_ROOT, 'node_modules'))) {
    if (name.startsWith('.') || name === 'cbc-jwt') continue
    const target = path.join(PROJECT_ROOT, 'node_modules', name === 'express' && express4 ? 'express4' : name)
    fs.symlinkSync(target, path.join(modules, name))
  }
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'adopter', private: true, type: 'module' }))
  return { tarball, packageDir }
}

let packed: string | undefined

/** The tarball, packed once per test process (npm is slow to start) and removed at exit. */
export function packOnce(): string {
  if (packed) return packed
  if (!fs.existsSync(path.join(PROJECT_ROOT, 'dist/index.js'))) throw new Error('dist/ is missing: run npm run build (npm test does)')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-pack-'))
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }))
  const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: PROJECT_ROOT, encoding: 'utf8', timeout: 120_000 })
  packed = path.join(dir, (JSON.parse(out) as Array<{ filename: string }>)[0]!.filename)
  return packed
}

export interface RunningApp {
  base: string
  port: number
  process: ChildProcess
  output(): string
  stop(): Promise<void>
}

/** Runs `node <file>` (or any args) in `dir` with PORT set; resolves once the port answers. */
export async function runApp(dir: string, args: string[], env: Record<string, string>, probe = '/'): Promise<RunningApp> {
  const port = await freePort()
  const child = spawn(process.execPath, args, {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', PORT: String(port), HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => (out += d))
  child.stderr!.on('data', (d: Buffer) => (out += d))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const app: RunningApp = {
    base: `http://127.0.0.1:${port}`,
    port,
    process: child,
    output: () => out,
    async stop() {
      await stopChild(child, exited)
    },
  }
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}`)
        await fetch(app.base + probe, { signal: AbortSignal.timeout(2000) })
        return true
      },
      { timeoutMs: 30_000, intervalMs: 100, what: `${args.join(' ')} to listen` },
    )
  } catch (err) {
    await app.stop()
    throw new Error(`${(err as Error).message}\n--- output ---\n${out.slice(-2000)}`)
  }
  return app
}

/** The fenced code block that follows `<!-- example:NAME -->` in a Markdown document. */
export function exampleBlock(markdown: string, name: string): string {
  const m = new RegExp(`<!-- example:${name} -->\\n\`\`\`\\w*\\n([\\s\\S]*?)\`\`\``).exec(markdown)
  if (!m) throw new Error(`no example:${name} block`)
  return m[1]!
}
