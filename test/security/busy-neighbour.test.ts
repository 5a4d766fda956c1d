// Attack: a file beside the keyset written at full speed (a log, an audit trail). Its events
// were dropped by name, yet each still reached the process: hundreds of thousands a second,
// more than a CPU-second per 3 s. After a few hundred of them, the watch follows the keyset
// file itself and the neighbour's events stop reaching the process; every kind of keyset change
// still arrives.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, afterEach, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { KeysetBackend } from '../../src/lib/backends/backend.js'
import { createFileBackend, type FileBackendOptions } from '../../src/lib/backends/file-backend.js'
import { KubeletVolume } from '../support/kubelet-volume.js'
import { waitFor } from '../support/wait.js'

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-busy-neighbour-'))
let n = 0
const fresh = () => {
  const dir = path.join(root, `case-${n++}`)
  fs.mkdirSync(dir)
  return dir
}
const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})
after(() => fs.rmSync(root, { recursive: true, force: true }))

/**
 * A backend watching `file`, counting the events the process receives from a watch on `dir`
 * (fs.watch wrapped while the test runs) and the change callbacks.
 */
function watchedWithDelivery(file: string, dir: string, options: FileBackendOptions = {}) {
  const watch = fs.watch
  const patchable = fs as { watch: typeof watch }
  /** Events delivered from the directory watch (of them, the neighbours': `*.log`), change callbacks, events reported. */
  const state = { delivered: 0, neighbour: 0, changes: 0, events: 0 }
  patchable.watch = ((where: fs.PathLike, opts: fs.WatchOptions, listener: fs.WatchListener<string>) =>
    watch(
      where,
      opts,
      where === dir
        ? (...args: Parameters<fs.WatchListener<string>>) => {
            state.delivered++
            if (args[1]?.endsWith('.log')) state.neighbour++
            listener(...args)
          }
        : listener,
    )) as typeof watch
  cleanups.push(() => (patchable.watch = watch))
  const b: KeysetBackend = createFileBackend(file, options)
  cleanups.push(() => b.close())
  b.watch!(
    () => void state.changes++,
    () => void state.events++,
  )
  return {
    b,
    state,
    async expectChange(what: string, change: () => void) {
      await sleep(100) // the previous step's events (and their coalescing) settle first
      state.changes = 0
      change()
      await waitFor(() => state.changes > 0, { timeoutMs: 10_000, what: `a change callback for ${what}` })
    },
  }
}

/**
 * What this process's inotify watches are on (Linux, /proc/self/fdinfo): `directory`, `file`,
 * `both` or `nothing`, by the inode each of `dir` and `file` has now.
 */
function watching(dir: string, file: string): string {
  const inodes = new Set<number>()
  for (const fd of fs.readdirSync('/proc/self/fdinfo')) {
    let info: string
    try {
      info = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8')
    } catch {
      continue // an fd closed while we looked
    }
    for (const m of info.matchAll(/^inotify wd:\S+ ino:([0-9a-f]+) /gm)) inodes.add(Number.parseInt(m[1]!, 16))
  }
  const on = (p: string) => {
    const ino = fs.statSync(p, { throwIfNoEntry: false })?.ino
    return ino !== undefined && inodes.has(ino)
  }
  const [d, f] = [on(dir), on(file)]
  return d && f ? 'both' : d ? 'directory' : f ? 'file' : 'nothing'
}

/** Appends to two neighbours in turn (no event merged by the kernel), letting the loop run between rounds. */
async function storm(dir: string, rounds: number) {
  const names = [path.join(dir, 'app.log'), path.join(dir, 'audit.log')]
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < 1000; i++) fs.appendFileSync(names[i % 2]!, 'x')
    // The kernel queue holds 16 384 events: the process reads them between rounds.
    await new Promise((resolve) => setImmediate(resolve))
  }
}

describe('attack: a neighbour of the keyset written at full speed', () => {
  it('after a few hundred of its 40 000 events, none reach the process; changes in place and by rename still do', async () => {
    const dir = fresh()
    const file = path.join(dir, 'keyset.json')
    fs.writeFileSync(file, '0')
    const w = watchedWithDelivery(file, dir, { busyProbeMs: 3_600_000 })
    await storm(dir, 40)
    assert.equal(w.state.changes, 0, 'a neighbour event was taken for a change')
    // One inotify queue, read in order: once the keyset's own change is here, every neighbour
    // event before it has been delivered (or dropped by the kernel with the closed watch).
    await w.expectChange('an in-place write', () => fs.writeFileSync(file, '1'))
    assert.ok(w.state.delivered < 3000, `${w.state.delivered} of 40 000 neighbour events reached the process`)
    await w.expectChange('a rename over the file', () => {
      fs.writeFileSync(`${file}.tmp`, '2')
      fs.renameSync(`${file}.tmp`, file)
    })
    await w.expectChange('an in-place write to the new file', () => fs.writeFileSync(file, '3'))
    assert.equal((await w.b.read()).text, '3')
    await w.expectChange('the file deleted', () => fs.rmSync(file))
    await w.expectChange('the file back', () => fs.writeFileSync(file, '4'))
    assert.equal((await w.b.read()).text, '4')
  })

  it('on a kubelet volume: the ..data swaps still arrive, and a symlink turned elsewhere with nothing deleted too', async () => {
    const volume = new KubeletVolume(fresh())
    volume.writeKeyset('{"v":0}')
    const w = watchedWithDelivery(volume.file(), volume.dir, { busyProbeMs: 3_600_000 })
    await storm(volume.dir, 20)
    for (let i = 1; i <= 3; i++) {
      await w.expectChange(`swap ${i}`, () => volume.writeKeyset(`{"v":${i}}`))
      assert.equal((await w.b.read()).text, `{"v":${i}}`)
      // The swap deleted the file watched: the new one, in the new timestamped folder, is.
      if (process.platform === 'linux') assert.equal(watching(volume.dir, volume.file()), 'file', `after swap ${i}`)
    }
    assert.ok(w.state.delivered < 3000, `${w.state.delivered} of 20 000 neighbour events reached the process`)
    // No event of the watched file announces this: the look at the path every second does.
    const other = path.join(volume.dir, 'other-keyset')
    fs.writeFileSync(other, '{"v":"other"}')
    await w.expectChange('the keyset symlink turned to another file', () => {
      fs.rmSync(volume.file())
      fs.symlinkSync(other, volume.file())
    })
    assert.equal((await w.b.read()).text, '{"v":"other"}')
  })

  it('once the neighbour is quiet, a read after busyProbeMs watches the directory again (and a new storm switches back)', async () => {
    const dir = fresh()
    const file = path.join(dir, 'keyset.json')
    fs.writeFileSync(file, '0')
    // busyProbeMs 0: the change callback's own read would probe the directory at once; reads
    // are made here only, by the test.
    const w = watchedWithDelivery(file, dir, { busyProbeMs: 0 })
    await storm(dir, 5)
    /**
     * A neighbour write, then a keyset write: once the keyset's change is seen, the neighbour's
     * event was delivered or never will be. The events the directory watch delivered meanwhile.
     */
    const neighbourThenKeyset = async (what: string, value: string) => {
      const before = w.state.delivered
      await w.expectChange(what, () => {
        fs.appendFileSync(path.join(dir, 'app.log'), 'x')
        fs.writeFileSync(file, value)
      })
      return w.state.delivered - before
    }
    assert.equal(await neighbourThenKeyset('a write after the storm', '1'), 0, 'the file alone is watched: a neighbour event still arrived')
    await w.b.read()
    assert.ok((await neighbourThenKeyset('a write after a read', '2')) > 0, 'the read did not watch the directory again')
    await storm(dir, 5)
    assert.equal(await neighbourThenKeyset('a write after a second storm', '3'), 0, 'a second storm did not switch back to the file')
  })
})

describe('the switch to the file itself: when, and what it watches after', { skip: process.platform !== 'linux' && 'reads /proc/self/fdinfo' }, () => {
  /** `dir` with the keyset file and two neighbours in it, the neighbours already there (appends alone: one event each). */
  function setUp(keyset: string | undefined) {
    const dir = fresh()
    const file = path.join(dir, 'keyset.json')
    if (keyset !== undefined) fs.writeFileSync(file, keyset)
    const names = [path.join(dir, 'app.log'), path.join(dir, 'audit.log')]
    for (const name of names) fs.writeFileSync(name, '')
    let sent = 0
    return {
      dir,
      file,
      /** `count` neighbour events, in turn on each (no two alike in a row: the kernel merges none). */
      neighbour(count: number) {
        for (let i = 0; i < count; i++) fs.appendFileSync(names[sent++ % 2]!, 'x')
      },
      get sent() {
        return sent
      },
    }
  }
  /** Waits until the directory watch has delivered `count` neighbour events in all. */
  const deliveredAll = (w: ReturnType<typeof watchedWithDelivery>, count: number) =>
    waitFor(() => w.state.neighbour >= count, { timeoutMs: 10_000, intervalMs: 5, what: `${count} neighbour events delivered` })

  it('512 neighbour events within a second switch it; 511 do not, nor 512 spread past the second', async () => {
    const t = setUp('0')
    const w = watchedWithDelivery(t.file, t.dir, { busyProbeMs: 3_600_000 })
    assert.equal(watching(t.dir, t.file), 'directory')
    t.neighbour(511)
    await deliveredAll(w, 511)
    assert.equal(watching(t.dir, t.file), 'directory', '511 events switched the watch')
    // The 512th past the second since the watch began: a slow neighbour, counted from zero again.
    await sleep(1100)
    t.neighbour(1)
    await deliveredAll(w, 512)
    assert.equal(watching(t.dir, t.file), 'directory', '512 events over more than a second switched the watch')
    t.neighbour(511)
    await deliveredAll(w, 1023)
    assert.equal(watching(t.dir, t.file), 'directory', 'the count went on past the slow sample')
    t.neighbour(1)
    await deliveredAll(w, 1024)
    assert.equal(watching(t.dir, t.file), 'file', '512 events within a second did not switch the watch')
    assert.equal(w.state.changes + w.state.events, 0, 'a neighbour event was taken for a change')
  })

  it("only a neighbour's events count: the keyset's own and ..data's, however many, never switch it", async () => {
    const t = setUp('0')
    const data = path.join(t.dir, '..data')
    fs.writeFileSync(data, '')
    const w = watchedWithDelivery(t.file, t.dir, { busyProbeMs: 3_600_000 })
    // 1 000 events of the names that matter, with 511 of a neighbour among them: no two alike in a row.
    for (let i = 0; i < 500; i++) {
      fs.appendFileSync(t.file, 'x')
      fs.appendFileSync(data, 'x')
      if (i % 2 === 0 && t.sent < 511) t.neighbour(2)
    }
    t.neighbour(511 - t.sent)
    // Every event delivered, or (counted wrongly) the directory no longer watched.
    await waitFor(() => w.state.delivered >= 1511 || watching(t.dir, t.file) !== 'directory', {
      timeoutMs: 10_000,
      intervalMs: 5,
      what: 'every event delivered',
    })
    assert.equal(watching(t.dir, t.file), 'directory', "the keyset's own events were counted as a neighbour's")
    assert.equal(w.state.neighbour, 511)
    await waitFor(() => w.state.changes > 0, { what: 'the change callback' })
  })

  it('a keyset not there yet: the directory stays watched through the storm, and sees the file appear', async () => {
    const t = setUp(undefined)
    const w = watchedWithDelivery(t.file, t.dir, { busyProbeMs: 3_600_000 })
    t.neighbour(2000)
    await deliveredAll(w, 2000)
    assert.equal(watching(t.dir, t.dir), 'both', 'nothing watched: the file the switch would follow is not there')
    await w.expectChange('the keyset written', () => fs.writeFileSync(t.file, '1'))
    assert.equal((await w.b.read()).text, '1')
  })

  it('after it: a read looks at the path, reports only what changed, and the watch follows each new file', async () => {
    const t = setUp(undefined)
    const a = path.join(t.dir, 'a.json')
    const b = path.join(t.dir, 'b.json')
    fs.writeFileSync(a, '0')
    fs.writeFileSync(b, 'b')
    fs.symlinkSync('a.json', t.file)
    // A read before busyProbeMs has passed since the switch keeps the file watched; the bound is
    // the age of this process, so that a switch time never set would show.
    const w = watchedWithDelivery(t.file, t.dir, { busyProbeMs: Math.max(3000, Math.ceil(performance.now())), minChangeIntervalMs: 0 })
    t.neighbour(1024)
    await waitFor(() => watching(t.dir, t.file) === 'file', { timeoutMs: 10_000, intervalMs: 5, what: 'the watch on the file' })
    /** A read, then the events reported so far and what is watched. */
    const afterRead = async (what: string) => {
      await w.b.read()
      return [what, w.state.events, watching(t.dir, t.file)]
    }
    assert.deepEqual(await afterRead('nothing changed'), ['nothing changed', 0, 'file'])

    await w.expectChange('an in-place write through the link', () => fs.writeFileSync(t.file, '1'))
    let seen = w.state.events
    assert.deepEqual(await afterRead('the write seen'), ['the write seen', seen, 'file'])

    // No event of the watched inode says these: the read itself finds them, and watches the new file.
    fs.rmSync(t.file)
    fs.symlinkSync('b.json', t.file)
    assert.deepEqual(await afterRead('the link turned to b.json'), ['the link turned to b.json', seen + 1, 'file'])
    assert.equal(watching(t.dir, a), 'nothing', 'a.json is still watched')
    fs.writeFileSync(`${t.file}.tmp`, '2')
    fs.renameSync(`${t.file}.tmp`, t.file)
    assert.deepEqual(await afterRead('a file renamed over the link'), ['a file renamed over the link', seen + 2, 'file'])
    assert.equal(watching(t.dir, b), 'nothing', 'b.json is still watched')

    // A rename over the watched file itself: its event, then the new file watched.
    await w.expectChange('a rename over the file', () => {
      fs.writeFileSync(`${t.file}.tmp`, '3')
      fs.renameSync(`${t.file}.tmp`, t.file)
    })
    seen = w.state.events
    assert.deepEqual(await afterRead('the rename seen'), ['the rename seen', seen, 'file'])
    await w.expectChange('an in-place write to the renamed file', () => fs.writeFileSync(t.file, '4'))
    assert.equal((await w.b.read()).text, '4')

    await w.b.close()
    assert.equal(watching(t.dir, t.file), 'nothing', 'close left a watch')
  })
})
