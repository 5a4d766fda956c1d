import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { BackendError, CasConflictError } from '../errors.js'
import { MAX_KEYSET_BYTES } from '../keyset/document.js'
import type { BackendErrorReason } from '../reasons.js'
import type { KeysetBackend, KeysetSnapshot } from './backend.js'
import { writeFileAtomic } from './write-file-atomic.js'

/**
 * The keyset in a file — a plain file or a Kubernetes secret volume.
 *
 * The kubelet updates a secret volume by writing a new timestamped directory and renaming a
 * `..data` symlink over the old one; the file the pod reads is a symlink through `..data`.
 * A watch on the file itself follows the old inode into the deleted directory and goes
 * quiet, so the backend watches the *directory* (and, while that directory is missing, the
 * nearest existing ancestor, re-arming as it appears). Events only prompt a re-read; the
 * content hash decides whether anything changed.
 */
export function createFileBackend(file: string): KeysetBackend {
  const target = path.resolve(file)
  const dir = path.dirname(target)
  let watcher: fs.FSWatcher | undefined
  let watchedDir: string | undefined
  /** dev:ino:birthtime of the watched directory, to tell a recreated directory from the old one. */
  let watchedId: string | undefined
  let onChange: (() => void) | undefined
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
      const w = fs.watch(candidate, { persistent: false }, (_event, name) => {
        // While watching an ancestor, any event may be our directory appearing. An event named
        // after the watched directory itself is its deletion or move: the watch is dead even if
        // a new directory already stands at the same path (often with the same inode number).
        if (stale() || name === path.basename(candidate)) scheduleRearm()
        onChange?.()
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

  function scheduleRearm() {
    if (closed || rearmTimer) return
    rearmTimer = setTimeout(() => {
      rearmTimer = undefined
      arm()
      onChange?.()
    }, 100)
    rearmTimer.unref()
  }

  return {
    kind: 'file',
    location: target,
    async read(): Promise<KeysetSnapshot> {
      // The periodic read is also the watcher's safety net: re-arm if the directory came or went.
      if (onChange && stale()) arm()
      const text = await readBounded(target)
      return { text, version: sha256(text) }
    },
    async write(text, expectedVersion) {
      if (expectedVersion !== undefined && expectedVersion !== null) {
        const existing = await readBounded(target).catch((err: unknown) => {
          if (err instanceof BackendError && err.reason === 'not_found') return undefined
          throw err
        })
        const actual = existing === undefined ? undefined : sha256(existing)
        if (actual !== expectedVersion) {
          throw new CasConflictError(`${target} changed since it was read; read it again and retry`)
        }
      }
      try {
        await writeFileAtomic(target, text, { exclusive: expectedVersion === null })
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
          throw new CasConflictError(`${target} was created by another writer; read it again and retry`, { cause: err })
        }
        throw new BackendError(reasonOf(err), `cannot write ${target}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err })
      }
      return { text, version: sha256(text) }
    },
    watch(callback) {
      onChange = callback
      arm()
    },
    async close() {
      closed = true
      watcher?.close()
      watcher = undefined
      if (rearmTimer) clearTimeout(rearmTimer)
      rearmTimer = undefined
    },
  }
}

async function readBounded(file: string): Promise<string> {
  let handle: fs.promises.FileHandle | undefined
  try {
    handle = await fs.promises.open(file, 'r')
    const { size } = await handle.stat()
    if (size > MAX_KEYSET_BYTES) throw new BackendError('invalid_keyset', `${file} is ${size} bytes; the limit is ${MAX_KEYSET_BYTES}`)
    return await handle.readFile('utf8')
  } catch (err) {
    if (err instanceof BackendError) throw err
    const code = (err as NodeJS.ErrnoException).code
    throw new BackendError(reasonOf(err), `cannot read ${file}: ${code ?? (err as Error).message}`, { cause: err })
  } finally {
    await handle?.close()
  }
}

function reasonOf(err: unknown): BackendErrorReason {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return 'not_found'
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return 'forbidden'
    default:
      return 'io_error'
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
