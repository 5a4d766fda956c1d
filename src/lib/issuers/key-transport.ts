/**
 * Where a trusted issuer's keys may be read from. Over https; or over plain http to this
 * host's own loopback (`localhost`, 127.0.0.0/8, `[::1]`): an identity provider beside the
 * service — a sidecar, a development or test provider — whose traffic never leaves the
 * machine, so no one on a network path can replace its keys. Anywhere else, keys read over
 * plain HTTP could be replaced on the way.
 */
export function keysMayBeReadFrom(url: URL): boolean {
  return url.protocol === 'https:' || isLoopbackHttp(url)
}

/** Plain http to this host's loopback. The URL parser has already normalised `127.1` and the like. */
export function isLoopbackHttp(url: URL): boolean {
  if (url.protocol !== 'http:') return false
  const host = url.hostname
  return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
}
