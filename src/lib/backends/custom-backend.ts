import { startDeadline } from '../deadline.js'
import { BackendError } from '../errors.js'
import type { KeysetBackend, KeysetSnapshot } from './backend.js'

/**
 * How long a read of a backend of the caller's own may take. cbc-jwt's own backends bound each
 * request themselves (the file read 5 s, the Kubernetes API 10 s, each Vault request
 * `CBC_JWT_VAULT_TIMEOUT_MS`) and are not wrapped; a backend of one's own (a secrets manager's
 * SDK without a timeout) would otherwise keep `start()` from resolving, and `close()` waiting,
 * forever.
 */
export const CUSTOM_READ_DEADLINE_MS = 30_000

const OWN_KINDS: ReadonlySet<unknown> = new Set(['file', 'vault', 'kubernetes'])

/**
 * A backend given as an object to `createCbcJwt`: cbc-jwt's own as it is; one of the caller's
 * own with its reads bounded — a read that has not settled after `deadlineMs` of free event-loop
 * time fails with `BackendError` `timeout` (counted, logged, retried at the next refresh), so the
 * first read always ends. Every other member is the backend's own.
 */
export function boundedCustomBackend(backend: KeysetBackend, deadlineMs = CUSTOM_READ_DEADLINE_MS): KeysetBackend {
  if (OWN_KINDS.has(backend.kind)) return backend
  const read = (): Promise<KeysetSnapshot> =>
    new Promise<KeysetSnapshot>((resolve, reject) => {
      const cancel = startDeadline(deadlineMs, () =>
        reject(new BackendError('timeout', `${backend.location}: the backend's read() did not settle within ${deadlineMs / 1000} s`)),
      )
      Promise.resolve()
        .then(() => backend.read())
        .then(
          (snapshot) => {
            cancel()
            resolve(snapshot)
          },
          (err: unknown) => {
            cancel()
            reject(err)
          },
        )
    })
  return new Proxy(backend, {
    get(target, property) {
      if (property === 'read') return read
      const value: unknown = Reflect.get(target, property, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}
