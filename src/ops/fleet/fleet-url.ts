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
  // Paths are appended to it (/metrics, /v1/keys, api/v1/query): a query or fragment would end up before them.
  if (url.search !== '' || url.hash !== '') throw new UsageError(`${flag}: a URL with a query or fragment is refused (give the base URL, e.g. ${example})`)
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`${flag} must be http or https (got ${printable(url.protocol)})`)
  return url
}
