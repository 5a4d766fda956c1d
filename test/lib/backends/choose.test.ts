// chooseBackend: the one place a configuration becomes a keyset backend, for the service, the
// library and the CLI. Each backend gets the caller's logger: a warning that the Vault token
// crosses the network in clear, or that a watch is refused, must reach the caller's log.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { chooseBackend, isKubernetesBackend } from '../../../src/lib/backends/choose.js'
import { startKubeDouble, type KubeDouble } from '../../support/kube-double.js'
import { waitFor } from '../../support/wait.js'

function capture() {
  const lines: Array<{ level: 'info' | 'warn'; obj: Record<string, unknown>; msg: string | undefined }> = []
  const logger = {
    info: (obj: object, msg?: string) => void lines.push({ level: 'info', obj: obj as Record<string, unknown>, msg }),
    warn: (obj: object, msg?: string) => void lines.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
  }
  return { lines, logger }
}

const never = () => assert.fail('whenNothingConfigured called with a backend configured')

describe('chooseBackend', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-choose-'))
  let double: KubeDouble
  let kubeEnv: NodeJS.ProcessEnv
  before(async () => {
    double = await startKubeDouble()
    kubeEnv = { KUBECONFIG: double.writeKubeconfig(path.join(dir, 'kubeconfig'), { namespace: 'cbc' }), HOME: dir }
  })
  after(async () => {
    await double.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it('file without a keyset file is what whenNothingConfigured says; with one, that file', async () => {
    const instead = { kind: 'instead' }
    assert.equal(chooseBackend({ backend: 'file', keysetFile: undefined }, { env: {}, whenNothingConfigured: () => instead }), instead)
    const file = path.join(dir, 'keyset.json')
    const backend = chooseBackend({ backend: 'file', keysetFile: file }, { env: {}, whenNothingConfigured: never })
    assert.deepEqual([backend.kind, backend.location], ['file', file])
    assert.equal(isKubernetesBackend(backend), false)
    await backend.close()
  })

  it("vault: Vault's variables, and the warnings go to the caller's logger", async () => {
    const { lines, logger } = capture()
    const env = { VAULT_ADDR: 'http://vault.example:8200', VAULT_TOKEN: 'hvs.t', CBC_JWT_VAULT_PATH: 'apps/jwt' }
    const backend = chooseBackend({ backend: 'vault', keysetFile: path.join(dir, 'ignored.json') }, { env, logger, whenNothingConfigured: never })
    assert.deepEqual([backend.kind, backend.location], ['vault', 'vault:secret/apps/jwt'])
    assert.equal(isKubernetesBackend(backend), false)
    assert.deepEqual(
      lines.map((l) => [l.level, l.msg]),
      [['warn', 'VAULT_ADDR is plain http: the Vault token crosses the network in clear']],
    )
    await backend.close()
  })

  it("file: a watch the system refuses is logged to the caller's logger", async () => {
    const { lines, logger } = capture()
    const sub = fs.mkdtempSync(path.join(dir, 'watched-'))
    const file = path.join(sub, 'keyset.json')
    fs.writeFileSync(file, '{}')
    const backend = chooseBackend({ backend: 'file', keysetFile: file }, { env: {}, logger, whenNothingConfigured: never })
    const watch = fs.watch
    const patchable = fs as { watch: typeof watch }
    patchable.watch = ((...args: Parameters<typeof watch>) => {
      if (String(args[0]).startsWith(sub)) throw Object.assign(new Error('ENOSPC: System limit for number of file watchers reached'), { code: 'ENOSPC' })
      return watch(...args)
    }) as typeof watch
    try {
      backend.watch!(() => {})
      await waitFor(() => lines.length > 0, { timeoutMs: 5000, what: 'the refused watch to be logged' })
    } finally {
      patchable.watch = watch
      await backend.close()
    }
    assert.equal(lines[0]!.obj.event, 'watch_failed')
    assert.equal(lines[0]!.obj.location, file)
  })

  it("kubernetes: the Secret through the API, connectable, and its watch logs to the caller's logger", async () => {
    const { lines, logger } = capture()
    const env = { ...kubeEnv, CBC_JWT_KUBERNETES_SECRET: 'cbc-jwt-verification' }
    const backend = chooseBackend({ backend: 'kubernetes', keysetFile: path.join(dir, 'ignored.json') }, { env, logger, whenNothingConfigured: never })
    if (!isKubernetesBackend(backend)) return assert.fail('not a Kubernetes backend')
    await backend.connect()
    assert.equal(backend.location, 'kubernetes:cbc/cbc-jwt-verification#jwt-keyset')
    double.deny.add('list')
    try {
      backend.watch!(() => {})
      await waitFor(() => lines.some((l) => l.level === 'warn'), { timeoutMs: 5000, what: 'the refused list to be logged' })
    } finally {
      double.deny.clear()
      await backend.close()
    }
  })

  it('isKubernetesBackend: a backend of kind kubernetes that cannot connect is not one', () => {
    const read = async () => ({ text: '{}', version: '1' })
    const write = async () => ({ text: '{}', version: '2' })
    const close = async () => {}
    assert.equal(isKubernetesBackend({ kind: 'kubernetes', location: 'x', read, write, close }), false)
    assert.equal(isKubernetesBackend({ kind: 'file', location: 'x', read, write, close, connect: async () => {} } as never), false)
  })
})
