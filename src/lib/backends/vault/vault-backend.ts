import { X509Certificate } from 'node:crypto'
import fs from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { BackendError, CasConflictError, ConfigError } from '../../errors.js'
import type { KeysetBackend, KeysetSnapshot } from '../backend.js'
import { kubernetesAuth, staticToken, type TokenSource, type VaultLogger } from './auth.js'
import { badResponse, isCasMismatch, redact, statusFailure, toFailure, vaultErrors, type Failure } from './classify.js'
import { createHttpClient } from '../../http/index.js'
import { parseReadEnvelope, parseWriteEnvelope, type Kv2Version } from './kv2.js'
import { vaultRequest, type VaultAnswer } from './request.js'
import { checkAddr, checkHeaderValues, checkPath, VAULT_DEFAULTS, type VaultBackendOptions } from './options.js'

/** The field of the KV v2 secret that holds the keyset document (docs/vault.md). */
export const KEYSET_FIELD = 'jwt-keyset'

export interface VaultBackendDeps {
  /** Receives warnings (retries, insecure TLS) and login notices; never a token. */
  logger?: VaultLogger
  /** Clock for token lease expiry, in milliseconds. @default Date.now */
  now?: () => number
  /** Source of the backoff jitter, uniform in [0, 1). @default Math.random */
  random?: () => number
  /** Not supported: the backend needs TLS options `fetch` cannot take without undici. */
  fetchImpl?: never
}

const SILENT: VaultLogger = { warn: () => {}, info: () => {} }

type Outcome = { ok: true; res: VaultAnswer } | ({ ok: false } & Failure)

/**
 * A `KeysetBackend` over a Vault KV v2 secret: the keyset is its field `jwt-keyset`, the
 * version is `metadata.version`, writes are check-and-set and keep the secret's other
 * fields. Reads retry transient failures with capped, fully jittered exponential backoff.
 *
 * @example
 * const backend = createVaultBackend(vaultOptionsFromEnv(process.env), { logger })
 * const { text, version } = await backend.read()
 * await backend.write(next, version) // CasConflictError if someone wrote in between
 */
export function createVaultBackend(options: VaultBackendOptions, deps: VaultBackendDeps = {}): KeysetBackend {
  const logger = deps.logger ?? SILENT
  const now = deps.now ?? Date.now
  const random = deps.random ?? Math.random
  // A setting left out takes its documented default, as it does from the environment.
  const addr = checkAddr(options.addr, 'VAULT_ADDR')
  checkHeaderValues(options)
  const mount = checkPath(options.mount ?? VAULT_DEFAULTS.mount, 'CBC_JWT_VAULT_MOUNT')
  const secretPath = checkPath(options.path ?? VAULT_DEFAULTS.path, 'CBC_JWT_VAULT_PATH')
  const timeoutMs = intOption(options.timeoutMs ?? VAULT_DEFAULTS.timeoutMs, 'timeoutMs', 1)
  const retries = intOption(options.retries ?? VAULT_DEFAULTS.retries, 'retries', 0)
  const skipVerify = options.skipVerify === true
  const baseMs = intOption(options.retryBaseMs ?? VAULT_DEFAULTS.retryBaseMs, 'retryBaseMs', 0)
  const maxDelayMs = intOption(options.retryMaxDelayMs ?? VAULT_DEFAULTS.retryMaxDelayMs, 'retryMaxDelayMs', 0)
  const maxResponseBytes = intOption(options.maxResponseBytes ?? VAULT_DEFAULTS.maxResponseBytes, 'maxResponseBytes', 1)
  const location = `vault:${mount}/${secretPath}${options.namespace ? ` (namespace ${options.namespace})` : ''}`

  const url = new URL(addr)
  // The scheme as the HTTP client reads it: case-insensitive (`HTTPS://` is TLS).
  const secure = url.protocol === 'https:'
  let ca: string | undefined
  if (options.caCertFile !== undefined) {
    try {
      ca = fs.readFileSync(options.caCertFile, 'utf8')
    } catch (err) {
      throw new ConfigError(`VAULT_CACERT: cannot read ${options.caCertFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
    }
    checkCaBundle(ca, options.caCertFile)
  }
  if (skipVerify && secure) {
    const msg = "VAULT_SKIP_VERIFY is set: Vault's TLS certificate is NOT verified; anyone on the path can read the token and forge the keyset"
    if (deps.logger) logger.warn({ location, vault_addr: addr }, msg)
    else process.emitWarning(`${location}: ${msg}`)
  }
  if (!secure) {
    const host = url.hostname
    if (!['127.0.0.1', 'localhost', '[::1]', '::1'].includes(host)) {
      logger.warn({ location, vault_addr: addr }, 'VAULT_ADDR is plain http: the Vault token crosses the network in clear')
    }
    if (options.caCertFile !== undefined || skipVerify) {
      logger.warn({ location, vault_addr: addr }, 'VAULT_CACERT / VAULT_SKIP_VERIFY ignored: VAULT_ADDR is not https')
    }
  }

  const http = createHttpClient({
    baseUrl: addr.endsWith('/') ? addr : `${addr}/`,
    skipVerify,
    timeoutMs,
    maxResponseBytes,
    ...(ca !== undefined ? { ca } : {}),
    secrets: () => auth.secrets(),
  })
  const headers: Record<string, string> = { 'X-Vault-Request': 'true' }
  if (options.namespace) headers['X-Vault-Namespace'] = options.namespace
  const auth = makeAuth()
  const controller = new AbortController()
  const signal = controller.signal
  let closed = false
  const dataPath = `/v1/${encodePath(mount)}/data/${encodePath(secretPath)}`

  function makeAuth(): TokenSource {
    const method = options.auth ?? VAULT_DEFAULTS.auth
    if (method === 'kubernetes') {
      if (!options.role) throw new ConfigError('CBC_JWT_VAULT_ROLE is required when CBC_JWT_VAULT_AUTH=kubernetes')
      return kubernetesAuth({
        http,
        location,
        headers,
        role: options.role,
        mount: checkPath(options.k8sMount ?? VAULT_DEFAULTS.k8sMount, 'CBC_JWT_VAULT_K8S_MOUNT'),
        tokenPath: options.k8sTokenPath ?? VAULT_DEFAULTS.k8sTokenPath,
        now,
        logger,
      })
    }
    if (method !== 'token') throw new ConfigError(`CBC_JWT_VAULT_AUTH must be "token" or "kubernetes"`)
    if (!options.token) throw new ConfigError('VAULT_TOKEN is required when CBC_JWT_VAULT_AUTH=token (the default)')
    return staticToken(options.token)
  }

  const closedError = (what: string): BackendError => new BackendError('io_error', `${what}: backend closed`)

  /** One request, with one re-login and repeat if Vault answers 403 to a token it issued. */
  async function attempt(method: 'GET' | 'POST', what: string, body: unknown, accept: (r: VaultAnswer) => boolean): Promise<Outcome> {
    let token: string
    try {
      token = await auth.token(signal)
    } catch (err) {
      return { ok: false, ...toFailure(err, what), notApplied: true }
    }
    try {
      const send = (t: string): Promise<VaultAnswer> => vaultRequest(http, method, dataPath, { headers: { ...headers, 'X-Vault-Token': t }, body, signal })
      let res = await send(token)
      if (res.status === 403 && auth.invalidate(token)) {
        logger.warn({ location }, 'Vault answered 403 (token expired or revoked?); logging in again')
        try {
          token = await auth.token(signal)
        } catch (err) {
          return { ok: false, ...toFailure(err, what), notApplied: true }
        }
        res = await send(token)
      }
      if (res.status >= 200 && res.status < 300) {
        if (!res.isJson) return { ok: false, error: badResponse(what, `HTTP ${res.status} body is not JSON`), transient: false, notApplied: false }
        return { ok: true, res }
      }
      if (accept(res)) return { ok: true, res }
      return { ok: false, ...statusFailure(res.status, res.json, what) }
    } catch (err) {
      return { ok: false, ...toFailure(err, what) }
    }
  }

  /** Attempts until success, a failure `retryable` refuses, or the attempts run out. */
  async function call(
    method: 'GET' | 'POST',
    what: string,
    body: unknown,
    accept: (r: VaultAnswer) => boolean,
    retryable: (f: Failure) => boolean,
  ): Promise<VaultAnswer> {
    const attempts = 1 + retries
    for (let n = 1; ; n++) {
      if (closed) throw closedError(what)
      const out = await attempt(method, what, body, accept)
      if (out.ok) return out.res
      const error = redact(out.error, auth.secrets())
      if (closed) throw closedError(what)
      if (n >= attempts || !retryable(out)) throw error
      const delayMs = Math.floor(random() * Math.min(maxDelayMs, baseMs * 2 ** (n - 1)))
      logger.warn({ location, reason: error.reason, attempt: n, attempts, retry_in_ms: delayMs, error: error.message }, 'Vault request failed; retrying')
      // Kept ref'd on purpose: a caller awaiting read() (the CLI) must not see the process
      // exit mid-backoff. The wait is bounded by retryMaxDelayMs and close() aborts it.
      try {
        await sleep(delayMs, undefined, { signal })
      } catch {
        throw closedError(what)
      }
    }
  }

  type Current = Kv2Version & { missing: boolean; errors: string }

  async function readCurrent(what: string): Promise<Current> {
    const res = await call(
      'GET',
      what,
      undefined,
      (r) => r.status === 404,
      (f) => f.transient,
    )
    if (res.status === 404) {
      // Vault answers 404 with the metadata when the latest version is deleted or destroyed.
      const env = res.isJson ? parseReadEnvelope(res.json) : undefined
      if (env) return { ...env, fields: null, missing: false, errors: '' }
      return { fields: null, version: 0, destroyed: false, missing: true, errors: vaultErrors(res.json) }
    }
    const env = parseReadEnvelope(res.json)
    if (!env) throw badResponse(what, 'the answer is not a KV v2 envelope (data.data, data.metadata.version)')
    return { ...env, missing: false, errors: '' }
  }

  /**
   * One check-and-set POST of `text` over the version `cur` was read at, the secret's other
   * fields kept: the new version, or undefined when another writer changed the secret first.
   * Repeated only when it certainly did not reach Vault's storage.
   */
  /**
   * One check-and-set POST over `cur`: the version written (with a notice when only reading back
   * showed it), or undefined when another writer changed the secret first.
   */
  async function postOver(cur: Current, text: string, what: string): Promise<{ version: number; notice?: string } | undefined> {
    const data = { ...(cur.fields ?? {}), [KEYSET_FIELD]: text }
    // Vault's JSON takes any depth, JSON.stringify only what the stack holds: another field
    // nested that deep cannot be carried into the next version, so nothing is sent.
    if (!serialisable(data)) throw badResponse(what, `version ${cur.version} holds a field nested too deep to carry into the next version; nothing was written`)
    let res: VaultAnswer
    try {
      res = await call(
        'POST',
        what,
        { options: { cas: cur.version }, data },
        (r) => isCasMismatch(r.status, r.json),
        (f) => f.transient && f.notApplied,
      )
    } catch (err) {
      if (!(err instanceof BackendError)) throw err
      const landed = await readBack(cur, text, what, err.message)
      if (landed) return landed
      throw err
    }
    if (isCasMismatch(res.status, res.json)) return undefined
    const version = parseWriteEnvelope(res.json)
    if (version !== undefined) return { version }
    const landed = await readBack(cur, text, what, `${what}: HTTP ${res.status} answer without data.version`)
    if (landed) return landed
    throw badResponse(what, 'the answer has no data.version, and reading the secret back does not show this write')
  }

  /**
   * Whether a write whose answer was lost or unreadable (a proxy that rewrote it, a connection cut
   * after the request went out) landed all the same: the version after `cur` holds exactly this
   * text. Reported as landed, a re-run of the command would not apply its change a second time
   * (a second `rotate --compromised` would cut off the key the first one made current).
   */
  async function readBack(cur: Current, text: string, what: string, answer: string): Promise<{ version: number; notice: string } | undefined> {
    let after: Current
    try {
      after = await readCurrent(what)
    } catch {
      return undefined
    }
    if (after.version !== cur.version + 1 || keysetValue(after.fields) !== text) return undefined
    logger.warn({ location, version: after.version }, 'Vault write answer unreadable; reading back shows it landed')
    return { version: after.version, notice: `${answer}; reading it back shows the keyset written as version ${after.version}: the write landed` }
  }

  /** Writes the keyset only where none is stored (the secret, or its field, absent): one round. */
  async function createOnly(text: string): Promise<KeysetSnapshot> {
    const what = `${location}: create`
    const cur = await readCurrent(what)
    if (keysetValue(cur.fields) !== undefined) throw new CasConflictError(`${what}: a keyset is already stored (version ${cur.version})`)
    const written = await postOver(cur, text, what)
    if (written === undefined) throw new CasConflictError(`${what}: another writer changed the secret first (check-and-set)`)
    logger.info({ location, version: written.version }, 'created the keyset in Vault')
    return snapshotOf(text, written)
  }

  return {
    kind: 'vault',
    location,

    async read(): Promise<KeysetSnapshot> {
      const what = `${location}: read`
      // A 404 is an answer, not a failure of call(): what it carries (Vault's or a proxy's
      // errors, the secret's field names) is redacted, escaped and cut here, as call() does.
      const notFound = (message: string): BackendError => redact(new BackendError('not_found', message), auth.secrets())
      const cur = await readCurrent(what)
      if (cur.missing) throw notFound(`${what}: no such secret (HTTP 404${cur.errors ? `, ${cur.errors}` : ''})`)
      if (cur.fields === null) {
        const state = cur.destroyed ? 'destroyed' : 'deleted'
        throw notFound(`${what}: the latest version (${cur.version}) is ${state}`)
      }
      const value = keysetValue(cur.fields)
      if (value === undefined) {
        const names = Object.keys(cur.fields).slice(0, 20).join(', ') || 'none'
        throw notFound(`${what}: version ${cur.version} has no field "${KEYSET_FIELD}" (fields: ${names})`)
      }
      // A string as a Kubernetes secret holds it; an object written by `vault kv put @file.json`.
      if (typeof value === 'string') return { text: value, version: String(cur.version) }
      let text: string
      try {
        text = JSON.stringify(value)
      } catch {
        // JSON.parse takes any depth, JSON.stringify only what the stack holds: a value nested
        // that deep is no keyset (the loader refuses it as invalid_keyset, given as text).
        throw new BackendError('invalid_keyset', `${what}: version ${cur.version} of "${KEYSET_FIELD}" is nested too deep to be a keyset`)
      }
      return { text, version: String(cur.version) }
    },

    async write(text: string, expectedVersion?: string | null): Promise<KeysetSnapshot> {
      if (typeof text !== 'string') throw new TypeError('write(text): text must be a string')
      if (expectedVersion === null) return createOnly(text)
      if (expectedVersion !== undefined && !/^\d{1,15}$/.test(expectedVersion)) {
        throw new TypeError(`write(): expectedVersion must be a Vault version number, got ${JSON.stringify(expectedVersion)}`)
      }
      const what = `${location}: write`
      // Without an expected version the caller wants the write to happen; the check-and-set
      // then only protects the other fields we merge, so a lost race is simply retried.
      const rounds = expectedVersion === undefined ? 3 : 1
      for (let round = 1; round <= rounds; round++) {
        const cur = await readCurrent(what)
        if (expectedVersion !== undefined && String(cur.version) !== expectedVersion) {
          throw new CasConflictError(`${what}: expected version ${expectedVersion}, Vault holds version ${cur.version}`)
        }
        const written = await postOver(cur, text, what)
        if (written === undefined) {
          if (expectedVersion !== undefined) {
            throw new CasConflictError(`${what}: version ${expectedVersion} is no longer current (check-and-set)`)
          }
          continue
        }
        logger.info({ location, version: written.version }, 'wrote the keyset to Vault')
        return snapshotOf(text, written)
      }
      throw new CasConflictError(`${what}: the secret changed under ${rounds} consecutive writes`)
    },

    async close(): Promise<void> {
      if (closed) return
      closed = true
      controller.abort()
      http.close()
    },
  }
}

/**
 * A CA bundle is the only trust anchor when given: one without a certificate Node can read
 * trusts nothing, and every read would fail as if Vault were unreachable. Refused at start.
 */
function checkCaBundle(pem: string, file: string): void {
  // OpenSSL's TRUSTED CERTIFICATE blocks too: Node takes them as trust anchors.
  const blocks = pem.match(/-----BEGIN (TRUSTED )?CERTIFICATE-----[\s\S]*?-----END \1CERTIFICATE-----/g) ?? []
  if (blocks.length === 0) throw new ConfigError(`VAULT_CACERT: ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`)
  blocks.forEach((block, i) => {
    try {
      new X509Certificate(block)
    } catch {
      throw new ConfigError(`VAULT_CACERT: ${file} holds a certificate that does not parse (number ${i + 1} of ${blocks.length})`)
    }
  })
}

function snapshotOf(text: string, written: { version: number; notice?: string }): KeysetSnapshot {
  return { text, version: String(written.version), ...(written.notice === undefined ? {} : { notice: written.notice }) }
}

/** The keyset field of a version's data; a field holding null is no keyset (for reads and creates alike). */
function keysetValue(fields: Record<string, unknown> | null): unknown {
  return fields?.[KEYSET_FIELD] ?? undefined
}

function serialisable(value: unknown): boolean {
  try {
    JSON.stringify(value)
    return true
  } catch {
    return false
  }
}

function encodePath(p: string): string {
  return p.split('/').map(encodeURIComponent).join('/')
}

function intOption(value: number, name: string, min: number): number {
  if (!Number.isSafeInteger(value) || value < min) throw new RangeError(`createVaultBackend: ${name} must be an integer ≥ ${min}, got ${value}`)
  return value
}
