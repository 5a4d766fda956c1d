import { UsageError } from '../../lib/errors.js'
import { fleetUrl } from './fleet-url.js'
import { KEY_STATUSES, type KeyStatus } from '../../lib/keyset/document.js'
import { loggableKid } from '../../lib/verifier/claims.js'
import type { FleetSource, FleetView, ReplicaState } from './fleet.js'
import { getText } from './http-get.js'

export interface ReplicaFleetOptions {
  /** Base URLs of the replicas, e.g. `http://10.0.0.7:8000`. */
  urls: readonly string[]
  /** Per request. @default 5000 */
  timeoutMs?: number
  /** Clock for keys without a `verifies` field (their `not_after` is compared). @default Date.now */
  now?: () => number
}

/** Larger answers are not the /v1/keys document. */
const MAX_BODY_BYTES = 256 * 1024

/**
 * The fleet asked directly: each replica's `GET /v1/keys`. A replica that does not answer,
 * answers an error, or answers anything that is not the document (garbage, HTML, a proxy's
 * page) is unreachable for the gate — it lacks every key.
 *
 * @example
 * const view = await createReplicaFleet({ urls: ['http://10.0.0.7:8000', 'http://10.0.0.8:8000'] }).read()
 */
export function createReplicaFleet(opts: ReplicaFleetOptions): FleetSource {
  if (opts.urls.length === 0) throw new UsageError('--replica needs at least one URL')
  // One replica named twice (a trailing slash, a repeated flag) is one replica: counted once.
  const named = opts.urls.map((raw) => fleetUrl('--replica', raw, 'http://10.0.0.7:8000').href.replace(/\/+$/, ''))
  const urls = [...new Set(named)]
  const timeoutMs = opts.timeoutMs ?? 5000
  const now = opts.now ?? Date.now
  return {
    // A source, as the operator named it: "3 replicas seen through --replica a, b, c".
    description: `--replica ${urls.join(', ')}`,
    async read(o = {}): Promise<FleetView> {
      const deadline = Math.min(timeoutMs, o.timeoutMs ?? timeoutMs)
      const replicas = await Promise.all(urls.map((url) => readReplica(url, deadline, now())))
      return { source: this.description, replicas }
    },
    members: () => urls.map((url) => createReplicaFleet({ ...opts, urls: [url] })),
  }
}

async function readReplica(url: string, timeoutMs: number, now: number): Promise<ReplicaState> {
  const down = (problem: string): ReplicaState => ({ name: url, reachable: false, problem, keys: new Map(), revokedBefore: undefined })
  const res = await getText(new URL(`${url}/v1/keys`), { timeoutMs, maxBytes: MAX_BODY_BYTES })
  if (!res.ok) return down(/larger than/.test(res.error) ? '/v1/keys answered something that is not the key list' : `unreachable: ${res.error}`)
  const { status, text } = res
  if (status !== 200) return down(`/v1/keys answered HTTP ${status}`)
  const parsed = parseKeys(text, now)
  if (!parsed) return down('/v1/keys answered something that is not the key list')
  return { name: url, reachable: true, ...parsed }
}

/** The /v1/keys body, checked member by member; undefined when it is not that document. */
function parseKeys(text: string, now: number): Pick<ReplicaState, 'keys' | 'revokedBefore' | 'revocationsNewest'> | undefined {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch {
    return undefined
  }
  const d = doc as { keys?: unknown; revoked_before?: unknown; revocations_newest?: unknown; issuer?: unknown }
  if (typeof d !== 'object' || d === null || !Array.isArray(d.keys)) return undefined
  const keys = new Map<string, KeyStatus>()
  for (const k of d.keys as Array<Record<string, unknown>>) {
    // A trusted issuer's key is not the keyset's: its kid may even equal one of ours.
    if (typeof k === 'object' && k !== null && k.issuer !== undefined && k.issuer !== d.issuer) continue
    // A kid no keyset can hold is not the document (and never reaches a terminal).
    if (typeof k !== 'object' || k === null || loggableKid(k.kid) === undefined || !KEY_STATUSES.includes(k.status as KeyStatus)) return undefined
    // The service writes a date or null: anything else is not the document, and is never turned
    // into text (an object without a callable toString, or an array nested deep, throws).
    if (k.not_after != null && typeof k.not_after !== 'string') return undefined
    const verifies = typeof k.verifies === 'boolean' ? k.verifies : k.not_after == null || Date.parse(k.not_after) > now
    if (verifies) keys.set(k.kid as string, k.status as KeyStatus)
  }
  let revokedBefore = 0
  if (typeof d.revoked_before === 'string') revokedBefore = Date.parse(d.revoked_before) / 1000
  else if (d.revoked_before != null) return undefined
  if (!Number.isFinite(revokedBefore)) return undefined
  // Absent from a replica of a version that does not report rules: unknown, so never confirmed.
  let revocationsNewest: number | undefined
  if (d.revocations_newest === null) revocationsNewest = 0
  else if (typeof d.revocations_newest === 'string') revocationsNewest = Date.parse(d.revocations_newest) / 1000
  else if (d.revocations_newest !== undefined) return undefined
  if (revocationsNewest !== undefined && !Number.isFinite(revocationsNewest)) return undefined
  return { keys, revokedBefore, revocationsNewest }
}
