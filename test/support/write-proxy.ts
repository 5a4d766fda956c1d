import http from 'node:http'
import { waitFor } from './wait.js'

/**
 * A plain-HTTP forwarder to a test double (Vault, or the Kubernetes API: both write with POST
 * and PUT only) that lets a test decide, when a write request arrives, whether it ever reaches
 * the double (test/e2e/crash-safety.test.ts kills the CLI there).
 */
export interface WriteProxy {
  addr: string
  /** Called when a write (POST/PUT) arrives; the answer decides whether it reaches Vault. */
  onWrite: ((url: string) => Promise<'forward' | 'drop'>) | undefined
  /**
   * Resolves once the clients are gone and every request they sent has been answered by Vault
   * or dropped: call it after the CLI has exited, before looking at what Vault holds.
   */
  idle(): Promise<void>
  close(): Promise<void>
}

export async function startWriteProxy(target: string): Promise<WriteProxy> {
  let inFlight = 0 // requests received, not yet answered by Vault or dropped
  let connections = 0 // open client sockets: a killed CLI's close only after what it sent was read
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('error', () => {}) // a client killed mid-request: its request is never forwarded
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      inFlight++
      const done = () => void inFlight--
      const isWrite = req.method === 'POST' || req.method === 'PUT'
      const decide = isWrite && proxy.onWrite ? proxy.onWrite(req.url ?? '') : Promise.resolve('forward' as const)
      void decide.then((action) => {
        if (action === 'drop') {
          res.destroy()
          return done()
        }
        res.on('error', () => {}) // the CLI may be dead: the answer goes nowhere
        const up = http.request(new URL(req.url ?? '/', target), { method: req.method, headers: req.headers, agent: false }, (answer) => {
          done() // the double has stored (or refused) the write before it answers
          res.writeHead(answer.statusCode ?? 502, answer.headers)
          answer.pipe(res)
        })
        up.on('error', () => {
          done()
          res.destroy()
        })
        up.end(Buffer.concat(chunks))
      })
    })
  })
  server.on('connection', (socket) => {
    connections++
    socket.once('close', () => void connections--)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const proxy: WriteProxy = {
    addr: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    onWrite: undefined,
    idle: () =>
      waitFor(() => inFlight === 0 && connections === 0, { timeoutMs: 30_000, intervalMs: 10, what: 'the proxy to deliver what it holds' }).then(() => {}),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
  return proxy
}
