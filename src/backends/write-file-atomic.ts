import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

/**
 * Replaces `file` so that a reader sees the old content or the new, never a mix: a temp file
 * in the same directory, fsync, rename, fsync of the directory. The original's mode is kept;
 * a new file is created 0600 (it holds private keys). A symlink is followed, so the file it
 * points at is replaced and the link survives. With `exclusive`, the file must not exist: the
 * temp file is hard-linked into place (link(2) fails with EEXIST, atomically) instead of renamed.
 */
export async function writeFileAtomic(file: string, content: string, opts: { exclusive?: boolean } = {}): Promise<void> {
  const target = await fs.promises.realpath(file).catch(() => path.resolve(file))
  const mode = await fs.promises.stat(target).then((s) => s.mode & 0o7777, () => 0o600)
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${crypto.randomBytes(6).toString('hex')}.tmp`)
  const handle = await fs.promises.open(tmp, 'wx', mode)
  try {
    await handle.writeFile(content)
    await handle.chmod(mode)
    await handle.sync()
  } catch (err) {
    await handle.close()
    await fs.promises.rm(tmp, { force: true })
    throw err
  }
  await handle.close()
  try {
    if (opts.exclusive) await fs.promises.link(tmp, target)
    else await fs.promises.rename(tmp, target)
  } catch (err) {
    await fs.promises.rm(tmp, { force: true })
    throw err
  }
  if (opts.exclusive) await fs.promises.rm(tmp, { force: true })
  const dirHandle = await fs.promises.open(path.dirname(target), 'r')
  try {
    await dirHandle.sync()
  } finally {
    await dirHandle.close()
  }
}
