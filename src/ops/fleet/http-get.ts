import { HttpCallError, requestOnce } from '../../lib/http/index.js'

export type GetResult =
  | {
      ok: true
      status: number
      text: string
      /** The answer's `Date` header: the server's clock, for comparing with its own timestamps. */
      date: string | undefined
    }
  | { ok: false; error: string }

/**
 * One GET through the shared client (deadline, body cap, no redirect, no kept-alive socket:
 * a CLI that asked a fleet must exit at once). Never throws: the fleet reports a redirect
 * by its status, and a failure below HTTP as `{ ok: false, error }` with the Node error code.
 */
export async function getText(url: URL, opts: { timeoutMs: number; maxBytes: number; headers?: Record<string, string> }): Promise<GetResult> {
  try {
    const answer = await requestOnce(url, { timeoutMs: opts.timeoutMs, maxResponseBytes: opts.maxBytes, ...(opts.headers ? { headers: opts.headers } : {}) })
    return { ok: true, status: answer.status, text: answer.text, date: answer.headers.date }
  } catch (err) {
    if (!(err instanceof HttpCallError)) throw err
    switch (err.kind) {
      case 'redirect':
        return { ok: true, status: err.status ?? 0, text: '', date: undefined }
      case 'too_large':
        return { ok: false, error: `answer larger than ${opts.maxBytes} bytes` }
      case 'timeout':
        return { ok: false, error: `no answer within ${opts.timeoutMs} ms` }
      default:
        return { ok: false, error: err.code ?? err.message }
    }
  }
}
