import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createFileBackend } from '../../../src/lib/backends/file-backend.js'
import { createKubernetesBackend, kubernetesOptionsFromEnv } from '../../../src/lib/backends/kubernetes/index.js'
import { createVaultBackend, vaultOptionsFromEnv } from '../../../src/lib/backends/vault/index.js'
import { BackendError, CasConflictError, ConfigError } from '../../../src/lib/errors.js'
import type { BackendErrorReason } from '../../../src/lib/reasons.js'
import { withLastGoodCopy } from '../../../src/ops/last-good/copy.js'
import { fileLastGood, kubernetesLastGood, lastGoodKeysetPath, vaultLastGood } from '../../../src/ops/last-good/targets.js'
import { stageKey } from '../../../src/ops/rotation/two-phase.js'
import { updateKeyset } from '../../../src/ops/rotation/update-keyset.js'
import { serializeKeyset } from '../../../src/lib/keyset/serialize.js'
import { MAX_KEYSET_BYTES } from '../../../src/lib/keyset/document.js'
import { startKubeDouble, type KubeDouble } from '../../support/kube-double.js'
import { startVaultDouble, type VaultDouble } from '../../support/vault-double.js'
import { makeKey, makeKeyset } from '../../support/keys.js'

const NS = 'cbc'
const KEYSET = serializeKeyset(makeKeyset([makeKey('ES256', 'k-last-good-1')]) as never)
const OTHER = serializeKeyset(makeKeyset([makeKey('ES256', 'k-last-good-2')]) as never)
const decode = (b64: string | undefined) => (b64 === undefined ? undefined : Buffer.from(b64, 'base64').toString())

describe('the last good copy in a Secret of its own (Kubernetes API test double)', () => {
  let double: KubeDouble
  let dir: string
  let env: NodeJS.ProcessEnv
  const backend = (extra: NodeJS.ProcessEnv = {}) => {
    const all = { ...env, ...extra }
    const options = kubernetesOptionsFromEnv(all)
    return withLastGoodCopy(createKubernetesBackend(options, { env: all }), kubernetesLastGood(options, all))
  }
  const data = (name: string) => double.secret(NS, name)?.data ?? {}
  const copy = () => decode(data('cbc-jwt-last-good')['jwt-keyset'])
  const keyset = () => decode(data('cbc-secrets')['jwt-keyset'])
  const writes = (from: number) =>
    double.calls
      .slice(from)
      .filter((c) => c.verb !== 'get')
      .map((c) => `${c.verb} ${c.path.split('/').at(-1)} ${c.status}`)

  before(async () => {
    double = await startKubeDouble()
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-last-good-'))
    env = { KUBECONFIG: double.writeKubeconfig(path.join(dir, 'kubeconfig'), { namespace: NS }), HOME: dir }
  })
  after(async () => {
    await double.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it('a change writes the copy first, then cbc-secrets, each with its own check-and-set; cbc-secrets holds the keyset only', async () => {
    double.setSecret(NS, 'cbc-jwt-last-good', {})
    double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': KEYSET, 'db-password': 'untouched' })
    const b = backend()
    const from = double.calls.length
    const outcome = await updateKeyset(b, (doc) => stageKey(doc, { now: Date.now() }))
    await b.close()
    assert.deepEqual(writes(from), ['update cbc-jwt-last-good 200', 'update cbc-secrets 200'])
    assert.equal(copy(), outcome.text)
    assert.equal(keyset(), outcome.text)
    assert.deepEqual(Object.keys(data('cbc-secrets')).sort(), ['db-password', 'jwt-keyset'])
  })

  it('a failure between the two writes loses nothing: the copy is one write ahead, and restoring it completes the change', async () => {
    double.setSecret(NS, 'cbc-jwt-last-good', { 'jwt-keyset': KEYSET })
    double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': KEYSET })
    const b = backend()
    const snap = await b.read()
    // The copy's write goes through; every write after it is refused, as if the process died there.
    double.beforeWrite = () => double.deny.add('update')
    try {
      await assert.rejects(
        b.write(OTHER, snap.version),
        (err: unknown) =>
          err instanceof BackendError && /its last good copy kubernetes:cbc\/cbc-jwt-last-good#jwt-keyset already holds the new keyset/.test(err.message),
      )
    } finally {
      double.beforeWrite = undefined
      double.deny.clear()
    }
    assert.equal(copy(), OTHER, 'the copy is ahead')
    assert.equal(keyset(), KEYSET, 'the keyset is as it was')
    const saved = await b.readLastGood!()
    assert.deepEqual(saved, {
      text: OTHER,
      current: KEYSET,
      version: double.secret(NS, 'cbc-secrets')!.metadata.resourceVersion,
      location: 'kubernetes:cbc/cbc-jwt-last-good#jwt-keyset',
    })
    await b.write(saved.text, saved.version)
    await b.close()
    assert.equal(keyset(), OTHER)
  })

  it('another writer wins cbc-secrets (409): the copy follows the keyset that won, so it never keeps a change that lost', async () => {
    double.setSecret(NS, 'cbc-jwt-last-good', { 'jwt-keyset': KEYSET })
    double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': KEYSET })
    const b = backend()
    const snap = await b.read()
    const theirs = double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': `${KEYSET} ` })
    await assert.rejects(b.write(OTHER, snap.version), CasConflictError)
    await b.close()
    assert.equal(copy(), `${KEYSET} `)
    assert.deepEqual(double.secret(NS, 'cbc-secrets'), theirs)
  })

  it('another writer wins cbc-secrets with a document that does not load: the copy goes back to what it held, never to that', async () => {
    double.setSecret(NS, 'cbc-jwt-last-good', { 'jwt-keyset': KEYSET })
    double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': KEYSET })
    const b = backend()
    const snap = await b.read()
    for (const broken of [KEYSET.slice(0, 40), serializeKeyset({ ...JSON.parse(KEYSET), current: 'k-nowhere' } as never)]) {
      double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': broken })
      await assert.rejects(b.write(OTHER, snap.version), CasConflictError)
      assert.equal(copy(), KEYSET)
    }
    await b.close()
  })

  it('a keyset broken by another writer just after the copy is levelled never reaches the copy', async () => {
    double.setSecret(NS, 'cbc-jwt-last-good', { 'jwt-keyset': KEYSET })
    double.deleteSecret(NS, 'cbc-secrets')
    const b = backend()
    // The create lands, then, as the copy is written, someone puts a document that does not load in cbc-secrets.
    let broken = false
    double.beforeWrite = (verb) => {
      if (verb === 'update' && !broken) {
        broken = true
        double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': KEYSET.slice(0, 40) })
      }
    }
    try {
      await b.write(OTHER, null)
    } finally {
      double.beforeWrite = undefined
      await b.close()
    }
    assert.ok(broken)
    assert.equal(copy(), OTHER, 'the copy keeps the last document that loads')
  })

  it('another writer changes the copy between its read and its write: read again and written, the change goes through', async () => {
    double.setSecret(NS, 'cbc-jwt-last-good', { 'jwt-keyset': KEYSET })
    double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': KEYSET })
    const b = backend()
    const snap = await b.read()
    double.conflictStorm = 1 // the copy's first write answers 409
    await b.write(OTHER, snap.version)
    await b.close()
    assert.equal(double.conflictStorm, 0)
    assert.equal(copy(), OTHER)
    assert.equal(keyset(), OTHER)
  })

  it('a create writes cbc-secrets first: keyset init over an existing keyset leaves the copy alone; a new one gets its copy', async () => {
    double.setSecret(NS, 'cbc-jwt-last-good', { 'jwt-keyset': KEYSET })
    double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': KEYSET })
    const b = backend()
    const from = double.calls.length
    await assert.rejects(b.write(OTHER, null), CasConflictError)
    assert.deepEqual(writes(from), [], 'nothing written')
    assert.equal(copy(), KEYSET)

    double.deleteSecret(NS, 'cbc-secrets')
    await b.write(OTHER, null)
    await b.close()
    assert.deepEqual(writes(from), ['create secrets 201', 'update cbc-jwt-last-good 200'])
    assert.equal(keyset(), OTHER)
    assert.equal(copy(), OTHER)
  })

  it('readLastGood after cbc-secrets was deleted: the copy, no current keyset, version null (the write creates it)', async () => {
    double.setSecret(NS, 'cbc-jwt-last-good', { 'jwt-keyset': KEYSET })
    double.deleteSecret(NS, 'cbc-secrets')
    const b = backend()
    const saved = await b.readLastGood!()
    assert.deepEqual(saved, { text: KEYSET, current: undefined, version: null, location: 'kubernetes:cbc/cbc-jwt-last-good#jwt-keyset' })
    await b.write(saved.text, saved.version)
    await b.close()
    assert.equal(keyset(), KEYSET)
  })

  it('no copy yet (the shipped, empty Secret, or none): not_found, saying why', async () => {
    double.setSecret(NS, 'cbc-jwt-last-good', {})
    const b = backend()
    await assert.rejects(
      b.readLastGood!(),
      (err: unknown) => err instanceof BackendError && err.reason === 'not_found' && /no last good copy/.test(err.message),
    )
    await b.close()
  })

  it('a copy Secret this process may not read (403): restore and a change fail forbidden, never "no copy", and nothing is written', async () => {
    double.setSecret(NS, 'cbc-jwt-last-good', { 'jwt-keyset': KEYSET })
    double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': KEYSET })
    // RBAC `resourceNames` naming the keyset Secret only: the copy's get is refused.
    double.restrictNames = new Set(['cbc-secrets'])
    try {
      const b = backend()
      const from = double.calls.length
      const forbidden = (err: unknown) => err instanceof BackendError && err.reason === 'forbidden' && /cbc-jwt-last-good/.test(err.message)
      await assert.rejects(b.readLastGood!(), forbidden)
      const snap = await b.read()
      await assert.rejects(b.write(OTHER, snap.version), forbidden)
      await b.close()
      assert.deepEqual(writes(from), [], 'nothing written')
    } finally {
      double.restrictNames = undefined
    }
    assert.equal(copy(), KEYSET)
    assert.equal(keyset(), KEYSET)
  })

  it('the copy may not be the keyset Secret or the projection (readable by verifiers); the old key variable is refused', () => {
    const opts = kubernetesOptionsFromEnv({})
    assert.throws(() => kubernetesLastGood(opts, { CBC_JWT_KUBERNETES_LAST_GOOD_SECRET: 'cbc-secrets' }), ConfigError)
    assert.throws(() => kubernetesLastGood(opts, { CBC_JWT_KUBERNETES_LAST_GOOD_SECRET: 'cbc-jwt-verification' }), ConfigError)
    assert.throws(() => kubernetesLastGood(opts, { CBC_JWT_KUBERNETES_PUBLIC_SECRET: 'pub', CBC_JWT_KUBERNETES_LAST_GOOD_SECRET: 'pub' }), ConfigError)
    assert.throws(() => kubernetesLastGood(opts, { CBC_JWT_KUBERNETES_LAST_GOOD_SECRET: 'Not_A_Name' }), ConfigError)
    // A template that left them empty: refused by name, never read as the defaults.
    for (const name of ['CBC_JWT_KUBERNETES_LAST_GOOD_SECRET', 'CBC_JWT_KUBERNETES_PUBLIC_SECRET']) {
      assert.throws(() => kubernetesLastGood(opts, { [name]: ' ' }), new RegExp(`^ConfigError: ${name} is set but empty: .*or unset it`))
    }
    assert.throws(
      () => kubernetesLastGood(opts, { CBC_JWT_KUBERNETES_LAST_GOOD_KEY: 'jwt-keyset-last-good' }),
      /no longer read: .*CBC_JWT_KUBERNETES_LAST_GOOD_SECRET/,
    )
  })
})

describe('the last good copy of a file: its sibling', () => {
  it('keyset.json → keyset.last-good.json (0600), written first; the copy survives the keyset file', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-last-good-file-'))
    try {
      const file = path.join(dir, 'keyset.json')
      assert.equal(lastGoodKeysetPath(file), path.join(dir, 'keyset.last-good.json'))
      assert.equal(lastGoodKeysetPath('/etc/keyset'), '/etc/keyset.last-good.json')
      const b = withLastGoodCopy(createFileBackend(file), fileLastGood(file, undefined))
      await b.write(KEYSET, null)
      const snap = await b.read()
      await b.write(OTHER, snap.version)
      assert.equal(fs.readFileSync(path.join(dir, 'keyset.last-good.json'), 'utf8'), OTHER)
      assert.equal(fs.statSync(path.join(dir, 'keyset.last-good.json')).mode & 0o777, 0o600, 'private keys: owner only')
      fs.rmSync(file)
      const saved = await b.readLastGood!()
      assert.deepEqual(
        { ...saved, location: path.basename(saved.location) },
        { text: OTHER, current: undefined, version: null, location: 'keyset.last-good.json' },
      )
      await b.write(saved.text, saved.version)
      await b.close()
      assert.equal(fs.readFileSync(file, 'utf8'), OTHER)
      assert.throws(() => fileLastGood(file, { CBC_JWT_PUBLIC_KEYSET_FILE: path.join(dir, 'keyset.last-good.json') }), ConfigError)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('the last good copy of a file: never the projection, however its folder is spelled', () => {
  it('a projection named through a symlinked folder, before either file exists, is refused as the copy', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-last-good-spelled-'))
    try {
      const real = path.join(dir, 'real')
      fs.mkdirSync(real)
      fs.symlinkSync(real, path.join(dir, 'linked'))
      const file = path.join(real, 'keyset.json')
      assert.throws(() => fileLastGood(file, { CBC_JWT_PUBLIC_KEYSET_FILE: path.join(dir, 'linked', 'keyset.last-good.json') }), ConfigError)
      assert.deepEqual(fs.readdirSync(real), [], 'nothing was written')
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('the last good copy of a file: restoring over a keyset that cannot be read', () => {
  it('a keyset file grown past the size limit (garbage) is overwritten unconditionally by the copy', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-last-good-huge-'))
    try {
      const file = path.join(dir, 'keyset.json')
      const b = withLastGoodCopy(createFileBackend(file), fileLastGood(file, undefined))
      await b.write(KEYSET, null)
      fs.writeFileSync(file, 'x'.repeat(MAX_KEYSET_BYTES + 1), { mode: 0o600 })
      const saved = await b.readLastGood!()
      assert.deepEqual([saved.text, saved.current, saved.version], [KEYSET, undefined, undefined], 'no version: written unconditionally')
      await b.write(saved.text, saved.version)
      await b.close()
      assert.equal(fs.readFileSync(file, 'utf8'), KEYSET)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('a last good copy that cannot be read is an error, never "no copy"', () => {
  // Only not_found means there is no copy. Read as "no copy", any other failure would make
  // `keyset restore` say none was ever written, and a write create a copy over one it never read.
  const cases: Array<[string, BackendErrorReason, (copy: string) => void]> = [
    ['a symlink loop (io_error)', 'io_error', (copy) => fs.symlinkSync(path.basename(copy), copy)],
    ['a FIFO (not_a_file)', 'not_a_file', (copy) => execFileSync('mkfifo', ['-m', '600', copy])],
    ['past the size limit (invalid_keyset)', 'invalid_keyset', (copy) => fs.writeFileSync(copy, 'x'.repeat(MAX_KEYSET_BYTES + 1), { mode: 0o600 })],
  ]
  for (const [what, reason, make] of cases) {
    it(`a copy that is ${what}: restore, a change and a create fail so; the copy is left as it was`, { skip: process.platform !== 'linux' }, async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-last-good-unreadable-'))
      try {
        const file = path.join(dir, 'keyset.json')
        const copy = path.join(dir, 'keyset.last-good.json')
        fs.writeFileSync(file, KEYSET, { mode: 0o600 })
        make(copy)
        const left = () => {
          const st = fs.lstatSync(copy)
          return `${st.ino}:${st.mode}:${st.size}:${st.mtimeMs}`
        }
        const as = left()
        const failsWith = (why: RegExp) => (err: unknown) => err instanceof BackendError && err.reason === reason && why.test(err.message)
        const b = withLastGoodCopy(createFileBackend(file), fileLastGood(file, undefined))
        await assert.rejects(b.readLastGood!(), failsWith(/keyset\.last-good\.json/))
        const snap = await b.read()
        await assert.rejects(b.write(OTHER, snap.version), failsWith(/keyset\.last-good\.json/))
        assert.equal(fs.readFileSync(file, 'utf8'), KEYSET, 'a change went on to the keyset')
        // A create writes the keyset first; the copy it could not read is reported, not replaced.
        fs.rmSync(file)
        await assert.rejects(b.write(OTHER, null), failsWith(/but not its last good copy/))
        assert.equal(fs.readFileSync(file, 'utf8'), OTHER)
        await b.close()
        assert.equal(left(), as, 'the copy was written over')
      } finally {
        fs.rmSync(dir, { recursive: true, force: true })
      }
    })
  }
})

describe('the last good copy of a file never goes out wider than the keyset', () => {
  it('attack: a copy another user can read (0644) beside a 0600 keyset is not written into: the write fails, the keyset unchanged', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-last-good-wide-'))
    try {
      const file = path.join(dir, 'keyset.json')
      fs.writeFileSync(file, KEYSET, { mode: 0o600 })
      // Left readable by a mistake or by another process: private keys written there would leak.
      fs.writeFileSync(path.join(dir, 'keyset.last-good.json'), KEYSET, { mode: 0o644 })
      fs.chmodSync(path.join(dir, 'keyset.last-good.json'), 0o644)
      const b = withLastGoodCopy(createFileBackend(file), fileLastGood(file, undefined))
      const snap = await b.read()
      await assert.rejects(b.write(OTHER, snap.version), /is open to more than .*keyset\.json/)
      await b.close()
      assert.equal(fs.readFileSync(file, 'utf8'), KEYSET, 'nothing was written to the keyset')
      assert.equal(fs.readFileSync(path.join(dir, 'keyset.last-good.json'), 'utf8'), KEYSET)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('the last good copy in Vault: a path of its own (KV v2 test double)', () => {
  let vault: VaultDouble
  before(async () => {
    vault = await startVaultDouble()
  })
  after(() => vault.close())

  it('…-last-good is written first; after `vault kv metadata delete` of the keyset (every version gone) the copy puts it back', async () => {
    const options = vaultOptionsFromEnv({ VAULT_ADDR: vault.addr, VAULT_TOKEN: vault.token })
    const b = withLastGoodCopy(createVaultBackend(options), vaultLastGood(options, {}, {}))
    await b.write(KEYSET, null)
    const snap = await b.read()
    await b.write(OTHER, snap.version)
    assert.equal(vault.secret('cbc/jwt-keyset-last-good')?.['jwt-keyset'], OTHER)
    const paths = vault.requests.filter((r) => r.method === 'POST').map((r) => r.path)
    assert.deepEqual(paths.slice(-2), ['/v1/secret/data/cbc/jwt-keyset-last-good', '/v1/secret/data/cbc/jwt-keyset'], 'the copy first')
    vault.deleteAll('cbc/jwt-keyset')
    const saved = await b.readLastGood!()
    assert.deepEqual(saved, { text: OTHER, current: undefined, version: null, location: 'vault:secret/cbc/jwt-keyset-last-good' })
    await b.write(saved.text, saved.version)
    await b.close()
    assert.equal(vault.secret('cbc/jwt-keyset')?.['jwt-keyset'], OTHER)
    assert.throws(() => vaultLastGood(options, { CBC_JWT_VAULT_LAST_GOOD_PATH: 'cbc/jwt-keyset' }, {}), ConfigError)
    assert.throws(() => vaultLastGood(options, { CBC_JWT_VAULT_LAST_GOOD_PATH: 'cbc/jwt-keyset-public' }, {}), ConfigError)
  })
})
