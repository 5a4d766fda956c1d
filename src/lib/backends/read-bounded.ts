import fs from 'node:fs'
import { withDeadline } from '../deadline.js'
import { BackendError } from '../errors.js'
import { MAX_KEYSET_BYTES } from '../keyset/document.js'
import type { BackendErrorReason } from '../reasons.js'

/** How long one read of the keyset file may take before it counts as a `timeout`. @default 5000 */
export const FILE_READ_TIMEOUT_MS = 5000

/**
 * Files whose last read was abandoned at its deadline and has not returned yet. Such a read
 * still holds a libuv threadpool thread (and an fd) in a syscall that nothing can interrupt;
 * the same pool runs asynchronous signature checks and every fs call, so a read started on
 * each interval would fill it (4 threads by default) and hang every request.
 */
const unreturned = new Set<string>()

/**
 * Reads a keyset file, bounded in kind, bytes and time:
 * - only a regular file: a FIFO would block the read forever and `/dev/zero` never ends, so
 *   anything else is `not_a_file` before a byte is read (`O_NONBLOCK` keeps even the open of
 *   a FIFO from waiting for a writer);
 * - at most `MAX_KEYSET_BYTES`, however the file grows while it is read;
 * - at most `timeoutMs` (a hung network or FUSE mount), after which the read is abandoned:
 *   the caller gets `timeout` and the keyring moves on. Time the process's own event loop was
 *   busy does not count (`withDeadline`): the read is not what was slow;
 * - at most one abandoned read of a file at a time: until it returns, a later read of that
 *   file is `timeout` at once instead of blocking one more threadpool thread.
 */
export function readBounded(file: string, timeoutMs = FILE_READ_TIMEOUT_MS): Promise<string> {
  if (unreturned.has(file)) {
    return Promise.reject(new BackendError('timeout', `reading ${file}: the previous read, abandoned at its deadline, has not returned; not starting another`))
  }
  const work = readRegularFile(file)
  return withDeadline(work, timeoutMs, () => {
    unreturned.add(file)
    const returned = () => void unreturned.delete(file)
    work.then(returned, returned)
    return new BackendError('timeout', `reading ${file} took longer than ${timeoutMs} ms`)
  })
}

/**
 * The text of a write lock (`write-file-atomic.ts`), read by the same rules as a keyset file, at
 * most `maxBytes`, and never through a symlink: whoever may write the keyset's folder can plant
 * the lock's name, and a writer (root, after a `sudo cbc-jwt`) must not read, and quote in its
 * message, whatever file the link names. Undefined when it is not a regular file of its own or
 * cannot be read.
 */
export function readLockText(file: string, maxBytes: number): Promise<string | undefined> {
  return readRegularFile(file, { maxBytes, noFollow: true }).catch(() => undefined)
}

async function readRegularFile(file: string, opts: { maxBytes?: number; noFollow?: boolean } = {}): Promise<string> {
  const maxBytes = opts.maxBytes ?? MAX_KEYSET_BYTES
  let handle: fs.promises.FileHandle | undefined
  try {
    handle = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | (opts.noFollow ? fs.constants.O_NOFOLLOW : 0))
    const stat = await handle.stat()
    if (!stat.isFile()) throw new BackendError('not_a_file', `${file} is ${kindOf(stat)}, not a regular file`)
    if (stat.size > maxBytes) throw new BackendError('invalid_keyset', `${file} is ${stat.size} bytes; the limit is ${maxBytes}`)
    const buffer = Buffer.alloc(maxBytes + 1)
    let length = 0
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length)
      if (bytesRead === 0) break
      length += bytesRead
      if (length > maxBytes) throw new BackendError('invalid_keyset', `${file} grew past the limit of ${maxBytes} bytes while being read`)
    }
    return buffer.toString('utf8', 0, length)
  } catch (err) {
    if (err instanceof BackendError) throw err
    const code = (err as NodeJS.ErrnoException).code
    throw new BackendError(reasonOf(err), `cannot read ${file}: ${code ?? (err as Error).message}`, { cause: err })
  } finally {
    await handle?.close()
  }
}

function kindOf(stat: fs.Stats): string {
  if (stat.isDirectory()) return 'a directory'
  if (stat.isFIFO()) return 'a FIFO'
  if (stat.isCharacterDevice()) return 'a character device'
  if (stat.isBlockDevice()) return 'a block device'
  if (stat.isSocket()) return 'a socket'
  return 'not a file'
}

export function reasonOf(err: unknown): BackendErrorReason {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return 'not_found'
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return 'forbidden'
    case 'EISDIR':
      return 'not_a_file'
    default:
      return 'io_error'
  }
}
