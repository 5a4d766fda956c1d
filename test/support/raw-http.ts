import net from 'node:net'

/**
 * Sends one HTTP/1.1 request exactly as written — header lines repeated, odd casing — which
 * `fetch` cannot do (it folds repeated headers into one). Resolves with status, headers, body.
 */
export function rawRequest(port: number, lines: string[]): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    let data = ''
    socket.setEncoding('latin1')
    socket.setTimeout(10_000, () => socket.destroy(new Error('raw request timed out')))
    socket.on('data', (d: string) => (data += d))
    socket.on('error', reject)
    socket.on('end', () => {
      const [head = '', ...rest] = data.split('\r\n\r\n')
      const [statusLine = '', ...headerLines] = head.split('\r\n')
      const headers: Record<string, string> = {}
      for (const line of headerLines) {
        const i = line.indexOf(':')
        headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim()
      }
      let body = rest.join('\r\n\r\n')
      if (headers['transfer-encoding'] === 'chunked') body = dechunk(body)
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body })
    })
    socket.write(`${lines.join('\r\n')}\r\nConnection: close\r\n\r\n`)
  })
}

function dechunk(text: string): string {
  let out = ''
  let at = 0
  for (;;) {
    const eol = text.indexOf('\r\n', at)
    const size = Number.parseInt(text.slice(at, eol), 16)
    if (!(size > 0)) return out
    out += text.slice(eol + 2, eol + 2 + size)
    at = eol + 2 + size + 2
  }
}
