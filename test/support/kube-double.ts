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
 * - bearer-token authentication (`Authorization: Bearer …`), over HTTP or HTTPS.
 *
 * Hooks let a test interleave another writer between a read and a write, or answer every
 * write with 409 (a conflict storm).
 */
import fs from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import path from 'node:path'

export interface SecretObject {
  apiVersion: 'v1'
  kind: 'Secret'
  metadata: { name: string; namespace: string; resourceVersion: string; uid: string; creationTimestamp: string; labels?: Record<string, string> }
  type: string
  data: Record<string, string>
}

export interface RecordedCall {
  method: string
  path: string
  verb: 'get' | 'create' | 'update' | 'patch'
  status: number
}

export interface KubeDouble {
  url: string
  token: string
  calls: RecordedCall[]
  /** Verbs answered 403 (as RBAC would). */
  deny: Set<RecordedCall['verb']>
  /** Called before a write is applied; may change the store (another writer got in first). */
  beforeWrite?: ((verb: RecordedCall["verb"]) => void) | undefined
  /** Answer this many upcoming writes with 409, as if someone wrote just before each. */
  conflictStorm: number
  /** While set, writes wait for it before they are looked at: concurrent clients can all read first. */
  writeGate?: Promise<void> | undefined
  secret(ns: string, name: string): SecretObject | undefined
  /** Creates or replaces a Secret as an operator (`kubectl apply`) would: a new resourceVersion. */
  setSecret(ns: string, name: string, data: Record<string, string>): SecretObject
  /** A kubeconfig pointing at the double with its token, written to `file`. */
  writeKubeconfig(file: string, opts?: { namespace?: string; token?: string; ca?: string }): string
  close(): Promise<void>
}

const b64 = (s: string) => Buffer.from(s).toString('base64')

export async function startKubeDouble(opts: { token?: string; tls?: { key: string; cert: string } } = {}): Promise<KubeDouble> {
  const token = opts.token ?? 'double-token-7f3a'
  const store = new Map<string, SecretObject>()
  let rv = 1000
  const bump = () => String(++rv)

  const status = (code: number, reason: string, message: string, name?: string) => ({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(name ? { details: { name, kind: 'secrets' } } : {}),
    code,
  })

  const double: KubeDouble = {
    url: '',
    token,
    calls: [],
    deny: new Set(),
    conflictStorm: 0,
    secret: (ns, name) => structuredClone(store.get(`${ns}/${name}`)),
    setSecret(ns, name, data) {
      const prev = store.get(`${ns}/${name}`)
      const obj: SecretObject = {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name, namespace: ns, resourceVersion: bump(), uid: prev?.metadata.uid ?? `uid-${rv}`, creationTimestamp: prev?.metadata.creationTimestamp ?? new Date().toISOString() },
        type: 'Opaque',
        data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
      }
      store.set(`${ns}/${name}`, obj)
      return structuredClone(obj)
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
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }

  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
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
      const verb: RecordedCall['verb'] = req.method === 'POST' ? 'create' : req.method === 'PUT' ? 'update' : req.method === 'PATCH' ? 'patch' : 'get'
      if (req.headers.authorization !== `Bearer ${token}`) return send(401, status(401, 'Unauthorized', 'Unauthorized'), verb)
      if (!one && !coll) return send(404, status(404, 'NotFound', 'the server could not find the requested resource'), verb)
      const ns = (one ?? coll)![1]!
      const name = one ? decodeURIComponent(one[2]!) : undefined
      if (double.deny.has(verb)) {
        const what = name ? `secrets "${name}"` : 'secrets'
        return send(403, status(403, 'Forbidden', `${what} is forbidden: User "system:serviceaccount:cbc:cbc-jwt-rotator" cannot ${verb} resource "secrets" in API group "" in the namespace "${ns}"`, name), verb)
      }
      let body: any
      try {
        body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined
      } catch {
        return send(400, status(400, 'BadRequest', 'the body is not JSON'), verb)
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
        send(409, status(409, 'Conflict', `Operation cannot be fulfilled on secrets "${name}": the object has been modified; please apply your changes to the latest version and try again`, name), verb)
      switch (verb) {
        case 'get':
          return current ? send(200, current, verb) : send(404, status(404, 'NotFound', `secrets "${name}" not found`, name), verb)
        case 'create': {
          if (current) return send(409, status(409, 'AlreadyExists', `secrets "${body.metadata.name}" already exists`, body.metadata.name), verb)
          const obj: SecretObject = { ...body, metadata: { ...body.metadata, namespace: ns, resourceVersion: bump(), uid: `uid-${rv}`, creationTimestamp: new Date().toISOString() } }
          store.set(key, obj)
          return send(201, obj, verb)
        }
        case 'update': {
          if (!current) return send(404, status(404, 'NotFound', `secrets "${name}" not found`, name), verb)
          const expected = body?.metadata?.resourceVersion
          if (expected !== undefined && expected !== current.metadata.resourceVersion) return conflict()
          const obj: SecretObject = { ...body, metadata: { ...body.metadata, resourceVersion: bump(), uid: current.metadata.uid } }
          store.set(key, obj)
          return send(200, obj, verb)
        }
        case 'patch': {
          if (!current) return send(404, status(404, 'NotFound', `secrets "${name}" not found`, name), verb)
          const obj = structuredClone(current)
          if (req.headers['content-type'] === 'application/merge-patch+json') {
            const expected = body?.metadata?.resourceVersion
            if (expected !== undefined && expected !== current.metadata.resourceVersion) return conflict()
            for (const [k, v] of Object.entries((body?.data ?? {}) as Record<string, string | null>)) {
              if (v === null) delete obj.data[k]
              else obj.data[k] = v
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
          store.set(key, obj)
          return send(200, obj, verb)
        }
      }
    }
  }
  const server = opts.tls ? https.createServer({ key: opts.tls.key, cert: opts.tls.cert }, handler) : http.createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  double.url = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as { port: number }).port}`
  return double
}
