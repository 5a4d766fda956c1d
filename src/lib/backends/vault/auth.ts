import { readFile } from 'node:fs/promises'
import { BackendError } from '../../errors.js'
import { statusFailure, toFailure, vaultErrors } from './classify.js'
import type { HttpClient } from '../../http/index.js'
import { parseLoginEnvelope } from './kv2.js'
import { NOT_IN_HEADER } from './options.js'
import { vaultRequest, type VaultAnswer } from './request.js'

/** The logger shape the backend accepts (pino's `warn`/`info` fit). */
export interface VaultLogger {
  warn(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
}

/** Where the Vault token comes from. Tokens never leave this object except as a header. */
export interface TokenSource {
  /** A token to send now; logs in first when there is none or its lease has run out. */
  token(signal: AbortSignal): Promise<string>
  /** Vault answered 403 to `token`: forget it. True when a new login may help. */
  invalidate(token: string): boolean
  /** Every secret this source has held recently, for redaction of messages. */
  secrets(): readonly string[]
}

export function staticToken(token: string): TokenSource {
  return {
    token: async () => token,
    invalidate: () => false,
    secrets: () => [token],
  }
}

export interface KubernetesAuthConfig {
  http: HttpClient
  location: string
  headers: Record<string, string>
  role: string
  mount: string
  tokenPath: string
  now: () => number
  logger: VaultLogger
}

/** Keep this many past secrets for redaction; older ones are long expired. */
const REMEMBERED = 4

/**
 * Vault's Kubernetes auth method: `POST /v1/auth/{mount}/login {role, jwt}` answers a
 * client token with a lease. The service account JWT is read from disk at every login,
 * because the kubelet rotates projected tokens. Logins are single-flight.
 */
export function kubernetesAuth(cfg: KubernetesAuthConfig): TokenSource {
  const what = `${cfg.location}: Vault Kubernetes login (auth/${cfg.mount}, role ${cfg.role})`
  let current: { token: string; expiresAt: number } | undefined
  let inflight: Promise<string> | undefined
  const remembered: string[] = []
  const remember = (s: string): void => {
    remembered.push(s)
    if (remembered.length > REMEMBERED) remembered.shift()
  }

  const valid = (c: { expiresAt: number }): boolean => cfg.now() < c.expiresAt

  async function login(signal: AbortSignal): Promise<string> {
    let jwt: string
    try {
      jwt = (await readFile(cfg.tokenPath, 'utf8')).trim()
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error'
      throw new BackendError('forbidden', `${what}: cannot read the service account token ${cfg.tokenPath} (${code})`)
    }
    if (jwt === '') throw new BackendError('forbidden', `${what}: the service account token ${cfg.tokenPath} is empty`)
    remember(jwt)
    let res: VaultAnswer
    try {
      res = await vaultRequest(cfg.http, 'POST', `/v1/auth/${cfg.mount}/login`, {
        headers: cfg.headers,
        body: { role: cfg.role, jwt },
        signal,
      })
    } catch (err) {
      throw toFailure(err, what).error
    }
    if (res.status < 200 || res.status >= 300) {
      // A 4xx is Vault refusing this role or this JWT, unless it may pass (429 rate limit, 412):
      // those, 5xx and 503 keep the reasons of the one table (statusFailure).
      const failure = statusFailure(res.status, res.json, what)
      if (res.status >= 400 && res.status < 500 && !failure.transient) {
        const errors = vaultErrors(res.json)
        throw new BackendError('forbidden', `${what}: refused, HTTP ${res.status}${errors ? ` (${errors})` : ''}`)
      }
      throw failure.error
    }
    const auth = parseLoginEnvelope(res.json)
    if (!auth) throw new BackendError('bad_response', `${what}: the answer has no auth.client_token`)
    // Kept, it would fail every request before it is sent, until its lease ends (never, for 0).
    if (NOT_IN_HEADER.test(auth.clientToken)) throw new BackendError('bad_response', `${what}: the answer has no auth.client_token an HTTP header can carry`)
    remember(auth.clientToken)
    // Renew a little early so a token does not run out in flight (10% of the lease, ≤ 5 s).
    const leaseMs = auth.leaseSeconds * 1000
    const expiresAt = leaseMs > 0 ? cfg.now() + leaseMs - Math.min(5000, leaseMs / 10) : Number.POSITIVE_INFINITY
    current = { token: auth.clientToken, expiresAt }
    cfg.logger.info(
      { location: cfg.location, auth_mount: cfg.mount, role: cfg.role, lease_seconds: auth.leaseSeconds, renewable: auth.renewable },
      'logged in to Vault with the Kubernetes auth method',
    )
    return auth.clientToken
  }

  return {
    token(signal) {
      if (current && valid(current)) return Promise.resolve(current.token)
      inflight ??= login(signal).finally(() => {
        inflight = undefined
      })
      return inflight
    },
    invalidate(token) {
      if (current?.token === token) current = undefined
      return true
    },
    secrets: () => remembered,
  }
}
