import { BackendError, CasConflictError } from '../../errors.js'
import { MAX_KEYSET_BYTES } from '../../keyset/document.js'
import type { KeysetBackend, KeysetSnapshot, WatchLogger } from '../backend.js'
import { ApiTransportError, createKubernetesApi, reasonOfStatus, type ApiResult, type KubernetesApi } from './api.js'
import { printable } from '../../logging/sanitize.js'
import { resolveConnection, type KubernetesConnection } from './connection.js'
import { putSecret, writeAnswer, type PutAnswer, type Secret } from './secret-put.js'
import type { KubernetesBackendOptions } from './options.js'
import { loggableResourceVersion, startSecretWatch, type SecretWatch } from './watch.js'

export interface KubernetesBackendDeps {
  env?: NodeJS.ProcessEnv
  /** Where the in-cluster token, CA and namespace are. @default /var/run/secrets/kubernetes.io/serviceaccount */
  serviceAccountDir?: string
  /** Receives the watch's notices (resumed, relisted, broken). Only the service watches. */
  logger?: WatchLogger
  /** Options of the watch, for tests: the server-side `timeoutSeconds` and the backoff. */
  watch?: { timeoutSeconds?: number; backoffMinMs?: number; backoffMaxMs?: number }
}

const SILENT: WatchLogger = { info: () => {}, warn: () => {} }

/**
 * The keyset as one key of a Kubernetes Secret, read and written through the API server
 * (by default secret `cbc-secrets`, key `jwt-keyset`: docs/kubernetes.md). `version` is the Secret's
 * `resourceVersion`; a write sends the Secret back with it (PUT), so the API server refuses
 * it with 409 Conflict if anyone changed the Secret since the read (`CasConflictError`:
 * `updateKeyset` re-reads and applies the change once more). Only this key is changed; the
 * Secret's other keys, labels and annotations go back as they were read. Nothing is ever
 * written to disk. (The CLI keeps the last good copy in a Secret of its own, so that it
 * survives this one's deletion: `src/ops/last-good`.)
 *
 * @example
 * const backend = createKubernetesBackend(kubernetesOptionsFromEnv(process.env))
 * await updateKeyset(backend, (doc) => stageKey(doc, { now: Date.now() }))
 */
export interface KubernetesKeysetBackend extends KeysetBackend {
  /** Finds the API server (kubeconfig or in-cluster) now: a `ConfigError` here is a start-up error. */
  connect(): Promise<void>
  /**
   * The `app.kubernetes.io/component` label of the Secret as last read, its keyset key there or
   * not (`verification-keyset` on a verification projection Secret, as cbc-jwt and the shipped
   * manifests make it, the latter empty), if any.
   */
  component(): string | undefined
}

export function createKubernetesBackend(opts: KubernetesBackendOptions, deps: KubernetesBackendDeps = {}): KubernetesKeysetBackend {
  const env = deps.env ?? process.env
  let secretLocation = `kubernetes:${opts.namespace ? `${opts.namespace}/` : ''}${opts.secret}`
  let location = `${secretLocation}#${opts.key}`
  let ready: Promise<{ api: KubernetesApi; ns: string; conn: KubernetesConnection }> | undefined
  /** The Secret as last read, to send back whole with only our key changed. */
  let lastRead: Secret | undefined
  /** The `app.kubernetes.io/component` label of the Secret last fetched by read(), its key there or not. */
  let lastComponent: string | undefined
  let watcher: SecretWatch | undefined
  let closed = false
  /** The connection once resolved: its bearer token is redacted from every message the API sends back. */
  let connection: KubernetesConnection | undefined
  const maxResponseBytes = 2 * MAX_KEYSET_BYTES + 65_536

  function connect() {
    ready ??= resolveConnection(env, {
      ...(opts.context ? { context: opts.context } : {}),
      ...(deps.serviceAccountDir ? { serviceAccountDir: deps.serviceAccountDir } : {}),
    }).then((conn) => {
      const ns = opts.namespace ?? conn.namespace ?? 'default'
      secretLocation = `kubernetes:${ns}/${opts.secret}`
      location = `${secretLocation}#${opts.key}`
      connection = conn
      return { api: createKubernetesApi(conn, { timeoutMs: opts.timeoutMs, maxResponseBytes }), ns, conn }
    })
    return ready
  }

  async function call(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<ApiResult> {
    const { api } = await connect()
    try {
      return await api.request(method, path, body === undefined ? undefined : { json: body })
    } catch (err) {
      if (err instanceof ApiTransportError)
        throw new BackendError(err.reason, `${location}: ${err.reason === 'timeout' ? err.message : `${err.reason} (${err.message})`}`)
      throw err
    }
  }

  const secretPath = (ns: string) => `/api/v1/namespaces/${encodeURIComponent(ns)}/secrets/${encodeURIComponent(opts.secret)}`

  /** GET the Secret: the object, or undefined on 404. Other failures throw. */
  async function getSecret(): Promise<Secret | undefined> {
    const { ns } = await connect()
    const res = await call('GET', secretPath(ns))
    if (res.status === 404) return undefined
    if (res.status !== 200) throw statusError(res, 'read')
    const secret = res.json as Secret
    if (secret?.kind !== 'Secret' || typeof secret.metadata?.resourceVersion !== 'string') {
      throw new BackendError('bad_response', `${location}: the API answered something that is not a Secret`)
    }
    return secret
  }

  function knownSecrets(): string[] {
    try {
      const token = connection?.token?.()
      return token ? [token] : []
    } catch {
      return []
    }
  }

  function statusError(res: ApiResult, what: string): BackendError {
    // The API's Status message names the resource and the user; it is foreign text all the same
    // (a proxy or webhook writes it): redacted, escaped and bounded like every other.
    const message = (res.json as { message?: unknown } | undefined)?.message
    const detail = typeof message === 'string' ? `: ${printable(message, { secrets: knownSecrets() })}` : ''
    return new BackendError(reasonOfStatus(res.status), `${location}: cannot ${what} (HTTP ${res.status}${detail})`)
  }

  /** The one key every write sets. */
  const keysFor = (text: string) => ({ [opts.key]: Buffer.from(text).toString('base64') })

  /** `data[key]` decoded, or undefined when absent; a value over the size limit throws. */
  function decoded(secret: Secret, key: string): string | undefined {
    const encoded = secret.data?.[key]
    if (typeof encoded !== 'string') return undefined
    if (encoded.length > (MAX_KEYSET_BYTES * 4) / 3 + 4)
      throw new BackendError('invalid_keyset', `${secretLocation}#${key}: larger than ${MAX_KEYSET_BYTES} bytes`)
    return Buffer.from(encoded, 'base64').toString('utf8')
  }

  async function put(secret: Secret, text: string): Promise<KeysetSnapshot> {
    const { ns } = await connect()
    const body: Secret = { ...secret, data: { ...secret.data, ...keysFor(text) } }
    const put = await putSecret(
      call,
      { path: secretPath(ns), body, readBack: getSecret },
      {
        conflict: () =>
          new CasConflictError(
            `${location} was changed by another writer (resourceVersion ${loggableResourceVersion(secret.metadata.resourceVersion)} is gone)`,
          ),
        refused: (res) => statusError(res, 'write'),
      },
    )
    return landed(put, text)
  }

  /** The snapshot a write the API took leaves: its answer's version, or the one read back after it. */
  function landed(put: PutAnswer, text: string): KeysetSnapshot {
    lastRead = 'stored' in put ? put.stored : undefined
    if (lastRead) return { text, version: lastRead.metadata.resourceVersion }
    // Landed, answered with something else: the version is the one read back; when the read
    // shows another document, it is left empty, so a later check-and-set refuses.
    const again = 'landed' in put ? put.landed : undefined
    let readBack: string | undefined
    try {
      readBack = again ? decoded(again, opts.key) : undefined
    } catch {
      readBack = undefined
    }
    const status = 'landed' in put ? put.status : 200
    const answer = `the API answered the write ${status} with a body that is not the Secret (a proxy or webhook in front of it rewrote the answer?); the write landed`
    if (again && readBack === text) {
      lastRead = again
      return { text, version: again.metadata.resourceVersion, notice: `${answer}, and reading ${location} back shows the keyset written` }
    }
    return {
      text,
      version: '',
      notice: `${answer}, but reading ${location} back does not show the keyset written (another writer since?): check it with cbc-jwt status`,
    }
  }

  return {
    kind: 'kubernetes',
    get location() {
      return location
    },
    async connect() {
      await connect()
    },
    component() {
      return lastComponent
    },
    async read(): Promise<KeysetSnapshot> {
      const secret = await getSecret()
      // Known even without our key: a projection Secret shipped empty (the manifests' one in
      // another namespace) is a projection all the same. A Secret gone has no label any more.
      const label = (secret?.metadata.labels as Record<string, unknown> | undefined)?.['app.kubernetes.io/component']
      lastComponent = typeof label === 'string' ? label : undefined
      if (!secret) throw new BackendError('not_found', `${location}: the Secret does not exist`)
      const text = decoded(secret, opts.key)
      if (text === undefined) throw new BackendError('not_found', `${location}: the Secret has no key ${opts.key}`)
      lastRead = secret
      return { text, version: secret.metadata.resourceVersion }
    },
    async write(text, expectedVersion) {
      if (expectedVersion === null) {
        const existing = await getSecret()
        if (existing?.data?.[opts.key] !== undefined) throw new CasConflictError(`${location} already holds a keyset`)
        if (existing) return put(existing, text)
        const { ns } = await connect()
        const res = await call('POST', `/api/v1/namespaces/${encodeURIComponent(ns)}/secrets`, {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: opts.secret, namespace: ns },
          type: 'Opaque',
          data: keysFor(text),
        })
        if (res.status === 409) throw new CasConflictError(`${location} was created by another writer meanwhile`)
        if (res.status !== 201 && res.status !== 200) throw statusError(res, 'create')
        return landed(await writeAnswer(res, getSecret), text)
      }
      // Send back what was read, with that resourceVersion: the API server's check-and-set.
      let base = lastRead
      if (!base || (expectedVersion !== undefined && base.metadata.resourceVersion !== expectedVersion)) {
        base = await getSecret()
        if (!base) throw new BackendError('not_found', `${location}: the Secret does not exist`)
        if (expectedVersion !== undefined && base.metadata.resourceVersion !== expectedVersion) {
          throw new CasConflictError(`${location} was changed by another writer (resourceVersion ${loggableResourceVersion(expectedVersion)} is gone)`)
        }
      }
      return put(base, text)
    },
    /**
     * The service's watch: list + watch of this one Secret through the API (docs/kubernetes.md), so
     * a change is read about a second after it is written. Every event makes the keyring read
     * (`read()`, a GET): the unknown-kid re-read and the interval read ask the API too.
     */
    watch(onChange, _onEvent, onFailure) {
      if (watcher || closed) return
      connect().then(
        ({ api, ns }) => {
          if (closed) return
          watcher = startSecretWatch({
            api,
            namespace: ns,
            name: opts.secret,
            onChange,
            ...(onFailure ? { onFailure } : {}),
            logger: deps.logger ?? SILENT,
            location,
            secrets: knownSecrets,
            maxEventBytes: maxResponseBytes,
            ...(deps.watch ?? {}),
          })
        },
        // A configuration that cannot connect fails every read too: counted and logged there.
        () => {},
      )
    },
    async close() {
      closed = true
      watcher?.close()
      if (!ready) return
      const r = await ready.catch(() => undefined)
      r?.api.close()
    },
  }
}
