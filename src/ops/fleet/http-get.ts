import http from 'node:http'
import https from 'node:https'

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
 * One GET with a deadline, a body cap, no redirect following and no keep-alive (a CLI that
 * asked a fleet must exit at once, not when idle sockets time out). Never throws: a failure
 * below HTTP is `{ ok: false, error }` with the Node error code.
 */
export function getText(url: URL, opts: { timeoutMs: number; maxBytes: number; headers?: Record<string, string> }): Promise<GetResult> {
  return new Promise((resolve) => {
    let done = false
    const finish = (r: GetResult) => {
      if (done) return
      done = true
      clearTimeout(timer)
      req.destroy()
      resolve(r)
    }
    const req = (url.protocol === 'https:' ? https : http).get(url, { agent: false, headers: { accept: 'application/json', ...opts.headers, connection: 'close' } }, (res) => {
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (c: Buffer) => {
        size += c.length
        if (size > opts.maxBytes) finish({ ok: false, error: `answer larger than ${opts.maxBytes} bytes` })
        else chunks.push(c)
      })
      res.on('end', () => finish({ ok: true, status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), date: res.headers.date }))
      res.on('error', (err: NodeJS.ErrnoException) => finish({ ok: false, error: err.code ?? err.message }))
    })
    req.on('error', (err: NodeJS.ErrnoException) => finish({ ok: false, error: err.code ?? err.message }))
    const timer = setTimeout(() => finish({ ok: false, error: `no answer within ${opts.timeoutMs} ms` }), opts.timeoutMs)
    timer.unref()
  })
}
