import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { BackendError, ConfigError } from '../../errors.js'

/** Where and how to reach the Kubernetes API, as kubectl would. */
export interface KubernetesConnection {
  /** `https://host:port` of the API server. */
  server: string
  /** PEM trust anchors of the API server. */
  ca?: string
  skipVerify: boolean
  /** The bearer token, fetched for every request (service-account tokens are rotated on disk). */
  token?: () => string
  /**
   * Only for a token that runs out (an exec plugin's): makes `token()` current before a request —
   * the plugin runs again once the token is past its `expirationTimestamp`, or after `refused`.
   * Throws `BackendError` `forbidden` when the plugin fails.
   */
  renewToken?: () => Promise<void>
  /** The API answered 401 to the token: the next `renewToken()` fetches another. */
  tokenRefused?: () => void
  /** PEM client certificate and key (kubeconfig). */
  cert?: string
  key?: string
  /** The namespace the context (or the pod's service account) names, if any. */
  namespace?: string
  /** For messages: `in-cluster` or `kubeconfig ~/.kube/config, context prod`. */
  source: string
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'

/**
 * Finds the API server the way kubectl does: the kubeconfig (`KUBECONFIG`, else
 * `~/.kube/config`) when there is one, else the in-cluster service account
 * (`KUBERNETES_SERVICE_HOST`/`_PORT` and the token, CA and namespace files). `context`
 * picks a kubeconfig context other than `current-context`.
 */
export async function resolveConnection(env: NodeJS.ProcessEnv, opts: { context?: string; serviceAccountDir?: string } = {}): Promise<KubernetesConnection> {
  const files = (env.KUBECONFIG ?? '').split(path.delimiter).filter(Boolean)
  if (files.length === 0) {
    const home = env.HOME ?? os.homedir()
    const dflt = path.join(home, '.kube', 'config')
    if (fs.existsSync(dflt)) files.push(dflt)
  }
  const existing = files.filter((f) => fs.existsSync(f))
  if (existing.length > 0) return fromKubeconfig(existing, opts.context, env)
  if (env.KUBECONFIG) throw new ConfigError(`KUBECONFIG names no readable file (${env.KUBECONFIG})`)
  return inCluster(env, opts.serviceAccountDir ?? SERVICE_ACCOUNT_DIR)
}

function inCluster(env: NodeJS.ProcessEnv, dir: string): KubernetesConnection {
  const host = env.KUBERNETES_SERVICE_HOST
  const port = env.KUBERNETES_SERVICE_PORT
  const tokenFile = path.join(dir, 'token')
  if (!host || !port || !fs.existsSync(tokenFile)) {
    throw new ConfigError(
      'CBC_JWT_BACKEND=kubernetes: no kubeconfig (KUBECONFIG, ~/.kube/config) and not in a pod with a service-account token (KUBERNETES_SERVICE_HOST, ' +
        `${tokenFile})`,
    )
  }
  const caFile = path.join(dir, 'ca.crt')
  const nsFile = path.join(dir, 'namespace')
  const namespace = fs.existsSync(nsFile) ? fs.readFileSync(nsFile, 'utf8').trim() : undefined
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    ...(fs.existsSync(caFile) ? { ca: fs.readFileSync(caFile, 'utf8') } : {}),
    skipVerify: false,
    token: tokenFromFile(tokenFile),
    ...(namespace ? { namespace } : {}),
    source: 'in-cluster service account',
  }
}

/** A kubeconfig as parsed: any shape, checked where it is read. */
interface Kubeconfig {
  'current-context'?: string
  clusters?: unknown
  users?: unknown
  contexts?: unknown
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** A kubeconfig context: its cluster and user. Exec plugins are run (token credentials only); auth-provider is not supported. */
async function fromKubeconfig(files: string[], context: string | undefined, env: NodeJS.ProcessEnv): Promise<KubernetesConnection> {
  // Loaded only here: the library and the service never pay for a YAML parser.
  const YAML = await import('yaml')
  const configs = files.map((file) => {
    try {
      return { file, doc: (YAML.parse(fs.readFileSync(file, 'utf8')) ?? {}) as Kubeconfig }
    } catch (err) {
      throw new ConfigError(`kubeconfig ${file} cannot be read: ${(err as Error).message.split('\n')[0]}`)
    }
  })
  // As kubectl merges: the first file to set a value wins.
  const first = <T>(pick: (c: Kubeconfig) => T | undefined) => configs.map((c) => ({ file: c.file, v: pick(c.doc) })).find((x) => x.v !== undefined)
  // A file of another shape (a list that is not one, an entry without its body) is a
  // configuration error like any other, never a TypeError.
  const named = <T>(list: unknown, name: unknown, body: string): T | undefined => {
    const entry = Array.isArray(list) ? (list.find((x) => isObject(x) && x.name === name) as Record<string, unknown> | undefined) : undefined
    return isObject(entry?.[body]) ? (entry[body] as T) : undefined
  }
  // An empty current-context is unset, as kubectl reads it: a later file's decides.
  const ctxName = context ?? first((c) => c['current-context'] || undefined)?.v
  if (!ctxName) throw new ConfigError(`kubeconfig ${files.join(':')} has no current-context (set one, or CBC_JWT_KUBERNETES_CONTEXT)`)
  const ctx = first((c) => named<{ cluster: string; user: string; namespace?: string }>(c.contexts, ctxName, 'context'))?.v
  if (!ctx) throw new ConfigError(`kubeconfig: no context "${ctxName}"`)
  const cluster = first((c) => named<Record<string, unknown>>(c.clusters, ctx.cluster, 'cluster'))
  const user = first((c) => named<Record<string, unknown>>(c.users, ctx.user, 'user'))
  if (!cluster?.v || typeof cluster.v.server !== 'string') throw new ConfigError(`kubeconfig: context "${ctxName}" names no cluster with a server`)
  const c = cluster.v
  // The scheme in any case, as kubectl and the HTTP client read it (`HTTPS://` is TLS).
  if (!URL.canParse(c.server as string) || !/^https?:\/\/[^/]/i.test(c.server as string))
    throw new ConfigError(`kubeconfig: cluster "${ctx.cluster}" has server "${c.server}", not an https:// (or http://) URL`)
  const u = user?.v ?? {}
  const rel = (base: string, p: unknown) => path.resolve(path.dirname(base), String(p))
  const pem = (base: string, field: string, data: unknown, file: unknown) => {
    if (typeof data === 'string') return Buffer.from(data, 'base64').toString('utf8')
    if (typeof file !== 'string') return undefined
    try {
      return fs.readFileSync(rel(base, file), 'utf8')
    } catch (err) {
      throw new ConfigError(`kubeconfig: ${field} ${rel(base, file)} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
    }
  }
  const ca = pem(cluster.file, 'certificate-authority', c['certificate-authority-data'], c['certificate-authority'])
  const cert = pem(user?.file ?? cluster.file, 'client-certificate', u['client-certificate-data'], u['client-certificate'])
  const key = pem(user?.file ?? cluster.file, 'client-key', u['client-key-data'], u['client-key'])
  let token: (() => string) | undefined
  let renewable: Pick<KubernetesConnection, 'renewToken' | 'tokenRefused'> = {}
  if (typeof u.token === 'string') {
    const t = u.token
    token = () => t
  } else if (typeof u.tokenFile === 'string') {
    const f = rel(user!.file, u.tokenFile)
    if (!fs.existsSync(f)) throw new ConfigError(`kubeconfig user "${ctx.user}": its tokenFile ${f} does not exist`)
    token = tokenFromFile(f)
  } else if (u.exec && typeof u.exec === 'object') {
    const plugin = await execCredential(u.exec as Record<string, unknown>, env)
    token = plugin.token
    renewable = { renewToken: plugin.renew, tokenRefused: plugin.refused }
  } else if (u['auth-provider']) {
    throw new ConfigError(`kubeconfig user "${ctx.user}": auth-provider is not supported; use a token, a client certificate or an exec plugin`)
  }
  return {
    server: c.server as string,
    ...(ca ? { ca } : {}),
    skipVerify: c['insecure-skip-tls-verify'] === true,
    ...(token ? { token } : {}),
    ...renewable,
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    ...(ctx.namespace ? { namespace: ctx.namespace } : {}),
    source: `kubeconfig context ${ctxName}`,
  }
}

/**
 * A bearer token kept in a file (the pod's service-account token, a kubeconfig `tokenFile`), read
 * for every request since the kubelet rotates it. A file gone or unreadable since is `forbidden`,
 * as for Vault's login with that token: one line naming the file, never a raw `ENOENT`.
 */
function tokenFromFile(file: string): () => string {
  return () => {
    try {
      return fs.readFileSync(file, 'utf8').trim()
    } catch (err) {
      throw new BackendError('forbidden', `cannot read the bearer token file ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
    }
  }
}

/**
 * A client-go credential plugin: run once now (a failure is a `ConfigError`, a start-up error),
 * then again — as kubectl does — whenever its token is past the ExecCredential's
 * `status.expirationTimestamp` or the API server answered 401 to it, so a long-lived process (the
 * service's watch) outlives tokens that last minutes. One run at a time; a later failure is
 * `BackendError` `forbidden`.
 */
async function execCredential(
  exec: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): Promise<{ token: () => string; renew: () => Promise<void>; refused: () => void }> {
  const command = String(exec.command ?? '')
  if (command === '') throw new ConfigError('kubeconfig exec plugin: no command')
  let current = await runExecPlugin(exec, env).catch((err: Error) => {
    throw new ConfigError(`kubeconfig exec plugin ${command} ${err.message}`)
  })
  let stale = false
  let running: Promise<void> | undefined
  return {
    token: () => current.token,
    renew() {
      if (!stale && Date.now() < current.expiresAt) return Promise.resolve()
      running ??= runExecPlugin(exec, env)
        .then(
          (next) => {
            current = next
            stale = false
          },
          (err: Error) => {
            throw new BackendError('forbidden', `kubeconfig exec plugin ${command} ${err.message}`)
          },
        )
        .finally(() => {
          running = undefined
        })
      return running
    },
    refused() {
      stale = true
    },
  }
}

/** Runs a credential plugin: `status.token` of its ExecCredential, and when it expires (ms; never: Infinity). */
function runExecPlugin(exec: Record<string, unknown>, env: NodeJS.ProcessEnv): Promise<{ token: string; expiresAt: number }> {
  const command = String(exec.command ?? '')
  const args = Array.isArray(exec.args) ? exec.args.map(String) : []
  const extra = Array.isArray(exec.env)
    ? Object.fromEntries(
        exec.env.filter((e) => isObject(e) && typeof e.name === 'string').map((e: { name: string; value?: unknown }) => [e.name, String(e.value ?? '')]),
      )
    : {}
  return new Promise((resolve, reject) => {
    execFile(command, args, { env: { ...env, ...extra }, encoding: 'utf8', timeout: 30_000, maxBuffer: 1024 * 1024 }, (err, stdout) => {
      if (err) {
        const code = (err as { code?: unknown }).code
        reject(new Error(`failed (exit ${typeof code === 'number' ? code : ((err as NodeJS.ErrnoException).code ?? 'error')})`))
        return
      }
      try {
        const status = (JSON.parse(stdout) as { status?: { token?: unknown; expirationTimestamp?: unknown } }).status
        if (typeof status?.token === 'string' && status.token !== '') {
          const expires = typeof status.expirationTimestamp === 'string' ? Date.parse(status.expirationTimestamp) : Number.NaN
          resolve({ token: status.token, expiresAt: Number.isNaN(expires) ? Number.POSITIVE_INFINITY : expires })
          return
        }
      } catch {
        // fall through
      }
      reject(new Error('gave no status.token'))
    })
  })
}
