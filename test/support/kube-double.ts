/**
 * A Kubernetes API server test double — NOT a real API server (none can run here). It
 * implements, from the published API (https://kubernetes.io/docs/reference/using-api/api-concepts/),
 * exactly what the Kubernetes backend uses, with the real semantics:
 *
 * - `GET/PUT /api/v1/namespaces/{ns}/secrets/{name}`, `POST /api/v1/namespaces/{ns}/secrets`,
 *   `PATCH` with `application/merge-patch+json` and `application/json-patch+json`;
 * - optimistic concurrency: a PUT (or a merge patch) carrying `metadata.resourceVersion`
 *   that is not the current one is refused with `409 Conflict`; a create of an existing
 *   object with `409 AlreadyExists`; every write bumps the cluster-wide resourceVersion;
 * - failures as `Status` objects (`kind: Status`, `reason`, `code`, `message`): 401
 *   Unauthorized without the bearer token, 403 Forbidden for denied verbs, 404 NotFound;
 * - bearer-token authentication (`Authorization: Bearer …`), over HTTP or HTTPS;
 * - `GET` of the collection (a `SecretList`, `fieldSelector=metadata.name=…`), its `watch`
 *   (kube-double-watch.ts: events, bookmarks, `410 Expired`, `timeoutSeconds`) and `DELETE`;
 * - RBAC `resourceNames` as the real authorizer applies them (`restrictNames`): `get`,
 *   `update`, `delete` of another name are `403`; `list` and `watch` are allowed only with a
 *   `fieldSelector` on `metadata.name` naming an allowed object;
 * - what the real `kubectl get`/`apply` of a Secret needs (kube-double-discovery.ts): `/api`,
 *   `/apis`, `/api/v1`, `/version`, the OpenAPI document, and strategic merge patch (for a
 *   Secret's `data`, `stringData` and metadata maps it merges like a merge patch).
 *
 * Hooks let a test interleave another writer between a read and a write, or answer every
 * write with 409 (a conflict storm).
 */
import fs from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import path from 'node:path'
import { discovery } from './kube-double-discovery.js'
import { createWatchHub, type WatchEventType } from './kube-double-watch.js'

export interface SecretObject {
  apiVersion: 'v1'
  kind: 'Secret'
  metadata: { name: string; namespace: string; resourceVersion: string; uid: string; creationTimestamp: string; labels?: Record<string, string> }
  type: string
  data: Record<string, string>
  stringData?: Record<string, string>
}

export interface RecordedCall {
  method: string
  path: string
  verb: 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete'
  status: number
}

export interface KubeDouble {
  url: string
  /** The one bearer token accepted; assign another to expire the one clients hold (a rotated credential). */
  token: string
  calls: RecordedCall[]
  /** Verbs answered 403 (as RBAC would). */
  deny: Set<RecordedCall['verb']>
  /** Appended to every Status message: what a hostile proxy or webhook in front of the API could write. */
  statusMessageSuffix: string
  /** When set, an update is applied and then answered 200 with this body instead of the Secret (a proxy rewriting answers). */
  updateAnswer?: unknown
  /** When set, a create is applied and then answered 201 with this body instead of the Secret. */
  createAnswer?: unknown
  /** Called before a write is applied; may change the store (another writer got in first). */
  beforeWrite?: ((verb: RecordedCall['verb']) => void) | undefined
  /** Answer this many upcoming writes with 409, as if someone wrote just before each. */
  conflictStorm: number
  /** While set, writes wait for it before they are looked at: concurrent clients can all read first. */
  writeGate?: Promise<void> | undefined
  secret(ns: string, name: string): SecretObject | undefined
  /** Creates or replaces a Secret as an operator (`kubectl apply`) would: a new resourceVersion. */
  setSecret(ns: string, name: string, data: Record<string, string>): SecretObject
  /** A kubeconfig pointing at the double with its token, written to `file`. */
  writeKubeconfig(file: string, opts?: { namespace?: string; token?: string; ca?: string }): string
  /** Deletes a Secret as `kubectl delete secret` would (a DELETED event). */
  deleteSecret(ns: string, name: string): boolean
  /** RBAC `resourceNames`: when set, only these Secret names may be touched (list/watch need a fieldSelector naming one). */
  restrictNames: Set<string> | undefined
  /** While true every new connection is cut as it arrives: the API is unreachable (cut open watches with `watches.disconnectAll()`). */
  outage: boolean
  /** Watch hooks: forget history (resuming watches get 410), send bookmarks, cut or expire open watches. */
  watches: {
    compact(): void
    bookmark(): Promise<void>
    disconnectAll(): void
    expireAll(): void
    open(): number
    requests: Array<{ rv: string | null; name: string | undefined }>
  }
  close(): Promise<void>
}

const b64 = (s: string) => Buffer.from(s).toString('base64')

export async function startKubeDouble(opts: { token?: string; tls?: { key: string; cert: string } } = {}): Promise<KubeDouble> {
  const token = opts.token ?? 'double-token-7f3a'
  const store = new Map<string, SecretObject>()
  let rv = 1000
  const bump = () => String(++rv)
  const hub = createWatchHub()
  /** Every change goes through here: stored, then published to the watches. */
  const commit = (key: string, obj: SecretObject, type: WatchEventType) => {
    store.set(key, obj)
    hub.publish(type, key, obj)
    return obj
  }

  const status = (code: number, reason: string, message: string, name?: string) => ({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: message + double.statusMessageSuffix,
    reason,
    ...(name ? { details: { name, kind: 'secrets' } } : {}),
    code,
  })

  const double: KubeDouble = {
    url: '',
    token,
    calls: [],
    deny: new Set(),
    statusMessageSuffix: '',
    conflictStorm: 0,
    restrictNames: undefined,
    outage: false,
    watches: {
      compact: () => hub.compact(),
      bookmark: () => hub.bookmark(() => String(rv)),
      disconnectAll: () => hub.disconnectAll(),
      expireAll: () => hub.expireAll(),
      open: () => hub.open(),
      requests: hub.requests,
    },
    secret: (ns, name) => structuredClone(store.get(`${ns}/${name}`)),
    setSecret(ns, name, data) {
      const prev = store.get(`${ns}/${name}`)
      const obj: SecretObject = {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name,
          namespace: ns,
          resourceVersion: bump(),
          uid: prev?.metadata.uid ?? `uid-${rv}`,
          creationTimestamp: prev?.metadata.creationTimestamp ?? new Date().toISOString(),
        },
        type: 'Opaque',
        data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
      }
      commit(`${ns}/${name}`, obj, prev ? 'MODIFIED' : 'ADDED')
      return structuredClone(obj)
    },
    deleteSecret(ns, name) {
      const prev = store.get(`${ns}/${name}`)
      if (!prev) return false
      store.delete(`${ns}/${name}`)
      hub.publish('DELETED', `${ns}/${name}`, { ...prev, metadata: { ...prev.metadata, resourceVersion: bump() } })
      return true
    },
    writeKubeconfig(file, o = {}) {
      fs.mkdirSync(path.dirname(file), { recursive: true })
      const cluster = { server: double.url, ...(o.ca ? { 'certificate-authority-data': b64(o.ca) } : {}) }
      const doc = {
        apiVersion: 'v1',
        kind: 'Config',
        'current-context': 'double',
        clusters: [{ name: 'double', cluster }],
        users: [{ name: 'rotator', user: { token: o.token ?? token } }],
        contexts: [{ name: 'double', context: { cluster: 'double', user: 'rotator', ...(o.namespace ? { namespace: o.namespace } : {}) } }],
      }
      fs.writeFileSync(file, JSON.stringify(doc, null, 2)) // JSON is YAML
      return file
    },
    close: () =>
      new Promise((resolve) => {
        hub.closeAll()
        server.closeAllConnections?.()
        server.close(() => resolve())
      }),
  }

  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (double.outage) {
      hub.disconnectAll()
      req.socket.destroy()
      return
    }
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const gate = req.method === 'GET' ? undefined : double.writeGate
      if (gate) void gate.then(answer)
      else answer()
    })
    function answer() {
      const url = new URL(req.url ?? '/', 'http://double')
      const send = (code: number, body: unknown, verb: RecordedCall['verb']) => {
        double.calls.push({ method: req.method ?? '', path: url.pathname, verb, status: code })
        res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body))
      }
      const one = /^\/api\/v1\/namespaces\/([^/]+)\/secrets\/([^/]+)$/.exec(url.pathname)
      const coll = /^\/api\/v1\/namespaces\/([^/]+)\/secrets$/.exec(url.pathname)
      // kubectl asks for server-side printing (`as=Table`) and prints the columns it gets.
      const wantsTable = /as=Table/.test(req.headers.accept ?? '')
      const watching = url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1'
      const verb: RecordedCall['verb'] =
        req.method === 'POST'
          ? 'create'
          : req.method === 'PUT'
            ? 'update'
            : req.method === 'PATCH'
              ? 'patch'
              : req.method === 'DELETE'
                ? 'delete'
                : coll
                  ? watching
                    ? 'watch'
                    : 'list'
                  : 'get'
      if (req.headers.authorization !== `Bearer ${double.token}`) return send(401, status(401, 'Unauthorized', 'Unauthorized'), verb)
      const doc = req.method === 'GET' ? discovery(url.pathname) : undefined
      if (doc !== undefined) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc))
        return
      }
      if (!one && !coll) return send(404, status(404, 'NotFound', 'the server could not find the requested resource'), verb)
      const ns = (one ?? coll)![1]!
      let name = one ? decodeURIComponent(one[2]!) : undefined
      const selected = /^metadata\.name(?:=|==)([^,]+)$/.exec(url.searchParams.get('fieldSelector') ?? '')?.[1]
      if (coll && (verb === 'list' || verb === 'watch')) name = selected
      const forbiddenByName = double.restrictNames !== undefined && verb !== 'create' && (name === undefined || !double.restrictNames.has(name))
      if (double.deny.has(verb) || forbiddenByName) {
        const what = name ? `secrets "${name}"` : 'secrets'
        return send(
          403,
          status(
            403,
            'Forbidden',
            `${what} is forbidden: User "system:serviceaccount:cbc:cbc-jwt-rotator" cannot ${verb} resource "secrets" in API group "" in the namespace "${ns}"`,
            name,
          ),
          verb,
        )
      }
      let body: any
      try {
        body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined
      } catch {
        return send(400, status(400, 'BadRequest', 'the body is not JSON'), verb)
      }
      if (verb === 'list') {
        const items = [...store.entries()].filter(([k]) => k.startsWith(`${ns}/`) && (name === undefined || k === `${ns}/${name}`)).map(([, v]) => v)
        if (wantsTable) return send(200, secretTable(items), verb)
        return send(200, { kind: 'SecretList', apiVersion: 'v1', metadata: { resourceVersion: String(rv) }, items }, verb)
      }
      if (verb === 'watch') {
        double.calls.push({ method: 'GET', path: url.pathname, verb, status: 200 })
        const timeout = url.searchParams.get('timeoutSeconds')
        return hub.serve(
          res,
          {
            ns,
            name,
            rv: url.searchParams.get('resourceVersion'),
            bookmarks: url.searchParams.get('allowWatchBookmarks') === 'true',
            timeoutSeconds: timeout === null ? undefined : Number(timeout),
          },
          () => [...store.entries()].filter(([k]) => k.startsWith(`${ns}/`) && (name === undefined || k === `${ns}/${name}`)).map(([, v]) => v),
        )
      }
      if (verb !== 'get') {
        double.beforeWrite?.(verb)
        if (double.conflictStorm > 0) {
          double.conflictStorm--
          const current = name ? store.get(`${ns}/${name}`) : undefined
          if (current) current.metadata.resourceVersion = bump() // someone else wrote it
        }
      }
      const key = `${ns}/${name ?? body?.metadata?.name}`
      const current = store.get(key)
      const conflict = () =>
        send(
          409,
          status(
            409,
            'Conflict',
            `Operation cannot be fulfilled on secrets "${name}": the object has been modified; please apply your changes to the latest version and try again`,
            name,
          ),
          verb,
        )
      switch (verb) {
        case 'get':
          if (current && wantsTable) return send(200, secretTable([current]), verb)
          return current ? send(200, current, verb) : send(404, status(404, 'NotFound', `secrets "${name}" not found`, name), verb)
        case 'delete':
          if (!current) return send(404, status(404, 'NotFound', `secrets "${name}" not found`, name), verb)
          double.deleteSecret(ns, name!)
          return send(200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, kind: 'secrets' } }, verb)
        case 'create': {
          if (current) return send(409, status(409, 'AlreadyExists', `secrets "${body.metadata.name}" already exists`, body.metadata.name), verb)
          const obj: SecretObject = {
            ...body,
            metadata: { ...body.metadata, namespace: ns, resourceVersion: bump(), uid: `uid-${rv}`, creationTimestamp: new Date().toISOString() },
          }
          if (obj.stringData) obj.data = { ...obj.data, ...encodeStringData(obj.stringData) }
          delete obj.stringData
          if (req.url?.includes('dryRun=All')) return send(201, obj, verb)
          commit(key, obj, 'ADDED')
          return send(201, double.createAnswer ?? obj, verb)
        }
        case 'update': {
          if (!current) return send(404, status(404, 'NotFound', `secrets "${name}" not found`, name), verb)
          const expected = body?.metadata?.resourceVersion
          if (expected !== undefined && expected !== current.metadata.resourceVersion) return conflict()
          const obj: SecretObject = { ...body, metadata: { ...body.metadata, resourceVersion: bump(), uid: current.metadata.uid } }
          commit(key, obj, 'MODIFIED')
          return send(200, double.updateAnswer ?? obj, verb)
        }
        case 'patch': {
          if (!current) return send(404, status(404, 'NotFound', `secrets "${name}" not found`, name), verb)
          const obj = structuredClone(current)
          const type = req.headers['content-type']
          if (type === 'application/merge-patch+json' || type === 'application/strategic-merge-patch+json') {
            const expected = body?.metadata?.resourceVersion
            if (expected !== undefined && expected !== current.metadata.resourceVersion) return conflict()
            const data = { ...(body?.data ?? {}), ...encodeStringData(body?.stringData ?? {}) } as Record<string, string | null>
            for (const [k, v] of Object.entries(data)) {
              if (v === null) delete obj.data[k]
              else obj.data[k] = v
            }
            for (const field of ['annotations', 'labels'] as const) {
              const patch = body?.metadata?.[field] as Record<string, string | null> | undefined
              if (!patch) continue
              const target = ((obj.metadata as Record<string, unknown>)[field] ??= {}) as Record<string, string>
              for (const [k, v] of Object.entries(patch)) {
                if (v === null) delete target[k]
                else target[k] = v
              }
            }
          } else if (req.headers['content-type'] === 'application/json-patch+json') {
            for (const op of body as Array<{ op: string; path: string; value?: string }>) {
              if (op.op === 'test' && op.path === '/metadata/resourceVersion' && op.value !== current.metadata.resourceVersion) {
                return send(422, status(422, 'Invalid', 'the server rejected our request due to an error in our request', name), verb)
              }
              const m = /^\/data\/(.+)$/.exec(op.path)
              if (m && (op.op === 'replace' || op.op === 'add')) obj.data[m[1]!.replace(/~1/g, '/').replace(/~0/g, '~')] = op.value!
            }
          } else return send(415, status(415, 'UnsupportedMediaType', `the body of the request was in an unknown format`), verb)
          obj.metadata.resourceVersion = bump()
          commit(key, obj, 'MODIFIED')
          return send(200, obj, verb)
        }
      }
    }
  }
  const encodeStringData = (m: Record<string, string | null>) =>
    Object.fromEntries(Object.entries(m).map(([k, v]) => [k, v === null ? null : b64(v)])) as Record<string, string>
  const server = opts.tls ? https.createServer({ key: opts.tls.key, cert: opts.tls.cert }, handler) : http.createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  double.url = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as { port: number }).port}`
  return double
}

/** The server-side printing of Secrets (`kubectl get secret`): NAME, TYPE, DATA, AGE. */
function secretTable(items: SecretObject[]) {
  const age = (t: string) => `${Math.max(0, Math.round((Date.now() - Date.parse(t)) / 1000))}s`
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: {},
    columnDefinitions: [
      { name: 'Name', type: 'string', format: 'name', description: 'Name', priority: 0 },
      { name: 'Type', type: 'string', format: '', description: 'Type', priority: 0 },
      { name: 'Data', type: 'string', format: '', description: 'Data', priority: 0 },
      { name: 'Age', type: 'string', format: '', description: 'Age', priority: 0 },
    ],
    rows: items.map((s) => ({
      cells: [s.metadata.name, s.type, Object.keys(s.data ?? {}).length, age(s.metadata.creationTimestamp)],
      object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: s.metadata },
    })),
  }
}
