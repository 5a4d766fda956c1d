import { BackendError } from '../../../../src/lib/errors.js'
import { createVaultBackend, type VaultBackendDeps, type VaultBackendOptions } from '../../../../src/lib/backends/vault/index.js'
import { after, before, beforeEach } from 'node:test'
import { startVaultDouble, type VaultDouble } from '../../../support/vault-double.js'

/**
 * One Vault double for the suite this is called in: started before it, closed after it, its
 * faults cleared and its request log emptied before each test. `use` receives it once started.
 */
export function vaultDoubleForSuite(use: (double: VaultDouble) => void): void {
  let double: VaultDouble | undefined
  before(async () => {
    double = await startVaultDouble()
    use(double)
  })
  after(async () => {
    await double?.close()
  })
  beforeEach(async () => {
    await double!.setFault(null)
    double!.requests.length = 0
  })
}

export const SECRET_PATH = 'cbc/jwt-keyset'
export const LOCATION = `vault:secret/${SECRET_PATH}`

/** Options for a backend pointed at `double`, fast retries; `overrides` win. */
export function optionsFor(double: VaultDouble, overrides: Partial<VaultBackendOptions> = {}): VaultBackendOptions {
  return {
    addr: double.addr,
    token: double.token,
    skipVerify: false,
    mount: 'secret',
    path: SECRET_PATH,
    auth: 'token',
    k8sMount: 'kubernetes',
    k8sTokenPath: '/nonexistent/token',
    timeoutMs: 5000,
    retries: 2,
    retryBaseMs: 2,
    retryMaxDelayMs: 10,
    ...overrides,
  }
}

export interface LogCall {
  level: 'warn' | 'info'
  obj: object
  msg: string | undefined
}

/** A logger that keeps every call, to assert on what was (and was not) logged. */
export function captureLogger(): { logger: NonNullable<VaultBackendDeps['logger']>; calls: LogCall[] } {
  const calls: LogCall[] = []
  return {
    calls,
    logger: {
      warn: (obj, msg) => void calls.push({ level: 'warn', obj, msg }),
      info: (obj, msg) => void calls.push({ level: 'info', obj, msg }),
    },
  }
}

export function backendFor(double: VaultDouble, overrides: Partial<VaultBackendOptions> = {}, deps: VaultBackendDeps = {}) {
  return createVaultBackend(optionsFor(double, overrides), deps)
}

/** Awaits a rejection and returns the BackendError (fails the test on anything else). */
export async function backendError(p: Promise<unknown>): Promise<BackendError> {
  try {
    await p
  } catch (err) {
    if (err instanceof BackendError) return err
    throw new Error(`expected a BackendError, got ${String(err)}`, { cause: err })
  }
  throw new Error('expected a BackendError, but the call succeeded')
}

/** Requests the double saw for the KV secret (not logins). */
export function kvRequests(double: VaultDouble, method?: string) {
  return double.requests.filter((r) => r.path.startsWith('/v1/secret/data/') && (!method || r.method === method))
}
