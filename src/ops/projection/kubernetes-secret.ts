import { ApiTransportError, createKubernetesApi, type ApiResult } from '../../lib/backends/kubernetes/api.js'
import { resolveConnection } from '../../lib/backends/kubernetes/connection.js'
import { putSecret, writeAnswer, type PutAnswer, type Secret } from '../../lib/backends/kubernetes/secret-put.js'
import type { KeysetBackend, KeysetSnapshot } from '../../lib/backends/backend.js'
import { BackendError, CasConflictError, ConfigError } from '../../lib/errors.js'
import { printable } from '../../lib/logging/sanitize.js'
import { MAX_KEYSET_BYTES } from '../../lib/keyset/document.js'

/** The `app.kubernetes.io/component` label of a projection Secret (as the shipped manifests set it too): how `revoke` knows one. */
export const PROJECTION_SECRET_COMPONENT = 'verification-keyset'

export interface ProjectionSecretOptions {
  /** Namespace; undefined: the kubeconfig context's, else the pod's, else `default` (as kubectl). */
  namespace: string | undefined
  /** Secret name, e.g. `cbc-jwt-verification`. */
  secret: string
  /** Data key, e.g. `jwt-keyset`. */
  key: string
  context?: string | undefined
  timeoutMs: number
  /** `app.kubernetes.io/component` of a Secret this creates. @default PROJECTION_SECRET_COMPONENT */
  component?: string
  /**
   * The private keyset's Secret (its namespace as configured: undefined resolves as this one's
   * does), which this one must never be: checked once both namespaces are known, before any
   * read or write — a `ConfigError`.
   */
  notThe?: { namespace: string | undefined; secret: string; message: string }
}

/**
 * The verification projection as one key of its own Secret — not of `cbc-secrets` — so a
 * verifier's service account is granted `get`/`watch` on this Secret alone and never any right
 * on the private keyset. A Secret rather than a ConfigMap: the projection carries revocation
 * rules naming subjects and client ids (personal data), and Secrets get encryption at rest
 * and tighter default RBAC. Read and written through the API server with the Secret's
 * `resourceVersion` as check-and-set (PUT answers 409 if anyone wrote meanwhile); created
 * (POST) when absent. Only this key is changed; other keys, labels and annotations go back as
 * they were read. The last good copy (`cbc-jwt-last-good`, private) is kept the same way, in a
 * Secret of its own.
 */
export function createProjectionSecretBackend(opts: ProjectionSecretOptions, env: NodeJS.ProcessEnv): KeysetBackend {
  let location = `kubernetes:${opts.namespace ? `${opts.namespace}/` : ''}${opts.secret}#${opts.key}`
  /** The bearer token once connected: redacted from every message the API sends back. */
  let bearer: (() => string) | undefined
  const ready = resolveConnection(env, opts.context ? { context: opts.context } : {}).then((conn) => {
    const ns = opts.namespace ?? conn.namespace ?? 'default'
    location = `kubernetes:${ns}/${opts.secret}#${opts.key}`
    const other = opts.notThe
    if (other && other.secret === opts.secret && (other.namespace ?? conn.namespace ?? 'default') === ns)
      throw new ConfigError(`${other.message} (${location})`)
    bearer = conn.token
    return { ns, api: createKubernetesApi(conn, { timeoutMs: opts.timeoutMs, maxResponseBytes: 2 * MAX_KEYSET_BYTES + 65_536 }) }
  })
  ready.catch(() => {}) // surfaced by the first call
  let lastRead: Secret | undefined

  async function call(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<ApiResult> {
    const { api } = await ready
    try {
      return await api.request(method, path, body === undefined ? undefined : { json: body })
    } catch (err) {
      if (err instanceof ApiTransportError) throw new BackendError(err.reason, `${location}: ${err.reason} (${err.message})`)
      throw err
    }
  }
  const secretsPath = (ns: string) => `/api/v1/namespaces/${encodeURIComponent(ns)}/secrets`
  function failure(res: ApiResult, what: string): BackendError {
    const message = (res.json as { message?: unknown } | undefined)?.message
    const reason = res.status === 401 || res.status === 403 ? 'forbidden' : res.status === 404 ? 'not_found' : 'server_error'
    // Foreign text (a proxy or webhook writes it too): redacted, escaped and bounded.
    const detail = typeof message === 'string' ? `: ${printable(message, { secrets: knownSecrets() })}` : ''
    return new BackendError(reason, `${location}: cannot ${what} (HTTP ${res.status}${detail})`)
  }
  function knownSecrets(): string[] {
    try {
      const token = bearer?.()
      return token ? [token] : []
    } catch {
      return []
    }
  }
  async function getSecret(): Promise<Secret | undefined> {
    const { ns } = await ready
    const res = await call('GET', `${secretsPath(ns)}/${encodeURIComponent(opts.secret)}`)
    if (res.status === 404) return undefined
    if (res.status !== 200) throw failure(res, 'read')
    const secret = res.json as Secret
    if (secret?.kind !== 'Secret' || typeof secret.metadata?.resourceVersion !== 'string') throw new BackendError('bad_response', `${location}: not a Secret`)
    return secret
  }

  return {
    kind: 'kubernetes',
    get location() {
      return location
    },
    async read(): Promise<KeysetSnapshot> {
      const secret = await getSecret()
      const encoded = secret?.data?.[opts.key]
      if (!secret || typeof encoded !== 'string') throw new BackendError('not_found', `${location}: absent`)
      lastRead = secret
      return { text: Buffer.from(encoded, 'base64').toString('utf8'), version: secret.metadata.resourceVersion }
    },
    async write(text, expectedVersion) {
      const { ns } = await ready
      const data = { [opts.key]: Buffer.from(text).toString('base64') }
      const base = lastRead && lastRead.metadata.resourceVersion === expectedVersion ? lastRead : await getSecret()
      if (!base) {
        if (typeof expectedVersion === 'string') throw new CasConflictError(`${location} was deleted by another writer`)
        const res = await call('POST', secretsPath(ns), {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: {
            name: opts.secret,
            namespace: ns,
            labels: { 'app.kubernetes.io/name': 'cbc-jwt', 'app.kubernetes.io/component': opts.component ?? PROJECTION_SECRET_COMPONENT },
          },
          type: 'Opaque',
          data,
        })
        if (res.status === 409) throw new CasConflictError(`${location} was created by another writer meanwhile`)
        if (res.status !== 201 && res.status !== 200) throw failure(res, 'create')
        return landed(await writeAnswer(res, getSecret), data, text)
      }
      if (expectedVersion === null && base.data?.[opts.key] !== undefined) throw new CasConflictError(`${location} already exists`)
      if (typeof expectedVersion === 'string' && base.metadata.resourceVersion !== expectedVersion)
        throw new CasConflictError(`${location} was changed by another writer`)
      const put = await putSecret(
        call,
        { path: `${secretsPath(ns)}/${encodeURIComponent(opts.secret)}`, body: { ...base, data: { ...base.data, ...data } }, readBack: getSecret },
        { conflict: () => new CasConflictError(`${location} was changed by another writer`), refused: (res) => failure(res, 'write') },
      )
      return landed(put, data, text)
    },
    async close() {
      const r = await ready.catch(() => undefined)
      r?.api.close()
    },
  }

  /** The snapshot a write the API took leaves: its answer's version, or the one read back after it. */
  function landed(put: PutAnswer, data: Record<string, string>, text: string): KeysetSnapshot {
    lastRead = 'stored' in put ? put.stored : undefined
    if (lastRead) return { text, version: lastRead.metadata.resourceVersion }
    // Landed, answered with something else: another document read back leaves the version
    // empty, so the next check-and-set refuses rather than overwrites.
    const again = 'landed' in put ? put.landed : undefined
    if (again !== undefined && again.data?.[opts.key] === data[opts.key]) {
      lastRead = again
      return { text, version: again.metadata.resourceVersion }
    }
    return { text, version: '' }
  }
}
