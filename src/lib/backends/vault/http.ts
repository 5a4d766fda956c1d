import http from 'node:http'
import https from 'node:https'

/**
 * A strict HTTP client for one Vault address: one deadline per request (connect to last
 * byte), redirects never followed (the caller sees the 3xx), a cap on the body size, and
 * JSON-or-nothing bodies. Failures below HTTP become a `TransportError`; every HTTP status
 * is returned to the caller, who decides what it means.
 */
export interface HttpClientOptions {
  addr: string
  /** PEM trust anchors; when set, the only ones for this connection. */
  ca?: string
  /** Accept any server certificate (VAULT_SKIP_VERIFY). */
  skipVerify: boolean
  timeoutMs: number
  maxResponseBytes: number
}

export interface HttpResult {
  status: number
  /** The parsed body, or undefined when it was empty or not JSON (see `isJson`). */
  json: unknown
  isJson: boolean
}

export interface RequestInit {
  headers: Record<string, string>
  body?: unknown
  signal: AbortSignal
}

export interface HttpClient {
  request(method: 'GET' | 'POST', path: string, init: RequestInit): Promise<HttpResult>
  /** Destroys pooled sockets; in-flight requests are aborted through their signals. */
  close(): void
}

/** Why a request got no usable HTTP answer. `code` is the Node error code, if any. */
export type TransportReason = 'unreachable' | 'timeout' | 'bad_response' | 'aborted'

export class TransportError extends Error {
  readonly reason: TransportReason
  readonly code: string | undefined
  constructor(reason: TransportReason, message: string, code?: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause })
    this.name = 'TransportError'
    this.reason = reason
    this.code = code
  }
}

export function createHttpClient(opts: HttpClientOptions): HttpClient {
  const base = new URL(opts.addr.endsWith('/') ? opts.addr : `${opts.addr}/`)
  const secure = base.protocol === 'https:'
  const agent = secure
    ? new https.Agent({
        keepAlive: false,
        rejectUnauthorized: !opts.skipVerify,
        ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
      })
    : new http.Agent({ keepAlive: false })
  const prefix = base.pathname.replace(/\/$/, '')

  function request(method: 'GET' | 'POST', path: string, init: RequestInit): Promise<HttpResult> {
    return new Promise<HttpResult>((resolve, reject) => {
      if (init.signal.aborted) {
        reject(new TransportError('aborted', 'request aborted'))
        return
      }
      const payload = init.body === undefined ? undefined : Buffer.from(JSON.stringify(init.body))
      const headers: Record<string, string> = { Accept: 'application/json', ...init.headers }
      if (payload) {
        headers['Content-Type'] = 'application/json'
        headers['Content-Length'] = String(payload.length)
      }
      let settled = false
      const finish = (err: TransportError | undefined, result?: HttpResult): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        init.signal.removeEventListener('abort', onAbort)
        if (err) {
          req.destroy()
          reject(err)
        } else {
          resolve(result!)
        }
      }
      const onAbort = (): void => finish(new TransportError('aborted', 'request aborted'))
      const timer = setTimeout(
        () => finish(new TransportError('timeout', `no complete answer within ${opts.timeoutMs} ms`)),
        opts.timeoutMs,
      )
      timer.unref()
      init.signal.addEventListener('abort', onAbort, { once: true })

      const req = (secure ? https : http).request({
        protocol: base.protocol,
        hostname: base.hostname.replace(/^\[|\]$/g, ''),
        port: base.port || (secure ? 443 : 80),
        method,
        path: prefix + path,
        headers,
        agent,
      })
      req.on('error', (err: NodeJS.ErrnoException) => {
        finish(new TransportError('unreachable', err.code ?? err.message, err.code, err))
      })
      req.on('response', (res) => {
        const status = res.statusCode ?? 0
        const declared = Number(res.headers['content-length'])
        if (declared > opts.maxResponseBytes) {
          finish(new TransportError('bad_response', `HTTP ${status} body of ${declared} bytes exceeds ${opts.maxResponseBytes}`))
          return
        }
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (chunk: Buffer) => {
          size += chunk.length
          if (size > opts.maxResponseBytes) {
            finish(new TransportError('bad_response', `HTTP ${status} body exceeds ${opts.maxResponseBytes} bytes`))
            return
          }
          chunks.push(chunk)
        })
        res.on('error', (err: NodeJS.ErrnoException) => {
          finish(new TransportError('unreachable', `response interrupted (${err.code ?? err.message})`, err.code, err))
        })
        res.on('aborted', () => finish(new TransportError('unreachable', 'response interrupted', 'ECONNRESET')))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          let json: unknown
          let isJson = false
          if (text.trim() !== '') {
            try {
              json = JSON.parse(text)
              isJson = true
            } catch {
              json = undefined
            }
          }
          finish(undefined, { status, json, isJson })
        })
      })
      req.end(payload)
    })
  }

  return {
    request,
    close: () => agent.destroy(),
  }
}
