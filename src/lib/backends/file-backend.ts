import crypto from 'node:crypto'
import path from 'node:path'
import { BackendError, CasConflictError } from '../errors.js'
import type { KeysetBackend, KeysetSnapshot, WatchLogger } from './backend.js'
import { FILE_READ_TIMEOUT_MS, readBounded, reasonOf } from './read-bounded.js'
import { watchKeysetFile, type KeysetFileWatch } from './file-watch.js'
import { LockTimeoutError, OwnerNotKeptError, type WiderLimit, withUpdateLock, writeFileAtomic } from './write-file-atomic.js'

export interface FileBackendOptions {
  /**
   * A read taking longer fails with reason `timeout`; so does a write that waited this long for
   * another live writer's lock on the file. @default 5000
   */
  readTimeoutMs?: number
  /** Change events are coalesced into at most one callback per this many ms. @default 250 */
  minChangeIntervalMs?: number
  /** Mode of a file this backend creates (an existing file keeps its own). @default 0o600 */
  newFileMode?: number
  /** A file whose owner and group a file this backend creates takes, when the writer may give them (root). */
  newFileOwnerOf?: string
  /** What an existing file may be open to at most (the keyset's owner, group and others' access): else a write is refused. */
  noWiderThan?: WiderLimit
  /**
   * After a busy neighbour made the watch follow the file itself (file-watch.ts), a read this
   * long after tries the directory watch again. @default 10000
   */
  busyProbeMs?: number
  /** Where the watch says it cannot be set up (`watch_failed`) and when it is back (`watch_resumed`). */
  logger?: WatchLogger | undefined
}

/** How long a change waits for another live CLI's change of the same file (a replica gate can take a while). */
const UPDATE_LOCK_TIMEOUT_MS = 30_000

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
 * link, and a burst of them becomes one re-read, at most one per `minChangeIntervalMs` — never a
 * read storm, and never a lost last change. A neighbour in the same directory written at full
 * speed makes the watch follow the file itself for a while, so its events stop reaching the
 * process at all (file-watch.ts).
 */
export function createFileBackend(file: string, options: FileBackendOptions = {}): KeysetBackend {
  const target = path.resolve(file)
  const readTimeoutMs = options.readTimeoutMs ?? FILE_READ_TIMEOUT_MS
  let watch: KeysetFileWatch | undefined
  let closed = false

  return {
    kind: 'file',
    location: target,
    async read(): Promise<KeysetSnapshot> {
      // The periodic read is also the watcher's safety net: re-arm if the directory came or went.
      watch?.check()
      const text = await readBounded(target, readTimeoutMs)
      return { text, version: sha256(text) }
    },
    async write(text, expectedVersion) {
      // The check runs under the file's write lock, just before the rename: a check-and-set in one step.
      const checkVersion = async () => {
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
          lockTimeoutMs: readTimeoutMs,
          ...(expectedVersion !== undefined && expectedVersion !== null ? { beforeReplace: checkVersion } : {}),
          ...(options.newFileMode !== undefined ? { newFileMode: options.newFileMode } : {}),
          newFileOwnerOf: options.newFileOwnerOf,
          noWiderThan: options.noWiderThan,
        })
      } catch (err) {
        if (err instanceof CasConflictError || err instanceof BackendError) throw err
        if (err instanceof OwnerNotKeptError) throw new BackendError('forbidden', err.message, { cause: err })
        if (err instanceof LockTimeoutError) throw new BackendError('timeout', err.message, { cause: err })
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
          throw new CasConflictError(`${target} was created by another writer; read it again and retry`, { cause: err })
        }
        throw new BackendError(reasonOf(err), `cannot write ${target}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err })
      }
      return { text, version: sha256(text) }
    },
    async exclusive(work) {
      let started = false
      try {
        return await withUpdateLock(target, UPDATE_LOCK_TIMEOUT_MS, () => {
          started = true
          return work()
        })
      } catch (err) {
        if (started) throw err
        if (err instanceof LockTimeoutError) throw new BackendError('timeout', err.message, { cause: err })
        // No lock to take (a read-only folder, a secret volume): this process cannot write the file
        // either, so it races nobody; a change with nothing to do still succeeds, and a write
        // fails as it always did, naming what was and was not written.
        return work()
      }
    },
    watch(callback, eventCallback, onFailure) {
      if (closed) return
      watch?.close()
      watch = watchKeysetFile(target, {
        minChangeIntervalMs: options.minChangeIntervalMs ?? 250,
        busyProbeMs: options.busyProbeMs ?? 10_000,
        onChange: callback,
        onEvent: eventCallback,
        onFailure,
        logger: options.logger,
      })
    },
    async close() {
      closed = true
      watch?.close()
      watch = undefined
    },
  }
}

function sha256(text: string): string {
  return crypto.createHash('sha256').update(text).digest('hex')
}
