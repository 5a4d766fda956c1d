import type { ApiResult } from './api.js'

/** A Secret as the API server answers it; sent back whole, so a write changes its keys and nothing else. */
export interface Secret {
  apiVersion?: string
  kind?: string
  metadata: { name: string; namespace?: string; resourceVersion: string; [k: string]: unknown }
  data?: Record<string, string>
  [k: string]: unknown
}

/** A write the API server took: the Secret as stored, or (a 2xx whose body is not a Secret) as read back after, if it could be. */
export type PutAnswer = { stored: Secret } | { landed: Secret | undefined; status: number }

/** The caller's errors for a PUT not taken: 409 (another writer changed the Secret since it was read), any other status. */
export interface PutRefusals {
  conflict(): Error
  refused(res: ApiResult): Error
}

/**
 * PUTs `body` — the Secret as read, its data changed — with the `resourceVersion` it was read
 * at, which is the API server's check-and-set. One rule for every Secret cbc-jwt writes (the
 * keyset's, the projection's, the last good copy's): a 200 means the write landed even when a
 * proxy or webhook in front of the API rewrote the answer, so it is never reported as a
 * failure; the Secret is then read back for its version.
 */
export async function putSecret(
  call: (method: 'PUT', path: string, body: unknown) => Promise<ApiResult>,
  target: { path: string; body: Secret; readBack: () => Promise<Secret | undefined> },
  refusals: PutRefusals,
): Promise<PutAnswer> {
  const res = await call('PUT', target.path, target.body)
  if (res.status === 409) throw refusals.conflict()
  if (res.status !== 200 && res.status !== 201) throw refusals.refused(res)
  return writeAnswer(res, target.readBack)
}

/**
 * What a write the API server took (a PUT, or the POST of a create) left stored, by the same
 * rule: the Secret it answered, else — a proxy or webhook rewrote the answer, and the write
 * landed all the same — the Secret read back after it, if it could be.
 */
export async function writeAnswer(res: ApiResult, readBack: () => Promise<Secret | undefined>): Promise<PutAnswer> {
  const stored = res.json as Secret | undefined
  if (stored?.kind === 'Secret' && typeof stored.metadata?.resourceVersion === 'string') return { stored }
  return { landed: await readBack().catch(() => undefined), status: res.status }
}
