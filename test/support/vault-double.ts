/**
 * TEST DOUBLE — this is not Vault. A small HTTP(S) server that speaks the slice of Vault's
 * published HTTP API the cbc-jwt Vault backend uses, for tests only.
 *
 * What it reproduces of Vault (from the KV v2 and Kubernetes auth API docs):
 * - KV v2 `GET /v1/{mount}/data/{path}[?version=n]`, `POST|PUT` (write), `DELETE` (soft delete
 *   of the latest version), with Vault's envelope: `request_id`, `lease_id`, `renewable`,
 *   `lease_duration`, `data: {data, metadata: {created_time, custom_metadata, deletion_time,
 *   destroyed, version}}`, `wrap_info`, `warnings`, `auth`, `mount_type`.
 * - 404 `{"errors":[]}` for a secret that does not exist; 404 with `data.data: null` and the
 *   metadata when the latest version is deleted; "no handler for route" for an unknown mount.
 *   A version is deleted once its `deletion_time` has passed: with `delete_version_after`
 *   (`deleteVersionAfter`) every version carries a future one and is served (200) until then.
 * - Writes: `{"options":{"cas":n},"data":{…}}`, answer `data: {created_time, custom_metadata,
 *   deletion_time, destroyed, version}`; check-and-set (`cas: 0` only if the secret does not
 *   exist, `cas: n` must equal the current version, deleted versions count), mismatch →
 *   400 `{"errors":["check-and-set parameter did not match the current version"]}`;
 *   400 `{"errors":["no data provided"]}` without a `data` object.
 * - `X-Vault-Token`: the root token and tokens issued by login (expire after their TTL, real
 *   clock); anything else → 403 `{"errors":["permission denied"]}`. `X-Vault-Namespace` is
 *   recorded with every request but does not isolate secrets.
 * - `POST /v1/auth/{mount}/login {role, jwt}` (Kubernetes auth): 400 `missing role`/`missing
 *   jwt`, 400 `invalid role name "…"`, 403 `permission denied` for a JWT it does not accept
 *   (what Vault answers to a bad signature), else `auth: {client_token, accessor, policies,
 *   token_policies, metadata, lease_duration, renewable: true, entity_id, token_type, orphan}`.
 * - Faults (`setFault`): `down` (stops listening: connection refused), `reset` (accepts and
 *   drops the connection), `slow` (answers after `delayMs`), `500`, `403`, `429` (a rate limit
 *   quota's answer), `sealed` (503
 *   `{"errors":["Vault is sealed"]}`), `not_json` (200 text/html), `applied_not_json` (the request
 *   is carried out, then answered 200 text/html: a proxy that rewrote Vault's answer), `redirect` (307 to
 *   `/redirected/…` on itself, so a followed redirect shows in `requests`), `huge` (a 200
 *   JSON body over 2 MiB, chunked without Content-Length). `times` limits a fault to the
 *   next n requests, `method` to one HTTP method.
 * - Optional TLS with a throwaway self-signed certificate (`selfSignedCert` of test/support/test-tls.ts, needs `openssl`).
 *
 * Not reproduced: policies/ACLs, the metadata/ and undelete/ endpoints, namespaces as
 * isolation, `cas_required`, `max_versions`, token renewal/lookup, response wrapping.
 */
import crypto from 'node:crypto'
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import https from 'node:https'

export type VaultFaultKind = 'down' | 'reset' | 'slow' | '500' | '403' | '429' | 'sealed' | 'not_json' | 'applied_not_json' | 'redirect' | 'huge'

export interface VaultFault {
  kind: VaultFaultKind
  /** Only the next n requests (not for `down`). Unlimited when absent. */
  times?: number
  /** For `slow`. @default 30000 */
  delayMs?: number
  /** Only requests with this method (`GET`, `POST`). */
  method?: string
  /** Only requests whose path ends with this (`/cbc/jwt-keyset`: the private path, not its `-public` projection). */
  pathEnd?: string
  /** Lets this many matching requests through first (the second write to a path). @default 0 */
  skip?: number
}

export interface RecordedRequest {
  method: string
  /** Path with the query string, as sent. */
  path: string
  headers: IncomingHttpHeaders
  /** The parsed JSON body, if any. */
  body: unknown
  /** `Date.now()` when the request arrived. */
  at: number
}

export interface KubernetesAuthSetup {
  role: string
  jwt: string
  /** Lease of the issued tokens. @default 3600 */
  ttlSeconds?: number
  /** @default 'kubernetes' */
  mount?: string
}

export interface VaultDouble {
  /** `http(s)://127.0.0.1:port`, for VAULT_ADDR. */
  addr: string
  /** The root token, for VAULT_TOKEN. */
  token: string
  requests: RecordedRequest[]
  /** Writes a new version of a secret (like `vault kv put`); returns the version. */
  setSecret(path: string, data: Record<string, unknown>, mount?: string): number
  /** The latest version's data, or undefined if none (or deleted). */
  secret(path: string, mount?: string): Record<string, unknown> | undefined
  /** The current version number, 0 if the secret does not exist. */
  version(path: string, mount?: string): number
  /** Soft-deletes (or destroys) the latest version, as `vault kv delete` / `kv destroy`. */
  deleteLatest(path: string, mount?: string, opts?: { destroy?: boolean }): void
  /** Removes the secret with every version and its metadata, as `vault kv metadata delete`. */
  deleteAll(path: string, mount?: string): void
  /**
   * Every version written from now on is deleted this long after it is written, as `vault kv
   * metadata put -delete-version-after`: its `deletion_time` is set at once, in the future, and
   * Vault serves it (200) until then.
   */
  deleteVersionAfter(path: string, ms: number, mount?: string): void
  setFault(fault: VaultFaultKind | VaultFault | null): Promise<void>
  enableKubernetesAuth(setup: KubernetesAuthSetup): void
  /** Revokes every token issued by login, as `vault token revoke` would. */
  revokeIssuedTokens(): void
  close(): Promise<void>
}

export interface VaultDoubleOptions {
  /** Serve HTTPS with this certificate and key (PEM). */
  tls?: { cert: string; key: string }
}

interface Version {
  data: Record<string, unknown>
  created_time: string
  deletion_time: string
  destroyed: boolean
}

const MAX_BODY = 1024 * 1024

export async function startVaultDouble(opts: VaultDoubleOptions = {}): Promise<VaultDouble> {
  const rootToken = `hvs.${crypto.randomBytes(18).toString('base64url')}`
  const issued = new Map<string, number>() // token → expiry (ms)
  const mounts = new Map<string, Map<string, Version[]>>([['secret', new Map()]])
  /** `delete_version_after` of a mount's secrets, in ms. */
  const deleteAfter = new WeakMap<Map<string, Version[]>, Map<string, number>>()
  /** Vault's rule: a version is gone once its deletion_time has passed, or when destroyed. */
  const gone = (v: Version): boolean => (v.deletion_time !== '' && Date.parse(v.deletion_time) <= Date.now()) || v.destroyed
  const k8s = new Map<string, Required<KubernetesAuthSetup>>()
  const requests: RecordedRequest[] = []
  const timers = new Set<NodeJS.Timeout>()
  let fault: (VaultFault & { left: number; skipped: number }) | null = null

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size <= MAX_BODY) chunks.push(c)
    })
    req.on('end', () => {
      let body: unknown
      const text = Buffer.concat(chunks).toString('utf8')
      try {
        body = text ? JSON.parse(text) : undefined
      } catch {
        body = text
      }
      requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, at: Date.now() })
      const matches =
        fault !== null &&
        fault.kind !== 'down' &&
        fault.left > 0 &&
        (!fault.method || fault.method === req.method) &&
        (!fault.pathEnd || (req.url ?? '').split('?')[0]!.endsWith(fault.pathEnd))
      const active = matches && fault!.skipped-- <= 0 ? fault : null
      if (active) {
        active.left--
        if (applyFault(active, req, res, body)) return
      }
      route(req, res, body)
    })
  }

  function applyFault(f: VaultFault, req: IncomingMessage, res: ServerResponse, body: unknown): boolean {
    switch (f.kind) {
      case 'reset':
        req.socket.destroy()
        return true
      case 'slow': {
        const timer = setTimeout(() => {
          timers.delete(timer)
          if (!res.destroyed) route(req, res, body)
        }, f.delayMs ?? 30_000)
        timers.add(timer)
        res.on('close', () => {
          clearTimeout(timer)
          timers.delete(timer)
        })
        return true
      }
      case '500':
        send(res, 500, { errors: ['internal error'] })
        return true
      case '403':
        send(res, 403, { errors: ['permission denied'] })
        return true
      case '429':
        send(res, 429, { errors: [`request path "${new URL(req.url ?? '/', 'http://double').pathname.slice(4)}": rate limit quota exceeded`] })
        return true
      case 'sealed':
        send(res, 503, { errors: ['Vault is sealed'] })
        return true
      case 'not_json':
        res.writeHead(200, { 'Content-Type': 'text/html' }).end('<html><body>Proxy login</body></html>')
        return true
      case 'applied_not_json': {
        // Vault's own answer goes nowhere; the client gets what a rewriting proxy sends.
        const swallowed = { writeHead: () => swallowed, end: () => swallowed, write: () => true } as unknown as ServerResponse
        route(req, swallowed, body)
        res.writeHead(200, { 'Content-Type': 'text/html' }).end('<html><body>Proxy says OK</body></html>')
        return true
      }
      case 'redirect':
        res.writeHead(307, { Location: `/redirected${req.url ?? '/'}` }).end()
        return true
      case 'huge': {
        res.writeHead(200, { 'Content-Type': 'application/json' })
        const filler = 'x'.repeat(64 * 1024)
        res.write('{"warnings":["')
        for (let i = 0; i < 130; i++) res.write(filler) // 8.1 MiB: past the backend's default body limit (8 MiB)
        res.end('"]}')
        return true
      }
      default:
        return false
    }
  }

  function validToken(t: string | undefined): boolean {
    if (!t) return false
    if (t === rootToken) return true
    const exp = issued.get(t)
    return exp !== undefined && Date.now() < exp
  }

  function route(req: IncomingMessage, res: ServerResponse, body: unknown): void {
    const url = new URL(req.url ?? '/', 'http://double')
    const p = url.pathname
    const method = req.method ?? 'GET'
    const login = /^\/v1\/auth\/(.+)\/login$/.exec(p)
    if (login && (method === 'POST' || method === 'PUT')) return kubernetesLogin(res, login[1]!, body)
    if (p === '/v1/sys/health') return send(res, 200, { initialized: true, sealed: false, standby: false })
    const token = req.headers['x-vault-token']
    if (!validToken(typeof token === 'string' ? token : undefined)) return send(res, 403, { errors: ['permission denied'] })
    const kv = /^\/v1\/([^/]+)\/data\/(.+)$/.exec(p)
    const store = kv ? mounts.get(decodeURIComponent(kv[1]!)) : undefined
    if (!kv || !store) return send(res, 404, { errors: [`no handler for route "${p.slice(4)}". route entry not found.`] })
    const secretPath = decodeURIComponent(kv[2]!)
    const versions = store.get(secretPath) ?? []
    if (method === 'GET') {
      const n = url.searchParams.has('version') ? Number(url.searchParams.get('version')) : versions.length
      const v = versions[n - 1]
      if (!v) return send(res, 404, { errors: [] })
      const metadata = { created_time: v.created_time, custom_metadata: null, deletion_time: v.deletion_time, destroyed: v.destroyed, version: n }
      return send(res, gone(v) ? 404 : 200, envelope({ data: gone(v) ? null : v.data, metadata }))
    }
    if (method === 'POST' || method === 'PUT') {
      const b = body as { data?: unknown; options?: { cas?: unknown } } | undefined
      if (typeof b !== 'object' || b === null || typeof b.data !== 'object' || b.data === null) {
        return send(res, 400, { errors: ['no data provided'] })
      }
      const cas = b.options?.cas
      if (cas !== undefined && Number(cas) !== versions.length) {
        return send(res, 400, { errors: ['check-and-set parameter did not match the current version'] })
      }
      const n = put(store, secretPath, b.data as Record<string, unknown>)
      const v = store.get(secretPath)![n - 1]!
      return send(res, 200, envelope({ created_time: v.created_time, custom_metadata: null, deletion_time: v.deletion_time, destroyed: false, version: n }))
    }
    if (method === 'DELETE') {
      const v = versions.at(-1)
      if (v && !gone(v)) v.deletion_time = new Date().toISOString()
      res.writeHead(204).end()
      return
    }
    send(res, 405, { errors: [] })
  }

  function kubernetesLogin(res: ServerResponse, mount: string, body: unknown): void {
    const setup = k8s.get(mount)
    if (!setup) return send(res, 400, { errors: [`no handler for route "auth/${mount}/login". route entry not found.`] })
    const b = (typeof body === 'object' && body !== null ? body : {}) as { role?: unknown; jwt?: unknown }
    if (typeof b.role !== 'string' || b.role === '') return send(res, 400, { errors: ['missing role'] })
    if (typeof b.jwt !== 'string' || b.jwt === '') return send(res, 400, { errors: ['missing jwt'] })
    if (b.role !== setup.role) return send(res, 400, { errors: [`invalid role name "${b.role}"`] })
    if (b.jwt !== setup.jwt) return send(res, 403, { errors: ['permission denied'] })
    const clientToken = `hvs.${crypto.randomBytes(24).toString('base64url')}`
    issued.set(clientToken, Date.now() + setup.ttlSeconds * 1000)
    send(res, 200, {
      ...envelope(null),
      auth: {
        client_token: clientToken,
        accessor: crypto.randomBytes(12).toString('base64url'),
        policies: ['cbc-jwt', 'default'],
        token_policies: ['cbc-jwt', 'default'],
        metadata: {
          role: setup.role,
          service_account_name: 'cbc-api',
          service_account_namespace: 'cbc',
          service_account_secret_name: '',
          service_account_uid: crypto.randomUUID(),
        },
        lease_duration: setup.ttlSeconds,
        renewable: true,
        entity_id: crypto.randomUUID(),
        token_type: 'service',
        orphan: true,
        mfa_requirement: null,
        num_uses: 0,
      },
    })
  }

  function put(store: Map<string, Version[]>, p: string, data: Record<string, unknown>): number {
    const versions = store.get(p) ?? []
    const now = Date.now()
    const after = deleteAfter.get(store)?.get(p)
    const deletion_time = after === undefined ? '' : new Date(now + after).toISOString()
    versions.push({ data: structuredClone(data), created_time: new Date(now).toISOString(), deletion_time, destroyed: false })
    store.set(p, versions)
    return versions.length
  }

  const mountOf = (m: string): Map<string, Version[]> => {
    let store = mounts.get(m)
    if (!store) mounts.set(m, (store = new Map()))
    return store
  }

  const server = opts.tls ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, handler) : http.createServer(handler)
  const listen = (port: number): Promise<void> =>
    new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject)
        resolve()
      })
    })
  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      if (!server.listening) return resolve()
      server.close(() => resolve())
      server.closeAllConnections()
    })
  await listen(0)
  const port = (server.address() as { port: number }).port
  let down = false

  return {
    addr: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    token: rootToken,
    requests,
    setSecret: (p, data, mount = 'secret') => put(mountOf(mount), p, data),
    secret: (p, mount = 'secret') => {
      const v = mounts.get(mount)?.get(p)?.at(-1)
      return v && !gone(v) ? structuredClone(v.data) : undefined
    },
    version: (p, mount = 'secret') => mounts.get(mount)?.get(p)?.length ?? 0,
    deleteLatest: (p, mount = 'secret', o = {}) => {
      const v = mounts.get(mount)?.get(p)?.at(-1)
      if (!v) return
      v.deletion_time = new Date().toISOString()
      if (o.destroy) v.destroyed = true
    },
    deleteAll: (p, mount = 'secret') => {
      mounts.get(mount)?.delete(p)
    },
    deleteVersionAfter: (p, ms, mount = 'secret') => {
      const store = mountOf(mount)
      const settings = deleteAfter.get(store) ?? new Map<string, number>()
      settings.set(p, ms)
      deleteAfter.set(store, settings)
    },
    async setFault(f) {
      const next = f === null ? null : typeof f === 'string' ? { kind: f } : f
      fault = next ? { ...next, left: next.times ?? Number.POSITIVE_INFINITY, skipped: next.skip ?? 0 } : null
      if (next?.kind === 'down' && !down) {
        down = true
        await stop()
      } else if (next?.kind !== 'down' && down) {
        down = false
        await listen(port)
      }
    },
    enableKubernetesAuth: (s) => {
      k8s.set(s.mount ?? 'kubernetes', { role: s.role, jwt: s.jwt, ttlSeconds: s.ttlSeconds ?? 3600, mount: s.mount ?? 'kubernetes' })
    },
    revokeIssuedTokens: () => issued.clear(),
    async close() {
      for (const t of timers) clearTimeout(t)
      timers.clear()
      await stop()
    },
  }
}

function envelope(data: unknown): Record<string, unknown> {
  return {
    request_id: crypto.randomUUID(),
    lease_id: '',
    renewable: false,
    lease_duration: 0,
    data,
    wrap_info: null,
    warnings: null,
    auth: null,
    mount_type: 'kv',
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(text) })
  res.end(text)
}
