import { redactSecrets } from '../http/redact.js'

/**
 * The one way foreign text — a Kubernetes Status message, a Vault error, a line of someone's
 * log, a claim — reaches a terminal or a log line: secrets removed first, then every character
 * outside printable ASCII escaped, then bounded.
 *
 * Escaping, not stripping: an ESC/CSI/OSC sequence, a C1 control (U+009B is a CSI on its own),
 * a bidi override (U+202E) or a zero-width character can rewrite or hide what an operator reads,
 * so each is shown as `\xNN` or `\uNNNN` (a backslash as `\\`, so the escaped text reads one way
 * only). Redaction comes before the cut, so a secret across the cut can never survive as all but
 * its last characters; the cut never splits an escape.
 */

/** A bound on foreign text in a message when the caller names none: enough for a cause, not a flood. */
export const DEFAULT_FOREIGN_TEXT_CHARS = 300

export interface PrintableOptions {
  /** The longest result, in characters, before `...` is appended. @default 300 */
  max?: number
  /** Strings removed first, each replaced by `[redacted]` (ignored when shorter than 4 characters). */
  secrets?: readonly string[]
}

const UNSAFE = /[^\x20-\x5b\x5d-\x7e]/

/** `text` with secrets redacted, everything outside printable ASCII escaped, and bounded. */
export function printable(text: string, options: PrintableOptions = {}): string {
  const max = options.max ?? DEFAULT_FOREIGN_TEXT_CHARS
  const redacted = redactSecrets(text, options.secrets ?? [])
  if (!UNSAFE.test(redacted)) return redacted.length > max ? `${redacted.slice(0, max)}...` : redacted
  let out = ''
  for (let i = 0; i < redacted.length; i++) {
    const code = redacted.charCodeAt(i)
    const piece =
      code === 0x5c
        ? '\\\\'
        : code >= 0x20 && code <= 0x7e
          ? redacted[i]!
          : code <= 0xff
            ? `\\x${code.toString(16).padStart(2, '0')}`
            : `\\u${code.toString(16).padStart(4, '0')}`
    if (out.length + piece.length > max) return `${out}...`
    out += piece
  }
  return out
}

/**
 * JSON for a terminal: the same document as `JSON.stringify`, with every character outside
 * printable ASCII written as a `\uNNNN` escape. `JSON.stringify` escapes C0 controls only: DEL,
 * C1 controls (U+009B is a CSI by itself) and bidi overrides would reach the terminal raw.
 * A JSON reader gets exactly the same values.
 */
export function asciiJson(value: unknown, space?: number): string {
  return JSON.stringify(value, null, space).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}
