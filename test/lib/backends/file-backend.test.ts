import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { KeysetBackend } from '../../../src/lib/backends/backend.js'
import { createFileBackend } from '../../../src/lib/backends/file-backend.js'
import { readLockText, reasonOf } from '../../../src/lib/backends/read-bounded.js'
import { BackendError, CasConflictError, ERROR_CODES } from '../../../src/lib/errors.js'
import { MAX_KEYSET_BYTES } from '../../../src/lib/keyset/document.js'
import { KubeletVolume } from '../../support/kubelet-volume.js'
import { waitFor } from '../../support/wait.js'
import { PROCESS_LEVEL } from '../../support/tier.js'

const PROJECT = fileURLToPath(new URL('../../..', import.meta.url))
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-file-backend-'))
fs.chmodSync(root, 0o755) // traversable by the unprivileged child of the EACCES case
const backends: KeysetBackend[] = []
after(async () => {
  for (const b of backends) await b.close()
  fs.rmSync(root, { recursive: true, force: true })
})

let n = 0
const freshDir = (name = 'case') => path.join(root, `${name}-${n++}`)
const sha256 = (t: string) => crypto.createHash('sha256').update(t).digest('hex')

function backend(file: string): KeysetBackend {
  const b = createFileBackend(file)
  backends.push(b)
  return b
}

/** A backend watching `file`, with a counter of change callbacks. */
function watched(file: string) {
  const b = backend(file)
  const state = { events: 0 }
  b.watch!(() => void state.events++)
  return {
    b,
    state,
    /** Runs `change` (to its end, when it is a write) and waits (≤ 10 s) for at least one callback caused by it. */
    async expectEvent(what: string, change: () => unknown) {
      await sleep(150) // let events of the previous step (and a pending re-arm) settle
      state.events = 0
      await change()
      await waitFor(() => state.events > 0, { timeoutMs: 10_000, what: `a change event for ${what}` })
    },
  }
}

async function readError(p: Promise<unknown>): Promise<BackendError> {
  const err = await p.then(
    () => assert.fail('expected a BackendError, the read succeeded'),
    (e: unknown) => e,
  )
  assert.ok(err instanceof BackendError, `expected a BackendError, got ${String(err)}`)
  return err
}

/** The number of inotify watches this process holds (Linux), or undefined elsewhere. */
function inotifyWatches(): number | undefined {
  if (process.platform !== 'linux') return undefined
  let count = 0
  for (const fd of fs.readdirSync('/proc/self/fdinfo')) {
    try {
      count += fs
        .readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('inotify wd:')).length
    } catch {
      // an fd closed while we looked
    }
  }
  return count
}

describe('file backend: read', () => {
  it('returns the text and a content-hash version that changes only with the content', async () => {
    const dir = freshDir()
    fs.mkdirSync(dir)
    const file = path.join(dir, 'keyset.json')
    fs.writeFileSync(file, '{"a":1}')
    const b = backend(path.relative(process.cwd(), file))
    assert.equal(b.kind, 'file')
    assert.equal(b.location, file, 'location is the absolute path')
    const first = await b.read()
    assert.deepEqual(first, { text: '{"a":1}', version: sha256('{"a":1}') })
    fs.writeFileSync(file, '{"a":1}')
    assert.equal((await b.read()).version, first.version)
    fs.writeFileSync(file, '{"a":2}')
    assert.notEqual((await b.read()).version, first.version)
  })

  it('the limit is inclusive: a file of exactly MAX_KEYSET_BYTES is read whole, and so is one of a single byte', async () => {
    const dir = freshDir()
    fs.mkdirSync(dir)
    const full = path.join(dir, 'full')
    fs.writeFileSync(full, Buffer.alloc(MAX_KEYSET_BYTES, 0x20))
    const text = (await backend(full).read()).text
    assert.equal(text.length, MAX_KEYSET_BYTES)
    const one = path.join(dir, 'one')
    fs.writeFileSync(one, '{')
    assert.equal((await backend(one).read()).text, '{')
  })

  // A file's size is looked at before its read, but a file may grow meanwhile (and /proc's all
  // say 0): the cap holds on the bytes read, and past it nothing is returned, not a cut text.
  it('a file that grows past the cap while it is read is refused whole, never returned cut short', { skip: process.platform !== 'linux' }, async () => {
    assert.equal(fs.statSync('/proc/self/status').size, 0)
    const whole = await readLockText('/proc/self/status', 65_536)
    assert.match(whole ?? '', /^Name:/, 'under the cap it is read')
    assert.ok(whole!.length > 256)
    assert.equal(await readLockText('/proc/self/status', 256), undefined)
  })

  // What the system refuses by another name is still refused: a read-only mount (a secret
  // volume) or EPERM is `forbidden`, a directory given as the file `not_a_file`, not io_error.
  it('maps every errno of a refused file to its reason', () => {
    const reasons = ['ENOENT', 'ENOTDIR', 'EACCES', 'EPERM', 'EROFS', 'EISDIR', 'EIO', undefined].map((code) =>
      reasonOf(Object.assign(new Error('x'), { code })),
    )
    assert.deepEqual(reasons, ['not_found', 'not_found', 'forbidden', 'forbidden', 'forbidden', 'not_a_file', 'io_error', 'io_error'])
  })

  it('every read closes the file it opened, when it fails too', { skip: process.platform !== 'linux' }, async () => {
    const dir = freshDir()
    fs.mkdirSync(dir)
    const file = path.join(dir, 'keyset.json')
    fs.writeFileSync(file, '{"a":1}')
    const big = path.join(dir, 'big')
    fs.writeFileSync(big, Buffer.alloc(MAX_KEYSET_BYTES + 1, 0x20))
    const openOfDir = () =>
      fs.readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir)
        } catch {
          return false // closed while we looked
        }
      }).length
    for (let i = 0; i < 5; i++) {
      await backend(file).read()
      await readError(backend(big).read())
      await readError(backend(dir).read())
    }
    assert.equal(openOfDir(), 0)
  })

  it('reads through a kubelet volume symlink', async () => {
    const vol = new KubeletVolume(freshDir('vol'))
    vol.writeKeyset('{"v":1}')
    assert.equal((await backend(vol.file()).read()).text, '{"v":1}')
  })

  it('maps each failure to a bounded reason, and says what failed without content', async () => {
    const dir = freshDir()
    fs.mkdirSync(dir)
    const regular = path.join(dir, 'regular')
    fs.writeFileSync(regular, 'x')
    const asDir = path.join(dir, 'is-a-dir')
    fs.mkdirSync(asDir)
    const loop = path.join(dir, 'loop')
    fs.symlinkSync('loop', loop)
    const big = path.join(dir, 'big')
    fs.writeFileSync(big, Buffer.alloc(MAX_KEYSET_BYTES + 1, 0x20))
    const cases: Array<[string, string, RegExp]> = [
      [path.join(dir, 'missing'), 'not_found', /ENOENT/],
      [path.join(dir, 'no-dir', 'keyset.json'), 'not_found', /ENOENT/],
      [path.join(regular, 'keyset.json'), 'not_found', /ENOTDIR/],
      [asDir, 'not_a_file', /is a directory, not a regular file/],
      [loop, 'io_error', /ELOOP/],
      [big, 'invalid_keyset', new RegExp(`the limit is ${MAX_KEYSET_BYTES}$`)],
    ]
    for (const [file, reason, detail] of cases) {
      const err = await readError(backend(file).read())
      assert.equal(err.reason, reason, file)
      assert.equal(err.code, ERROR_CODES.BACKEND)
      assert.ok(err.message.includes(file), `${err.message} does not name ${file}`)
      assert.match(err.message, detail)
    }
  })

  it('a file the process may not read (EACCES) → forbidden', PROCESS_LEVEL, async () => {
    const dir = freshDir()
    fs.mkdirSync(dir, { mode: 0o755 })
    const file = path.join(dir, 'keyset.json')
    fs.writeFileSync(file, '{}', { mode: 0o000 })
    fs.chmodSync(file, 0o000)
    if (process.getuid?.() !== 0) {
      assert.equal((await readError(backend(file).read())).reason, 'forbidden')
      return
    }
    // Root reads through mode 000 (CAP_DAC_OVERRIDE), so the read runs in a child that loads
    // the backend (dist/ is built before the tests run) and then drops to the uid of `nobody`.
    const script = `
      const { createFileBackend } = await import(${JSON.stringify(path.join(PROJECT, 'dist/lib/backends/file-backend.js'))})
      process.setgid(65534)
      process.setuid(65534)
      try { await createFileBackend(${JSON.stringify(file)}).read(); console.log('read') }
      catch (err) { console.log(err.reason + ' ' + err.message) }
    `
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 10_000 })
    assert.equal(out.trim(), `forbidden cannot read ${file}: EACCES`)
  })
})

describe('file backend: write', () => {
  it('a new file is created 0600 and the answer is what a read returns', async () => {
    const dir = freshDir()
    fs.mkdirSync(dir)
    const file = path.join(dir, 'keyset.json')
    const b = backend(file)
    const written = await b.write('{"new":true}')
    assert.equal(fs.statSync(file).mode & 0o777, 0o600)
    assert.deepEqual(await b.read(), written)
    assert.deepEqual(fs.readdirSync(dir), ['keyset.json'], 'a temp file was left behind')
  })

  it('an existing file keeps its mode (0640 stays 0640, 0644 stays 0644)', async () => {
    for (const mode of [0o640, 0o644]) {
      const dir = freshDir()
      fs.mkdirSync(dir)
      const file = path.join(dir, 'keyset.json')
      fs.writeFileSync(file, 'old')
      fs.chmodSync(file, mode)
      await backend(file).write('new')
      assert.equal(fs.statSync(file).mode & 0o777, mode)
      assert.equal(fs.readFileSync(file, 'utf8'), 'new')
    }
  })

  it('check-and-set: the version read → written; a stale version → CasConflictError and nothing written', async () => {
    const dir = freshDir()
    fs.mkdirSync(dir)
    const file = path.join(dir, 'keyset.json')
    fs.writeFileSync(file, 'v1')
    const b = backend(file)
    const { version } = await b.read()
    fs.writeFileSync(file, 'v2 by someone else')
    const err = await b.write('v3', version).then(
      () => assert.fail('a stale write succeeded'),
      (e: unknown) => e,
    )
    assert.ok(err instanceof CasConflictError)
    assert.equal(err.code, ERROR_CODES.CAS_CONFLICT)
    assert.equal(fs.readFileSync(file, 'utf8'), 'v2 by someone else')
    const fresh = await b.read()
    assert.equal((await b.write('v3', fresh.version)).version, sha256('v3'))
    assert.equal(fs.readFileSync(file, 'utf8'), 'v3')
  })

  it('check-and-set race: writers that read the same version → exactly one lands, the others CasConflictError', async () => {
    const dir = freshDir()
    fs.mkdirSync(dir)
    const file = path.join(dir, 'keyset.json')
    fs.writeFileSync(file, 'v1')
    // Four writers (two CLIs, or one process twice) that all read v1: a check made apart from the
    // rename let every one pass it and replace the file, each dropping the previous one's change.
    const writers = [0, 1, 2, 3].map(() => backend(file))
    const versions = await Promise.all(writers.map((b) => b.read().then((s) => s.version)))
    const results = await Promise.allSettled(writers.map((b, i) => b.write(`v2 by writer ${i}`, versions[i])))
    const landed = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []))
    assert.equal(landed.length, 1, `exactly one write lands, not ${landed.length}`)
    for (const r of results) if (r.status === 'rejected') assert.ok(r.reason instanceof CasConflictError, String(r.reason))
    assert.equal(fs.readFileSync(file, 'utf8'), `v2 by writer ${landed[0]}`)
    assert.deepEqual(fs.readdirSync(dir), ['keyset.json'], 'a lock or temp file was left behind')
  })

  it("a lock left by a killed writer is taken away; a live writer's lock is waited for, then the write is refused", async () => {
    const dir = freshDir()
    fs.mkdirSync(dir)
    const file = path.join(dir, 'keyset.json')
    fs.writeFileSync(file, 'v1')
    const lock = path.join(dir, '.keyset.json.lock')
    // What a writer's lock names: its host (write-file-atomic.ts's tag) and pid.
    const host = (pid: number) => `${sha256(os.hostname()).slice(0, 8)}-${pid}-abcdef`
    // A pid that is not running: a child that has exited.
    const gone = Number(execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }))
    fs.writeFileSync(lock, host(gone))
    const b = createFileBackend(file, { readTimeoutMs: 2000 })
    backends.push(b)
    await b.write('v2', (await b.read()).version)
    assert.equal(fs.readFileSync(file, 'utf8'), 'v2')
    assert.deepEqual(fs.readdirSync(dir), ['keyset.json'], "the dead writer's lock was left behind")
    // A live writer (this very process) holds it: the write waits, then fails, and replaces nothing.
    // What the lock holds is anyone's text who can write the folder: escaped in the message.
    const held = `${host(process.pid)}\u001b]0;pwned\u0007`
    fs.writeFileSync(lock, held)
    const err = await readError(b.write('v3', (await b.read()).version))
    assert.equal(err.reason, 'timeout')
    assert.match(err.message, /is being written by another writer .*remove \S+\.keyset\.json\.lock$/)
    assert.doesNotMatch(err.message, /[\u0000-\u001f\u007f]/, 'no control character reaches a terminal')
    assert.equal(fs.readFileSync(file, 'utf8'), 'v2')
    assert.equal(fs.readFileSync(lock, 'utf8'), held, "a live writer's lock is not taken away")
  })

  // Such a lock (another user's 0600 file, here a folder) was retried at once, forever: no pause, no deadline.
  it('a lock that cannot be read is judged by its age: a fresh one is waited for, then the write is refused', { timeout: 30_000 }, async () => {
    const dir = freshDir()
    fs.mkdirSync(dir)
    const file = path.join(dir, 'keyset.json')
    fs.writeFileSync(file, 'v1')
    fs.mkdirSync(path.join(dir, '.keyset.json.lock'))
    // The lock's wait is the read deadline: short, but not so short that a read on a loaded
    // machine (the threadpool starved of CPU) passes it first and fails the write for that.
    const b = createFileBackend(file, { readTimeoutMs: 1000 })
    backends.push(b)
    const err = await readError(b.write('v2', (await backend(file).read()).version))
    assert.equal(err.reason, 'timeout')
    assert.match(err.message, /another writer \(unreadable lock\) .*remove \S+\.keyset\.json\.lock$/)
    assert.equal(fs.readFileSync(file, 'utf8'), 'v1')
  })

  it('exclusive: changes of one file run one at a time, and leave no lock behind', async () => {
    const dir = freshDir()
    fs.mkdirSync(dir)
    const file = path.join(dir, 'keyset.json')
    fs.writeFileSync(file, 'v1')
    const b = backend(file)
    const steps: string[] = []
    const change = (who: string) => async () => {
      steps.push(`${who} starts`)
      await sleep(50) // a change that awaits: another's must not start meanwhile
      steps.push(`${who} ends`)
      return who
    }
    const results = await Promise.all([b.exclusive!(change('a')), backend(file).exclusive!(change('b'))])
    assert.deepEqual(results, ['a', 'b'])
    const [first, second] = steps[0] === 'a starts' ? ['a', 'b'] : ['b', 'a']
    assert.deepEqual(steps, [`${first} starts`, `${first} ends`, `${second} starts`, `${second} ends`], 'one change, then the other')
    assert.deepEqual(fs.readdirSync(dir), ['keyset.json'], 'a lock or temp directory was left behind')
  })

  it('exclusive where no lock can be made (a folder this process cannot write): the change runs, its writes fail as before', async () => {
    const file = path.join(freshDir(), 'missing', 'keyset.json')
    const b = backend(file)
    assert.equal(await b.exclusive!(async () => 'ran'), 'ran')
    const err = await readError(b.exclusive!(() => b.write('x')))
    assert.equal(err.reason, 'not_found', 'the write names its own failure, not the lock')
  })

  it('check-and-set against a file that does not exist → CasConflictError', async () => {
    const dir = freshDir()
    fs.mkdirSync(dir)
    const file = path.join(dir, 'keyset.json')
    await assert.rejects(backend(file).write('x', sha256('anything')), CasConflictError)
    assert.equal(fs.existsSync(file), false)
  })

  it('create-only (expected version null): creates a missing file 0600; an existing one → CasConflictError, untouched', async () => {
    const dir = freshDir()
    fs.mkdirSync(dir)
    const file = path.join(dir, 'keyset.json')
    const b = backend(file)
    assert.equal((await b.write('first', null)).version, sha256('first'))
    assert.equal(fs.statSync(file).mode & 0o777, 0o600)
    await assert.rejects(b.write('second', null), CasConflictError)
    assert.equal(fs.readFileSync(file, 'utf8'), 'first')
    assert.deepEqual(fs.readdirSync(dir), ['keyset.json'], 'a temp file was left behind')
  })

  it('a write into a missing directory → BackendError not_found', async () => {
    const err = await readError(backend(path.join(freshDir(), 'keyset.json')).write('x'))
    assert.equal(err.reason, 'not_found')
  })
})

describe('file backend: change events', () => {
  it('a plain file rewritten in place, and replaced by rename', async () => {
    const dir = freshDir()
    fs.mkdirSync(dir)
    const file = path.join(dir, 'keyset.json')
    fs.writeFileSync(file, '1')
    const w = watched(file)
    await w.expectEvent('an in-place rewrite', () => fs.writeFileSync(file, '2'))
    await w.expectEvent('a rename over the file', () => {
      fs.writeFileSync(`${file}.tmp`, '3')
      fs.renameSync(`${file}.tmp`, file)
    })
    await w.expectEvent('its own atomic write', () => w.b.write('4'))
  })

  it('a burst of writes is a few reads: the first, one per minChangeIntervalMs, and the last write read', async () => {
    const dir = freshDir()
    fs.mkdirSync(dir)
    const file = path.join(dir, 'keyset.json')
    fs.writeFileSync(file, '0')
    const b = createFileBackend(file, { minChangeIntervalMs: 400 })
    backends.push(b)
    const reads: string[] = []
    b.watch!(() => void b.read().then((snapshot) => reads.push(snapshot.text)))
    await sleep(150) // the watch in place
    // A writer rewriting the file in place twelve times over ~300 ms (a script, an editor).
    const started = performance.now()
    for (let i = 1; i <= 12; i++) {
      fs.writeFileSync(file, String(i))
      await sleep(25)
    }
    // A loaded machine stretches the burst: the bound follows what it took.
    const bound = 2 + Math.floor((performance.now() - started) / 400)
    await waitFor(() => reads.at(-1) === '12', { what: 'the last write read' })
    await sleep(900) // past two intervals: any read still coming would have come
    assert.ok(reads.length <= bound, `${reads.length} reads for one burst (at most ${bound}): ${reads.join(' ')}`)
  })

  it('a wall clock stepped back (NTP, a resumed VM) does not silence the watch until it catches up', async () => {
    const dir = freshDir()
    fs.mkdirSync(dir)
    const file = path.join(dir, 'keyset.json')
    fs.writeFileSync(file, '1')
    const w = watched(file)
    await w.expectEvent('a change before the step', () => fs.writeFileSync(file, '2'))
    const wallClock = Date.now
    Date.now = () => wallClock() - 3600_000
    try {
      await w.expectEvent('a change after the clock stepped back an hour', () => {
        fs.writeFileSync(`${file}.tmp`, '3')
        fs.renameSync(`${file}.tmp`, file)
      })
    } finally {
      Date.now = wallClock
    }
  })

  it('a kubelet ..data swap, again and again after the first timestamped dir is gone', async () => {
    const vol = new KubeletVolume(freshDir('vol'))
    vol.writeKeyset('{"v":0}')
    const firstTarget = path.join(vol.dir, fs.readlinkSync(path.join(vol.dir, '..data')))
    const w = watched(vol.file())
    for (let i = 1; i <= 4; i++) {
      await w.expectEvent(`swap ${i}`, () => vol.writeKeyset(`{"v":${i}}`))
      assert.equal((await w.b.read()).text, `{"v":${i}}`)
    }
    assert.equal(fs.existsSync(firstTarget), false, 'the original timestamped dir should be deleted by now')
  })

  it('the directory deleted and recreated: the watch re-arms on the new directory', async () => {
    const vol = new KubeletVolume(freshDir('vol'))
    vol.writeKeyset('{"v":1}')
    const w = watched(vol.file())
    await w.expectEvent('the volume removed', () => vol.remove())
    await w.expectEvent('the volume recreated', () => new KubeletVolume(vol.dir).writeKeyset('{"v":2}'))
    // No read() in between (a read re-arms too): only the watcher can see these.
    await w.expectEvent('a swap in the recreated directory', () => vol.writeKeyset('{"v":3}'))
    await w.expectEvent('another swap', () => vol.writeKeyset('{"v":4}'))
    assert.equal((await w.b.read()).text, '{"v":4}')
  })

  it('the directory deleted and recreated at once, before the event is handled (same inode number, often)', async () => {
    const vol = new KubeletVolume(freshDir('vol'))
    vol.writeKeyset('{"v":1}')
    const w = watched(vol.file())
    await w.expectEvent('the volume replaced in one go', () => {
      vol.remove()
      new KubeletVolume(vol.dir).writeKeyset('{"v":2}')
    })
    // The old watch sits on the deleted directory; only a re-arm sees these.
    await w.expectEvent('a swap in the new directory', () => vol.writeKeyset('{"v":3}'))
    await w.expectEvent('another swap', () => vol.writeKeyset('{"v":4}'))
  })

  it('a directory that does not exist at start (two levels missing) and appears later', async () => {
    const base = freshDir('late')
    const vol = path.join(base, 'mnt', 'secrets')
    const w = watched(path.join(vol, 'jwt-keyset'))
    await readError(w.b.read())
    const volume = new KubeletVolume(vol)
    await w.expectEvent('the directory appearing', () => volume.writeKeyset('{"v":1}'))
    await w.expectEvent('a swap in it', () => volume.writeKeyset('{"v":2}'))
    await w.expectEvent('another swap', () => volume.writeKeyset('{"v":3}'))
    assert.equal((await w.b.read()).text, '{"v":3}')
  })

  it('while the directory is missing, a file written beside it (the service log) prompts no re-read', async () => {
    // Each re-read of a missing keyset fails, is counted and logged; with stdout in a file
    // beside the missing volume, that log line prompted the next re-read, four a second.
    const base = freshDir('late-log')
    fs.mkdirSync(base)
    const vol = path.join(base, 'secrets')
    const w = watched(path.join(vol, 'jwt-keyset'))
    await readError(w.b.read())
    await sleep(150)
    w.state.events = 0
    for (let i = 0; i < 10; i++) {
      fs.appendFileSync(path.join(base, 'cbc-jwt.log'), `{"event":"backend_error","n":${i}}\n`)
      await sleep(50)
    }
    await sleep(400) // past the 100 ms re-arm and the 250 ms coalescing
    assert.equal(w.state.events, 0, 'a neighbour of the missing directory prompted re-reads')
    const volume = new KubeletVolume(vol)
    await w.expectEvent('the directory appearing', () => volume.writeKeyset('{"v":1}'))
    assert.equal((await w.b.read()).text, '{"v":1}')
  })
})

describe('file backend: a watch the system refuses', () => {
  it('ENOSPC (the inotify watch limit used up): one watch_failed line, each attempt counted, a backoff, then watch_resumed', async () => {
    const dir = freshDir()
    fs.mkdirSync(dir)
    const file = path.join(dir, 'keyset.json')
    fs.writeFileSync(file, '1')
    const lines: Array<{ level: string; obj: Record<string, unknown> }> = []
    const log = (level: string) => (obj: object) => void lines.push({ level, obj: obj as Record<string, unknown> })
    const b = createFileBackend(file, { logger: { info: log('info'), warn: log('warn') } })
    backends.push(b)
    // What the kernel answers when fs.watch would pass fs.inotify.max_user_watches: the limit
    // is the node's, shared by every pod, and cannot be used up from a test without root.
    const watch = fs.watch
    const patchable = fs as { watch: typeof watch }
    const attempts: number[] = []
    let refuse = true
    patchable.watch = ((...args: Parameters<typeof watch>) => {
      if (String(args[0]).startsWith(dir)) {
        attempts.push(performance.now())
        if (refuse) {
          throw Object.assign(new Error(`ENOSPC: System limit for number of file watchers reached, watch '${String(args[0])}'`), {
            code: 'ENOSPC',
            errno: -28,
            syscall: 'watch',
          })
        }
      }
      return watch(...args)
    }) as typeof watch
    const counted: string[] = []
    let changes = 0
    try {
      b.watch!(
        () => void changes++,
        undefined,
        (reason) => void counted.push(reason),
      )
      await waitFor(() => attempts.length >= 5, { timeoutMs: 20_000, what: 'five attempts at the watch' })
      // Reads do not hurry a refused watch: the pending retry keeps its backoff.
      for (let i = 0; i < 3; i++) await b.read()
      const seen = attempts.length
      const failed = lines.filter((l) => l.obj.event === 'watch_failed')
      assert.equal(failed.length, 1, 'one watch_failed line for the whole streak')
      assert.equal(failed[0]!.level, 'warn')
      assert.equal(failed[0]!.obj.code, 'ENOSPC')
      assert.equal(failed[0]!.obj.reason, 'io_error')
      assert.equal(failed[0]!.obj.location, file)
      assert.deepEqual(counted, Array(seen).fill('io_error'), 'each refused attempt counted, as the Kubernetes watch counts a refused watch')
      // A backoff, not a retry every 100 ms forever: each wait at least doubles (timers never fire early).
      for (let i = 0; i + 1 < seen; i++) {
        const gap = attempts[i + 1]! - attempts[i]!
        assert.ok(gap >= 100 * 2 ** i - 2, `wait ${i + 1}: ${gap.toFixed(0)} ms, expected ≥ ${100 * 2 ** i}`)
      }
      assert.equal(changes, 0, 'no re-read per retry while the watch cannot be set up')
      refuse = false
      await waitFor(() => lines.some((l) => l.obj.event === 'watch_resumed'), { timeoutMs: 20_000, what: 'watch_resumed' })
      const resumed = lines.filter((l) => l.obj.event === 'watch_resumed')
      assert.equal(resumed.length, 1)
      assert.equal(resumed[0]!.level, 'info')
      assert.equal(resumed[0]!.obj.failed_attempts, counted.length)
      // Once back: one read for what changed unwatched, then changes are seen as they come.
      await waitFor(() => changes > 0, { what: 'the read after the watch resumed' })
      await sleep(300)
      changes = 0
      fs.writeFileSync(file, '2')
      await waitFor(() => changes > 0, { timeoutMs: 10_000, what: 'a change event once watched again' })
      assert.equal(lines.filter((l) => l.obj.event === 'watch_failed').length, 1)
    } finally {
      patchable.watch = watch
      await b.close()
    }
  })
})

describe('file backend: close', () => {
  it('stops every watcher (inotify watches back to where they were) and no callback follows', async () => {
    const baseline = inotifyWatches()
    const vol = new KubeletVolume(freshDir('vol'))
    vol.writeKeyset('{"v":1}')
    const w = watched(vol.file())
    await w.expectEvent('a swap', () => vol.writeKeyset('{"v":2}'))
    if (baseline !== undefined) assert.ok(inotifyWatches()! > baseline, 'the backend should hold a watch')
    await w.b.close()
    await w.b.close() // twice is fine
    if (baseline !== undefined) assert.equal(inotifyWatches(), baseline)
    w.state.events = 0
    // A twin watching the same directory shows how long "no callback" has to last: the closed
    // backend's watch and coalescing timer, had close() left them, would fire with the twin's.
    const twin = watched(vol.file())
    vol.writeKeyset('{"v":3}')
    await waitFor(() => twin.state.events > 0, { timeoutMs: 10_000, what: 'the twin to see the swap' })
    assert.equal(w.state.events, 0)
    await twin.b.close()
    assert.equal((await w.b.read()).text, '{"v":3}', 'reads still work after close')
    if (baseline !== undefined) assert.equal(inotifyWatches(), baseline, 'a read after close re-armed a watch')
  })

  it('close() during a pending re-arm (directory just deleted) cancels it', async () => {
    const baseline = inotifyWatches()
    const vol = new KubeletVolume(freshDir('vol'))
    vol.writeKeyset('{"v":1}')
    const w = watched(vol.file())
    vol.remove()
    await sleep(30) // the deletion event has scheduled the 100 ms re-arm
    await w.b.close()
    w.state.events = 0
    // A twin that starts watching now re-arms after the closed backend's pending re-arm would
    // have: its callback bounds the wait for "no callback" from the closed one.
    const twin = watched(vol.file())
    new KubeletVolume(vol.dir).writeKeyset('{"v":2}')
    await waitFor(() => twin.state.events > 0, { timeoutMs: 10_000, what: 'the twin to see the directory come back' })
    assert.equal(w.state.events, 0)
    await twin.b.close()
    if (baseline !== undefined) assert.equal(inotifyWatches(), baseline)
  })
})
