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
  const state = { delivered: 0, changes: 0 }
  patchable.watch = ((where: fs.PathLike, opts: fs.WatchOptions, listener: fs.WatchListener<string>) =>
    watch(
      where,
      opts,
      where === dir ? (...args: Parameters<fs.WatchListener<string>>) => void (state.delivered++, listener(...args)) : listener,
    )) as typeof watch
  cleanups.push(() => (patchable.watch = watch))
  const b: KeysetBackend = createFileBackend(file, options)
  cleanups.push(() => b.close())
  b.watch!(() => void state.changes++)
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
