import http, { type IncomingHttpHeaders } from 'node:http'
import https from 'node:https'
import tls from 'node:tls'
import { startDeadline } from '../deadline.js'
import { HttpCallError, socketFailureKind } from './http-call-error.js'
import { redactSecrets } from './redact.js'

/** How one client reaches one server. Checked by the caller; the client trusts them. */
export interface HttpClientOptions {
  /** Base URL; a request's `path` is appended to its path (`https://vault:8200/prefix`). */
  baseUrl: string
  /** Deadline of one request, from connecting to the last byte of the body, in ms. */
  timeoutMs: number
  /** Largest body accepted, in bytes; a larger one (declared or streamed) is `too_large`. */
  maxResponseBytes: number
  /** PEM trust anchors; when set, the only ones for this client. @default Node's CA store */
  ca?: string
  /** Accept any server certificate: only for an operator's explicit switch (VAULT_SKIP_VERIFY). @default false */
  skipVerify?: boolean
  /** PEM client certificate and its key, for mutual TLS. */
  cert?: string
  key?: string
  /** Reuse connections between requests. Off, a CLI exits as soon as it has its answer. @default false */
  keepAlive?: boolean
  /** Secrets to blank out of every error message; asked at failure time (tokens rotate). */
  secrets?: () => readonly string[]
}

export interface HttpRequest {
  /** @default 'GET' */
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH'
  /** Appended to the base URL's path; may carry a query string. @default '' */
  path?: string
  /** Sent as given; `Accept: application/json` unless overridden. */
  headers?: Record<string, string>
  /** A body, sent as JSON with `Content-Type: contentType`. */
  json?: unknown
  /** @default 'application/json' */
  contentType?: string
  /** Aborts the request (`aborted`). */
  signal?: AbortSignal
}

/** A complete answer with a non-3xx status; what the status means is the caller's call. */
export interface HttpAnswer {
  status: number
  headers: IncomingHttpHeaders
  /** The body as UTF-8 (at most `maxResponseBytes` bytes). */
  text: string
}

export interface HttpClient {
  /** One request. Resolves with any non-3xx answer; rejects only with `HttpCallError`. */
  request(req: HttpRequest): Promise<HttpAnswer>
  /** Destroys pooled sockets. */
  close(): void
}

/**
 * The TLS context of a CA bundle, made once per bundle: a context given `ca` is made again at
 * every connection, and a bundle of Node's whole store (`withNodeCaStore`, ~150 certificates)
 * takes ~20 ms of the event loop to parse — at every issuer fetch, beside requests.
 */
const caContexts = new Map<string, tls.SecureContext>()
function caContext(ca: string): tls.SecureContext {
  let context = caContexts.get(ca)
  if (context === undefined) {
    // A handful of bundles in a process; bounded all the same.
    if (caContexts.size >= 16) caContexts.clear()
    context = tls.createSecureContext({ ca })
    caContexts.set(ca, context)
  }
  return context
}

/**
 * The one outbound HTTP client: every call has a deadline and a body cap, a redirect is
 * an error and never followed (a 3xx could send a token or a request for keys to another
 * host), TLS is verified (against `ca` when given), and no message carries a secret.
 *
 * @example
 * const client = createHttpClient({ baseUrl: 'https://issuer.example', timeoutMs: 5000, maxResponseBytes: 65_536 })
 * const { status, text } = await client.request({ path: '/.well-known/jwks.json' })
 */
export function createHttpClient(opts: HttpClientOptions): HttpClient {
  const base = new URL(opts.baseUrl)
  const secure = base.protocol === 'https:'
  if (!secure && base.protocol !== 'http:') throw new TypeError(`createHttpClient: ${base.protocol} is not http or https`)
  const keepAlive = opts.keepAlive ?? false
  const agent = secure
    ? new https.Agent({
        keepAlive,
        rejectUnauthorized: opts.skipVerify !== true,
        // A CA alone: its context made once (caContext), not at every connection.
        ...(opts.ca === undefined ? {} : opts.cert === undefined && opts.key === undefined ? { secureContext: caContext(opts.ca) } : { ca: opts.ca }),
        ...(opts.cert !== undefined ? { cert: opts.cert } : {}),
        ...(opts.key !== undefined ? { key: opts.key } : {}),
      })
    : new http.Agent({ keepAlive })
  const prefix = base.pathname.replace(/\/$/, '')
  const secrets = opts.secrets ?? (() => [])
  const failure = (...args: ConstructorParameters<typeof HttpCallError>): HttpCallError =>
    new HttpCallError(args[0], redactSecrets(args[1], secrets()), args[2])

  function request(r: HttpRequest): Promise<HttpAnswer> {
    return new Promise<HttpAnswer>((resolve, reject) => {
      if (r.signal?.aborted) {
        reject(failure('aborted', 'request aborted'))
        return
      }
      const payload = r.json === undefined ? undefined : Buffer.from(JSON.stringify(r.json))
      const headers: Record<string, string> = { Accept: 'application/json', ...r.headers }
      if (payload) {
        headers['Content-Type'] = r.contentType ?? 'application/json'
        headers['Content-Length'] = String(payload.length)
      }
      let settled = false
      const finish = (err: HttpCallError | undefined, answer?: HttpAnswer): void => {
        if (settled) return
        settled = true
        cancelDeadline()
        r.signal?.removeEventListener('abort', onAbort)
        if (err || !keepAlive) req.destroy()
        if (err) reject(err)
        else resolve(answer!)
      }
      const onAbort = (): void => finish(failure('aborted', 'request aborted'))
      // Time this process's own loop was busy does not count: the peer was not what was slow.
      const cancelDeadline = startDeadline(opts.timeoutMs, () => finish(failure('timeout', `no complete answer within ${opts.timeoutMs} ms`)))
      r.signal?.addEventListener('abort', onAbort, { once: true })

      let req: http.ClientRequest
      try {
        req = (secure ? https : http).request({
          protocol: base.protocol,
          hostname: base.hostname.replace(/^\[|\]$/g, ''),
          port: base.port || (secure ? 443 : 80),
          method: r.method ?? 'GET',
          path: prefix + (r.path ?? ''),
          headers,
          agent,
        })
      } catch (err) {
        // A header Node refuses (a token with a newline): nothing was sent.
        const code = (err as NodeJS.ErrnoException).code
        settled = true
        cancelDeadline()
        r.signal?.removeEventListener('abort', onAbort)
        reject(failure('unreachable', code ?? 'request refused before sending', { code, cause: err }))
        return
      }
      // A TLS server that refuses the client's certificate, or its lack, does so once the client
      // has finished its handshake and sent the request: its alert is often lost to the reset that
      // follows (the request it never read). A bare ECONNRESET would not say where to look.
      let handshaken = false
      let answered = false
      if (secure) {
        req.on('socket', (socket) => {
          // Only a new connection's handshake: a kept one was accepted, certificate and all, by
          // an earlier request (its reset is the server closing it), and it never emits
          // secureConnect again — a listener per request would pile up on it.
          if (socket.connecting)
            socket.once('secureConnect', () => {
              handshaken = true
            })
        })
      }
      req.on('error', (err: NodeJS.ErrnoException) => {
        const message =
          handshaken && !answered && err.code === 'ECONNRESET'
            ? 'ECONNRESET after the TLS handshake, before any answer: what a server does that refuses the client certificate, or requires one'
            : (err.code ?? err.message)
        finish(failure(socketFailureKind(err.code), message, { code: err.code, cause: err }))
      })
      req.on('response', (res) => {
        answered = true
        const status = res.statusCode ?? 0
        if (status >= 300 && status < 400) {
          finish(failure('redirect', `HTTP ${status} redirect not followed`, { status }))
          return
        }
        const declared = Number(res.headers['content-length'])
        if (declared > opts.maxResponseBytes) {
          finish(failure('too_large', `HTTP ${status} body of ${declared} bytes exceeds ${opts.maxResponseBytes}`, { status }))
          return
        }
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (chunk: Buffer) => {
          size += chunk.length
          if (size > opts.maxResponseBytes) finish(failure('too_large', `HTTP ${status} body exceeds ${opts.maxResponseBytes} bytes`, { status }))
          else chunks.push(chunk)
        })
        res.on('error', (err: NodeJS.ErrnoException) => {
          finish(failure('unreachable', `response interrupted (${err.code ?? err.message})`, { code: err.code, cause: err }))
        })
        res.on('aborted', () => finish(failure('unreachable', 'response interrupted', { code: 'ECONNRESET' })))
        res.on('end', () => finish(undefined, { status, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }))
      })
      req.end(payload)
    })
  }

  return { request, close: () => agent.destroy() }
}

/**
 * One request to a full URL with a client made for it and closed after (no pooled socket
 * keeps a CLI alive). Same guarantees and failures as `createHttpClient`.
 *
 * @example
 * const { status, text } = await requestOnce(new URL('http://10.0.0.7:8000/v1/keys'), { timeoutMs: 5000, maxResponseBytes: 262_144 })
 */
export async function requestOnce(
  url: URL,
  opts: Omit<HttpClientOptions, 'baseUrl' | 'keepAlive'> & Pick<HttpRequest, 'headers' | 'signal'>,
): Promise<HttpAnswer> {
  const { headers, signal, ...clientOpts } = opts
  const client = createHttpClient({ ...clientOpts, baseUrl: url.origin })
  try {
    return await client.request({ path: url.pathname + url.search, ...(headers ? { headers } : {}), ...(signal ? { signal } : {}) })
  } finally {
    client.close()
  }
}
