/**
 * The KV v2 envelopes, read strictly: anything that is not the documented shape is
 * `undefined` here and `bad_response` above.
 *
 * Read (`GET /v1/{mount}/data/{path}`), 200 — and 404 when the latest version is deleted or
 * destroyed, with `data.data: null` and the metadata still present:
 *   { "data": { "data": {…} | null,
 *               "metadata": { "created_time", "custom_metadata", "deletion_time": "" | RFC 3339,
 *                             "destroyed": bool, "version": n } }, … }
 * Write (`POST` same path), 200: { "data": { "created_time", "deletion_time", "destroyed", "version": n }, … }
 */
export interface Kv2Version {
  /** The secret's fields, or null when the version is deleted or destroyed. */
  fields: Record<string, unknown> | null
  version: number
  /** Null fields are a destroyed version, else a deleted one: what a read failure names. */
  destroyed: boolean
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

const isVersion = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0

export function parseReadEnvelope(json: unknown): Kv2Version | undefined {
  if (!isObject(json) || !isObject(json.data)) return undefined
  const { data: fields, metadata } = json.data
  if (!isObject(metadata) || !isVersion(metadata.version)) return undefined
  if (fields !== null && !isObject(fields)) return undefined
  // Whether the version is deleted is Vault's to decide, by its own clock: one whose
  // deletion_time is still ahead (`delete_version_after`) is served with 200 and its data, a
  // deleted one comes as a 404 with null data. So null data is the only sign read here.
  return { fields, version: metadata.version, destroyed: metadata.destroyed === true }
}

export function parseWriteEnvelope(json: unknown): number | undefined {
  if (!isObject(json) || !isObject(json.data)) return undefined
  return isVersion(json.data.version) && json.data.version > 0 ? json.data.version : undefined
}

/** `auth` of a login answer: the token and its lease in seconds (0: no expiry). */
export interface LoginAuth {
  clientToken: string
  leaseSeconds: number
  renewable: boolean
}

export function parseLoginEnvelope(json: unknown): LoginAuth | undefined {
  if (!isObject(json) || !isObject(json.auth)) return undefined
  const { client_token: clientToken, lease_duration: lease, renewable } = json.auth
  if (typeof clientToken !== 'string' || clientToken === '' || !isVersion(lease)) return undefined
  return { clientToken, leaseSeconds: lease, renewable: renewable === true }
}
