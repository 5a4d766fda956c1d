import assert from 'node:assert/strict'
import fs from 'node:fs'
import { after, before, describe, it } from 'node:test'
import { createFileBackend } from '../../../src/lib/backends/file-backend.js'
import { toVerificationKeyset } from '../../../src/lib/keyset/projection.js'
import { serializeKeyset } from '../../../src/lib/keyset/serialize.js'
import { startKubeDouble, type KubeDouble } from '../../support/kube-double.js'
import { makeKey, makeKeyset } from '../../support/keys.js'
import { waitFor } from '../../support/wait.js'
import { cbcJwt, oneLine, tempDir } from './cli.js'

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
  /** The copy, as every cbc-jwt write leaves it: the Secret cbc-jwt-last-good. */
  const keepCopy = (text: string | undefined) => double.setSecret(NS, 'cbc-jwt-last-good', text === undefined ? {} : { 'jwt-keyset': text })
  const writes = () => double.calls.filter((c) => c.verb !== 'get').length

  before(async () => {
    double = await startKubeDouble()
    env = { CBC_JWT_BACKEND: 'kubernetes', KUBECONFIG: double.writeKubeconfig(tmp.file('kubeconfig'), { namespace: NS }), HOME: tmp.dir, USER: 'alice' }
  })
  after(async () => {
    await double.close()
    tmp.cleanup()
  })

  it('puts a broken jwt-keyset back from the Secret cbc-jwt-last-good, with check-and-set and a keyset_changed line', async () => {
    keepCopy(GOOD)
    const seeded = double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': BROKEN, other: 'kept' })
    const dry = await restore('--dry-run')
    assert.equal(dry.code, 0, dry.stderr)
    assert.match(
      dry.stdout,
      /^dry run, nothing written — kubernetes:cbc\/cbc-secrets#jwt-keyset restored from kubernetes:cbc\/cbc-jwt-last-good#jwt-keyset: current k-restore-good \(the keyset there was invalid\)/,
    )
    assert.deepEqual(stored(), seeded, 'a dry run writes nothing')

    const r = await restore('--reason', 'INC-88')
    assert.equal(r.code, 0, r.stderr)
    // The verification projection first (its own Secret), then the private keyset.
    assert.match(
      r.stdout,
      /\(the keyset there was invalid\)\nwrote the verification projection kubernetes:cbc\/cbc-jwt-verification#jwt-keyset\nwrote kubernetes:cbc\/cbc-secrets#jwt-keyset\n$/,
    )
    const data = stored().data
    assert.equal(decode(data['jwt-keyset']), GOOD)
    assert.deepEqual(Object.keys(data).sort(), ['jwt-keyset', 'other'])
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
    keepCopy(INVALID)
    const seeded = double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': BROKEN })
    const before = writes()
    const r = await restore()
    assert.equal(r.code, 1)
    assert.match(r.stderr, /^cbc-jwt: kubernetes:cbc\/cbc-jwt-last-good#jwt-keyset is not a valid keyset \(current: .*\); nothing was written\n$/)
    assert.equal(writes(), before, 'no write was even attempted')
    assert.deepEqual(stored(), seeded)
  })

  it('cbc-secrets deleted: the copy survives it, and restore creates the Secret again (projection first, then the keyset)', async () => {
    keepCopy(GOOD)
    double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': GOOD })
    assert.ok(double.deleteSecret(NS, 'cbc-secrets'))
    const dry = await restore('--dry-run')
    assert.equal(dry.code, 0, dry.stderr)
    assert.match(dry.stdout, /restored from kubernetes:cbc\/cbc-jwt-last-good#jwt-keyset: current k-restore-good \(there was no keyset: it is created again\)/)
    assert.equal(double.secret(NS, 'cbc-secrets'), undefined, 'a dry run creates nothing')
    const r = await restore('--reason', 'JWTKeysetObjectGone')
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /\nwrote kubernetes:cbc\/cbc-secrets#jwt-keyset\n$/)
    assert.equal(decode(stored().data['jwt-keyset']), GOOD)
    assert.equal(double.calls.filter((c) => c.verb === 'create').at(-1)?.status, 201)
    const audit = JSON.parse(r.stderr.trim().split('\n').at(-1)!)
    assert.deepEqual([audit.command, audit.from, audit.to], ['keyset restore', null, 'k-restore-good'])
  })

  it('the projection deleted (what the replicas read): restore writes it again from the keyset, which is intact', async () => {
    keepCopy(GOOD)
    double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': GOOD })
    assert.ok(double.deleteSecret(NS, 'cbc-jwt-verification'))
    // The runbook runs --dry-run first: it must say the projection would be written, and write nothing.
    const writesBefore = writes()
    const dry = await restore('--dry-run')
    assert.equal(dry.code, 0, dry.stderr)
    assert.match(
      dry.stdout,
      /^dry run, nothing written — would repair the verification projection: kubernetes:cbc\/cbc-jwt-verification#jwt-keyset is absent\n/,
    )
    assert.equal(writes(), writesBefore)
    assert.equal(double.secret(NS, 'cbc-jwt-verification'), undefined)
    const r = await restore('--reason', 'JWTKeysetObjectGone')
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^repaired the verification projection kubernetes:cbc\/cbc-jwt-verification#jwt-keyset\n.*already holds the last good keyset/)
    const projected = JSON.parse(decode(double.secret(NS, 'cbc-jwt-verification')?.data['jwt-keyset'])!)
    assert.equal(projected.current, 'k-restore-good')
    assert.ok(
      projected.keys.every((k: { jwk: Record<string, unknown> }) => k.jwk.d === undefined),
      'public keys only',
    )
  })

  // Found black-box: with a verifier's settings (CBC_JWT_KUBERNETES_SECRET=cbc-jwt-verification,
  // its projection variable pointed elsewhere), restore wrote the private keyset's last good copy
  // — private keys included — into the Secret every verifier reads.
  it("pointed at the projection Secret (a verifier's settings): refused, dry run too; no private key reaches it", async () => {
    keepCopy(GOOD)
    double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': BROKEN })
    // The labelled projection Secret, as every cbc-jwt write leaves it.
    assert.equal((await restore('--reason', 'setup')).code, 0)
    const projection = double.secret(NS, 'cbc-jwt-verification')
    assert.ok(projection, 'the projection Secret exists')
    double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': BROKEN })
    const verifier = { ...env, CBC_JWT_KUBERNETES_SECRET: 'cbc-jwt-verification', CBC_JWT_KUBERNETES_PUBLIC_SECRET: 'elsewhere' }
    for (const args of [['--dry-run'], []]) {
      const r = await cbcJwt(['keyset', 'restore', ...args], { env: verifier })
      assert.equal(r.code, 1, r.stdout + r.stderr)
      assert.match(
        oneLine(r.stderr),
        /kubernetes:cbc\/cbc-jwt-verification#jwt-keyset is the verification projection of the private keyset Secret .*: restore that keyset/,
      )
    }
    assert.deepEqual(double.secret(NS, 'cbc-jwt-verification'), projection, 'the projection was written')
    assert.equal(double.secret(NS, 'elsewhere'), undefined)
  })

  it('a staged key the projection lacked is published only now: restore says so, and how to promote it safely', async () => {
    // Found checking a left-open item: rotate --promote times a staged key from its created_at,
    // which a restore that republishes it does not move.
    const staged = serializeKeyset(
      makeKeyset([
        makeKey('ES256', 'k-restore-cur'),
        { key: makeKey('ES256', 'k-restore-standby'), opts: { createdAt: new Date(Date.now() - 86_400_000) } },
      ]) as never,
    )
    const note =
      /^note: staged key k-restore-standby \(created_at [^)]+\) was not in every verification projection and is published only now: .*gate on the replicas \(--prometheus or --replica\) or wait the propagation window from now$/m
    keepCopy(staged)
    double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': staged })
    double.deleteSecret(NS, 'cbc-jwt-verification')
    const repaired = await restore()
    assert.equal(repaired.code, 0, repaired.stderr)
    assert.match(repaired.stdout, /^repaired the verification projection /)
    assert.match(repaired.stdout, note)
    const again = await restore()
    assert.equal(again.code, 0, again.stderr)
    assert.doesNotMatch(again.stdout, /note:/, 'published before: nothing to say')

    // The keyset broken as well: the same note after the projection is written.
    double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': BROKEN })
    double.deleteSecret(NS, 'cbc-jwt-verification')
    const written = await restore()
    assert.equal(written.code, 0, written.stderr)
    assert.match(written.stdout, /^wrote the verification projection .*\nnote: staged key k-restore-standby/m)
    assert.match(written.stdout, note)

    // Broken again, the projection intact and holding the staged key: nothing republished.
    double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': BROKEN })
    const kept = await restore()
    assert.equal(kept.code, 0, kept.stderr)
    assert.match(kept.stdout, /\nwrote kubernetes:cbc\/cbc-secrets#jwt-keyset\n$/)
    assert.doesNotMatch(kept.stdout, /note:/)
  })

  it('cbc-secrets deleted and no right to create it: exit 1, the message says which right, nothing written', async () => {
    keepCopy(GOOD)
    double.deleteSecret(NS, 'cbc-secrets')
    double.deny.add('create')
    try {
      const r = await restore()
      assert.equal(r.code, 1)
      assert.match(r.stderr, /cannot create \(HTTP 403.*needs `create` on secrets in its namespace/)
    } finally {
      double.deny.delete('create')
    }
    assert.equal(double.secret(NS, 'cbc-secrets'), undefined)
  })

  it('no copy yet (the shipped, empty cbc-jwt-last-good): exit 1, saying so, nothing written', async () => {
    keepCopy(undefined)
    const seeded = double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': BROKEN })
    const r = await restore()
    assert.equal(r.code, 1)
    assert.match(r.stderr, /^cbc-jwt: kubernetes:cbc\/cbc-jwt-last-good#jwt-keyset: no last good copy/)
    assert.deepEqual(stored(), seeded)
  })

  it('another writer between the read and the write (409): exit 1, not retried, the Secret is exactly what the other writer left', async () => {
    keepCopy(GOOD)
    double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': BROKEN })
    let theirs: ReturnType<KubeDouble['setSecret']> | undefined
    double.beforeWrite = () => {
      theirs ??= double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': GOOD.replace('\n', ' \n') })
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

  it("another writer between the projection and the keyset write: the projection is set back to the writer's keyset, and the line says so", async () => {
    keepCopy(GOOD)
    double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': BROKEN })
    double.deleteSecret(NS, 'cbc-jwt-verification') // restore publishes the copy's projection
    const theirs = serializeKeyset(makeKeyset([makeKey('ES256', 'k-theirs')]) as never)
    // After restore published the copy's projection, someone writes another keyset to cbc-secrets.
    double.beforeWrite = (verb) => {
      if (verb !== 'update' || !decode(double.secret(NS, 'cbc-jwt-verification')?.data['jwt-keyset'])?.includes('k-restore-good')) return
      double.beforeWrite = undefined
      double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': theirs })
    }
    try {
      const r = await restore()
      assert.equal(r.code, 1, r.stderr)
      assert.match(r.stderr, /was changed by another writer .*was set back to the stored keyset/)
      assert.doesNotMatch(r.stderr, /nothing was written/, 'the projection was written')
    } finally {
      double.beforeWrite = undefined
    }
    assert.equal(decode(stored().data['jwt-keyset']), theirs)
    const projection = JSON.parse(decode(double.secret(NS, 'cbc-jwt-verification')!.data['jwt-keyset'])!)
    assert.equal(projection.current, 'k-theirs', 'the projection lacks the key the stored keyset signs with')
  })

  it('a file: the sibling keyset.last-good.json survives the keyset file, and restore puts it back', async () => {
    const file = tmp.file('keyset.json')
    fs.writeFileSync(file, GOOD)
    const rotated = await cbcJwt(['rotate', '--stage', '--keyset-file', file])
    assert.equal(rotated.code, 0, rotated.stderr)
    const written = fs.readFileSync(file, 'utf8')
    assert.equal(fs.readFileSync(tmp.file('keyset.last-good.json'), 'utf8'), written)
    fs.rmSync(file)
    const r = await cbcJwt(['keyset', 'restore', '--keyset-file', file])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /keyset\.json restored from .*keyset\.last-good\.json: current k-restore-good \(there was no keyset: it is created again\)/)
    assert.equal(fs.readFileSync(file, 'utf8'), written)
  })

  // §10: until the restored keyset is stored, the keyset in force still signs with a key the
  // copy lacks: it stays on the projection until then, and leaves it once the write has landed.
  it("a copy that lacks the key the keyset in force signs with: the projection ends as the copy's own", async () => {
    const file = tmp.file('older-copy.json')
    const copy = tmp.file('older-copy.last-good.json')
    const projection = tmp.file('older-copy.public.json')
    fs.writeFileSync(copy, GOOD)
    // Written out of band (a pipeline), so the copy is older than it.
    const inForce = serializeKeyset(makeKeyset([makeKey('ES256', 'k-out-of-band')]) as never)
    fs.writeFileSync(file, inForce)
    fs.writeFileSync(projection, serializeKeyset(toVerificationKeyset(JSON.parse(inForce))))
    const r = await cbcJwt(['keyset', 'restore', '--keyset-file', file])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(fs.readFileSync(file, 'utf8'), GOOD)
    assert.deepEqual(JSON.parse(fs.readFileSync(projection, 'utf8')), toVerificationKeyset(JSON.parse(GOOD)))
  })

  it('a copy with hundreds of problems: one line naming the first ten and the count, nothing written', async () => {
    const file = tmp.file('many-problems.json')
    fs.writeFileSync(file, GOOD)
    assert.equal((await cbcJwt(['rotate', '--stage', '--keyset-file', file])).code, 0)
    const copy = JSON.parse(fs.readFileSync(tmp.file('many-problems.last-good.json'), 'utf8'))
    for (let i = 0; i < 500; i++) copy.keys.push({ ...copy.keys[0], kid: `k-bad-${i}`, created_at: 'yesterday' })
    fs.writeFileSync(tmp.file('many-problems.last-good.json'), JSON.stringify(copy))
    fs.writeFileSync(file, BROKEN)
    const r = await cbcJwt(['keyset', 'restore', '--keyset-file', file])
    assert.equal(r.code, 1, r.stderr)
    assert.match(
      r.stderr,
      /^cbc-jwt: .*many-problems\.last-good\.json is not a valid keyset \(keys\[2\]\.created_at: .*; … and 490 more problem\(s\) .*\); nothing was written\n$/,
    )
    assert.ok(r.stderr.length < 2000, `${r.stderr.length} characters`)
    assert.equal(fs.readFileSync(file, 'utf8'), BROKEN)
  })

  it('a file: restore and init --force wait for a change of that file in progress (its update lock), as rotate and revoke do', async () => {
    for (const [i, command] of [
      ['keyset', 'restore'],
      ['keyset', 'init', '--force'],
    ].entries()) {
      const file = tmp.file(`held-${i}.json`)
      fs.writeFileSync(file, GOOD)
      assert.equal((await cbcJwt(['rotate', '--stage', '--keyset-file', file])).code, 0)
      fs.writeFileSync(file, BROKEN) // restore has something to put back; init --force replaces it
      let held: Promise<Awaited<ReturnType<typeof cbcJwt>>> | undefined
      // Another change of `file` in progress: it holds the update lock while it runs.
      await createFileBackend(file).exclusive!(async () => {
        // Until it waits for the lock (its own lock file made, in a temp directory of its own), or wrote.
        const lockFiles = () =>
          fs.readdirSync(tmp.dir).filter((d) => d.startsWith(`.held-${i}.json.tmp-`) && fs.readdirSync(tmp.file(d)).includes(`held-${i}.json.update.lock`))
        const holder = lockFiles()
        held = cbcJwt([...command, '--keyset-file', file])
        const waiting = () => lockFiles().some((d) => !holder.includes(d))
        await waitFor(() => waiting() || fs.readFileSync(file, 'utf8') !== BROKEN, { what: `${command.join(' ')} to wait for the lock or write` })
        assert.equal(fs.readFileSync(file, 'utf8'), BROKEN, `${command.join(' ')} wrote the file while another change of it was in progress`)
      })
      const r = await held!
      assert.equal(r.code, 0, r.stderr)
      assert.notEqual(fs.readFileSync(file, 'utf8'), BROKEN, 'it ran once the other change was done')
    }
  })

  it('keyset init over a deleted keyset whose copy is intact: exit 1, pointing to restore; the copy and projection are kept', async () => {
    keepCopy(GOOD)
    double.setSecret(NS, 'cbc-secrets', { 'jwt-keyset': GOOD })
    const projection = double.setSecret(NS, 'cbc-jwt-verification', { 'jwt-keyset': GOOD })
    assert.ok(double.deleteSecret(NS, 'cbc-secrets'))
    const copy = double.secret(NS, 'cbc-jwt-last-good')
    const init = await cbcJwt(['keyset', 'init'], { env })
    assert.equal(init.code, 1, init.stderr)
    assert.match(
      init.stderr,
      /^cbc-jwt: kubernetes:cbc\/cbc-secrets#jwt-keyset holds no keyset, but its last good copy kubernetes:cbc\/cbc-jwt-last-good#jwt-keyset does \(current k-restore-good\): run cbc-jwt keyset restore to put it back, or keyset init --force to start over \(its keys would be lost\)\n$/,
    )
    assert.equal(double.secret(NS, 'cbc-secrets'), undefined, 'nothing created')
    assert.deepEqual([double.secret(NS, 'cbc-jwt-last-good'), double.secret(NS, 'cbc-jwt-verification')], [copy, projection], 'copy and projection untouched')
    // --force starts over, as its help says.
    const forced = await cbcJwt(['keyset', 'init', '--force'], { env })
    assert.equal(forced.code, 0, forced.stderr)
    assert.notEqual(decode(stored().data['jwt-keyset']), GOOD)
  })

  it('keyset init --keyset-file over a removed file whose sibling copy is intact: refused the same way', async () => {
    const file = tmp.file('init-over.json')
    fs.writeFileSync(file, GOOD)
    assert.equal((await cbcJwt(['rotate', '--stage', '--keyset-file', file])).code, 0)
    const copy = fs.readFileSync(tmp.file('init-over.last-good.json'), 'utf8')
    fs.rmSync(file)
    const init = await cbcJwt(['keyset', 'init', '--keyset-file', file])
    assert.equal(init.code, 1, init.stderr)
    assert.match(
      init.stderr,
      /holds no keyset, but its last good copy .*init-over\.last-good\.json does \(current k-restore-good\): run cbc-jwt keyset restore/,
    )
    assert.equal(fs.existsSync(file), false)
    assert.equal(fs.readFileSync(tmp.file('init-over.last-good.json'), 'utf8'), copy)
  })

  it('a keyset on stdin has no copy: exit 2, one line saying what to do instead', async () => {
    const onStdin = await cbcJwt(['keyset', 'restore', '--keyset-file', '-'], { input: GOOD })
    assert.equal(onStdin.code, 2, onStdin.stderr)
    assert.match(onStdin.stderr, /^cbc-jwt: keyset restore: stdin has no last good copy .*not -\n$/)
  })
})
