import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { BackendError, CasConflictError } from '../errors.js'
import type { KeysetBackend, KeysetSnapshot } from './backend.js'
import { FILE_READ_TIMEOUT_MS, readBounded, reasonOf } from './read-bounded.js'
import { OwnerNotKeptError, writeFileAtomic } from './write-file-atomic.js'

export interface FileBackendOptions {
  /** A read taking longer fails with reason `timeout`. @default 5000 */
  readTimeoutMs?: number
  /** Change events are coalesced into at most one callback per this many ms. @default 250 */
  minChangeIntervalMs?: number
  /** Mode of a file this backend creates (an existing file keeps its own). @default 0o600 */
  newFileMode?: number
}

/** Events this close together are one change (a rename is several inotify events). */
const COALESCE_MS = 20

/**
 * The keyset in a file — a plain file or a Kubernetes secret volume.
 *
 * The kubelet updates a secret volume by writing a new timestamped directory and renaming a
 * `..data` symlink over the old one; the file the pod reads is a symlink through `..data`.
 * A watch on the file itself follows the old inode into the deleted directory and goes
 * quiet, so the backend watches the *directory* (and, while that directory is missing, the
 * nearest existing ancestor, re-arming as it appears). Events only prompt a re-read; the
 * content hash decides whether anything changed.
 *
 * Only events that can matter prompt one: those naming the keyset file or the kubelet's `..data`
 * link (a busy neighbour in the same directory costs nothing), and a burst of them becomes one
 * re-read, at most one per `minChangeIntervalMs` — never a read storm, and never a lost last change.
 */
export function createFileBackend(file: string, options: FileBackendOptions = {}): KeysetBackend {
  const target = path.resolve(file)
  const dir = path.dirname(target)
  const relevant = new Set([path.basename(target), '..data'])
  const readTimeoutMs = options.readTimeoutMs ?? FILE_READ_TIMEOUT_MS
  const minInterval = options.minChangeIntervalMs ?? 250
  let changeTimer: NodeJS.Timeout | undefined
  let lastChangeAt = -Infinity
  let watcher: fs.FSWatcher | undefined
  let watchedDir: string | undefined
  /** dev:ino:birthtime of the watched directory, to tell a recreated directory from the old one. */
  let watchedId: string | undefined
  let onChange: (() => void) | undefined
  let onEvent: (() => void) | undefined
  let rearmTimer: NodeJS.Timeout | undefined
  let closed = false

  function arm() {
    if (closed || !onChange) return
    watcher?.close()
    watcher = undefined
    let candidate = dir
    while (!fs.existsSync(candidate) && path.dirname(candidate) !== candidate) candidate = path.dirname(candidate)
    try {
      // Identity first, then the watch: if the directory is replaced in between, the next
      // check sees a mismatch and re-arms (the other order could miss the replacement).
      watchedId = identity(candidate)
      const own = path.basename(candidate)
      const w = fs.watch(candidate, { persistent: false }, (_event, name) => {
        // A neighbour's event in the keyset's own directory is dropped by its name alone, before
        // any syscall: a file rewritten at full speed beside the keyset must cost next to nothing.
        if (candidate === dir && name !== null && name !== own && !relevant.has(name)) return
        // While watching an ancestor, any event may be our directory appearing. An event named
        // after the watched directory itself is its deletion or move: the watch is dead even if
        // a new directory already stands at the same path (often with the same inode number).
        const rearm = stale() || name === own
        if (rearm) scheduleRearm()
        // A null name (some platforms) or an ancestor's event may be ours: let it through.
        if (rearm || candidate !== dir || name === null || relevant.has(name)) {
          onEvent?.()
          changed()
        }
      })
      w.on('error', () => scheduleRearm())
      watcher = w
      watchedDir = candidate
    } catch {
      scheduleRearm()
    }
  }

  function stale(): boolean {
    return watchedDir !== dir || identity(dir) !== watchedId
  }

  /** Coalesces a burst of events into one callback, at most one per `minInterval` (trailing). */
  function changed() {
    if (closed || changeTimer) return
    const wait = Math.max(COALESCE_MS, lastChangeAt + minInterval - Date.now())
    changeTimer = setTimeout(() => {
      changeTimer = undefined
      lastChangeAt = Date.now()
      onChange?.()
    }, wait)
    changeTimer.unref()
  }

  function scheduleRearm() {
    if (closed || rearmTimer) return
    rearmTimer = setTimeout(() => {
      rearmTimer = undefined
      arm()
      changed()
    }, 100)
    rearmTimer.unref()
  }

  return {
    kind: 'file',
    location: target,
    async read(): Promise<KeysetSnapshot> {
      // The periodic read is also the watcher's safety net: re-arm if the directory came or went.
      if (onChange && stale()) arm()
      const text = await readBounded(target, readTimeoutMs)
      return { text, version: sha256(text) }
    },
    async write(text, expectedVersion) {
      if (expectedVersion !== undefined && expectedVersion !== null) {
        const existing = await readBounded(target, readTimeoutMs).catch((err: unknown) => {
          if (err instanceof BackendError && err.reason === 'not_found') return undefined
          throw err
        })
        const actual = existing === undefined ? undefined : sha256(existing)
        if (actual !== expectedVersion) {
          throw new CasConflictError(`${target} changed since it was read; read it again and retry`)
        }
      }
      try {
        await writeFileAtomic(target, text, {
          exclusive: expectedVersion === null,
          ...(options.newFileMode !== undefined ? { newFileMode: options.newFileMode } : {}),
        })
      } catch (err) {
        if (err instanceof OwnerNotKeptError) throw new BackendError('forbidden', err.message, { cause: err })
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
          throw new CasConflictError(`${target} was created by another writer; read it again and retry`, { cause: err })
        }
        throw new BackendError(reasonOf(err), `cannot write ${target}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err })
      }
      return { text, version: sha256(text) }
    },
    watch(callback, eventCallback) {
      onChange = callback
      onEvent = eventCallback
      arm()
    },
    async close() {
      closed = true
      watcher?.close()
      watcher = undefined
      if (rearmTimer) clearTimeout(rearmTimer)
      rearmTimer = undefined
      if (changeTimer) clearTimeout(changeTimer)
      changeTimer = undefined
    },
  }
}

function identity(dir: string): string | undefined {
  try {
    const st = fs.statSync(dir)
    // A recreated directory often gets the freed inode number back; its birth time differs.
    return `${st.dev}:${st.ino}:${st.birthtimeMs}`
  } catch {
    return undefined
  }
}

function sha256(text: string): string {
  return crypto.createHash('sha256').update(text).digest('hex')
}
