// writeFileAtomic's own promises; killing real writers at random points is
// test/e2e/crash-safety.test.ts.
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { writeFileAtomic } from '../../../src/lib/backends/write-file-atomic.js'

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-write-atomic-'))
after(() => fs.rmSync(root, { recursive: true, force: true }))
let seq = 0
function freshDir(): string {
  const dir = path.join(root, `d${++seq}`)
  fs.mkdirSync(dir)
  return dir
}
const thisHost = crypto.createHash('sha256').update(os.hostname()).digest('hex').slice(0, 8)

/** A temp directory as a writer with `pid` on `host` leaves it when killed mid-write. */
function leftover(dir: string, host: string, pid: number, ageMs = 0): string {
  const name = `.keyset.json.tmp-${host}-${pid}-Ab12Cd`
  fs.mkdirSync(path.join(dir, name), { mode: 0o700 })
  fs.writeFileSync(path.join(dir, name, 'keyset.json'), '{"version":1,"cur', { mode: 0o600 })
  const then = new Date(Date.now() - ageMs)
  fs.utimesSync(path.join(dir, name), then, then)
  return name
}

describe('writeFileAtomic', () => {
  it('leaves nothing but the file; keeps an existing mode (0640), creates 0600', async () => {
    const dir = freshDir()
    const file = path.join(dir, 'keyset.json')
    await writeFileAtomic(file, 'one\n')
    assert.equal(fs.statSync(file).mode & 0o777, 0o600)
    fs.chmodSync(file, 0o640)
    await writeFileAtomic(file, 'two\n')
    assert.equal(fs.readFileSync(file, 'utf8'), 'two\n')
    assert.equal(fs.statSync(file).mode & 0o777, 0o640)
    assert.deepEqual(fs.readdirSync(dir), ['keyset.json'])
  })

  // The projection: public keys, but whoever may write it feeds verifiers their keys. Its write
  // bits for group and others may be no more than the keyset's own.
  it('noWiderThan write: a file writable by its group or by others where the keyset is not is refused, untouched', async () => {
    const dir = freshDir()
    const keyset = path.join(dir, 'keyset.json')
    fs.writeFileSync(keyset, '{}', { mode: 0o644 })
    fs.chmodSync(keyset, 0o644)
    const projection = path.join(dir, 'keyset.public.json')
    fs.writeFileSync(projection, 'old\n')
    for (const mode of [0o664, 0o646]) {
      fs.chmodSync(projection, mode)
      await assert.rejects(writeFileAtomic(projection, 'new\n', { noWiderThan: { file: keyset, access: 'write' } }), /may be written by more than/)
      assert.equal(fs.readFileSync(projection, 'utf8'), 'old\n')
    }
    // Readable by all, as the keyset is: written.
    fs.chmodSync(projection, 0o644)
    await writeFileAtomic(projection, 'new\n', { noWiderThan: { file: keyset, access: 'write' } })
    assert.equal(fs.readFileSync(projection, 'utf8'), 'new\n')
  })

  it('a new file takes the mode asked for (a projection 0644), an existing one keeps its own', async () => {
    const dir = freshDir()
    const file = path.join(dir, 'keyset.public.json')
    await writeFileAtomic(file, 'one\n', { newFileMode: 0o644 })
    assert.equal(fs.statSync(file).mode & 0o777, 0o644)
    fs.chmodSync(file, 0o600)
    await writeFileAtomic(file, 'two\n', { newFileMode: 0o644 })
    assert.equal(fs.statSync(file).mode & 0o777, 0o600)
  })

  it('exclusive: refuses an existing file with EEXIST, the file untouched, nothing left behind', async () => {
    const dir = freshDir()
    const file = path.join(dir, 'keyset.json')
    fs.writeFileSync(file, 'theirs\n')
    await assert.rejects(writeFileAtomic(file, 'mine\n', { exclusive: true }), { code: 'EEXIST' })
    assert.equal(fs.readFileSync(file, 'utf8'), 'theirs\n')
    assert.deepEqual(fs.readdirSync(dir), ['keyset.json'])
  })

  it('the next write removes what a killed writer of this host left; keeps a live writer’s and a recent one of another host', async () => {
    const dir = freshDir()
    const file = path.join(dir, 'keyset.json')
    fs.writeFileSync(file, 'old\n', { mode: 0o600 })
    const dead = spawnSync(process.execPath, ['-e', '']).pid // has exited: its pid runs nothing now
    const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' })
    try {
      const killed = leftover(dir, thisHost, dead)
      const running = leftover(dir, thisHost, live.pid!)
      const otherRecent = leftover(dir, 'ffffffff', dead)
      const otherOld = leftover(dir, 'eeeeeeee', live.pid!, 11 * 60_000)
      const unrelated = '.other.json.tmp-00000000-1-Ab12Cd'
      fs.mkdirSync(path.join(dir, unrelated))
      await writeFileAtomic(file, 'new\n')
      const left = fs.readdirSync(dir)
      assert.ok(!left.includes(killed), 'a dead writer’s temp directory is removed')
      assert.ok(!left.includes(otherOld), 'another host’s, older than 10 minutes, is removed')
      assert.ok(left.includes(running), 'a running writer’s is kept (removing it would fail its write)')
      assert.ok(left.includes(otherRecent), 'another host’s recent one is kept: its pid means nothing here')
      assert.ok(left.includes(unrelated), 'another file’s are not touched')
      assert.equal(fs.readFileSync(file, 'utf8'), 'new\n')
    } finally {
      live.kill('SIGKILL')
    }
  })

  it('through a symlink: the target is replaced, the link stays, the temp directory is made next to the target', async () => {
    const dir = freshDir()
    const real = path.join(dir, 'real')
    fs.mkdirSync(real)
    fs.writeFileSync(path.join(real, 'keyset.json'), 'old\n', { mode: 0o600 })
    const link = path.join(dir, 'keyset.json')
    fs.symlinkSync(path.join(real, 'keyset.json'), link)
    await writeFileAtomic(link, 'new\n')
    assert.ok(fs.lstatSync(link).isSymbolicLink())
    assert.equal(fs.readFileSync(path.join(real, 'keyset.json'), 'utf8'), 'new\n')
    assert.deepEqual(fs.readdirSync(real), ['keyset.json'])
    assert.deepEqual(fs.readdirSync(dir).sort(), ['keyset.json', 'real'])
  })

  // A keyset link whose file was deleted (keyset init, keyset restore): the create replaced
  // nothing and failed EEXIST on the link itself, which the CLI reported as another writer.
  it('through a dangling symlink: the file it names is created, exclusively too, and the link stays', async () => {
    for (const exclusive of [false, true]) {
      const dir = freshDir()
      fs.mkdirSync(path.join(dir, 'real'))
      const link = path.join(dir, 'keyset.json')
      fs.symlinkSync(path.join('real', 'keyset.json'), link)
      await writeFileAtomic(link, 'new\n', { exclusive })
      assert.ok(fs.lstatSync(link).isSymbolicLink(), `exclusive: ${exclusive}`)
      assert.equal(fs.readFileSync(path.join(dir, 'real', 'keyset.json'), 'utf8'), 'new\n')
      assert.equal(fs.statSync(path.join(dir, 'real', 'keyset.json')).mode & 0o777, 0o600)
      assert.deepEqual(fs.readdirSync(path.join(dir, 'real')), ['keyset.json'])
    }
  })
  it('through a chain of links, the last one dangling: the file it names is created, every link stays', async () => {
    for (const exclusive of [false, true]) {
      const dir = freshDir()
      fs.mkdirSync(path.join(dir, 'real'))
      fs.symlinkSync(path.join('real', 'keyset.json'), path.join(dir, 'hop'))
      fs.symlinkSync('hop', path.join(dir, 'keyset.json'))
      await writeFileAtomic(path.join(dir, 'keyset.json'), 'new\n', { exclusive })
      assert.equal(fs.readFileSync(path.join(dir, 'real', 'keyset.json'), 'utf8'), 'new\n', `exclusive: ${exclusive}`)
      assert.ok(fs.lstatSync(path.join(dir, 'keyset.json')).isSymbolicLink() && fs.lstatSync(path.join(dir, 'hop')).isSymbolicLink())
      assert.deepEqual(fs.readdirSync(dir).sort(), ['hop', 'keyset.json', 'real'])
    }
  })

  // A writer judged gone (another host's, past 10 minutes) loses its lock to the next one; when
  // it finishes after all, the lock it releases is no longer its own and must stay.
  it('releases only its own lock: one another writer holds by then is left in place', async () => {
    const dir = freshDir()
    const file = path.join(dir, 'keyset.json')
    fs.writeFileSync(file, 'old\n', { mode: 0o600 })
    const lock = path.join(dir, '.keyset.json.lock')
    const theirs = 'ffffffff-4242-Zz9xYw'
    await writeFileAtomic(file, 'new\n', {
      beforeReplace: async () => {
        fs.writeFileSync(path.join(dir, 'theirs'), theirs)
        fs.renameSync(path.join(dir, 'theirs'), lock)
      },
    })
    assert.equal(fs.readFileSync(file, 'utf8'), 'new\n')
    assert.equal(fs.readFileSync(lock, 'utf8'), theirs, "another writer's lock was removed")
  })

  // Whoever may write the keyset's folder can plant the lock name. A symlink there was followed:
  // a root writer read the file it named (any file root can read) and quoted it in its timeout
  // message; a FIFO or /dev/zero behind it hung the write or filled the memory.
  it('a lock planted as a symlink is never followed: what it names is neither read nor quoted', async () => {
    const dir = freshDir()
    const file = path.join(dir, 'keyset.json')
    fs.writeFileSync(file, 'old\n', { mode: 0o600 })
    const secret = path.join(root, `secret-${seq}`)
    fs.writeFileSync(secret, 'TOP-SECRET-of-another-file', { mode: 0o600 })
    fs.symlinkSync(secret, path.join(dir, '.keyset.json.lock'))
    const err = await writeFileAtomic(file, 'new\n', { lockTimeoutMs: 200 }).then(
      () => assert.fail('the write went through a planted lock'),
      (e: Error) => e,
    )
    assert.match(err.message, /being written by another writer \(unreadable lock\)/)
    assert.doesNotMatch(err.message, /TOP-SECRET/)
    assert.equal(fs.readFileSync(file, 'utf8'), 'old\n')
  })
})
