/**
 * The watch half of the Kubernetes API test double (NOT a real API server), with the
 * semantics of the published API (https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes):
 *
 * - `GET …/secrets?watch=true&resourceVersion=RV`: a chunked stream of JSON lines
 *   `{"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":…}`, every change after RV
 *   (the history kept since the last compaction), then every change as it happens;
 *   without RV (or `0`), a synthetic `ADDED` per existing object first;
 * - `fieldSelector=metadata.name=NAME` filters to one object;
 * - an RV older than the history: `200` and one `ERROR` event carrying a `410 Expired` Status,
 *   then the stream ends (what an API server does after etcd compaction);
 * - `allowWatchBookmarks=true`: `BOOKMARK` events (only `metadata.resourceVersion` set) when a
 *   test asks (`bookmark()`), as the API server sends them about once a minute;
 * - `timeoutSeconds`: the server ends the stream cleanly after that long.
 */
import type http from 'node:http'

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED'

interface Stored {
  rv: number
  type: WatchEventType
  key: string
  object: { metadata: { name: string; namespace: string; resourceVersion: string } }
}

interface Watcher {
  ns: string
  name: string | undefined
  bookmarks: boolean
  res: http.ServerResponse
  timer: NodeJS.Timeout | undefined
}

export interface WatchHub {
  /** Records a change and sends it to the watchers it matches. */
  publish(type: WatchEventType, key: string, object: Stored['object']): void
  /** Serves one watch request (already authorised). */
  serve(
    res: http.ServerResponse,
    q: { ns: string; name: string | undefined; rv: string | null; bookmarks: boolean; timeoutSeconds: number | undefined },
    current: () => Stored['object'][],
  ): void
  /** Forgets the history: a watch from a resourceVersion older than the newest one gets `410` (a list's is still good). */
  compact(): void
  /** Sends a BOOKMARK with the current resourceVersion to every watcher that allows them; resolves once written to the sockets. */
  bookmark(currentRv: () => string): Promise<void>
  /** Cuts every open watch mid-stream (a load balancer or API server restart): no clean end. */
  disconnectAll(): void
  /** Sends every open watch an `ERROR` `410` event and ends it, as after a watch-cache reset. */
  expireAll(): void
  /** Open watch streams now. */
  open(): number
  /** Watch requests served so far, with the resourceVersion each asked for. */
  requests: Array<{ rv: string | null; name: string | undefined }>
  closeAll(): void
}

const gone = (rv: string, oldest: number) => ({
  type: 'ERROR',
  object: {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: `too old resource version: ${rv} (${oldest})`,
    reason: 'Expired',
    code: 410,
  },
})

export function createWatchHub(): WatchHub {
  const history: Stored[] = []
  /** Events with rv below this are forgotten. */
  let oldest = 0
  const watchers = new Set<Watcher>()
  const matches = (w: Watcher, key: string) => key.startsWith(`${w.ns}/`) && (w.name === undefined || key === `${w.ns}/${w.name}`)
  const write = (w: Watcher, event: unknown) => w.res.write(`${JSON.stringify(event)}\n`)
  const end = (w: Watcher) => {
    clearTimeout(w.timer)
    watchers.delete(w)
    w.res.end()
  }

  const hub: WatchHub = {
    requests: [],
    publish(type, key, object) {
      const rv = Number(object.metadata.resourceVersion)
      const stored: Stored = { rv, type, key, object: structuredClone(object) }
      history.push(stored)
      for (const w of watchers) if (matches(w, key)) write(w, { type, object: stored.object })
    },
    serve(res, q, current) {
      hub.requests.push({ rv: q.rv, name: q.name })
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' })
      const w: Watcher = { ns: q.ns, name: q.name, bookmarks: q.bookmarks, res, timer: undefined }
      if (q.rv === null || q.rv === '' || q.rv === '0') {
        for (const object of current()) write(w, { type: 'ADDED', object })
      } else {
        const from = Number(q.rv)
        if (!Number.isFinite(from) || from < oldest) {
          res.end(`${JSON.stringify(gone(q.rv, oldest))}\n`)
          return
        }
        for (const e of history) if (e.rv > from && matches(w, e.key)) write(w, { type: e.type, object: e.object })
      }
      watchers.add(w)
      res.on('close', () => {
        clearTimeout(w.timer)
        watchers.delete(w)
      })
      if (q.timeoutSeconds !== undefined) {
        w.timer = setTimeout(() => end(w), q.timeoutSeconds * 1000)
        w.timer.unref()
      }
    },
    compact() {
      oldest = Math.max(oldest, history.at(-1)?.rv ?? oldest)
      history.length = 0
    },
    async bookmark(currentRv) {
      const event = `${JSON.stringify({ type: 'BOOKMARK', object: { kind: 'Secret', apiVersion: 'v1', metadata: { resourceVersion: currentRv() } } })}\n`
      await Promise.all([...watchers].filter((w) => w.bookmarks).map((w) => new Promise<void>((resolve) => w.res.write(event, () => resolve()))))
    },
    disconnectAll() {
      for (const w of [...watchers]) {
        clearTimeout(w.timer)
        watchers.delete(w)
        w.res.socket?.destroy()
      }
    },
    expireAll() {
      for (const w of [...watchers]) {
        write(w, gone('0', oldest))
        end(w)
      }
    },
    open: () => watchers.size,
    closeAll() {
      for (const w of [...watchers]) end(w)
    },
  }
  return hub
}
