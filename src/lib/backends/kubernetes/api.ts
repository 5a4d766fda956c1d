import http from 'node:http'
import https from 'node:https'
import type { KubernetesConnection } from './connection.js'

export interface ApiResult {
  status: number
  /** Parsed JSON body, or undefined when it was empty or not JSON. */
  json: unknown
}

/** No answer at the HTTP level: `timeout`, or `unreachable` with the Node error code. */
export class ApiTransportError extends Error {
  constructor(
    readonly reason: 'unreachable' | 'timeout' | 'bad_response',
    message: string,
  ) {
    super(message)
    this.name = 'ApiTransportError'
  }
}

export interface KubernetesApi {
  request(method: 'GET' | 'POST' | 'PUT' | 'PATCH', path: string, body?: { json: unknown; contentType?: string }): Promise<ApiResult>
  close(): void
}

/**
 * A strict client for the few calls the backend makes: one deadline per request, redirects
 * never followed, a body-size cap, the bearer token read afresh for every request. The token
 * goes in the header only — never in a message.
 */
export function createKubernetesApi(conn: KubernetesConnection, opts: { timeoutMs: number; maxResponseBytes: number }): KubernetesApi {
  const base = new URL(conn.server)
  const secure = base.protocol === 'https:'
  const agent = secure
    ? new https.Agent({
        keepAlive: true,
        rejectUnauthorized: !conn.skipVerify,
        ...(conn.ca ? { ca: conn.ca } : {}),
        ...(conn.cert ? { cert: conn.cert } : {}),
        ...(conn.key ? { key: conn.key } : {}),
      })
    : new http.Agent({ keepAlive: true })
  const prefix = base.pathname.replace(/\/$/, '')
  return {
    request(method, path, body) {
      return new Promise<ApiResult>((resolve, reject) => {
        const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body.json))
        const headers: Record<string, string> = { Accept: 'application/json' }
        const token = conn.token?.()
        if (token) headers.Authorization = `Bearer ${token}`
        if (payload) {
          headers['Content-Type'] = body?.contentType ?? 'application/json'
          headers['Content-Length'] = String(payload.length)
        }
        const req = (secure ? https : http).request({
          protocol: base.protocol,
          hostname: base.hostname.replace(/^\[|\]$/g, ''),
          port: base.port || (secure ? 443 : 80),
          method,
          path: prefix + path,
          headers,
          agent,
          timeout: opts.timeoutMs,
        })
        const timer = setTimeout(() => req.destroy(new ApiTransportError('timeout', `no complete answer within ${opts.timeoutMs} ms`)), opts.timeoutMs)
        timer.unref()
        const fail = (err: unknown) => {
          clearTimeout(timer)
          if (err instanceof ApiTransportError) reject(err)
          else reject(new ApiTransportError('unreachable', (err as NodeJS.ErrnoException).code ?? (err as Error).message))
        }
        req.on('error', fail)
        req.on('response', (res) => {
          const chunks: Buffer[] = []
          let size = 0
          res.on('data', (chunk: Buffer) => {
            size += chunk.length
            if (size > opts.maxResponseBytes) req.destroy(new ApiTransportError('bad_response', `answer larger than ${opts.maxResponseBytes} bytes`))
            else chunks.push(chunk)
          })
          res.on('error', fail)
          res.on('end', () => {
            clearTimeout(timer)
            const text = Buffer.concat(chunks).toString('utf8')
            let json: unknown
            try {
              json = text.trim() === '' ? undefined : JSON.parse(text)
            } catch {
              json = undefined
            }
            resolve({ status: res.statusCode ?? 0, json })
          })
        })
        req.end(payload)
      })
    },
    close() {
      agent.destroy()
    },
  }
}
