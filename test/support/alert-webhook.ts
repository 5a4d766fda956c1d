import http from 'node:http'

/** One notification Alertmanager sent to a webhook receiver (its JSON body, in part), and when it came. */
export interface Notification {
  receiver: string
  status: 'firing' | 'resolved'
  /** The labels the route groups by: one notification per distinct set. */
  groupLabels: Record<string, string>
  alerts: Array<{ status: 'firing' | 'resolved'; labels: Record<string, string>; annotations: Record<string, string> }>
  /** Date.now() when the webhook received it (not part of Alertmanager's body). */
  receivedAt: number
}

export interface AlertWebhook {
  /** The URL to give a receiver: one path per receiver, so a notification names where it went. */
  urlFor(receiver: string): string
  /** Every notification received so far, in order. */
  notifications(): Notification[]
  close(): Promise<void>
}

/** A loopback HTTP server standing in for every webhook receiver (the pager, the chat). */
export async function startAlertWebhook(): Promise<AlertWebhook> {
  const received: Notification[] = []
  const server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (d: Buffer) => (body += d))
    req.on('end', () => {
      try {
        received.push({ ...(JSON.parse(body) as Omit<Notification, 'receivedAt'>), receivedAt: Date.now() })
        res.writeHead(200).end()
      } catch {
        res.writeHead(400).end()
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return {
    urlFor: (receiver) => `http://127.0.0.1:${port}/${encodeURIComponent(receiver)}`,
    notifications: () => [...received],
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
