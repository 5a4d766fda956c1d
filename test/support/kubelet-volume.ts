import fs from 'node:fs'
import path from 'node:path'

/**
 * A Kubernetes secret volume, laid out and updated exactly as the kubelet's AtomicWriter
 * does it (pkg/volume/util/atomic_writer.go):
 *
 *   dir/..2026_11_25_21_16_00.123456789/jwt-keyset   the payload, in a timestamped dir
 *   dir/..data -> ..2026_11_25_21_16_00.123456789     swapped by rename(2) of ..data_tmp
 *   dir/jwt-keyset -> ..data/jwt-keyset               user-visible symlink, created once
 *
 * An update writes a new timestamped dir, points `..data_tmp` at it, renames `..data_tmp`
 * over `..data` (atomic), then deletes the old timestamped dir. A watcher on the file itself
 * sees nothing useful: the inode it watched is deleted with the old dir.
 */
export class KubeletVolume {
  readonly dir: string
  private seq = 0

  constructor(dir: string) {
    this.dir = dir
    fs.mkdirSync(dir, { recursive: true })
  }

  /** Path of the user-visible file for `key`, the path a pod would be configured with. */
  file(key = 'jwt-keyset'): string {
    return path.join(this.dir, key)
  }

  /** Publishes a new payload (every key of the secret) atomically. */
  write(payload: Record<string, string>): void {
    const dataLink = path.join(this.dir, '..data')
    const oldTarget = fs.existsSync(dataLink) ? fs.readlinkSync(dataLink) : undefined
    const stamp = new Date().toISOString().replace(/[-:T]/g, '_').replace('Z', '')
    const tsDir = `..${stamp}${String(this.seq++).padStart(6, '0')}`
    fs.mkdirSync(path.join(this.dir, tsDir), { mode: 0o755 })
    for (const [name, content] of Object.entries(payload)) {
      fs.writeFileSync(path.join(this.dir, tsDir, name), content, { mode: 0o644 })
    }
    const tmpLink = path.join(this.dir, '..data_tmp')
    fs.rmSync(tmpLink, { force: true })
    fs.symlinkSync(tsDir, tmpLink)
    fs.renameSync(tmpLink, dataLink)
    for (const name of Object.keys(payload)) {
      const visible = path.join(this.dir, name)
      if (!isSymlink(visible)) fs.symlinkSync(path.join('..data', name), visible)
    }
    if (oldTarget && oldTarget !== tsDir) fs.rmSync(path.join(this.dir, oldTarget), { recursive: true, force: true })
  }

  /** Writes a keyset document (object or raw text) as the `jwt-keyset` key of the secret. */
  writeKeyset(doc: unknown): void {
    this.write({ 'jwt-keyset': typeof doc === 'string' ? doc : JSON.stringify(doc, null, 2) })
  }

  /** Removes the whole volume, as when the secret is deleted or the mount goes away. */
  remove(): void {
    fs.rmSync(this.dir, { recursive: true, force: true })
  }
}

function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink()
  } catch {
    return false
  }
}
