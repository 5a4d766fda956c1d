import assert from 'node:assert/strict'
import fs from 'node:fs'
import { after, before, describe, it } from 'node:test'
import { serializeKeyset } from '../../../src/ops/rotation/update-keyset.js'
import { startKubeDouble, type KubeDouble } from '../../support/kube-double.js'
import { makeKey, makeKeyset } from '../../support/keys.js'
import { cbcJwt, tempDir } from './cli.js'

const NS = 'cbc'
const GOOD = serializeKeyset(makeKeyset([makeKey('ES256', 'k-restore-good')]) as never)
const BROKEN = '{"version": 1, "current": '
/** Valid JSON, invalid keyset: current names no key. */
const INVALID = serializeKeyset({ ...makeKeyset([makeKey('ES256', 'k-restore-bad')]), current: 'k-nowhere' } as never)
const decode = (b64: string | undefined) => (b64 === undefined ? undefined : Buffer.from(b64, 'base64').toString())

describe('cbc-jwt keyset restore (Kubernetes backend, against the API test double)', () => {
  const tmp = tempDir('restore')
  let double: KubeDouble
  let env: Record<string, string>
  const restore = (...args: string[]) => cbcJwt(['keyset', 'restore', ...args], { env })
  const stored = () => double.secret(NS, 'cbc-secrets')!
  const writes = () => double.calls.filter((c) => c.verb !== 'get').length

  before(async () => {
    double = await startKubeDouble()
    env = { CBC_JWT_BACKEND: 'kubernetes', KUBECONFIG: double.writeKubeconfig(tmp.file('kubeconfig'), { namespace: NS }), HOME: tmp.dir, USER: 'alice' }
  })
  after(async () => {
    await double.close()
    tmp.cleanup()
  })

  it('puts a broken jwt-keyset back from jwt-keyset-last-good, with check-and-set and a keyset_changed line', async () => {
    const seeded = double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': BROKEN, 'jwt-keyset-last-good': GOOD, other: 'kept' })
    const dry = await restore('--dry-run')
    assert.equal(dry.code, 0, dry.stderr)
    assert.match(
      dry.stdout,
      /^dry run, nothing written — kubernetes:cbc\/cbc-secrets#jwt-keyset restored from kubernetes:cbc\/cbc-secrets#jwt-keyset-last-good: current k-restore-good/,
    )
    assert.deepEqual(stored(), seeded, 'a dry run writes nothing')

    const r = await restore('--reason', 'INC-88')
    assert.equal(r.code, 0, r.stderr)
    // The verification projection first (its own Secret), then the private keyset.
    assert.match(
      r.stdout,
      /\(the keyset there was missing or invalid\)\nwrote the verification projection kubernetes:cbc\/cbc-jwt-verification#jwt-keyset\nwrote kubernetes:cbc\/cbc-secrets#jwt-keyset\n$/,
    )
    const data = stored().data
    assert.equal(decode(data['jwt-keyset']), GOOD)
    assert.equal(decode(data['jwt-keyset-last-good']), GOOD)
    assert.equal(decode(data.other), 'kept')
    const update = double.calls.filter((c) => c.verb === 'update').at(-1)!
    assert.equal(update.status, 200)
    const audit = JSON.parse(r.stderr.trim().split('\n').at(-1)!)
    assert.deepEqual(
      { event: audit.event, command: audit.command, from: audit.from, to: audit.to, actor: audit.actor, reason: audit.reason, location: audit.location },
      {
        event: 'keyset_changed',
        command: 'keyset restore',
        from: null,
        to: 'k-restore-good',
        actor: 'alice',
        reason: 'INC-88',
        location: 'kubernetes:cbc/cbc-secrets#jwt-keyset',
      },
    )

    const again = await restore()
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stdout, /already holds the last good keyset .*; nothing written/)
    assert.doesNotMatch(again.stderr, /keyset_changed/)
  })

  it('refuses an invalid last good copy: exit 1, every problem named, nothing written', async () => {
    const seeded = double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': BROKEN, 'jwt-keyset-last-good': INVALID })
    const before = writes()
    const r = await restore()
    assert.equal(r.code, 1)
    assert.match(r.stderr, /^cbc-jwt: kubernetes:cbc\/cbc-secrets#jwt-keyset-last-good is not a valid keyset \(current: .*\); nothing was written\n$/)
    assert.equal(writes(), before, 'no write was even attempted')
    assert.deepEqual(stored(), seeded)
  })

  it('a Secret without the last good key: exit 1, saying so, nothing written', async () => {
    const seeded = double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': BROKEN })
    const r = await restore()
    assert.equal(r.code, 1)
    assert.match(r.stderr, /^cbc-jwt: kubernetes:cbc\/cbc-secrets#jwt-keyset-last-good: the Secret has no last good copy/)
    assert.deepEqual(stored(), seeded)
  })

  it('another writer between the read and the write (409): exit 1, not retried, the Secret is exactly what the other writer left', async () => {
    double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': BROKEN, 'jwt-keyset-last-good': GOOD })
    let theirs: ReturnType<KubeDouble['setSecret']> | undefined
    double.beforeWrite = () => {
      theirs ??= double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': GOOD.replace('\n', ' \n'), 'jwt-keyset-last-good': GOOD })
    }
    try {
      const r = await restore()
      assert.equal(r.code, 1)
      assert.match(r.stderr, /was changed by another writer .*; nothing was written — look at the keyset again/)
      assert.doesNotMatch(r.stderr, /keyset_changed/)
    } finally {
      double.beforeWrite = undefined
    }
    assert.equal(double.calls.filter((c) => c.verb === 'update' && c.status === 409).length, 1)
    assert.deepEqual(stored(), theirs)
  })

  it('backends without a copy refuse (exit 2) and say what to do instead', async () => {
    const file = tmp.file('keyset.json')
    fs.writeFileSync(file, GOOD)
    const onFile = await cbcJwt(['keyset', 'restore', '--keyset-file', file])
    assert.equal(onFile.code, 2)
    assert.match(
      onFile.stderr,
      /^cbc-jwt: keyset restore: .*keyset\.json has no last good copy \(only CBC_JWT_BACKEND=kubernetes keeps one\); put your backup back/,
    )
    const onVault = await cbcJwt(['keyset', 'restore'], { env: { CBC_JWT_BACKEND: 'vault', VAULT_ADDR: 'http://127.0.0.1:1', VAULT_TOKEN: 't' } })
    assert.equal(onVault.code, 2, onVault.stderr)
    assert.match(onVault.stderr, /has no last good copy .*vault kv rollback -mount=MOUNT -version=N PATH\n$/)
    assert.equal(onVault.stderr.split('\n').length, 2, 'one line')
  })
})
