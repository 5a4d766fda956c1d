import type { BackendErrorReason } from '../reasons.js'

/**
 * What the keyring and the CLI need from a secrets backend. A backend moves the keyset
 * document as text; parsing and validation happen above it, once, for every backend.
 */
export interface KeysetSnapshot {
  /** The keyset document, JSON text. */
  text: string
  /**
   * An opaque token that changes whenever the document changes: a content hash for files,
   * `metadata.version` for Vault (which starts again at 1 after `vault kv metadata delete`, so
   * the keyring skips a read only when the text is unchanged too). Used for check-and-set writes.
   */
  version: string
  /**
   * From a write only: something the operator should know although the write landed (an
   * answer that was not what the API should send). One line, no foreign text raw.
   */
  notice?: string | undefined
}

/** A keyset backend's copy of the last document written through it, for `keyset restore`. */
export interface LastGoodSnapshot {
  /** The last good copy, JSON text, as stored (not validated here). */
  text: string
  /** The keyset document stored now, read at the same version; undefined when absent. */
  current: string | undefined
  /**
   * The keyset's version when the copy was read: `write(text, version)` puts the copy back with
   * check-and-set. `null` when no keyset is stored (deleted: the write creates it); undefined
   * when what is stored is unreadable garbage (oversized: the write replaces it unconditionally).
   */
  version: string | null | undefined
  /** Where the copy is, for messages (`kubernetes:cbc/cbc-jwt-last-good#jwt-keyset`). Never a secret. */
  location: string
}

/** Where a backend's change watch (a file's, the Kubernetes API's) says it stopped or came back. */
export interface WatchLogger {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
}

export interface KeysetBackend {
  /** `file` or `vault`. */
  readonly kind: string
  /** Where the keyset lives, for logs and errors: a path or `vault:mount/path`. Never a secret. */
  readonly location: string
  /**
   * Reads the current document. Throws `BackendError` with a bounded `reason` on any failure.
   */
  read(): Promise<KeysetSnapshot>
  /**
   * Writes a new document. With `expectedVersion`, the write fails with `CasConflictError` if
   * the stored document is no longer that version (check-and-set); with `null`, it fails if a
   * keyset exists at all (create-only, so two `keyset init` runs cannot both win). Without
   * it, the write is unconditional. Resolves to what was stored.
   */
  write(text: string, expectedVersion?: string | null): Promise<KeysetSnapshot>
  /**
   * Only for backends that keep a last good copy in a place of its own (the CLI's backends: every
   * document written through them is also stored there): reads that copy, then the keyset it
   * would replace — the keyset may be missing (deleted). Throws `BackendError` `not_found` when
   * there is no copy.
   */
  readLastGood?(): Promise<LastGoodSnapshot>
  /**
   * Runs a whole change (read, projection, write) as the only writer of this location, where the
   * store has no check-and-set spanning several objects of its own (the file backend: a lock
   * file). Without it, a writer could publish a projection computed from a version another
   * writer has just replaced, taking away a key that version already signs with.
   */
  exclusive?<T>(work: () => Promise<T>): Promise<T>
  /**
   * Optional change notifications (the file backend watches its directory). `onChange` may be
   * called spuriously; the keyring re-reads and compares versions. A backend that coalesces
   * events before `onChange` also calls `onEvent` at once, synchronously and cheaply, for every
   * event that may be a change: the keyring then knows a change is pending before the coalesced
   * callback comes, so a token of a key written a moment ago is never refused on an old read.
   * A watch that can fail while reads succeed (the Kubernetes API's, refused by a Role without
   * `list` or `watch`; a file watch the system refuses, `ENOSPC` or `EACCES`) reports each failed attempt to `onFailure`, with its bounded reason: the
   * keyring counts it as a backend error, else changes would silently wait for the interval read.
   */
  watch?(onChange: () => void, onEvent?: () => void, onFailure?: (reason: BackendErrorReason) => void): void
  /** Stops watchers and timers; safe to call twice. */
  close(): Promise<void>
}
