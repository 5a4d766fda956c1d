import { AUTH_FAILURE_REASONS, type AuthFailureReason } from '../../lib/reasons.js'

/** One rejection, as read back from an `auth_rejected` log line. */
export interface RejectionRecord {
  reason: AuthFailureReason
  /**
   * The client id: `client_id` when the token's signature verified, else the
   * `client_id_unverified` the token only *claims* (see `verified`), else null.
   */
  clientId: string | null
  /** False when the id comes from `client_id_unverified` (a token whose signature did not verify). */
  verified: boolean
  /**
   * True when the verified id is the token's `sub` (`client_id_claim: "sub"`: it had neither
   * `client_id` nor `azp`): a rule by client does not match it, one by subject does.
   */
  subject: boolean
  /** ms since the epoch. */
  time: number
  /** The replica, from a `kubectl logs --prefix` prefix (`pod/cbc-jwt-abc/cbc-jwt`), when there is one. */
  source: string | undefined
  remoteAddress: string | undefined
  /** The token's kid as logged (already restricted to the kid grammar by the service). */
  kid: string | undefined
}

export type ClassifiedLine =
  | { kind: 'rejection'; record: RejectionRecord }
  /** A line of the service that is not a rejection (keyset_loaded, request logs, …). */
  | { kind: 'service' }
  /** Not a JSON line of the service: another process's output, a truncated line, garbage. */
  | { kind: 'foreign' }

const REASONS = new Set<string>(AUTH_FAILURE_REASONS)
/** `kubectl logs --prefix`: `[pod/<pod>/<container>] `. */
const KUBECTL_PREFIX = /^\[([^\]\s]{1,300})\] /
/** `kubectl logs --timestamps`: an RFC 3339 time and a space. */
const KUBECTL_TIMESTAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})) /
/** What the service's logger puts on every line (src/server/logger.ts). */
const SERVICE_NAME = 'cbc-jwt'
const MAX_FIELD = 256

/**
 * Classifies one line of log output: a rejection of the service (with its fields), another
 * line of the service, or a foreign line. Field values are only ever returned after a check
 * of their type and length; a line is never returned whole, so nothing is echoed.
 */
export function classifyLine(line: string): ClassifiedLine {
  let rest = line.endsWith('\r') ? line.slice(0, -1) : line
  let source: string | undefined
  const prefix = KUBECTL_PREFIX.exec(rest)
  if (prefix) {
    source = prefix[1]
    rest = rest.slice(prefix[0].length)
  }
  let stamped: number | undefined
  const stamp = KUBECTL_TIMESTAMP.exec(rest)
  if (stamp) {
    stamped = timeOf(stamp[1])
    rest = rest.slice(stamp[0].length)
  }
  if (!rest.startsWith('{')) return { kind: 'foreign' }
  let entry: unknown
  try {
    entry = JSON.parse(rest)
  } catch {
    return { kind: 'foreign' }
  }
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return { kind: 'foreign' }
  const e = entry as Record<string, unknown>
  const isRejection = e.event === 'auth_rejected' && typeof e.reason === 'string' && REASONS.has(e.reason)
  if (!isRejection) return e.service === SERVICE_NAME ? { kind: 'service' } : { kind: 'foreign' }
  const time = timeOf(e.time) ?? stamped
  if (time === undefined) return { kind: 'foreign' }
  const verifiedId = field(e.client_id)
  const claimedId = field(e.client_id_unverified)
  return {
    kind: 'rejection',
    record: {
      reason: e.reason as AuthFailureReason,
      clientId: verifiedId ?? claimedId ?? null,
      verified: verifiedId !== undefined || claimedId === undefined,
      subject: verifiedId !== undefined && e.client_id_claim === 'sub',
      time,
      source,
      remoteAddress: field(e.remote_addr) ?? field(e.remote_address),
      kid: field(e.kid),
    },
  }
}

/** The largest time a Date holds (±100 000 000 days from 1970): past it, printing the time would throw. */
const MAX_TIME_MS = 8.64e15

/**
 * pino writes epoch milliseconds; an ISO string (another formatter) is read too. A time no Date
 * can hold (a hostile 1e308, a 13th month) is no time: the line is then not a rejection.
 */
function timeOf(value: unknown): number | undefined {
  const ms = typeof value === 'number' ? value : typeof value === 'string' ? Date.parse(value) : Number.NaN
  return Number.isFinite(ms) && Math.abs(ms) <= MAX_TIME_MS ? ms : undefined
}

function field(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_FIELD ? value : undefined
}
