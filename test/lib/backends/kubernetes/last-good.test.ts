import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createKubernetesBackend, kubernetesOptionsFromEnv } from '../../../../src/lib/backends/kubernetes/index.js'
import { BackendError, CasConflictError, ConfigError } from '../../../../src/lib/errors.js'
import { stageKey } from '../../../../src/ops/rotation/two-phase.js'
import { serializeKeyset, updateKeyset } from '../../../../src/ops/rotation/update-keyset.js'
import { startKubeDouble, type KubeDouble } from '../../../support/kube-double.js'
import { makeKey, makeKeyset } from '../../../support/keys.js'

const NS = 'cbc'
const KEYSET = serializeKeyset(makeKeyset([makeKey('ES256', 'k-last-good-1')]) as never)
const decode = (b64: string | undefined) => (b64 === undefined ? undefined : Buffer.from(b64, 'base64').toString())

describe('Kubernetes backend: the last good copy beside the keyset (against the API test double)', () => {
  let double: KubeDouble
  let dir: string
  let env: NodeJS.ProcessEnv
  const backend = (extra: NodeJS.ProcessEnv = {}) => createKubernetesBackend(kubernetesOptionsFromEnv({ ...env, ...extra }), { env: { ...env, ...extra } })
  const stored = (name = 'cbc-secrets') => double.secret(NS, name)!
  const updates = () => double.calls.filter((c) => c.verb === 'update').length

  before(async () => {
    double = await startKubeDouble()
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-kube-lg-'))
    env = { KUBECONFIG: double.writeKubeconfig(path.join(dir, 'kubeconfig'), { namespace: NS }), HOME: dir }
  })
  after(async () => {
    await double.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it('every write stores the same document as jwt-keyset and jwt-keyset-last-good, in one PUT with the resourceVersion read', async () => {
    double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': KEYSET, 'db-password': 'untouched' })
    const b = backend()
    const puts = updates()
    const outcome = await updateKeyset(b, (doc) => stageKey(doc, { now: Date.now() }))
    await b.close()
    assert.equal(updates() - puts, 1, 'one write carries both keys')
    const data = stored().data
    assert.equal(decode(data['jwt-keyset']), outcome.text)
    assert.equal(decode(data['jwt-keyset-last-good']), outcome.text)
    assert.equal(decode(data['db-password']), 'untouched')
  })

  it('the copy is also made when the Secret is created (keyset init), and its key is configurable', async () => {
    const b = backend({ CBC_JWT_KUBERNETES_SECRET: 'created', CBC_JWT_KUBERNETES_LAST_GOOD_KEY: 'keyset.previous' })
    await b.write(KEYSET, null)
    await b.close()
    assert.deepEqual(Object.keys(stored('created').data).sort(), ['jwt-keyset', 'keyset.previous'])
    assert.equal(decode(stored('created').data['keyset.previous']), KEYSET)
    assert.throws(() => kubernetesOptionsFromEnv({ CBC_JWT_KUBERNETES_LAST_GOOD_KEY: 'jwt-keyset' }), ConfigError, 'the copy cannot be the keyset itself')
    assert.throws(() => kubernetesOptionsFromEnv({ CBC_JWT_KUBERNETES_LAST_GOOD_KEY: 'no/slash' }), ConfigError)
  })

  it('a conflicting write (409) leaves both keys as the other writer left them: nothing half-written', async () => {
    double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': KEYSET, 'jwt-keyset-last-good': KEYSET })
    const b = backend()
    const snap = await b.read()
    const theirs = double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': `${KEYSET} `, 'jwt-keyset-last-good': KEYSET })
    await assert.rejects(b.write(KEYSET.replace('\n', ' \n'), snap.version), CasConflictError)
    await b.close()
    assert.deepEqual(stored(), theirs)
  })

  it('readLastGood: the copy and the keyset at one resourceVersion; a write against it puts the copy back', async () => {
    const broken = '{"version": 1, "current": '
    const seeded = double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': broken, 'jwt-keyset-last-good': KEYSET })
    const b = backend()
    const copy = await b.readLastGood!()
    assert.deepEqual(copy, {
      text: KEYSET,
      current: broken,
      version: seeded.metadata.resourceVersion,
      location: 'kubernetes:cbc/cbc-secrets#jwt-keyset-last-good',
    })
    await b.write(copy.text, copy.version)
    await b.close()
    assert.equal(decode(stored().data['jwt-keyset']), KEYSET)
  })

  it('readLastGood on a Secret without the copy, or without the Secret: not_found, saying why', async () => {
    double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': KEYSET })
    const b = backend()
    await assert.rejects(
      b.readLastGood!(),
      (err: unknown) => err instanceof BackendError && err.reason === 'not_found' && /has no last good copy/.test(err.message),
    )
    await b.close()
    const none = backend({ CBC_JWT_KUBERNETES_SECRET: 'no-such-secret' })
    await assert.rejects(
      none.readLastGood!(),
      (err: unknown) => err instanceof BackendError && err.reason === 'not_found' && /does not exist/.test(err.message),
    )
    await none.close()
  })
})
