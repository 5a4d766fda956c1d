import { UsageError } from '../../lib/errors.js'
import { printable } from '../../lib/logging/sanitize.js'

/**
 * The URL of a replica or a Prometheus, from a flag (`--url`, `--replica`, `--prometheus`): http or https,
 * and without credentials — they would be printed in every line that names the URL, and the
 * requests never send them (a Prometheus behind authentication answers 401: the gate refuses).
 */
export function fleetUrl(flag: '--url' | '--replica' | '--prometheus', raw: string, example: string): URL {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new UsageError(`${flag}: "${printable(raw)}" is not a URL (e.g. ${example})`)
  }
  if (url.username !== '' || url.password !== '') {
    throw new UsageError(`${flag}: a URL with credentials (user:password@) is refused: they are not sent, and would be printed; use a URL that needs none`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`${flag} must be http or https (got ${printable(url.protocol)})`)
  return url
}
