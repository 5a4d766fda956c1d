import http from 'node:http'
import https from 'node:https'
import { createHttpClient, HttpCallError, parseJsonBody } from '../../http/index.js'
import type { BackendErrorReason } from '../../reasons.js'
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

/** The backend error reason of a status the API answered instead of the one expected: one mapping for reads, writes and the watch. */
export function reasonOfStatus(status: number): BackendErrorReason {
  return status === 401 || status === 403 ? 'forbidden' : status === 404 ? 'not_found' : 'server_error'
}

/** How a watch stream ended: the server closed it (`timeoutSeconds`), or the caller stopped reading. */
export type StreamEnd = { status: 200; ended: 'closed' | 'stopped' } | ({ ended: 'refused' } & ApiResult)

export interface KubernetesApi {
  request(method: 'GET' | 'POST' | 'PUT' | 'PATCH', path: string, body?: { json: unknown; contentType?: string }): Promise<ApiResult>
  /**
   * A long-lived GET (a watch): each newline-terminated line of a 200 answer goes to `onLine`
   * as it arrives (returning `'stop'` ends the stream); a line over `maxLineBytes` or no byte
   * for `idleMs` fails with `ApiTransportError`; what `onLine` throws fails it as thrown. Any
   * other status resolves with its (bounded) body.
   */
  stream(path: string, onLine: (line: string) => 'stop' | undefined, opts: { idleMs: number; maxLineBytes: number; signal?: AbortSignal }): Promise<StreamEnd>
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
  // No keep-alive: requests are rare (a CLI command, one read per change or interval), and a
  // pooled socket the API server closed while idle fails the next request with ECONNRESET —
  // a write cannot safely be sent twice.
  const agent = secure
    ? new https.Agent({
        keepAlive: false,
        rejectUnauthorized: !conn.skipVerify,
        ...(conn.ca ? { ca: conn.ca } : {}),
        ...(conn.cert ? { cert: conn.cert } : {}),
        ...(conn.key ? { key: conn.key } : {}),
      })
    : new http.Agent({ keepAlive: false })
  const prefix = base.pathname.replace(/\/$/, '')
  const open = (method: string, path: string, headers: Record<string, string>) => {
    const token = conn.token?.()
    if (token) headers.Authorization = `Bearer ${token}`
    return (secure ? https : http).request({
      protocol: base.protocol,
      hostname: base.hostname.replace(/^\[|\]$/g, ''),
      port: base.port || (secure ? 443 : 80),
      method,
      path: prefix + path,
      headers,
      agent,
    })
  }
  let lastToken: string | undefined
  const client = createHttpClient({
    baseUrl: conn.server,
    timeoutMs: opts.timeoutMs,
    maxResponseBytes: opts.maxResponseBytes,
    skipVerify: conn.skipVerify,
    ...(conn.ca ? { ca: conn.ca } : {}),
    ...(conn.cert ? { cert: conn.cert } : {}),
    ...(conn.key ? { key: conn.key } : {}),
    secrets: () => (lastToken ? [lastToken] : []),
  })
  const transportError = (err: unknown) =>
    err instanceof ApiTransportError ? err : new ApiTransportError('unreachable', (err as NodeJS.ErrnoException).code ?? (err as Error).message)
  return {
    async request(method, path, body) {
      // One request through the shared client (deadline, body cap, no redirect, no pooled
      // socket); its failures keep this API's vocabulary for the backend.
      const send = async () => {
        await conn.renewToken?.()
        const token = conn.token?.()
        if (token) lastToken = token
        try {
          const answer = await client.request({
            method,
            path,
            ...(token ? { headers: { Authorization: `Bearer ${token}` } } : {}),
            ...(body === undefined ? {} : { json: body.json, ...(body.contentType ? { contentType: body.contentType } : {}) }),
          })
          return { status: answer.status, json: parseJsonBody(answer.text).json }
        } catch (err) {
          if (!(err instanceof HttpCallError)) throw err
          switch (err.kind) {
            // The backend judges a redirect by its status, as any status it did not expect.
            case 'redirect':
              return { status: err.status ?? 0, json: undefined }
            case 'timeout':
              throw new ApiTransportError('timeout', err.message)
            case 'too_large':
              throw new ApiTransportError('bad_response', `answer larger than ${opts.maxResponseBytes} bytes`)
            default:
              throw new ApiTransportError('unreachable', err.message)
          }
        }
      }
      const first = await send()
      // A token that runs out (an exec plugin's) refused: fetched again, the request repeated once
      // (a 401 is authentication, before anything was applied).
      if (first.status !== 401 || !conn.tokenRefused) return first
      conn.tokenRefused()
      return send()
    },
    async stream(path, onLine, { idleMs, maxLineBytes, signal }) {
      await conn.renewToken?.()
      return new Promise<StreamEnd>((resolve, reject) => {
        const req = open('GET', path, { Accept: 'application/json' })
        let settled = false
        let idle: NodeJS.Timeout | undefined
        /** What `onLine` threw goes to the caller as thrown (its own reason); a socket's error is a transport error. */
        const finish = (end: StreamEnd | Error, thrownByLine = false) => {
          if (settled) return
          settled = true
          clearTimeout(idle)
          if (end instanceof Error) reject(thrownByLine ? end : transportError(end))
          else resolve(end)
        }
        // A watch may be quiet for minutes (bookmarks come about once a minute); no byte at all
        // for idleMs means the connection is dead, whatever TCP believes.
        const arm = () => {
          clearTimeout(idle)
          idle = setTimeout(() => req.destroy(new ApiTransportError('timeout', `no byte from the watch within ${idleMs} ms`)), idleMs)
          idle.unref()
        }
        arm()
        const abort = () => req.destroy(new ApiTransportError('unreachable', 'watch closed'))
        if (signal?.aborted) abort()
        signal?.addEventListener('abort', abort, { once: true })
        req.on('close', () => signal?.removeEventListener('abort', abort))
        req.on('error', finish)
        req.on('response', (res) => {
          res.on('error', finish)
          if (res.statusCode !== 200) {
            const chunks: Buffer[] = []
            let size = 0
            res.on('data', (chunk: Buffer) => {
              size += chunk.length
              if (size <= opts.maxResponseBytes) chunks.push(chunk)
            })
            // A token that runs out refused: the next attempt (the watch backs off) fetches another.
            if (res.statusCode === 401) conn.tokenRefused?.()
            res.on('end', () => finish({ ended: 'refused', status: res.statusCode ?? 0, json: parseJson(Buffer.concat(chunks)) }))
            return
          }
          let pending: Buffer[] = []
          let pendingBytes = 0
          // Settled here, not through the socket's error: a line that came with the end of the
          // answer would otherwise end the stream as `closed`, its refusal lost.
          const refuseLine = () => {
            finish(new ApiTransportError('bad_response', `a watch event larger than ${maxLineBytes} bytes`))
            req.destroy()
          }
          res.on('data', (chunk: Buffer) => {
            arm()
            let start = 0
            for (let nl = chunk.indexOf(10); nl !== -1 && !settled; nl = chunk.indexOf(10, start)) {
              pending.push(chunk.subarray(start, nl))
              const bytes = Buffer.concat(pending)
              pending = []
              pendingBytes = 0
              start = nl + 1
              if (bytes.length > maxLineBytes) {
                refuseLine()
                return
              }
              const line = bytes.toString('utf8')
              let verdict: 'stop' | undefined
              try {
                verdict = line.trim() === '' ? undefined : onLine(line)
              } catch (err) {
                finish(err instanceof Error ? err : new Error(String(err)), true)
                req.destroy()
                return
              }
              if (verdict === 'stop') {
                finish({ status: 200, ended: 'stopped' })
                req.destroy()
                return
              }
            }
            pendingBytes += chunk.length - start
            if (pendingBytes > maxLineBytes) {
              refuseLine()
              return
            }
            if (start < chunk.length) pending.push(chunk.subarray(start))
          })
          res.on('end', () => finish({ status: 200, ended: 'closed' }))
          res.on('close', () => finish(new ApiTransportError('unreachable', 'the watch connection closed mid-answer')))
        })
        req.end()
      })
    },
    close() {
      agent.destroy()
      client.close()
    },
  }
}

function parseJson(body: Buffer): unknown {
  const text = body.toString('utf8')
  try {
    return text.trim() === '' ? undefined : JSON.parse(text)
  } catch {
    return undefined
  }
}
