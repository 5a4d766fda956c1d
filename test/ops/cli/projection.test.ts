// Every CLI write publishes the verification projection (the keyset without private keys)
// before the private keyset; a failure between the two is loud and repaired by running the
// same command again; drift is reported; HS* keysets have no projection and say so.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { loadKeyset } from '../../../src/lib/keyset/load.js'
import { toVerificationKeyset } from '../../../src/lib/keyset/projection.js'
import { serializeKeyset } from '../../../src/lib/keyset/serialize.js'
import { freePort } from '../../support/free-port.js'
import { makeKey, makeKeyset } from '../../support/keys.js'
import { startKubeDouble, type KubeDouble } from '../../support/kube-double.js'
import { assertNoPrivateMaterial } from '../../lib/keyset/fixtures.js'
import { cbcJwt, keysetFixture, oneLine, readJson, tempDir } from './cli.js'

const tmp = tempDir('projection')
after(tmp.cleanup)

describe('the file backend: keyset.json → keyset.public.json on every write', { concurrency: true }, () => {
  it('revoke and rotate publish the projection, world-readable, never a private byte, identical to the keyset without private keys', async () => {
    const file = await keysetFixture(tmp.file('a.json'))
    for (const args of [
      ['revoke', '--issued-before', 'now'],
      ['rotate', '--stage'],
      ['rotate', '--compromised'],
    ]) {
      const r = await cbcJwt([...args, '--keyset-file', file])
      assert.equal(r.code, 0, r.stderr)
      assert.match(r.stdout, /wrote the verification projection .*a\.public\.json\nwrote .*a\.json\n$/, 'projection first, then the keyset')
      const projection = readJson(tmp.file('a.public.json'))
      assert.deepEqual(projection, toVerificationKeyset(readJson(file)))
      assertNoPrivateMaterial(JSON.stringify(projection), readJson(file), 'the projection')
      assert.equal(loadKeyset(projection).signing, false)
    }
    assert.equal(fs.statSync(tmp.file('a.public.json')).mode & 0o777, 0o644)
  })

  it('a keyset path without a final .json gets .public.json appended; only a final .json is replaced', async () => {
    for (const [name, projection] of [
      ['jwt-keyset', 'jwt-keyset.public.json'],
      ['k.json.bak', 'k.json.bak.public.json'],
    ] as const) {
      const file = await keysetFixture(tmp.file(name))
      const r = await cbcJwt(['revoke', '--issued-before', 'now', '--keyset-file', file])
      assert.equal(r.code, 0, r.stderr)
      assert.deepEqual(readJson(tmp.file(projection)), toVerificationKeyset(readJson(file)), `${name} → ${projection}`)
    }
    assert.ok(!fs.existsSync(tmp.file('k.public.json')), 'never the .json in the middle of the name')
  })

  it('--keyset-file takes CBC_JWT_PUBLIC_KEYSET_FILE unless CBC_JWT_KEYSET_FILE names another keyset, which it belongs to', async () => {
    const file = await keysetFixture(tmp.file('p.json'))
    fs.mkdirSync(tmp.file('p-public'))
    const publicFile = tmp.file('p-public/keyset.json')
    // Alone, or beside CBC_JWT_KEYSET_FILE naming the same file (spelt another way): the verifiers' path.
    for (const env of [{ CBC_JWT_PUBLIC_KEYSET_FILE: publicFile }, { CBC_JWT_PUBLIC_KEYSET_FILE: publicFile, CBC_JWT_KEYSET_FILE: `${tmp.dir}/./p.json` }]) {
      fs.rmSync(publicFile, { force: true })
      const r = await cbcJwt(['revoke', '--issued-before', 'now', '--force', '--keyset-file', file], { env })
      assert.equal(r.code, 0, r.stderr)
      // The second run may change nothing but still finds the projection gone: it repairs it.
      assert.match(r.stdout, /(wrote|repaired) the verification projection .*p-public\/keyset\.json/)
      assert.deepEqual(readJson(publicFile), toVerificationKeyset(readJson(file)))
      assert.ok(!fs.existsSync(tmp.file('p.public.json')), 'no projection beside the keyset')
    }
    // Another keyset's projection is not this one's to overwrite: the sibling, and a line that says so.
    const other = await keysetFixture(tmp.file('q.json'))
    const live = fs.readFileSync(publicFile)
    const r = await cbcJwt(['revoke', '--issued-before', 'now', '--keyset-file', other], {
      env: { CBC_JWT_PUBLIC_KEYSET_FILE: publicFile, CBC_JWT_KEYSET_FILE: file },
    })
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(fs.readFileSync(publicFile), live, "the configured keyset's projection untouched")
    assert.deepEqual(readJson(tmp.file('q.public.json')), toVerificationKeyset(readJson(other)))
    assert.match(
      r.stderr,
      /^cbc-jwt: note: CBC_JWT_PUBLIC_KEYSET_FILE is the projection of CBC_JWT_KEYSET_FILE .*p\.json, not of .*q\.json: its projection goes to .*q\.public\.json\n/m,
    )
  })

  it('--keyset-file naming CBC_JWT_PUBLIC_KEYSET_FILE itself: read as the verification keyset it is, no note, no error', async () => {
    const file = await keysetFixture(tmp.file('s.json'))
    fs.mkdirSync(tmp.file('s-public'))
    const publicFile = tmp.file('s-public/keyset.json')
    assert.equal((await cbcJwt(['revoke', '--issued-before', 'now', '--keyset-file', file], { env: { CBC_JWT_PUBLIC_KEYSET_FILE: publicFile } })).code, 0)
    const status = await cbcJwt(['status', '--keyset-file', publicFile], { env: { CBC_JWT_PUBLIC_KEYSET_FILE: publicFile, CBC_JWT_KEYSET_FILE: file } })
    assert.equal(status.code, 0, status.stderr)
    assert.doesNotMatch(status.stderr, /note:/)
    // The verifiers' own keyset (no private keyset configured): it takes revocations, as any file does.
    const own = tmp.file('s-own.json')
    fs.copyFileSync(publicFile, own)
    const r = await cbcJwt(['revoke', '--client-id', 'acme', '--issued-before', 'now', '--keyset-file', own], { env: { CBC_JWT_PUBLIC_KEYSET_FILE: own } })
    assert.equal(r.code, 0, r.stderr)
  })

  // Found by probing `cbc-jwt rotate - < keyset.json` (the pipeline of `kubectl … | cbc-jwt
  // rotate - | kubectl create secret …`): the private keyset changed, no projection was written,
  // and stderr said nothing about it — the verifiers' projection stayed behind, silently.
  it('with -, no projection is written and a note on stderr says so (stdout: the keyset only)', async () => {
    const file = await keysetFixture(tmp.file('piped.json'))
    const input = fs.readFileSync(file, 'utf8')
    for (const args of [
      ['rotate', '-'],
      ['revoke', '--client-id', 'acme', '--issued-before', 'now', '-'],
    ]) {
      const r = await cbcJwt(args, { input })
      assert.equal(r.code, 0, r.stderr)
      assert.ok(loadKeyset(JSON.parse(r.stdout)).signing, `${args[0]}: stdout is the private keyset`)
      assert.match(r.stderr, /note: no verification projection written \(- carries the keyset only\).*write with --keyset-file PATH or --backend/, args[0])
    }
    const dry = await cbcJwt(['rotate', '--dry-run', '-'], { input })
    assert.equal(dry.code, 0, dry.stderr)
    assert.doesNotMatch(dry.stderr, /no verification projection written/)
  })

  it('revoke pointed at a projection of a private keyset is refused: the rule would be lost at its next write', async () => {
    const file = await keysetFixture(tmp.file('r.json'))
    assert.equal((await cbcJwt(['revoke', '--issued-before', 'now', '--keyset-file', file])).code, 0)
    const publicFile = tmp.file('r.public.json')
    const bytes = fs.readFileSync(publicFile)
    const r = await cbcJwt(['revoke', '--client-id', 'acme', '--issued-before', 'now', '--keyset-file', publicFile])
    assert.equal(r.code, 1, r.stdout + r.stderr)
    assert.match(oneLine(r.stderr), /r\.public\.json is the verification projection of .*r\.json: revoke there/)
    assert.deepEqual(fs.readFileSync(publicFile), bytes)
    // A verification keyset of its own (no private keyset it is the projection of) takes revocations.
    const own = tmp.file('verifiers-only.json')
    fs.copyFileSync(publicFile, own)
    const ok = await cbcJwt(['revoke', '--client-id', 'acme', '--issued-before', 'now', '--keyset-file', own])
    assert.equal(ok.code, 0, ok.stderr)
  })

  // Found black-box: `keyset init --force --keyset-file keyset.public.json` beside keyset.json
  // replaced the projection with a private keyset, kept at the projection's 0644: every verifier
  // (and every local user) could read the signing key.
  it('keyset init at the projection of a private keyset is refused, --force or not: verifiers would get the signing key', async () => {
    const file = await keysetFixture(tmp.file('i.json'))
    assert.equal((await cbcJwt(['revoke', '--issued-before', 'now', '--keyset-file', file])).code, 0)
    const publicFile = tmp.file('i.public.json')
    const bytes = fs.readFileSync(publicFile)
    const forced = await cbcJwt(['keyset', 'init', '--force', '--keyset-file', publicFile])
    assert.equal(forced.code, 1, forced.stdout + forced.stderr)
    assert.match(
      oneLine(forced.stderr),
      /i\.public\.json is the verification projection of .*i\.json: a keyset with private keys written there would give every verifier the signing key/,
    )
    assert.deepEqual(fs.readFileSync(publicFile), bytes)
    assertNoPrivateMaterial(fs.readFileSync(publicFile, 'utf8'), readJson(file), 'the projection')
    // Not there yet (deleted, or never written): still the projection's place.
    fs.rmSync(publicFile)
    const fresh = await cbcJwt(['keyset', 'init', '--keyset-file', publicFile])
    assert.equal(fresh.code, 1, fresh.stdout + fresh.stderr)
    assert.equal(fs.existsSync(publicFile), false)
    // CBC_JWT_PUBLIC_KEYSET_FILE of the configured keyset, under any name.
    const configured = tmp.file('verifiers.json')
    const env = { CBC_JWT_KEYSET_FILE: file, CBC_JWT_PUBLIC_KEYSET_FILE: configured }
    const named = await cbcJwt(['keyset', 'init', '--keyset-file', configured], { env })
    assert.equal(named.code, 1, named.stdout + named.stderr)
    assert.equal(fs.existsSync(configured), false)
    // The private keyset itself is initialised again as before.
    assert.equal((await cbcJwt(['keyset', 'init', '--force', '--keyset-file', file])).code, 0)
  })

  it('a projection that cannot be written: exit 1, one line naming it, the private keyset untouched; fixed, the same command repairs', async () => {
    const file = await keysetFixture(tmp.file('b.json'))
    const before = fs.readFileSync(file)
    const publicFile = path.join(tmp.dir, 'missing-dir', 'b.public.json')
    const env = { CBC_JWT_KEYSET_FILE: file, CBC_JWT_PUBLIC_KEYSET_FILE: publicFile }
    const r = await cbcJwt(['revoke', '--issued-before', 'now'], { env })
    assert.equal(r.code, 1)
    assert.match(
      r.stderr,
      /^cbc-jwt: cannot write the verification projection .*missing-dir\/b\.public\.json: .*; the private keyset .*b\.json was not changed — run the same command again\n$/,
    )
    assert.deepEqual(fs.readFileSync(file), before)
    fs.mkdirSync(path.dirname(publicFile))
    const again = await cbcJwt(['revoke', '--issued-before', 'now'], { env })
    assert.equal(again.code, 0, again.stderr)
    assert.deepEqual(readJson(publicFile), toVerificationKeyset(readJson(file)))
    assert.ok(readJson(publicFile).revoked_before)
  })

  // §10: a failure between the two writes names what was and was not written. keyset init
  // said only "cannot write …k.json: ENOENT", its projection already published.
  it('keyset init whose keyset cannot be written after its projection was: the line names both; fixed, the same command repairs', async () => {
    const file = path.join(tmp.dir, 'init-missing-dir', 'k.json')
    const publicFile = tmp.file('init-missing.public.json')
    const env = { CBC_JWT_PUBLIC_KEYSET_FILE: publicFile }
    const r = await cbcJwt(['keyset', 'init', '--keyset-file', file], { env })
    assert.equal(r.code, 1)
    assert.match(
      oneLine(r.stderr),
      /^cbc-jwt: cannot write .*init-missing-dir\/k\.json: ENOENT; the verification projection \(.*init-missing\.public\.json\) already holds the change — run the same command again/,
    )
    assert.ok(fs.existsSync(publicFile))
    fs.mkdirSync(path.dirname(file))
    const again = await cbcJwt(['keyset', 'init', '--keyset-file', file], { env })
    assert.equal(again.code, 0, again.stderr)
    assert.deepEqual(readJson(publicFile), toVerificationKeyset(readJson(file)))
  })

  it('drift: keyset validate --projection names it (exit 1); a change command with nothing to do repairs it', async () => {
    const file = await keysetFixture(tmp.file('c.json'))
    const publicFile = tmp.file('c.public.json')
    const absent = await cbcJwt(['keyset', 'validate', '--projection', '--keyset-file', file])
    assert.equal(absent.code, 1)
    assert.match(absent.stderr, /^cbc-jwt: drift: the verification projection .*c\.public\.json is absent\n$/)
    const first = await cbcJwt(['rotate', '--auto', '--keyset-file', file])
    assert.equal(first.code, 0, first.stderr)
    assert.match(first.stdout, /wrote the verification projection .*c\.public\.json/)
    const ok = await cbcJwt(['keyset', 'validate', '--projection', '--keyset-file', file])
    assert.equal(ok.code, 0, ok.stderr)
    assert.match(ok.stdout, /verification projection: in sync\n$/)
    fs.writeFileSync(publicFile, JSON.stringify({ ...readJson(publicFile), revoked_before: '2026-01-01T00:00:00Z' }))
    const drift = await cbcJwt(['keyset', 'validate', '--projection', '--keyset-file', file])
    assert.equal(drift.code, 1)
    assert.match(drift.stderr, /c\.public\.json differs from the private keyset/)
    // Worse than drift: a projection holding the private keys is named as such.
    fs.copyFileSync(file, publicFile)
    const leaked = await cbcJwt(['keyset', 'validate', '--projection', '--keyset-file', file])
    assert.equal(leaked.code, 1)
    assert.match(leaked.stderr, /c\.public\.json holds private or secret keys: every reader of it can sign with them .*rotate --compromised/)
    const repair = await cbcJwt(['rotate', '--auto', '--keyset-file', file])
    assert.equal(repair.code, 0, repair.stderr)
    assert.match(repair.stdout, /^nothing to do\n(.*\n)*repaired the verification projection .*c\.public\.json/)
    assert.deepEqual(readJson(publicFile), toVerificationKeyset(readJson(file)))
  })

  it('a projection path that is the keyset itself — by name, or through a symlink — is refused (exit 2) and the private keyset kept', async () => {
    const file = await keysetFixture(tmp.file('h.json'))
    const bytes = fs.readFileSync(file)
    fs.symlinkSync(file, tmp.file('h-link.json'))
    fs.mkdirSync(tmp.file('h-dir'))
    fs.symlinkSync(tmp.dir, tmp.file('h-dir/up'))
    for (const publicFile of [file, tmp.file('h-link.json'), path.join(tmp.file('h-dir/up'), 'h.json')]) {
      const r = await cbcJwt(['revoke', '--client-id', 'acme', '--issued-before', 'now'], {
        env: { CBC_JWT_KEYSET_FILE: file, CBC_JWT_PUBLIC_KEYSET_FILE: publicFile },
      })
      assert.equal(r.code, 2, `${publicFile}: ${r.stdout}${r.stderr}`)
      assert.match(
        r.stderr,
        /^cbc-jwt: CBC_JWT_PUBLIC_KEYSET_FILE must differ from the keyset file .*: the projection must never replace the private keyset\n$/,
      )
      assert.deepEqual(fs.readFileSync(file), bytes, `${publicFile}: the private keyset is untouched`)
    }
    // Nor the last good copy (private keys too), through a symlink.
    const copy = tmp.file('h.last-good.json')
    fs.writeFileSync(copy, bytes, { mode: 0o600 })
    fs.symlinkSync(copy, tmp.file('h-copy-link.json'))
    const r = await cbcJwt(['revoke', '--client-id', 'acme', '--issued-before', 'now'], {
      env: { CBC_JWT_KEYSET_FILE: file, CBC_JWT_PUBLIC_KEYSET_FILE: tmp.file('h-copy-link.json') },
    })
    assert.equal(r.code, 2, r.stdout + r.stderr)
    assert.match(
      r.stderr,
      /^cbc-jwt: CBC_JWT_PUBLIC_KEYSET_FILE must differ from .*h\.last-good\.json: that is where the last good copy \(private keys\) is kept\n$/,
    )
    assert.deepEqual([fs.readFileSync(file), fs.readFileSync(copy)], [bytes, bytes])
  })

  it('in sync right after any write: a first revoked_before on a keyset with rules is no drift, and the same command again writes nothing', async () => {
    const file = await keysetFixture(tmp.file('g.json'))
    const publicFile = tmp.file('g.public.json')
    for (const args of [
      ['revoke', '--client-id', 'acme', '--issued-before', 'now'],
      ['revoke', '--issued-before', 'now'],
      ['rotate', '--compromised'],
    ]) {
      const r = await cbcJwt([...args, '--keyset-file', file])
      assert.equal(r.code, 0, r.stderr)
      const check = await cbcJwt(['keyset', 'validate', '--projection', '--keyset-file', file])
      assert.equal(check.code, 0, `${args.join(' ')}: ${check.stderr}`)
      assert.match(check.stdout, /verification projection: in sync\n$/)
    }
    const published = fs.readFileSync(publicFile)
    const again = await cbcJwt(['revoke', '--issued-before', readJson(file).revoked_before, '--keyset-file', file])
    assert.equal(again.code, 0, again.stderr)
    assert.equal(again.stdout, 'nothing to do\n')
    assert.deepEqual(fs.readFileSync(publicFile), published)
  })

  it('an HS* keyset has no projection: the write says so, and keyset validate warns that verifiers holding it can sign', async () => {
    const file = await keysetFixture(tmp.file('hs.json'), { alg: 'HS256' })
    const r = await cbcJwt(['revoke', '--issued-before', 'now', '--keyset-file', file])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /note: no verification projection written: HS\* \(oct\) keys cannot be made public/)
    assert.ok(!fs.existsSync(tmp.file('hs.public.json')))
    const v = await cbcJwt(['keyset', 'validate', '--keyset-file', file])
    assert.match(v.stdout, /note: k-[^:]+: HS\* \(oct\) key cannot be made public: every verifier holding it can also sign/)
  })

  it('a change that brings an HS* key into a keyset whose projection is published is refused: the projection would go stale', async () => {
    const file = await keysetFixture(tmp.file('to-hs.json'))
    const publicFile = tmp.file('to-hs.public.json')
    assert.equal((await cbcJwt(['rotate', '--stage', '--keyset-file', file])).code, 0)
    const published = fs.readFileSync(publicFile)
    const keyset = fs.readFileSync(file)
    // Verifiers read the projection: left as it is, it would keep the leaked key current and unrevoked for good.
    for (const args of [
      ['rotate', '--compromised', '--alg', 'HS256'],
      ['rotate', '--alg', 'HS384'],
    ]) {
      const r = await cbcJwt([...args, '--keyset-file', file])
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}`)
      assert.match(r.stderr, /^cbc-jwt: refusing to add an HS\* \(oct\) key: the verification projection .*to-hs\.public\.json .*nothing was written\n$/)
      assert.deepEqual(fs.readFileSync(file), keyset)
      assert.deepEqual(fs.readFileSync(publicFile), published)
    }
  })

  it('a CBC_JWT_PUBLIC_KEYSET_FILE that is the keyset under another name (a symlinked folder, a symlink) is refused; nothing written', async () => {
    const dir = tmp.file('alias-private')
    fs.mkdirSync(dir)
    const file = await keysetFixture(path.join(dir, 'k.json'))
    fs.symlinkSync(dir, tmp.file('alias-link'))
    fs.symlinkSync(file, tmp.file('alias-k.json'))
    const keyset = fs.readFileSync(file)
    // Written first, the projection would replace the private keyset (and then its last good copy): every private key lost.
    for (const publicFile of [path.join(tmp.file('alias-link'), 'k.json'), tmp.file('alias-k.json')]) {
      const r = await cbcJwt(['rotate', '--stage'], { env: { CBC_JWT_KEYSET_FILE: file, CBC_JWT_PUBLIC_KEYSET_FILE: publicFile } })
      assert.equal(r.code, 2, `${publicFile}: ${r.stdout}${r.stderr}`)
      assert.match(
        r.stderr,
        /^cbc-jwt: CBC_JWT_PUBLIC_KEYSET_FILE must differ from the keyset file .*k\.json.*: the projection must never replace the private keyset\n$/,
      )
      assert.deepEqual(fs.readFileSync(file), keyset)
    }
  })

  it('keyset validate --projection on an HS* keyset whose projection is still published: drift (exit 1), not "in sync"', async () => {
    const file = await keysetFixture(tmp.file('hs-stale.json'))
    assert.equal((await cbcJwt(['rotate', '--stage', '--keyset-file', file])).code, 0)
    assert.ok(fs.existsSync(tmp.file('hs-stale.public.json')))
    // The keyset replaced by hand with an HS* one: no write will ever update the projection its verifiers read.
    fs.copyFileSync(await keysetFixture(tmp.file('hs-stale-src.json'), { alg: 'HS256' }), file)
    const r = await cbcJwt(['keyset', 'validate', '--projection', '--keyset-file', file])
    assert.equal(r.code, 1, r.stdout)
    assert.doesNotMatch(r.stdout, /in sync/)
    assert.match(r.stderr, /^cbc-jwt: drift: the verification projection .*hs-stale\.public\.json is stale: the keyset holds HS\* \(oct\) keys/m)
  })

  it('an HS* keyset whose stale projection is still published rotates: the refusal is for the first HS* key only', async () => {
    const file = await keysetFixture(tmp.file('hs-rotates.json'))
    const publicFile = tmp.file('hs-rotates.public.json')
    assert.equal((await cbcJwt(['rotate', '--stage', '--keyset-file', file])).code, 0)
    // Replaced by hand with an HS* keyset: the projection went stale then, not with this rotation.
    fs.copyFileSync(await keysetFixture(tmp.file('hs-rotates-src.json'), { alg: 'HS256' }), file)
    const published = fs.readFileSync(publicFile)
    const r = await cbcJwt(['rotate', '--alg', 'HS256', '--keyset-file', file])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /note: no verification projection written: HS\* \(oct\) keys cannot be made public/)
    assert.deepEqual(fs.readFileSync(publicFile), published)
  })

  it('the first HS* key in a keyset with no projection published is no stale projection: the rotation goes ahead', async () => {
    const file = await keysetFixture(tmp.file('hs-first.json'))
    assert.ok(!fs.existsSync(tmp.file('hs-first.public.json')))
    const r = await cbcJwt(['rotate', '--alg', 'HS256', '--keyset-file', file])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /note: no verification projection written: HS\* \(oct\) keys cannot be made public/)
    assert.ok(!fs.existsSync(tmp.file('hs-first.public.json')))
  })

  it('keyset validate --projection --json: stdout is one JSON document, the comparison in it', async () => {
    const file = await keysetFixture(tmp.file('json.json'))
    assert.equal((await cbcJwt(['rotate', '--stage', '--keyset-file', file])).code, 0)
    const synced = await cbcJwt(['keyset', 'validate', '--projection', '--json', '--keyset-file', file])
    assert.equal(synced.code, 0, synced.stderr)
    assert.deepEqual(JSON.parse(synced.stdout).projection, { in_sync: true, drift: [] })
    fs.rmSync(tmp.file('json.public.json'))
    const absent = await cbcJwt(['keyset', 'validate', '--projection', '--json', '--keyset-file', file])
    assert.equal(absent.code, 1)
    const { projection } = JSON.parse(absent.stdout)
    assert.equal(projection.in_sync, false)
    assert.match(projection.drift[0], /json\.public\.json is absent$/)
  })

  it('keyset validate reports a verification keyset as one', async () => {
    const file = tmp.file('v.json')
    fs.writeFileSync(file, JSON.stringify(toVerificationKeyset(readJson(await keysetFixture(tmp.file('v-src.json'))))))
    const r = await cbcJwt(['keyset', 'validate', '--keyset-file', file])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /valid verification keyset \(no private key: verifies, cannot sign\)/)
  })
})

describe('the Kubernetes backend: the Secret cbc-jwt-verification in every verifying namespace', () => {
  let double: KubeDouble
  let env: Record<string, string>
  before(async () => {
    double = await startKubeDouble()
    env = {
      CBC_JWT_BACKEND: 'kubernetes',
      CBC_JWT_KUBERNETES_PUBLIC_NAMESPACES: 'cbc,orders,payments',
      KUBECONFIG: double.writeKubeconfig(tmp.file('kubeconfig'), { namespace: 'cbc' }),
      HOME: tmp.dir,
    }
  })
  after(() => double.close())

  it('keyset init (configured backend, no destination) creates the Secrets and prints no key; rotate updates every namespace', async () => {
    const init = await cbcJwt(['keyset', 'init'], { env })
    assert.equal(init.code, 0, init.stderr)
    assert.doesNotMatch(init.stdout, /"d"/)
    const privateDoc = () => JSON.parse(Buffer.from(double.secret('cbc', 'cbc-secrets')!.data!['jwt-keyset']!, 'base64').toString())
    const projectionIn = (ns: string) => JSON.parse(Buffer.from(double.secret(ns, 'cbc-jwt-verification')!.data!['jwt-keyset']!, 'base64').toString())
    for (const ns of ['cbc', 'orders', 'payments']) assert.deepEqual(projectionIn(ns), toVerificationKeyset(privateDoc()))
    const rotate = await cbcJwt(['rotate', '--stage'], { env })
    assert.equal(rotate.code, 0, rotate.stderr)
    for (const ns of ['cbc', 'orders', 'payments']) {
      assert.deepEqual(projectionIn(ns), toVerificationKeyset(privateDoc()))
      assertNoPrivateMaterial(JSON.stringify(projectionIn(ns)), privateDoc(), `the projection in ${ns}`)
    }
    assert.equal(double.secret('orders', 'cbc-secrets'), undefined, 'the private keyset was copied to a verifier namespace')
  })

  it("keyset init that loses the create after publishing: the projection is set back to the winner's keyset, not left with the loser's keys", async () => {
    const own = await startKubeDouble()
    try {
      const env = { CBC_JWT_BACKEND: 'kubernetes', KUBECONFIG: own.writeKubeconfig(tmp.file('kubeconfig-race'), { namespace: 'cbc' }), HOME: tmp.dir }
      const winner = makeKeyset([makeKey('ES256', 'k-winner')])
      // Another init created cbc-secrets after this one published its projection over the winner's.
      own.beforeWrite = (verb) => {
        if (verb !== 'create' || own.secret('cbc', 'cbc-secrets') || !own.secret('cbc', 'cbc-jwt-verification')) return
        own.beforeWrite = undefined
        own.setSecret('cbc', 'cbc-secrets', { 'jwt-keyset': serializeKeyset(winner as never) })
      }
      const r = await cbcJwt(['keyset', 'init'], { env })
      own.beforeWrite = undefined
      assert.equal(r.code, 1, r.stderr)
      const line = oneLine(r.stderr)
      assert.match(line, /was changed by another writer while this init ran/)
      const projection = JSON.parse(Buffer.from(own.secret('cbc', 'cbc-jwt-verification')!.data!['jwt-keyset']!, 'base64').toString())
      assert.deepEqual(projection, toVerificationKeyset(winner as never), 'the projection lacks the key the stored keyset signs with')
      assert.match(line, /was set back to the stored keyset/)
      assert.doesNotMatch(line, /run the same command again/, 'init again would be refused: the keyset exists')
    } finally {
      await own.close()
    }
  })

  // Found by probing revoke against the projection with a verifier's settings (as for Vault):
  // the rule was written into cbc-jwt-verification, exit 0, and the next write of cbc-secrets
  // rewrote the projection without it — the client accepted again, silently.
  it('revoke pointed at a projection Secret (labelled verification-keyset) is refused; a Secret of its own takes revocations', async () => {
    const own = await startKubeDouble()
    try {
      const base = { CBC_JWT_BACKEND: 'kubernetes', KUBECONFIG: own.writeKubeconfig(tmp.file('kubeconfig-revoke'), { namespace: 'cbc' }), HOME: tmp.dir }
      assert.equal((await cbcJwt(['keyset', 'init'], { env: { ...base, CBC_JWT_KUBERNETES_PUBLIC_NAMESPACES: 'cbc,orders' } })).code, 0)
      const before = own.secret('orders', 'cbc-jwt-verification')
      const verifier = { ...base, CBC_JWT_KUBERNETES_NAMESPACE: 'orders', CBC_JWT_KUBERNETES_SECRET: 'cbc-jwt-verification' }
      const r = await cbcJwt(['revoke', '--client-id', 'acme', '--issued-before', 'now'], { env: verifier })
      assert.equal(r.code, 1, r.stdout + r.stderr)
      assert.match(
        oneLine(r.stderr),
        /kubernetes:orders\/cbc-jwt-verification#jwt-keyset is the verification projection of the private keyset Secret .*: revoke there/,
      )
      assert.deepEqual(own.secret('orders', 'cbc-jwt-verification'), before, 'the projection was written')
      // A verification keyset in a Secret of its own (not labelled a projection) takes revocations.
      own.setSecret('orders', 'verifiers-own', { 'jwt-keyset': serializeKeyset(toVerificationKeyset(makeKeyset([makeKey('ES256', 'k-own')]) as never)) })
      const ok = await cbcJwt(['revoke', '--client-id', 'acme', '--issued-before', 'now'], { env: { ...verifier, CBC_JWT_KUBERNETES_SECRET: 'verifiers-own' } })
      assert.equal(ok.code, 0, ok.stderr)
    } finally {
      await own.close()
    }
  })

  it('keyset init --force pointed at a projection Secret (labelled verification-keyset) is refused: no private key in it', async () => {
    const own = await startKubeDouble()
    try {
      const base = { CBC_JWT_BACKEND: 'kubernetes', KUBECONFIG: own.writeKubeconfig(tmp.file('kubeconfig-init'), { namespace: 'cbc' }), HOME: tmp.dir }
      assert.equal((await cbcJwt(['keyset', 'init'], { env: base })).code, 0)
      const before = own.secret('cbc', 'cbc-jwt-verification')
      const verifier = { ...base, CBC_JWT_KUBERNETES_SECRET: 'cbc-jwt-verification', CBC_JWT_KUBERNETES_PUBLIC_SECRET: 'elsewhere' }
      const r = await cbcJwt(['keyset', 'init', '--force'], { env: verifier })
      assert.equal(r.code, 1, r.stdout + r.stderr)
      assert.match(oneLine(r.stderr), /kubernetes:cbc\/cbc-jwt-verification#jwt-keyset is the verification projection of the private keyset Secret /)
      assert.deepEqual(own.secret('cbc', 'cbc-jwt-verification'), before, 'the projection was written')
    } finally {
      await own.close()
    }
  })

  // Found black-box: the manifests ship cbc-jwt-verification empty (labelled) in every verifying
  // namespace; `keyset init` with a sidecar's settings in `orders` (the context's namespace,
  // CBC_JWT_KUBERNETES_SECRET=cbc-jwt-verification) read no keyset there, so the label was never
  // looked at, and wrote a private keyset into it: every verifier got the signing key.
  it('keyset init at the shipped, still empty projection Secret of another namespace is refused: its label is read all the same', async () => {
    const own = await startKubeDouble()
    try {
      const created = await fetch(`${own.url}/api/v1/namespaces/orders/secrets`, {
        method: 'POST',
        headers: { authorization: `Bearer ${own.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'cbc-jwt-verification', namespace: 'orders', labels: { 'app.kubernetes.io/component': 'verification-keyset' } },
          type: 'Opaque',
        }),
      })
      assert.equal(created.status, 201)
      const env = { CBC_JWT_BACKEND: 'kubernetes', KUBECONFIG: own.writeKubeconfig(tmp.file('kubeconfig-empty'), { namespace: 'orders' }), HOME: tmp.dir }
      const r = await cbcJwt(['keyset', 'init'], { env: { ...env, CBC_JWT_KUBERNETES_SECRET: 'cbc-jwt-verification' } })
      assert.equal(r.code, 1, r.stdout + r.stderr)
      assert.match(oneLine(r.stderr), /kubernetes:orders\/cbc-jwt-verification#jwt-keyset is the verification projection of the private keyset Secret /)
      assert.equal(own.secret('orders', 'cbc-jwt-verification')?.data?.['jwt-keyset'], undefined, 'a keyset was written into the projection Secret')
      assert.equal(own.secret('cbc', 'cbc-jwt-verification'), undefined)
    } finally {
      await own.close()
    }
  })

  it("a projection Secret that is cbc-secrets in the keyset's namespace — named, or the context's — is refused (exit 2), nothing written", async () => {
    const own = await startKubeDouble()
    try {
      const base = { CBC_JWT_BACKEND: 'kubernetes', KUBECONFIG: own.writeKubeconfig(tmp.file('kubeconfig-same'), { namespace: 'cbc' }), HOME: tmp.dir }
      assert.equal((await cbcJwt(['keyset', 'init'], { env: base })).code, 0)
      const before = own.secret('cbc', 'cbc-secrets')
      // The keyset's namespace unset (the context's, cbc): listing cbc names it all the same.
      for (const namespaces of [undefined, 'cbc', 'orders,cbc']) {
        const env = {
          ...base,
          CBC_JWT_KUBERNETES_PUBLIC_SECRET: 'cbc-secrets',
          ...(namespaces === undefined ? {} : { CBC_JWT_KUBERNETES_PUBLIC_NAMESPACES: namespaces }),
        }
        const r = await cbcJwt(['rotate', '--stage'], { env })
        assert.equal(r.code, 2, `${namespaces}: ${r.stdout}${r.stderr}`)
        assert.match(oneLine(r.stderr), /CBC_JWT_KUBERNETES_PUBLIC_SECRET must differ from CBC_JWT_KUBERNETES_SECRET \(cbc-secrets\)/)
        assert.deepEqual(own.secret('cbc', 'cbc-secrets'), before, `${namespaces}: the private keyset was replaced`)
        assert.equal(own.secret('orders', 'cbc-secrets'), undefined, `${namespaces}: a projection was written before the refusal`)
      }
    } finally {
      await own.close()
    }
  })
})

describe('verify-rotation --projection: the same comparison as keyset validate --projection, as a checklist item', () => {
  it('passes in sync, names the drifted projection, and is refused without --projection or on -', async () => {
    const file = await keysetFixture(tmp.file('v.json'))
    const publicFile = tmp.file('v.public.json')
    const closed = `http://127.0.0.1:${await freePort()}`
    const verify = () => cbcJwt(['verify-rotation', '--replica', closed, '--projection', '--keyset-file', file])
    const absent = await verify()
    assert.equal(absent.code, 1)
    assert.match(absent.stdout, /^✗ \d+\. projection in sync: .*v\.public\.json is absent \(repair: /m)
    assert.equal((await cbcJwt(['rotate', '--auto', '--keyset-file', file])).code, 0)
    const synced = await verify()
    // The fleet items fail (no replica answers); the projection item passes on its own.
    assert.match(synced.stdout, new RegExp(`^✓ \\d+\\. projection in sync: ${publicFile.replace(/[.]/g, '\\.')} matches ${file.replace(/[.]/g, '\\.')}$`, 'm'))
    fs.writeFileSync(publicFile, JSON.stringify({ ...readJson(publicFile), revoked_before: '2026-01-01T00:00:00Z' }))
    const drift = await verify()
    assert.match(drift.stdout, /^✗ \d+\. projection in sync: .*v\.public\.json differs from the private keyset/m)
    const validate = await cbcJwt(['keyset', 'validate', '--projection', '--keyset-file', file])
    assert.match(validate.stderr, /v\.public\.json differs from the private keyset/)
    const usage = await cbcJwt(['verify-rotation', '--replica', closed, '--keyset-file', file])
    assert.equal(usage.code, 2)
    assert.match(usage.stderr, /--keyset-file and --backend apply to --projection/)
    const stdin = await cbcJwt(['verify-rotation', '--replica', closed, '--projection', '--keyset-file', '-'])
    assert.equal(stdin.code, 2)
  })
})
