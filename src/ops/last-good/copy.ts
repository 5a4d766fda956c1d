import type { KeysetBackend, KeysetSnapshot, LastGoodSnapshot } from '../../lib/backends/backend.js'
import { BackendError, CasConflictError } from '../../lib/errors.js'
import { loadKeyset, parseKeysetText } from '../../lib/keyset/load.js'

/**
 * Rounds of reading and writing the copy before giving up while other writers keep changing it
 * (the keyset's own check-and-set decides who wins; the copy only follows).
 */
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
 *   check-and-set (another writer won) levels the copy with the keyset that won, so the copy
 *   does not keep a document that lost.
 * - a create (`keyset init`, or `keyset restore` of a deleted keyset): **the keyset first**. A
 *   create that finds a keyset already there must leave the copy alone; until the create lands
 *   there is no keyset to lose.
 *
 * Racing writers overwrite each other's copy before their keyset writes are decided, so every
 * writer levels the copy once its own keyset write is decided (`levelCopy`): the copy ends
 * holding what the keyset holds, whichever writer finishes last. Only a document that loads is
 * ever copied from the keyset: a keyset broken outside cbc-jwt never reaches its last good copy.
 * `now` is the clock that document is loaded at (the command's).
 */
export function withLastGoodCopy(keyset: KeysetBackend, makeCopy: () => KeysetBackend, now: () => number = Date.now): KeysetBackend {
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

  /** Makes the copy hold `text` ahead of the keyset write; returns what it held before and what it wrote (undefined: nothing). */
  async function writeCopyAhead(text: string): Promise<{ before: KeysetSnapshot | undefined; written: KeysetSnapshot | undefined }> {
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

  /** Whether `text` is a keyset document that loads: only such a document is copied from the keyset. */
  function loads(text: string): boolean {
    try {
      loadKeyset(parseKeysetText(text), now())
      return true
    } catch {
      return false
    }
  }

  /**
   * Makes the copy hold what the keyset holds, starting from `target` (the text this process
   * just wrote; undefined: read the keyset). A process that writes the copy reads the keyset
   * again afterwards: if another writer's keyset write landed in between, the copy may now be
   * behind it, so it levels again to that. A process that finds the copy already level writes
   * nothing, and a writer that changes the keyset later levels after its own write.
   * Returns false, with nothing written, when the keyset does not hold a document that loads;
   * true when the copy holds a good document (the keyset's, or the one before it was broken).
   */
  async function levelCopy(target?: string): Promise<boolean> {
    for (let attempt = 1; attempt <= COPY_ATTEMPTS; attempt++) {
      if (target === undefined) {
        const current = (await keyset.read()).text
        if (!loads(current)) return false
        target = current
      }
      const copy = await readCopy()
      if (copy?.text === target) return true
      try {
        await copyBackend().write(target, copy ? copy.version : null)
      } catch (err) {
        if (!(err instanceof CasConflictError)) throw err
        target = undefined
        continue
      }
      const after = (await keyset.read()).text
      if (after === target || !loads(after)) return true
      target = after
    }
    throw new CasConflictError(`${copyBackend().location}: other writers kept changing it; the next cbc-jwt write levels it with ${keyset.location}`)
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
    ...(keyset.exclusive ? { exclusive: keyset.exclusive.bind(keyset) } : {}),
    async write(text, expectedVersion) {
      if (expectedVersion === null) {
        const stored = await keyset.write(text, null)
        try {
          await levelCopy(text)
        } catch (err) {
          throw new BackendError(
            err instanceof BackendError ? err.reason : 'server_error',
            `wrote ${keyset.location}, but not its last good copy ${copyBackend().location} (${(err as Error).message.replace(/; nothing was written to .*$/, '')}): the next cbc-jwt write makes it`,
            { cause: err },
          )
        }
        return stored
      }
      const { before, written } = await writeCopyAhead(text)
      let stored: KeysetSnapshot
      try {
        stored = await keyset.write(text, expectedVersion)
      } catch (err) {
        if (err instanceof CasConflictError) {
          // Another writer won: the copy follows the keyset that won — or, when what won does
          // not load (written outside cbc-jwt), goes back to what it held, unless a writer
          // changed it meanwhile. Best effort: the conflict is what the caller must see (it
          // re-reads and re-applies), and its next write levels the copy.
          const levelled = await levelCopy().catch(() => false)
          if (!levelled && before && written)
            await copyBackend()
              .write(before.text, written.version)
              .catch(() => undefined)
        } else if (written && err instanceof Error) {
          // A timeout may have landed the write: the copy keeps the new document, ahead, never behind.
          err.message = `${err.message}; its last good copy ${copyBackend().location} already holds the new keyset`
        }
        throw err
      }
      // The keyset holds `text`: a racing writer may have overwritten the copy since it was
      // written above. Best effort: the keyset write stands either way, and a failure here must
      // not make the operator run a change (a rotation) twice.
      await levelCopy(text).catch(() => undefined)
      return stored
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
