import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import type { KeysetBackend } from '../../src/lib/backends/backend.js'
import { createFileBackend } from '../../src/lib/backends/file-backend.js'
import { withDeadline } from '../../src/lib/deadline.js'
import { BackendError } from '../../src/lib/errors.js'
import { createKeyring } from '../../src/lib/keyring/keyring.js'
import { cbcJwt } from '../ops/cli/cli.js'
import { KubeletVolume } from '../support/kubelet-volume.js'
import { makeKey, makeKeyset } from '../support/keys.js'
import { waitFor } from '../support/wait.js'

/**
 * Attacks on the keyset *path*: files whose read never ends, and directories whose churn would
 * turn every neighbour's write into a full re-read. Every read must be bounded in kind, bytes
 * and time, and only changes that can matter may cost a read.
 */
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-hostile-files-'))
const backends: KeysetBackend[] = []
after(async () => {
  for (const b of backends) await b.close()
  fs.rmSync(root, { recursive: true, force: true })
})
let n = 0
const fresh = () => {
  const dir = path.join(root, `case-${n++}`)
  fs.mkdirSync(dir)
  return dir
}
const quiet = { info() {}, warn() {}, error() {} }

async function rejection(p: Promise<unknown>): Promise<BackendError> {
  const err = await p.then(
    () => assert.fail('the read succeeded'),
    (e: unknown) => e,
  )
  assert.ok(err instanceof BackendError, String(err))
  return err
}

describe('attack: a keyset path whose read never ends', () => {
  it('a FIFO → not_a_file at once (the open does not wait for a writer)', async () => {
    const fifo = path.join(fresh(), 'jwt-keyset')
    execFileSync('mkfifo', [fifo])
    const started = Date.now()
    const err = await rejection(createFileBackend(fifo).read())
    assert.equal(err.reason, 'not_a_file')
    assert.match(err.message, /is a FIFO, not a regular file/)
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`)
  })

  it('a symlink to /dev/zero → not_a_file before a byte is read (no memory grows)', async () => {
    const link = path.join(fresh(), 'jwt-keyset')
    fs.symlinkSync('/dev/zero', link)
    const rss = process.memoryUsage().rss
    const err = await rejection(createFileBackend(link).read())
    assert.equal(err.reason, 'not_a_file')
    assert.match(err.message, /is a character device, not a regular file/)
    assert.ok(process.memoryUsage().rss - rss < 64 * 1024 * 1024)
  })

  it('a read that outlasts its deadline → timeout (a hung network or FUSE mount): the caller moves on', async () => {
    const started = Date.now()
    const hung = new Promise<string>(() => {}) // what a read on a dead mount looks like
    const err = await rejection(withDeadline(hung, 100, () => new BackendError('timeout', 'reading took longer than 100 ms')))
    assert.equal(err.reason, 'timeout')
    assert.ok(Date.now() - started < 1000)
  })

  it('a read whose deadline passes while this process is busy elsewhere is not a timeout: the read was not slow', async () => {
    const file = path.join(fresh(), 'jwt-keyset')
    const text = JSON.stringify(makeKeyset([makeKey('ES256', 'k-a')]))
    fs.writeFileSync(file, text)
    // The deadline leaves the read itself room on a loaded machine; the loop is held far past it.
    const read = createFileBackend(file, { readTimeoutMs: 500 }).read()
    // Another task holds the event loop past the whole deadline (a burst of CPU, a loaded
    // machine): the read's completions wait behind it, then arrive in the loop's next turns.
    const busyUntil = Date.now() + 1500
    while (Date.now() < busyUntil) {}
    assert.equal((await read).text, text)
  })

  it('reads of a path that hangs in open() hold one threadpool thread, not one each: signature checks still run', async () => {
    const dir = fresh()
    const fifo = path.join(dir, 'jwt-keyset')
    execFileSync('mkfifo', [fifo])
    // A hung NFS or FUSE mount blocks the open in a libuv threadpool thread, which nothing can
    // interrupt; a FIFO opened without O_NONBLOCK blocks the same way until a writer comes.
    const open = fs.promises.open
    const patchable = fs.promises as { open: typeof open }
    patchable.open = ((file, flags, mode) =>
      open(file, file === fifo && typeof flags === 'number' ? flags & ~fs.constants.O_NONBLOCK : flags, mode)) as typeof open
    const pool = Number(process.env.UV_THREADPOOL_SIZE ?? 4)
    const backend = createFileBackend(fifo, { readTimeoutMs: 50 })
    let writer: number | undefined
    try {
      // The keyring's interval reads and unknown-kid re-reads, each after the last one gave up.
      const errors: BackendError[] = []
      for (let i = 0; i < pool + 2; i++) errors.push(await rejection(backend.read()))
      // The threadpool also runs crypto.verify with a callback and fs work: it must still be free.
      const checked = promisify(crypto.pbkdf2)('password', 'salt', 1, 32, 'sha256')
      await withDeadline(checked, 5000, () => new Error('an async pbkdf2 did not complete: the libuv threadpool is full'))
      fs.writeFileSync(path.join(dir, 'neighbour'), 'text')
      await withDeadline(
        fs.promises.readFile(path.join(dir, 'neighbour')),
        5000,
        () => new Error('an fs.readFile did not complete: the libuv threadpool is full'),
      )
      // Only the first read waited for its deadline; the others were refused at once.
      assert.deepEqual(new Set(errors.map((e) => e.reason)), new Set(['timeout']))
      assert.match(errors[0]!.message, /took longer than 50 ms/)
      for (const e of errors.slice(1)) assert.match(e.message, /the previous read, abandoned at its deadline, has not returned/)
    } finally {
      patchable.open = open
      // A writer releases every open that waits; held open, it lets any queued one through too.
      writer = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK)
    }
    try {
      // Once the abandoned read returns, reads go on normally: this one gets as far as the FIFO check.
      const err = await waitFor(
        () =>
          backend.read().then(
            () => undefined,
            (e: BackendError) => (e.reason === 'timeout' ? undefined : e),
          ),
        {
          what: 'a read that is not refused as timeout',
        },
      )
      assert.equal(err.reason, 'not_a_file')
    } finally {
      fs.closeSync(writer)
    }
    fs.rmSync(fifo)
    fs.writeFileSync(fifo, JSON.stringify(makeKeyset([makeKey('ES256', 'k-a')])))
    // The same backend reads the regular file now. Its 50 ms deadline counts the threadpool's
    // time too, which a loaded machine can starve past it: a timeout is tried again.
    const text = await waitFor(
      () =>
        backend.read().then(
          (snapshot) => snapshot.text,
          (e: BackendError) => (e.reason === 'timeout' ? undefined : Promise.reject(e)),
        ),
      { what: 'a read of the regular file' },
    )
    assert.match(text, /k-a/)
  })

  it('keyset validate on a FIFO exits 1 with one clear line, instead of hanging', async () => {
    const fifo = path.join(fresh(), 'jwt-keyset')
    execFileSync('mkfifo', [fifo])
    const r = await cbcJwt(['keyset', 'validate', '--keyset-file', fifo], { timeoutMs: 30_000 })
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stderr, /is a FIFO, not a regular file/)
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'a stack trace')
  })
})

describe('attack: re-read storms from the keyset directory', () => {
  it('a busy neighbour in the same directory costs no change callback at all', async () => {
    const volume = new KubeletVolume(fresh())
    volume.writeKeyset(makeKeyset([makeKey('ES256', 'k-a')]))
    const b = createFileBackend(volume.file())
    backends.push(b)
    let calls = 0
    b.watch!(() => void calls++)
    await sleep(100)
    const neighbour = path.join(volume.dir, 'app.log')
    // A twin whose file is the storm's last name (app.log.1) gets its callback when the storm
    // ends: a callback the storm had wrongly started in the keyset's backend, coalesced the
    // same way, would have come by then.
    const rotated = path.join(volume.dir, 'app.log.1')
    const twin = createFileBackend(rotated)
    backends.push(twin)
    let twinCalls = 0
    twin.watch!(() => void twinCalls++)
    for (let i = 0; i < 500; i++) fs.appendFileSync(neighbour, `line ${i}\n`)
    fs.renameSync(neighbour, rotated)
    await waitFor(() => twinCalls > 0, { timeoutMs: 10_000, what: "the twin's callback for the rotated log" })
    assert.equal(calls, 0)
  })

  it('a busy neighbour costs no syscall either: its events are dropped by name before any stat', async () => {
    const dir = fresh()
    const file = path.join(dir, 'keyset.json')
    fs.writeFileSync(file, '0')
    const b = createFileBackend(file)
    backends.push(b)
    let keysetEvents = 0
    b.watch!(() => void keysetEvents++)
    const statSync = fs.statSync
    const patchable = fs as { statSync: typeof statSync }
    let stats = 0
    // The backend calls fs.statSync on its directory to notice a replaced one; count those calls.
    patchable.statSync = ((...args: Parameters<typeof statSync>) => {
      if (args[0] === dir) stats++
      return statSync(...args)
    }) as typeof statSync
    try {
      // Two neighbours in turn: the kernel merges identical consecutive events, not these.
      const neighbours = [path.join(dir, 'app.log'), path.join(dir, 'audit.log')]
      for (let i = 0; i < 500; i++) fs.appendFileSync(neighbours[i % 2]!, `line ${i}\n`)
      // inotify delivers in order: once the keyset's own event is here, every neighbour event was seen.
      fs.writeFileSync(file, '1')
      await waitFor(() => keysetEvents > 0, { timeoutMs: 5000, what: 'the change callback of the keyset write' })
      assert.ok(stats <= 4, `${stats} stat calls for 500 neighbour writes and one keyset write`)
    } finally {
      patchable.statSync = statSync
    }
  })

  it('a burst of writes to the keyset itself becomes a few callbacks, the last change included', async () => {
    const dir = fresh()
    const file = path.join(dir, 'keyset.json')
    fs.writeFileSync(file, '0')
    const b = createFileBackend(file, { minChangeIntervalMs: 200 })
    backends.push(b)
    const seen: string[] = []
    b.watch!(
      () =>
        void b.read().then(
          (s) => seen.push(s.text),
          () => {},
        ),
    )
    await sleep(100)
    const started = Date.now()
    for (let i = 1; i <= 300; i++) fs.writeFileSync(file, String(i))
    const elapsed = Date.now() - started
    await waitFor(() => seen.at(-1) === '300', { timeoutMs: 10_000, what: 'the last write to be read' })
    await sleep(300)
    assert.ok(seen.length <= Math.ceil(elapsed / 200) + 2, `${seen.length} reads for 300 writes in ${elapsed} ms`)
  })

  it('the kubelet swap (..data renamed) still prompts a read', async () => {
    const volume = new KubeletVolume(fresh())
    volume.writeKeyset(makeKeyset([makeKey('ES256', 'k-a')]))
    const b = createFileBackend(volume.file())
    backends.push(b)
    let calls = 0
    b.watch!(() => void calls++)
    await sleep(100)
    volume.writeKeyset(makeKeyset([makeKey('ES256', 'k-b')]))
    await waitFor(() => calls > 0, { timeoutMs: 10_000, what: 'a change callback for the ..data swap' })
  })

  it('an unknown-kid re-read is answered after one read, however many change events keep coming', async () => {
    const text = JSON.stringify(makeKeyset([makeKey('ES256', 'k-a')]))
    let reads = 0
    let emit: (() => void) | undefined
    const slow: KeysetBackend = {
      kind: 'test',
      location: 'slow',
      async read() {
        reads++
        await sleep(40)
        return { text, version: `v${reads}` } // every read "changed": the worst case
      },
      async write() {
        throw new Error('read-only')
      },
      watch(cb) {
        emit = cb
      },
      async close() {},
    }
    const keyring = createKeyring({ backend: slow, logger: quiet, refreshIntervalMs: 3_600_000, unknownKidCooldownMs: 0 })
    await keyring.start()
    const storm = setInterval(() => emit?.(), 5)
    try {
      await sleep(100)
      const started = Date.now()
      await keyring.refreshForUnknownKid()
      assert.ok(Date.now() - started < 500, `the unknown-kid re-read took ${Date.now() - started} ms`)
    } finally {
      clearInterval(storm)
      await keyring.close()
    }
  })
})
