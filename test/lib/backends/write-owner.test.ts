// A file write keeps the replaced file's owner, group and mode. Run as root (`sudo cbc-jwt
// revoke …`) on a keyset owned by the service user, the service must still read the result —
// else the revocation silently never takes effect. This test needs root to make files owned
// by someone else, and runs as root in CI; as another user it is skipped and says why.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { OwnerNotKeptError, withUpdateLock, writeFileAtomic } from '../../../src/lib/backends/write-file-atomic.js'
import { generateKeyset } from '../../../src/lib/keyset/generate.js'
import { serializeKeyset } from '../../../src/lib/keyset/serialize.js'
import { cbcJwt } from '../../ops/cli/cli.js'
import { runChild } from '../../support/run-child.js'
import { CLI_MAIN } from '../../support/service.js'
import { PROCESS_LEVEL } from '../../support/tier.js'

const SERVICE_USER = 65534 // nobody: the service user of these tests
const asRoot = process.getuid?.() === 0
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-write-owner-'))
fs.chmodSync(root, 0o755)
after(() => fs.rmSync(root, { recursive: true, force: true }))

/** A folder and a keyset file owned by the service user, 0600, as a deployment has them. */
async function serviceOwnedKeyset(name: string): Promise<string> {
  const dir = path.join(root, name)
  fs.mkdirSync(dir, { mode: 0o755 })
  fs.chownSync(dir, SERVICE_USER, SERVICE_USER)
  const file = path.join(dir, 'keyset.json')
  fs.writeFileSync(file, serializeKeyset(await generateKeyset('ES256')), { mode: 0o600 })
  fs.chownSync(file, SERVICE_USER, SERVICE_USER)
  return file
}

/** `command` run as the service user (another local user), with a minimal environment. */
function runAsServiceUser(command: string, args: string[], what: string) {
  return runChild(command, args, { env: { PATH: process.env.PATH ?? '', HOME: '/tmp' }, uid: SERVICE_USER, cwd: '/', timeoutMs: 60_000, what })
}

/** The built CLI run as the service user (the CronJob). */
function asServiceUser(args: string[]) {
  return runAsServiceUser(process.execPath, [CLI_MAIN, ...args], `cbc-jwt ${args[0]} as the service user`)
}

/** Whether the service user can read `file`: a real read by a process running as that user. */
async function serviceCanRead(file: string): Promise<boolean> {
  const r = await runAsServiceUser(process.execPath, ['-e', `require('node:fs').readFileSync(${JSON.stringify(file)})`], 'a read as the service user')
  return r.code === 0
}

describe('file writes keep the owner (as root)', { skip: asRoot ? false : 'needs root to own files as another user' }, () => {
  it('writeFileAtomic as root keeps owner, group and mode of the replaced file', async () => {
    const file = await serviceOwnedKeyset('direct')
    fs.chmodSync(file, 0o640)
    await writeFileAtomic(file, '{"replaced":true}\n')
    const st = fs.statSync(file)
    assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [SERVICE_USER, SERVICE_USER, 0o640])
    assert.ok(await serviceCanRead(file))
  })

  it('cbc-jwt revoke and rotate --compromised run as root: the service user still reads the keyset (and the projection)', async () => {
    const file = await serviceOwnedKeyset('cli')
    const revoke = await cbcJwt(['revoke', '--issued-before', 'now', '--keyset-file', file])
    assert.equal(revoke.code, 0, revoke.stderr)
    const rotate = await cbcJwt(['rotate', '--compromised', '--keyset-file', file])
    assert.equal(rotate.code, 0, rotate.stderr)
    const st = fs.statSync(file)
    assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [SERVICE_USER, SERVICE_USER, 0o600])
    assert.ok(await serviceCanRead(file), 'the service user cannot read the keyset root wrote')
    assert.match(fs.readFileSync(file, 'utf8'), /"revoked_before"/)
  })

  // The first write as root made them root's: every later write as the service user (the
  // CronJob) was refused, "cannot keep the owner 0:0" of the projection, run again or not.
  it('the projection and last good copy a root write creates belong to the keyset owner: the service user writes next', PROCESS_LEVEL, async () => {
    const file = await serviceOwnedKeyset('siblings')
    const revoke = await cbcJwt(['revoke', '--issued-before', 'now', '--keyset-file', file])
    assert.equal(revoke.code, 0, revoke.stderr)
    for (const [sibling, mode] of [
      ['keyset.public.json', 0o644],
      ['keyset.last-good.json', 0o600],
    ] as const) {
      const st = fs.statSync(path.join(path.dirname(file), sibling))
      assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [SERVICE_USER, SERVICE_USER, mode], sibling)
    }
    const rotate = await asServiceUser(['rotate', '--keyset-file', file])
    assert.equal(rotate.code, 0, rotate.stderr)
  })

  // `keyset init` run as root makes the keyset and its siblings root's; the operator then gives
  // the keyset to the service user (chown, chmod 0640). Every later root write was refused: the
  // siblings root itself had written were "open to more" than the keyset — yet a file of root's
  // grants nobody anything root lacks, and no other user can plant one.
  it("keyset init as root, keyset handed to the service user: root's own siblings do not refuse the next root write", PROCESS_LEVEL, async () => {
    const dir = path.join(root, 'init-then-chown')
    fs.mkdirSync(dir, { mode: 0o755 })
    const file = path.join(dir, 'keyset.json')
    const init = await cbcJwt(['keyset', 'init', '--keyset-file', file])
    assert.equal(init.code, 0, init.stderr)
    fs.chownSync(file, SERVICE_USER, SERVICE_USER)
    fs.chmodSync(file, 0o640)
    const rotate = await cbcJwt(['rotate', '--keyset-file', file])
    assert.equal(rotate.code, 0, rotate.stderr)
    const revoke = await cbcJwt(['revoke', '--issued-before', 'now', '--keyset-file', file])
    assert.equal(revoke.code, 0, revoke.stderr)
    const st = fs.statSync(file)
    assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [SERVICE_USER, SERVICE_USER, 0o640])
    assert.match(fs.readFileSync(file, 'utf8'), /"revoked_before"/)
    // Each sibling keeps what it was (root's), and the projection took the write.
    for (const [sibling, mode] of [
      ['keyset.public.json', 0o644],
      ['keyset.last-good.json', 0o600],
    ] as const) {
      const sib = fs.statSync(path.join(dir, sibling))
      assert.deepEqual([sib.uid, sib.gid, sib.mode & 0o7777], [0, 0, mode], sibling)
    }
    assert.match(fs.readFileSync(path.join(dir, 'keyset.public.json'), 'utf8'), /"revoked_before"/)
    assert.ok(await serviceCanRead(file), 'the service user cannot read the keyset root wrote')
    assert.ok(await serviceCanRead(path.join(dir, 'keyset.public.json')), 'the service user cannot read the projection')
  })

  // A root writer's lock was root's 0600 file: the service user could not read whose it was, and
  // its wait retried at once, forever — past its timeout, one core at 100 %, the CronJob stuck.
  // A root umask of 077 (a hardened host's) took the lock's 0644 down to 0600: the same wait again.
  for (const umask of [0o022, 0o077]) {
    it(
      `the locks a killed root writer (umask ${umask.toString(8).padStart(3, '0')}) left are taken away by the service user: its next change completes`,
      PROCESS_LEVEL,
      async () => {
        const file = await serviceOwnedKeyset(`killed-root-${umask.toString(8)}`)
        const dir = path.dirname(file)
        // Each lock exactly as a root writer holds it (owner, mode), kept past its release, then
        // naming a pid no longer running: a `sudo cbc-jwt revoke` killed while it held them.
        const keep = (kind: string) => async () => fs.linkSync(path.join(dir, `.keyset.json.${kind}`), path.join(root, `kept-${umask.toString(8)}-${kind}`))
        const before = process.umask(umask)
        try {
          await withUpdateLock(file, 1000, keep('update.lock'))
          await writeFileAtomic(file, fs.readFileSync(file, 'utf8'), { beforeReplace: keep('lock') })
        } finally {
          process.umask(before)
        }
        const gone = Number(execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }))
        const host = crypto.createHash('sha256').update(os.hostname()).digest('hex').slice(0, 8)
        for (const kind of ['update.lock', 'lock']) {
          const kept = path.join(root, `kept-${umask.toString(8)}-${kind}`)
          fs.writeFileSync(kept, `${host}-${gone}-abcdef`)
          fs.renameSync(kept, path.join(dir, `.keyset.json.${kind}`))
        }
        const revoke = await asServiceUser(['revoke', '--subject', 'alice', '--issued-before', 'now', '--keyset-file', file])
        assert.equal(revoke.code, 0, revoke.stderr)
        assert.match(fs.readFileSync(file, 'utf8'), /"alice"/)
        assert.deepEqual(
          fs.readdirSync(dir).filter((f) => f.endsWith('lock')),
          [],
          'a lock was left behind',
        )
      },
    )
  }

  /** A file created by the service user (another local user), then given `mode`: what a planter leaves. */
  async function plantAsServiceUser(file: string, content: string, mode: number): Promise<void> {
    const plant = await runAsServiceUser(
      process.execPath,
      ['-e', `require('node:fs').writeFileSync(${JSON.stringify(file)}, ${JSON.stringify(content)})`],
      'a file planted by another user',
    )
    assert.equal(plant.code, 0, plant.stderr)
    fs.chmodSync(file, mode) // whatever the planting process's umask
  }

  /** A shared (sticky, 1777) folder of root's, holding a root keyset (0600) unless `keyset` is false. */
  async function sharedFolder(name: string, { keyset = true } = {}) {
    const dir = path.join(root, name)
    fs.mkdirSync(dir)
    fs.chmodSync(dir, 0o1777)
    const file = path.join(dir, 'keyset.json')
    if (keyset) fs.writeFileSync(file, serializeKeyset(await generateKeyset('ES256')), { mode: 0o600 })
    return { dir, file, before: keyset ? fs.readFileSync(file, 'utf8') : '' }
  }

  // In a shared (sticky) folder another user may create a name before the first write makes it:
  // the copy root wrote kept that user's owner and 0666, and handed them the private keys.
  it('a last good copy planted by another user is refused, never filled with the private keys', PROCESS_LEVEL, async () => {
    const { dir, file, before } = await sharedFolder('planted')
    const copy = path.join(dir, 'keyset.last-good.json')
    await plantAsServiceUser(copy, '', 0o666)
    const revoke = await cbcJwt(['revoke', '--issued-before', 'now', '--keyset-file', file])
    assert.equal(revoke.code, 1, revoke.stderr)
    assert.match(revoke.stderr, /keyset\.last-good\.json \(65534:\d+ 0666\) is open to more than .*keyset\.json \(0:0 0600\)/)
    assert.equal(fs.readFileSync(copy, 'utf8'), '', 'the planted copy received the keyset')
    assert.equal(fs.readFileSync(file, 'utf8'), before)
  })

  // The projection is public, but whoever may write it feeds every verifier their own keys: one
  // planted in a shared folder, kept as it was by a root write, stayed its planter's to rewrite.
  it('a projection planted by another user is refused, never written for them to rewrite', PROCESS_LEVEL, async () => {
    const { dir, file, before } = await sharedFolder('planted-projection')
    const projection = path.join(dir, 'keyset.public.json')
    await plantAsServiceUser(projection, '', 0o644)
    const revoke = await cbcJwt(['revoke', '--issued-before', 'now', '--keyset-file', file])
    assert.equal(revoke.code, 1, revoke.stderr)
    assert.match(revoke.stderr, /keyset\.public\.json \(65534:\d+ 0644\) may be written by more than .*keyset\.json \(0:0 0600\)/)
    assert.equal(revoke.stderr.trim().split('\n').length, 1, revoke.stderr)
    assert.equal(fs.readFileSync(projection, 'utf8'), '', 'the planted projection was written')
    assert.equal(fs.readFileSync(file, 'utf8'), before)
    assert.equal(fs.existsSync(path.join(dir, 'keyset.last-good.json')), false)
    // Of the keyset's owner, but writable by others: refused too; readable by all is fine.
    fs.chownSync(projection, 0, 0)
    fs.chmodSync(projection, 0o666)
    const wide = await cbcJwt(['revoke', '--issued-before', 'now', '--keyset-file', file])
    assert.equal(wide.code, 1, wide.stderr)
    assert.match(wide.stderr, /keyset\.public\.json \(0:0 0666\) may be written by more than/)
    assert.equal(fs.readFileSync(projection, 'utf8'), '')
    fs.chmodSync(projection, 0o644)
    const fine = await cbcJwt(['revoke', '--issued-before', 'now', '--keyset-file', file])
    assert.equal(fine.code, 0, fine.stderr)
    assert.notEqual(fs.readFileSync(projection, 'utf8'), '')
  })

  // A first `keyset init` has no keyset yet to bound the projection by: the projection planted
  // before it must not be kept as its planter's for that reason.
  it('keyset init: a projection planted before the keyset exists is refused too', PROCESS_LEVEL, async () => {
    const { dir, file } = await sharedFolder('planted-before-init', { keyset: false })
    const projection = path.join(dir, 'keyset.public.json')
    await plantAsServiceUser(projection, '', 0o644)
    const init = await cbcJwt(['keyset', 'init', '--keyset-file', file])
    assert.equal(init.code, 1, init.stderr)
    assert.match(init.stderr, /keyset\.public\.json \(65534:\d+ 0644\) may be written by more than/)
    assert.equal(init.stderr.trim().split('\n').length, 1, init.stderr)
    assert.equal(fs.readFileSync(projection, 'utf8'), '', 'the planted projection was written')
    assert.equal(fs.existsSync(file), false)
  })

  // CBC_JWT_PUBLIC_KEYSET_FILE names a file elsewhere on purpose (a web root, another team's
  // folder): its owner may be the user the CLI runs as, or root — never a third user, and never
  // one writable by group or others beyond the keyset's.
  it('an explicit CBC_JWT_PUBLIC_KEYSET_FILE may belong to the running user or root, never to a third user', PROCESS_LEVEL, async () => {
    const file = await serviceOwnedKeyset('explicit-projection')
    const elsewhere = path.join(root, 'explicit-elsewhere')
    fs.mkdirSync(elsewhere)
    fs.chmodSync(elsewhere, 0o1777)
    const projection = path.join(elsewhere, 'jwks.json')
    const env = { CBC_JWT_PUBLIC_KEYSET_FILE: projection }
    // Root's (the user the CLI runs as here), 0644: accepted, and kept root's.
    fs.writeFileSync(projection, '', { mode: 0o644 })
    const ok = await cbcJwt(['revoke', '--issued-before', 'now', '--keyset-file', file], { env })
    assert.equal(ok.code, 0, ok.stderr)
    assert.notEqual(fs.readFileSync(projection, 'utf8'), '')
    assert.equal(fs.statSync(projection).uid, 0)
    // Root's but writable by others: refused.
    fs.writeFileSync(projection, '')
    fs.chmodSync(projection, 0o666)
    const wide = await cbcJwt(['revoke', '--issued-before', 'now', '--keyset-file', file], { env })
    assert.equal(wide.code, 1, wide.stderr)
    assert.match(wide.stderr, /jwks\.json \(0:0 0666\) may be written by more than/)
    assert.equal(fs.readFileSync(projection, 'utf8'), '')
    // A third user's (neither root, the running user, nor the keyset's owner): refused.
    fs.rmSync(projection)
    const third = 65533
    fs.writeFileSync(projection, '', { mode: 0o644 })
    fs.chownSync(projection, third, third)
    const foreign = await cbcJwt(['revoke', '--issued-before', 'now', '--keyset-file', file], { env })
    assert.equal(foreign.code, 1, foreign.stderr)
    assert.match(foreign.stderr, /jwks\.json \(65533:65533 0644\) may be written by more than/)
    assert.equal(fs.readFileSync(projection, 'utf8'), '')
  })

  // A symlink planted at the name in a shared folder leads a root write to any file of root's:
  // the checks above see a root file no wider than a root keyset, and it was replaced with the
  // projection or the private keyset. The kernel follows no such link (protected_symlinks).
  it('a symlink another user planted at the projection or copy in a shared folder is never followed', PROCESS_LEVEL, async () => {
    const { dir, file, before } = await sharedFolder('planted-links')
    const victim = path.join(root, 'root-only')
    fs.writeFileSync(victim, 'root only\n', { mode: 0o600 })
    for (const name of ['keyset.public.json', 'keyset.last-good.json']) {
      const link = path.join(dir, name)
      const plant = await runAsServiceUser('/bin/ln', ['-s', victim, link], 'a planted symlink')
      assert.equal(plant.code, 0, plant.stderr)
      const revoke = await cbcJwt(['revoke', '--issued-before', 'now', '--keyset-file', file])
      assert.equal(revoke.code, 1, revoke.stderr)
      assert.match(revoke.stderr, new RegExp(`${name.replace(/\./g, '\\.')} is a symlink of uid 65534 in the shared folder`), name)
      assert.equal(fs.readFileSync(victim, 'utf8'), 'root only\n', `${name}: the link was followed`)
      assert.equal(fs.readFileSync(file, 'utf8'), before)
      fs.rmSync(link)
    }
    // Root's own link (the writer's) is followed as before.
    const projection = path.join(root, 'linked-projection.json')
    fs.rmSync(path.join(dir, 'keyset.public.json'), { force: true }) // written before the planted copy was refused
    fs.symlinkSync(projection, path.join(dir, 'keyset.public.json'))
    const ok = await cbcJwt(['revoke', '--issued-before', 'now', '--keyset-file', file])
    assert.equal(ok.code, 0, ok.stderr)
    assert.ok(fs.readFileSync(projection, 'utf8').includes('"keys"'))
  })

  it('writeFileAtomic as root keeps the group of a file root owns (root:service, 0640)', async () => {
    const dir = path.join(root, 'root-owned-group')
    fs.mkdirSync(dir)
    const file = path.join(dir, 'keyset.json')
    fs.writeFileSync(file, 'old\n', { mode: 0o640 })
    fs.chownSync(file, 0, SERVICE_USER)
    await writeFileAtomic(file, 'new\n')
    const st = fs.statSync(file)
    assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [0, SERVICE_USER, 0o640], 'the service group lost its read')
  })

  // The last good copy holds the keyset's private keys: it may be open to the keyset's own
  // group, as the keyset is, and to no other.
  it("noWiderThan: a copy with the keyset's owner, group and mode is written; the same mode in another group is refused", async () => {
    const dir = path.join(root, 'copy-group')
    fs.mkdirSync(dir)
    const keyset = path.join(dir, 'keyset.json')
    const copy = path.join(dir, 'keyset.last-good.json')
    for (const [f, gid] of [
      [keyset, SERVICE_USER],
      [copy, SERVICE_USER],
    ] as const) {
      fs.writeFileSync(f, 'old\n', { mode: 0o640 })
      fs.chownSync(f, 0, gid)
      fs.chmodSync(f, 0o640)
    }
    await writeFileAtomic(copy, 'new\n', { noWiderThan: { file: keyset } })
    assert.equal(fs.readFileSync(copy, 'utf8'), 'new\n', 'a copy no wider than the keyset was refused')
    fs.chownSync(copy, 0, 0)
    await assert.rejects(writeFileAtomic(copy, 'newer\n', { noWiderThan: { file: keyset } }), /keyset\.last-good\.json \(0:0 0640\) is open to more than/)
    assert.equal(fs.readFileSync(copy, 'utf8'), 'new\n')
  })

  // The kernel's protected_symlinks rule: in a sticky folder others may write, a link is followed
  // only when it is the follower's own or the folder owner's. Every link on the way is checked.
  it('noWiderThan through symlinks: each link on the way is held to the protected_symlinks rule, no more', async () => {
    const base = path.join(root, 'link-rule')
    fs.mkdirSync(base)
    const keyset = path.join(base, 'keyset.json')
    fs.writeFileSync(keyset, '{}\n', { mode: 0o600 })
    const victim = path.join(base, 'root-only')
    /** A folder of `owner` with `mode`, holding a link of `linkOwner` named `name` to `to`. */
    const linkIn = (folder: string, mode: number, owner: number, name: string, to: string, linkOwner: number) => {
      fs.mkdirSync(folder)
      fs.chownSync(folder, owner, owner)
      fs.chmodSync(folder, mode)
      const link = path.join(folder, name)
      fs.symlinkSync(to, link)
      fs.lchownSync(link, linkOwner, linkOwner)
      return link
    }
    const write = (file: string) => writeFileAtomic(file, 'written\n', { noWiderThan: { file: keyset } })
    const followed: Array<[string, number, number, number]> = [
      ['the writer’s own link in a shared folder of another user', 0o1777, SERVICE_USER, 0],
      ['the folder owner’s link in a shared folder', 0o1777, SERVICE_USER, SERVICE_USER],
      ['another user’s link in a sticky folder only root may write', 0o1755, 0, SERVICE_USER],
    ]
    for (const [what, mode, owner, linkOwner] of followed) {
      fs.writeFileSync(victim, 'root only\n', { mode: 0o600 })
      const link = linkIn(path.join(base, `followed-${linkOwner}-${mode.toString(8)}`), mode, owner, 'copy.json', victim, linkOwner)
      await write(link)
      assert.equal(fs.readFileSync(victim, 'utf8'), 'written\n', `${what}: not followed`)
    }
    // A link of root's own, in root's folder, leading to another user's link in a shared folder.
    fs.writeFileSync(victim, 'root only\n', { mode: 0o600 })
    const planted = linkIn(path.join(base, 'shared'), 0o1777, 0, 'planted', victim, SERVICE_USER)
    const first = linkIn(path.join(base, 'own'), 0o755, 0, 'copy.json', planted, 0)
    await assert.rejects(write(first), /planted is a symlink of uid 65534 in the shared folder .*shared \(01777\)/)
    assert.equal(fs.readFileSync(victim, 'utf8'), 'root only\n', 'the planted link further on was followed')
  })

  // Whether a lock's writer still runs is asked with kill(pid, 0): of another user's process the
  // answer is EPERM, and that process is alive.
  it("a live root writer's lock: the service user's write waits for it and gives up, never takes it away", PROCESS_LEVEL, async () => {
    const file = await serviceOwnedKeyset('live-root-lock')
    let locked!: () => void
    let release!: () => void
    const held = new Promise<void>((resolve) => (locked = resolve))
    const released = new Promise<void>((resolve) => (release = resolve))
    const rootWrite = writeFileAtomic(file, 'root\n', {
      beforeReplace: async () => {
        locked()
        await released
      },
    })
    try {
      await held
      const script = `import(${JSON.stringify(new URL('../../../dist/lib/backends/write-file-atomic.js', import.meta.url).href)}).then((m) => m.writeFileAtomic(${JSON.stringify(file)}, 'service\\n', { lockTimeoutMs: 300 })).then(() => console.log('written'), (e) => console.log(e.constructor.name))`
      const r = await runAsServiceUser(process.execPath, ['-e', script], 'a write as the service user')
      assert.equal(r.stdout, 'LockTimeoutError\n', r.stdout + r.stderr)
    } finally {
      release()
      await rootWrite
    }
    assert.equal(fs.readFileSync(file, 'utf8'), 'root\n')
  })

  it('a writer that cannot keep the owner refuses, and the file is left as it was', PROCESS_LEVEL, async () => {
    // The service user may write the folder, but cannot give a new file root's ownership.
    const dir = path.join(root, 'refuse')
    fs.mkdirSync(dir, { mode: 0o777 })
    fs.chmodSync(dir, 0o777)
    const file = path.join(dir, 'keyset.json')
    fs.writeFileSync(file, 'original\n', { mode: 0o644 })
    const script = `import(${JSON.stringify(new URL('../../../dist/lib/backends/write-file-atomic.js', import.meta.url).href)}).then((m) => m.writeFileAtomic(${JSON.stringify(file)}, 'new\\n')).then(() => console.log('written'), (e) => { console.log(e.constructor.name + ': ' + e.message); process.exitCode = 1 })`
    const r = await runAsServiceUser(process.execPath, ['-e', script], 'a write as the service user')
    assert.equal(r.code, 1, r.stdout + r.stderr)
    assert.match(
      r.stdout,
      /^OwnerNotKeptError: cannot keep the owner 0:0 of .*keyset\.json \(EPERM\); nothing was replaced: run as that user \(or as root\)\n$/,
    )
    assert.equal(fs.readFileSync(file, 'utf8'), 'original\n')
    assert.equal(fs.statSync(file).uid, 0)
    assert.deepEqual(fs.readdirSync(dir), ['keyset.json'], 'a temp file was left behind')
    assert.ok(OwnerNotKeptError)
  })
})
