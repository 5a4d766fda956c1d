import fs from 'node:fs'
import path from 'node:path'
import type { BackendErrorReason } from '../reasons.js'
import type { WatchLogger } from './backend.js'
import { watchFailures } from './watch-failures.js'

export interface KeysetFileWatchOptions {
  /** Change callbacks are coalesced into at most one per this many ms. */
  minChangeIntervalMs: number
  /** After this long watching the file itself, a read tries the directory watch again. */
  busyProbeMs: number
  /** The coalesced callback: read the keyset again. */
  onChange: () => void
  /** Called at once for every event that can matter, before the coalescing (the keyring counts them). */
  onEvent?: (() => void) | undefined
  /**
   * Each attempt at the watch that the system refuses (`fs.watch` throws: `ENOSPC` when the
   * inotify watch limit is used up, `EACCES`), with its bounded reason: reads may all succeed
   * meanwhile, and changes wait for the interval read.
   */
  onFailure?: ((reason: BackendErrorReason) => void) | undefined
  /** `watch_failed` once per failing streak, `watch_resumed` when it ends. */
  logger?: WatchLogger | undefined
}

export interface KeysetFileWatch {
  /** Called by every read: re-arms a watch that went stale; after a busy neighbour, tries the directory again. */
  check(): void
  close(): void
}

/** Events this close together are one change (a rename is several inotify events). */
const COALESCE_MS = 20
/** A neighbour that sends this many events within `BUSY_WINDOW_MS` is busy. */
const BUSY_EVENTS = 512
const BUSY_WINDOW_MS = 1000
/** While the file itself is watched, how often its path is looked at (a swap that deletes nothing). */
const IDENTITY_POLL_MS = 1000

/**
 * Milliseconds on a monotonic clock: every interval here is measured on it. On the wall clock,
 * a step back (NTP, a resumed VM) put the last change in the future, and the coalescing timer,
 * armed for the whole step, held every change until the clock caught up.
 */
const elapsedMs = (): number => performance.now()

/**
 * Watches a keyset path for changes: the kubelet's `..data` swap, a rename over the file, an
 * in-place write, the directory deleted or not there yet.
 *
 * A watch on the file alone follows the old inode into a deleted directory and goes quiet, so
 * the *directory* is watched (or, while it is missing, its nearest existing ancestor). Only
 * events naming the keyset file or `..data` matter; a neighbour's are dropped by name before
 * any syscall. What is left is the kernel delivering each neighbour event to the process — a
 * few µs each, and a neighbour written at full speed sends hundreds of thousands a second. So
 * a neighbour that busy (`BUSY_EVENTS` within `BUSY_WINDOW_MS`) switches the watch to the file
 * itself (its inode, through any symlinks), re-armed on every event, with a look at the path
 * every `IDENTITY_POLL_MS` for the changes no event of that inode announces (a symlink turned
 * to another file, the file appearing). The neighbour then costs nothing; a read after
 * `busyProbeMs` tries the directory again.
 */
export function watchKeysetFile(target: string, opts: KeysetFileWatchOptions): KeysetFileWatch {
  const dir = path.dirname(target)
  const relevant = new Set([path.basename(target), '..data'])
  let watcher: fs.FSWatcher | undefined
  let mode: 'directory' | 'file' = 'directory'
  let watchedDir: string | undefined
  /** dev:ino:birthtime of the watched directory, to tell a recreated directory from the old one. */
  let watchedId: string | undefined
  /** File mode: the inode watched (dev:ino), and its last seen mtime:ctime:size. */
  let fileInode: string | undefined
  let fileVersion: string | undefined
  let fileSince = 0
  let pollTimer: NodeJS.Timeout | undefined
  let neighbourEvents = 0
  let sampleStart = 0
  let changeTimer: NodeJS.Timeout | undefined
  let lastChangeAt = Number.NEGATIVE_INFINITY
  let rearmTimer: NodeJS.Timeout | undefined
  /** Attempts at the directory watch the system refused in a row (watch-failures.ts). */
  const failures = watchFailures(target, opts.logger, opts.onFailure, elapsedMs)
  let closed = false

  /** Replaces the watch; the new one is in place before the old one goes, so no event falls between. */
  function replaceWatcher(next: fs.FSWatcher | undefined) {
    const old = watcher
    watcher = next
    old?.close()
  }

  function relevantEvent() {
    opts.onEvent?.()
    changed()
  }

  /** True when the watch is in place. */
  function armDirectory(): boolean {
    if (closed) return false
    stopPolling()
    mode = 'directory'
    neighbourEvents = 0
    sampleStart = elapsedMs()
    let candidate = dir
    while (!fs.existsSync(candidate) && path.dirname(candidate) !== candidate) candidate = path.dirname(candidate)
    try {
      // Identity first, then the watch: if the directory is replaced in between, the next
      // check sees a mismatch and re-arms (the other order could miss the replacement).
      watchedId = identity(candidate)
      const own = path.basename(candidate)
      // While watching an ancestor, only the next name on the way to the keyset's directory can be it appearing.
      const toward = candidate === dir ? undefined : path.relative(candidate, dir).split(path.sep)[0]
      const w = fs.watch(candidate, { persistent: false }, (_event, name) => {
        // A neighbour's event in the keyset's own directory is dropped by its name alone, before
        // any syscall: a file rewritten at full speed beside the keyset must cost next to nothing.
        if (candidate === dir && name !== null && name !== own && !relevant.has(name)) {
          if (++neighbourEvents >= BUSY_EVENTS) neighbourSample(w)
          return
        }
        // So is an ancestor's neighbour (the service's own log beside a missing volume): each
        // re-read would fail, be counted and logged, and that log line would prompt the next.
        if (toward !== undefined && name !== null && name !== own && name !== toward) return
        // While watching an ancestor, an event left may be our directory appearing. An event named
        // after the watched directory itself is its deletion or move: the watch is dead even if
        // a new directory already stands at the same path (often with the same inode number).
        const rearm = stale() || name === own
        if (rearm) scheduleRearm()
        // A null name (some platforms) or an ancestor's event may be ours: let it through.
        if (rearm || candidate !== dir || name === null || relevant.has(name)) relevantEvent()
      })
      w.on('error', () => scheduleRearm())
      replaceWatcher(w)
      watchedDir = candidate
    } catch (err) {
      replaceWatcher(undefined)
      failures.failed(err)
      scheduleRearm()
      return false
    }
    failures.succeeded()
    return true
  }

  /** Every `BUSY_EVENTS` neighbour events: that many within the window means the file alone is watched. */
  function neighbourSample(from: fs.FSWatcher) {
    const now = elapsedMs()
    const busy = now - sampleStart < BUSY_WINDOW_MS
    neighbourEvents = 0
    sampleStart = now
    // Only from the watch in force (a closed one may still deliver what the kernel had queued),
    // and only when the file is there to be watched; else the directory stays the way to see it.
    if (busy && from === watcher && mode === 'directory' && fileStat() !== undefined) armFile()
  }

  function armFile() {
    if (closed) return
    mode = 'file'
    fileSince = elapsedMs()
    const st = fileStat()
    fileInode = st && `${st.dev}:${st.ino}`
    fileVersion = st && `${st.mtimeMs}:${st.ctimeMs}:${st.size}`
    let next: fs.FSWatcher | undefined
    try {
      // Through the symlinks to the file itself: a kubelet swap deletes the old file, a rename
      // over the path unlinks it, an in-place write modifies it — each an event of this inode.
      next = fs.watch(target, { persistent: false }, () => {
        if (!lookAtFile()) relevantEvent()
      })
      next.on('error', () => lookAtFile())
    } catch {
      next = undefined
    }
    replaceWatcher(next)
    if (!pollTimer) {
      pollTimer = setInterval(lookAtFile, IDENTITY_POLL_MS)
      pollTimer.unref()
    }
  }

  /**
   * File mode: what the path names now. Another file (or none) → a change, and the new file is
   * watched. The same file changed without an event reaching us → a change. True when it called
   * the change itself.
   */
  function lookAtFile(): boolean {
    if (closed || mode !== 'file') return false
    const st = fileStat()
    const inode = st && `${st.dev}:${st.ino}`
    const version = st && `${st.mtimeMs}:${st.ctimeMs}:${st.size}`
    if (inode !== fileInode) {
      relevantEvent()
      armFile()
      return true
    }
    if (version === fileVersion) return false
    fileVersion = version
    relevantEvent()
    return true
  }

  function fileStat(): fs.Stats | undefined {
    try {
      return fs.statSync(target)
    } catch {
      return undefined
    }
  }

  function stopPolling() {
    if (pollTimer) clearInterval(pollTimer)
    pollTimer = undefined
  }

  function stale(): boolean {
    return watchedDir !== dir || identity(dir) !== watchedId
  }

  /** Coalesces a burst of events into one callback, at most one per `minChangeIntervalMs` (trailing). */
  function changed() {
    if (closed || changeTimer) return
    const wait = Math.max(COALESCE_MS, lastChangeAt + opts.minChangeIntervalMs - elapsedMs())
    changeTimer = setTimeout(() => {
      changeTimer = undefined
      lastChangeAt = elapsedMs()
      opts.onChange()
    }, wait)
    changeTimer.unref()
  }

  function scheduleRearm() {
    if (closed || rearmTimer) return
    rearmTimer = setTimeout(() => {
      rearmTimer = undefined
      // A read catches what changed while nothing watched; none while the watch still fails
      // (the interval read goes on).
      if (armDirectory()) changed()
    }, failures.retryDelayMs())
    rearmTimer.unref()
  }

  armDirectory()
  return {
    check() {
      if (closed) return
      if (mode === 'file') {
        // The neighbour may have gone quiet: the directory again (it switches back if not).
        if (elapsedMs() - fileSince >= opts.busyProbeMs) armDirectory()
        else lookAtFile()
      } else if (!rearmTimer && stale()) {
        // A retry already pending keeps its backoff: reads do not hurry a refused watch.
        armDirectory()
      }
    },
    close() {
      closed = true
      replaceWatcher(undefined)
      stopPolling()
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
