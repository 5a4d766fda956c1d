/** Secrets shorter than this are not searched for: they would blank ordinary words. */
const MIN_SECRET_LENGTH = 4

/**
 * `text` with every occurrence of each secret replaced by `[redacted]`. The outbound
 * client runs every message it reports through this; callers use it for their own
 * messages built from a foreign server's answer.
 *
 * @example
 * redactSecrets('token hvs.ABCDEF rejected', ['hvs.ABCDEF']) // 'token [redacted] rejected'
 */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let out = text
  for (const s of secrets) if (s.length >= MIN_SECRET_LENGTH) out = out.split(s).join('[redacted]')
  return out
}
