import type { KeysetBackend, KeysetSnapshot, LastGoodSnapshot } from '../../lib/backends/backend.js'
import { BackendError, CasConflictError } from '../../lib/errors.js'

/** Re-reads of the copy after another writer's copy write: the keyset's own check-and-set decides who wins. */
const COPY_ATTEMPTS = 5

/**
 * The keyset backend `keyset` with its last good copy kept in `makeCopy()`, a place of its own (the
 * Secret `cbc-jwt-last-good`, the Vault path `…-last-good`, the sibling `….last-good.json`), so
 * the copy survives the deletion of the object it backs up and `keyset restore` can put it back.
 *
 * Every write goes to both, each with its own check-and-set, in the order that loses nothing
 * if the process dies between them:
 * - a change (check-and-set on the keyset, or unconditional): **the copy first**. A crash
 *   between leaves the copy one write ahead — the validated document the command was writing,
 *   whose projection is already published — never behind the keyset. A keyset write refused by
 *   check-and-set (another writer won) puts the copy back as it was, so the copy never holds a
 *   document that lost.
 * - a create (`keyset init`, or `keyset restore` of a deleted keyset): **the keyset first**. A
 *   create that finds a keyset already there must leave the copy alone; until the create lands
 *   there is no keyset to lose.
 */
export function withLastGoodCopy(keyset: KeysetBackend, makeCopy: () => KeysetBackend): KeysetBackend {
  // Made on first use: a read-only command never connects to it.
  let made: KeysetBackend | undefined
  const copyBackend = () => (made ??= makeCopy())
  async function readCopy(): Promise<KeysetSnapshot | undefined> {
    try {
      return await copyBackend().read()
    } catch (err) {
      if (err instanceof BackendError && err.reason === 'not_found') return undefined
      throw err
    }
  }

  /** Makes the copy hold `text`; returns what it held before (undefined: nothing) and whether it wrote. */
  async function writeCopy(text: string): Promise<{ before: KeysetSnapshot | undefined; written: KeysetSnapshot | undefined }> {
    for (let attempt = 1; ; attempt++) {
      const before = await readCopy()
      if (before?.text === text) return { before, written: undefined }
      try {
        return { before, written: await copyBackend().write(text, before ? before.version : null) }
      } catch (err) {
        if (!(err instanceof CasConflictError) || attempt >= COPY_ATTEMPTS) throw copyFailed(err, keyset.location)
      }
    }
  }

  function copyFailed(err: unknown, keysetLocation: string): Error {
    const message = `cannot write the last good copy ${copyBackend().location}: ${(err as Error).message}; nothing was written to ${keysetLocation}`
    return err instanceof BackendError ? new BackendError(err.reason, message, { cause: err }) : new BackendError('server_error', message, { cause: err })
  }

  return {
    kind: keyset.kind,
    get location() {
      return keyset.location
    },
    read: () => keyset.read(),
    async write(text, expectedVersion) {
      if (expectedVersion === null) {
        const stored = await keyset.write(text, null)
        try {
          await writeCopy(text)
        } catch (err) {
          throw new BackendError(
            err instanceof BackendError ? err.reason : 'server_error',
            `wrote ${keyset.location}, but not its last good copy ${copyBackend().location} (${(err as Error).message.replace(/; nothing was written to .*$/, '')}): the next cbc-jwt write makes it`,
            { cause: err },
          )
        }
        return stored
      }
      const { before, written } = await writeCopy(text)
      try {
        return await keyset.write(text, expectedVersion)
      } catch (err) {
        if (err instanceof CasConflictError) {
          // Another writer won: the copy goes back to what it held (best effort; a writer that
          // changed it meanwhile owns it now).
          if (before && written)
            await copyBackend()
              .write(before.text, written.version)
              .catch(() => undefined)
        } else if (written && err instanceof Error) {
          // A timeout may have landed the write: the copy keeps the new document, ahead, never behind.
          err.message = `${err.message}; its last good copy ${copyBackend().location} already holds the new keyset`
        }
        throw err
      }
    },
    async readLastGood(): Promise<LastGoodSnapshot> {
      const saved = await readCopy()
      if (!saved) {
        throw new BackendError(
          'not_found',
          `${copyBackend().location}: no last good copy (every change cbc-jwt writes stores one there; none was written through it yet)`,
        )
      }
      let current: KeysetSnapshot | undefined
      let version: string | null | undefined = null
      try {
        current = await keyset.read()
        version = current.version
      } catch (err) {
        if (!(err instanceof BackendError)) throw err
        // Deleted (or emptied): the restore creates it. Oversized garbage: overwritten unconditionally.
        if (err.reason === 'invalid_keyset') version = undefined
        else if (err.reason !== 'not_found') throw err
      }
      return { text: saved.text, current: current?.text, version, location: copyBackend().location }
    },
    async close() {
      await Promise.all([keyset.close(), made?.close()])
    },
  }
}
