import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { printable } from '../logging/sanitize.js'
import { readLockText } from './read-bounded.js'

/** Another host's abandoned temp directory is removed once it is this old (its pid means nothing here). */
const ABANDONED_AFTER_MS = 10 * 60_000
/** Names which host made a temp directory, so a pid is only ever checked on the host it belongs to. */
const HOST_TAG = crypto.createHash('sha256').update(os.hostname()).digest('hex').slice(0, 8)

/**
 * Replaces `file` so that a reader sees the old content or the new, never a mix — and so does
 * whoever looks after the writer was killed (`kill -9`, OOM, power loss) at any instant.
 *
 * 1. The new content goes to a temp file inside a private directory made next to `file`
 *    (`.<name>.tmp-<host>-<pid>-XXXXXX`, mode 0700, so on the same filesystem and renamable
 *    into place). The keyset holds private keys: a temp file in the keyset's own directory
 *    would be exposed, if the writer died, with whatever mode it had at that instant — and it
 *    must carry the target's mode (0640 stays 0640) by the time it is renamed. Inside a 0700
 *    directory no instant exposes it, whatever its mode.
 * 2. fsync of the file, then rename(2) over the target (atomic), then fsync of the directory
 *    so the rename itself survives a power loss. With `exclusive`, the file must not exist:
 *    link(2) puts the temp file in place instead, failing with EEXIST atomically.
 * 3. The temp directory is removed. A writer killed before that leaves it behind (private);
 *    every write first removes those of the same file whose writer is gone (a pid of this host
 *    no longer running) or that are older than 10 minutes (another host's, on shared storage).
 *
 * With `beforeReplace`, the rename (or link) and that check run under the file's write lock
 * (`.<name>.lock`, `withLock`), so a check-and-set is one step for every process that
 * writes the file this way: two CLIs that read the same version cannot both pass the check
 * and both replace the file, the second silently dropping the first's change.
 *
 * The original's mode, owner and group are kept — run as root (`sudo cbc-jwt revoke …`) on a
 * keyset owned by the service user, the service can still read the result; when the owner
 * cannot be kept (not root, and the file belongs to someone else) the write is refused with
 * `OwnerNotKeptError` and the file is left as it was. A new file is created with
 * `newFileMode` (default 0600) and the writer's owner — or, with `newFileOwnerOf`, that file's
 * owner and group when the writer may give them (root): the projection and last good copy a
 * `sudo cbc-jwt` creates beside a keyset belong to the keyset's owner, who writes them next. With `noWiderThan`
 * (the last good copy: the keyset's own private keys; the projection: who may write it decides
 * what verifiers trust), an existing file open to more than the keyset file is refused
 * (`OwnerNotKeptError`), never kept as it is (`WiderLimit`), and so is a symlink another user
 * planted at it in a shared folder (`refusePlantedLink`). A symlink is followed, so the file it
 * points at is replaced (created, when the link dangles) and the link survives.
 */
export async function writeFileAtomic(
  file: string,
  content: string,
  opts: {
    exclusive?: boolean
    newFileMode?: number
    newFileOwnerOf?: string | undefined
    noWiderThan?: WiderLimit | undefined
    beforeReplace?: () => Promise<void>
    lockTimeoutMs?: number
  } = {},
): Promise<void> {
  if (opts.noWiderThan !== undefined) await refusePlantedLink(file)
  const target = writeTarget(file)
  const dir = path.dirname(target)
  const name = path.basename(target)
  const existing = await fs.promises.stat(target).catch(() => undefined)
  if (existing && opts.noWiderThan !== undefined) await refuseWider(target, existing, opts.noWiderThan)
  const ownerOf = existing || opts.newFileOwnerOf === undefined ? undefined : await fs.promises.stat(opts.newFileOwnerOf).catch(() => undefined)
  const mode = existing ? existing.mode & 0o7777 : (opts.newFileMode ?? 0o600)
  await removeAbandoned(dir, name)
  const tmpDir = await fs.promises.mkdtemp(path.join(dir, `.${name}.tmp-${HOST_TAG}-${process.pid}-`))
  try {
    const tmp = path.join(tmpDir, name)
    const handle = await fs.promises.open(tmp, 'wx', 0o600)
    try {
      await handle.writeFile(content)
      if (existing) await keepOwner(handle, existing, target)
      // Best effort: a writer that may not give that owner keeps its own, as for any new file.
      else if (ownerOf) await handle.chown(ownerOf.uid, ownerOf.gid).catch(() => {})
      await handle.chmod(mode)
      await handle.sync()
    } finally {
      await handle.close()
    }
    const replace = async () => {
      await opts.beforeReplace?.()
      if (opts.exclusive) await fs.promises.link(tmp, target)
      else await fs.promises.rename(tmp, target)
    }
    await withLock(tmpDir, target, 'lock', opts.lockTimeoutMs ?? LOCK_TIMEOUT_MS, replace)
    await syncDirectory(dir)
  } finally {
    // Best effort: what a failure here leaves is private, and the next write removes it.
    await fs.promises.rm(tmpDir, { recursive: true, force: true }).catch(() => {})
  }
}

/** As many links as the kernel follows in one path (Linux MAXSYMLINKS) before ELOOP. */
const MAX_SYMLINKS = 40

/**
 * The file a write to `file` replaces: its real path, every symlink followed (its own and its
 * folders'); for a file not there yet, its folder's real path and its name — a dangling symlink
 * followed to the file it names, which the write then creates (the link stays). Two paths with
 * the same write target are one file, however each is spelled — how a configuration that makes
 * two places one is caught.
 */
export function writeTarget(file: string): string {
  let resolved = path.resolve(file)
  for (let links = 0; links < MAX_SYMLINKS; links++) {
    try {
      return fs.realpathSync(resolved)
    } catch {
      const link = readLinkOrUndefined(resolved)
      if (link === undefined) break
      resolved = path.resolve(path.dirname(resolved), link)
    }
  }
  try {
    return path.join(fs.realpathSync(path.dirname(resolved)), path.basename(resolved))
  } catch {
    return resolved
  }
}

function readLinkOrUndefined(file: string): string | undefined {
  try {
    return fs.readlinkSync(file)
  } catch {
    return undefined // not a symlink, or not there
  }
}

/** The replaced file's owner could not be given to its replacement: nothing was replaced. */
export class OwnerNotKeptError extends Error {
  readonly code = 'EOWNER'
}

/**
 * What an existing file a write replaces may be open to: no more than `file` (the keyset it is a
 * copy or projection of) — its owner (or root), and for group and others only the permissions it grants
 * (group ones only for its own group). Keeping a wider file's owner and mode would hand what is
 * written to whoever made it: another local user who planted the name (or a symlink at it) in a
 * shared folder before the first write.
 */
export interface WiderLimit {
  /** The file whose owner, group and mode bound the replaced one's. */
  file: string
  /**
   * The access that counts: `all` (the last good copy: reading it is reading private keys) or
   * `write` (the projection: public, but whoever may write it feeds verifiers their keys).
   * @default 'all'
   */
  access?: 'all' | 'write'
  /** Owners accepted besides `file`'s (an explicitly configured projection: the running user, root). */
  owners?: readonly number[]
}

/**
 * Refuses to replace `target` when it is open to more than `limit` allows (`WiderLimit`). With no
 * `limit.file` yet (a first `keyset init` writes the projection before the keyset), the bound is
 * the file this writer is about to create: its own, 0600.
 */
async function refuseWider(target: string, existing: fs.Stats, limit: WiderLimit): Promise<void> {
  const uid = process.geteuid?.()
  const gid = process.getegid?.()
  const ref: Pick<fs.Stats, 'uid' | 'gid' | 'mode'> | undefined =
    (await fs.promises.stat(limit.file).catch(() => undefined)) ?? (uid === undefined || gid === undefined ? undefined : { uid, gid, mode: 0o100600 })
  if (ref === undefined) return
  const write = limit.access === 'write'
  const counted = write ? 0o022 : 0o077
  const extra = existing.mode & counted & ~ref.mode
  const foreignGroup = existing.gid !== ref.gid && (existing.mode & counted & 0o070) !== 0
  // Root's own file grants nobody anything root lacks, and no other user can plant one (only
  // root makes a file root's): `keyset init` run as root, then the keyset handed to the service
  // user, leaves such siblings, and the next root write must not be refused for them.
  const owner = existing.uid === ref.uid || existing.uid === 0 || (limit.owners ?? []).includes(existing.uid)
  if (owner && extra === 0 && !foreignGroup) return
  const mode = (st: Pick<fs.Stats, 'uid' | 'gid' | 'mode'>) => `${st.uid}:${st.gid} 0${(st.mode & 0o777).toString(8)}`
  const others = [...new Set(limit.owners ?? [])].filter((uid) => uid !== ref.uid)
  const owners = others.length === 0 ? "that file's owner" : `that file's owner or ${others.map((uid) => (uid === 0 ? 'root' : `uid ${uid}`)).join(' or ')}`
  throw new OwnerNotKeptError(
    write
      ? `${target} (${mode(existing)}) may be written by more than ${path.resolve(limit.file)} (${mode(ref)}) whose projection it is; nothing was replaced: remove it, or give it ${owners} and no write permission for group or others that file lacks`
      : `${target} (${mode(existing)}) is open to more than ${path.resolve(limit.file)} (${mode(ref)}) whose keys it would hold; nothing was replaced: remove it, or give it that file's owner, group and mode`,
  )
}

/**
 * Refuses to follow a symlink at `file` (or one it leads to) that the kernel's protected_symlinks
 * rule would not follow either: in a sticky folder others may write (`/tmp`, a shared 1777
 * folder), one owned by neither this writer nor the folder's owner. Such a link, planted at a
 * name before the first write made it, would lead a root write to any file of root's — which the
 * owner and mode checks see as no wider than a root keyset — and replace it. The write follows
 * links by their resolved path (`writeTarget`), past the kernel's own check, so it checks here.
 */
async function refusePlantedLink(file: string): Promise<void> {
  const writer = process.geteuid?.()
  if (writer === undefined) return
  let at = path.resolve(file)
  for (let links = 0; links < MAX_SYMLINKS; links++) {
    const link = await fs.promises.lstat(at).catch(() => undefined)
    if (!link?.isSymbolicLink()) return
    const folder = path.dirname(at)
    const dir = await fs.promises.stat(folder).catch(() => undefined)
    if (dir !== undefined && (dir.mode & 0o1002) === 0o1002 && link.uid !== writer && link.uid !== dir.uid) {
      throw new OwnerNotKeptError(
        `${at} is a symlink of uid ${link.uid} in the shared folder ${folder} (0${(dir.mode & 0o7777).toString(8)}) that the kernel would not follow either (protected_symlinks); nothing was replaced: remove it, or name the file it points at`,
      )
    }
    at = path.resolve(folder, await fs.promises.readlink(at))
  }
}

/** Gives the temp file the replaced file's owner and group, before it is renamed into place. */
async function keepOwner(handle: fs.promises.FileHandle, original: fs.Stats, target: string): Promise<void> {
  const mine = await handle.stat()
  if (mine.uid === original.uid && mine.gid === original.gid) return
  try {
    await handle.chown(original.uid, original.gid)
  } catch (err) {
    throw new OwnerNotKeptError(
      `cannot keep the owner ${original.uid}:${original.gid} of ${target} (${(err as NodeJS.ErrnoException).code ?? 'chown failed'}); nothing was replaced: run as that user (or as root)`,
      { cause: err },
    )
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.promises.open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** How long a write waits for another live writer's lock before it gives up. */
const LOCK_TIMEOUT_MS = 5000

/** A lock holds a host tag and a pid (`<host>-<pid>-XXXXXX`): anything longer is not one of ours. */
const MAX_LOCK_BYTES = 256

/** Another live writer held the file's write lock for longer than the write would wait: nothing was replaced. */
export class LockTimeoutError extends Error {
  readonly code = 'ELOCKED'
}

/**
 * Runs `work` holding the update lock of `file` (`.<name>.update.lock`): a whole change of a
 * keyset — read, its projection written, the keyset written — made by one process at a time,
 * so that no writer publishes a projection computed from a version another has just replaced
 * (the writes inside still take the write lock, `.<name>.lock`, each). Same rules as the write
 * lock: a dead writer's is taken away, a live one's waited for at most `timeoutMs`.
 */
export async function withUpdateLock<T>(file: string, timeoutMs: number, work: () => Promise<T>): Promise<T> {
  const target = writeTarget(file)
  const dir = path.dirname(target)
  const name = path.basename(target)
  await removeAbandoned(dir, name)
  const tmpDir = await fs.promises.mkdtemp(path.join(dir, `.${name}.tmp-${HOST_TAG}-${process.pid}-`))
  try {
    return await withLock(tmpDir, target, 'update.lock', timeoutMs, work)
  } finally {
    await fs.promises.rm(tmpDir, { recursive: true, force: true }).catch(() => {})
  }
}

/**
 * Runs `work` holding the lock `.<name>.<kind>` of `target`: a hard link to a file in the
 * writer's private `tmpDir` naming its host and pid (link(2) puts it in place whole, or fails
 * with EEXIST). A lock whose writer is gone (a pid of this host no longer running, or another
 * host's older than 10 minutes — the rule of the temp directories) is taken away by renaming it
 * into `tmpDir`; a live one is waited for, at most `timeoutMs`.
 */
async function withLock<T>(tmpDir: string, target: string, kind: string, timeoutMs: number, work: () => Promise<T>): Promise<T> {
  const name = path.basename(target)
  const lock = path.join(path.dirname(target), `.${name}.${kind}`)
  const mine = path.join(tmpDir, `${name}.${kind}`)
  const owner = path.basename(tmpDir).slice(`.${name}.tmp-`.length)
  // Readable by all (it names a host and a pid, nothing else): a writer of another user (the
  // service user after a `sudo cbc-jwt`) must be able to tell whether this one is gone. Set
  // after creation: the umask (077 on a hardened host) would take the mode down to 0600.
  await fs.promises.writeFile(mine, owner, { mode: 0o644, flag: 'wx' })
  await fs.promises.chmod(mine, 0o644)
  const deadline = Date.now() + timeoutMs
  for (let pause = 2; ; pause = Math.min(pause * 2, 50)) {
    try {
      await fs.promises.link(mine, lock)
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const held = await readLockText(lock, MAX_LOCK_BYTES)
    const st = await fs.promises.lstat(lock).catch(() => undefined)
    if (st === undefined) continue // released meanwhile
    // Straight to the next try only on progress: a lock that cannot be read (judged by its age
    // alone) or taken away (a sticky folder) is waited for like a live one, never spun on.
    if (writerGone(held ?? '', st.mtimeMs) && (await takeAway(lock, path.join(tmpDir, `${name}.stale`), held))) continue
    if (Date.now() >= deadline) {
      throw new LockTimeoutError(
        `${target} is being written by another writer (${held === undefined ? 'unreadable lock' : printable(held, { max: 80 })}) for longer than ${timeoutMs} ms; nothing was replaced — if no cbc-jwt writes it any more (killed in another container), remove ${lock}`,
      )
    }
    await new Promise((resolve) => setTimeout(resolve, pause + Math.random() * pause))
  }
  try {
    return await work()
  } finally {
    // Only our own lock: the one whose content names our temp directory.
    if ((await readLockText(lock, MAX_LOCK_BYTES)) === owner) await fs.promises.unlink(lock).catch(() => {})
  }
}

/**
 * Renames a dead writer's lock out of the way; puts it back if what was renamed was, after all, a
 * live writer's new lock. False when it could not be moved (and is still there).
 */
async function takeAway(lock: string, aside: string, stale: string | undefined): Promise<boolean> {
  try {
    await fs.promises.rename(lock, aside)
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' // someone else took it away
  }
  const moved = (await readLockText(aside, MAX_LOCK_BYTES)) ?? stale
  if (moved !== stale) await fs.promises.link(aside, lock).catch(() => {})
  await fs.promises.unlink(aside).catch(() => {})
  return true
}

/** Whether the writer that made a temp directory (or lock) named `tag` (`<host>-<pid>-…`) is gone. */
function writerGone(tag: string, mtimeMs: number): boolean {
  const owner = /^([0-9a-f]{8})-(\d+)-/.exec(tag)
  return (owner?.[1] === HOST_TAG && !running(Number(owner[2]))) || Date.now() - mtimeMs > ABANDONED_AFTER_MS
}

/** Removes the temp directories that killed writers of `name` left in `dir`; never fails the write. */
async function removeAbandoned(dir: string, name: string): Promise<void> {
  const prefix = `.${name}.tmp-`
  const entries = await fs.promises.readdir(dir).catch(() => [] as string[])
  await Promise.all(
    entries
      .filter((entry) => entry.startsWith(prefix))
      .map(async (entry) => {
        const full = path.join(dir, entry)
        const st = await fs.promises.lstat(full).catch(() => undefined)
        if (!st?.isDirectory()) return
        if (writerGone(entry.slice(prefix.length), st.mtimeMs)) {
          await fs.promises.rm(full, { recursive: true, force: true }).catch(() => {})
        }
      }),
  )
}

/** Whether a process with this pid runs on this host (EPERM: it does, as another user). */
function running(pid: number): boolean {
  if (pid === process.pid) return true // a concurrent write of this very process
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
