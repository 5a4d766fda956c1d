// createBackendFromConfig, the service's backend: fails closed. Nothing configured, the
// development keyset under NODE_ENV=production or beside a configured keyset, and a Kubernetes
// backend with no API server to find are each a ConfigError naming what to set — never a keyset
// generated or guessed. (test/server/start-up-errors.test.ts runs the same through the process.)
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import type { Logger } from 'pino'
import { devKeysetFile } from '../../../src/lib/backends/dev-keyset.js'
import { createBackendFromConfig } from '../../../src/lib/backends/from-config.js'
import { ConfigError } from '../../../src/lib/errors.js'

type Config = Parameters<typeof createBackendFromConfig>[0]

function capture() {
  const warned: Array<Record<string, unknown>> = []
  const logger = { warn: (obj: object) => void warned.push(obj as Record<string, unknown>), info: () => {}, error: () => {} } as unknown as Logger
  return { warned, logger }
}

async function refused(config: Config, env: NodeJS.ProcessEnv, message: RegExp): Promise<void> {
  const devFile = devKeysetFile()
  const existed = fs.existsSync(devFile)
  await assert.rejects(createBackendFromConfig(config, env, capture().logger), (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err))
    assert.match(err.message, message)
    assert.ok(!err.message.includes('\n'), 'one line')
    return true
  })
  if (!existed) assert.equal(fs.existsSync(devFile), false, 'a development keyset was generated')
}

describe('createBackendFromConfig', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-from-config-'))
  after(() => fs.rmSync(tmp, { recursive: true, force: true }))
  const nothing: Config = { backend: 'file', keysetFile: undefined, devKeyset: false }

  it('nothing configured: refused, naming the variable, the backends and --dev', async () => {
    await refused(
      nothing,
      {},
      /^no keyset configured: set CBC_JWT_KEYSET_FILE to the keyset path \(or CBC_JWT_BACKEND=vault or kubernetes\); for a local development keyset, run cbc-jwt serve --dev or set CBC_JWT_DEV_KEYSET=true$/,
    )
  })

  it('the development keyset under NODE_ENV=production, however it is spelt: refused', async () => {
    for (const NODE_ENV of ['production', 'Production', ' PRODUCTION ', 'production\n']) {
      await refused(
        { ...nothing, devKeyset: true },
        { NODE_ENV },
        /^the development keyset \(--dev, CBC_JWT_DEV_KEYSET=true\) is refused under NODE_ENV=production: set CBC_JWT_KEYSET_FILE/,
      )
    }
  })

  it('the development keyset beside any configured keyset: refused, naming the other one', async () => {
    for (const [config, named] of [
      [{ backend: 'file', keysetFile: path.join(tmp, 'keyset.json') }, 'CBC_JWT_KEYSET_FILE'],
      [{ backend: 'vault', keysetFile: undefined }, 'CBC_JWT_BACKEND=vault'],
      [{ backend: 'kubernetes', keysetFile: undefined }, 'CBC_JWT_BACKEND=kubernetes'],
    ] as const) {
      await refused(
        { ...config, devKeyset: true },
        { NODE_ENV: 'development' },
        new RegExp(`^the development keyset \\(--dev, CBC_JWT_DEV_KEYSET=true\\) and ${named} are both set: unset one`),
      )
    }
  })

  it('a configured keyset file is that file', async () => {
    const file = path.join(tmp, 'configured.json')
    const backend = await createBackendFromConfig({ ...nothing, keysetFile: file }, {}, capture().logger)
    assert.deepEqual([backend.kind, backend.location], ['file', file])
    await backend.close()
  })

  it('kubernetes with no API server to find: refused at creation, before any read', async () => {
    const env = { KUBECONFIG: path.join(tmp, 'no-such-kubeconfig'), HOME: tmp }
    await refused({ backend: 'kubernetes', keysetFile: undefined, devKeyset: false }, env, /^KUBECONFIG names no readable file/)
  })

  it('asked for, outside production: the development keyset of the current folder, generated once and logged', async () => {
    const cwd = fs.mkdtempSync(path.join(tmp, 'project-'))
    const { warned, logger } = capture()
    const back = process.cwd()
    process.chdir(cwd)
    try {
      const backend = await createBackendFromConfig({ ...nothing, devKeyset: true }, {}, logger)
      const file = path.join(fs.realpathSync(cwd), '.cbc-jwt', 'dev-keyset.json')
      assert.deepEqual([backend.kind, fs.realpathSync(backend.location)], ['file', file])
      assert.ok(JSON.parse((await backend.read()).text).keys.length > 0, 'a keyset with a key')
      assert.deepEqual(
        warned.map((w) => [w.event, w.generated]),
        [['dev_keyset', true]],
      )
      await backend.close()
    } finally {
      process.chdir(back)
    }
  })
})
