import fs from 'node:fs'
import type { KeysetBackend } from '../../lib/backends/backend.js'
import { createFileBackend } from '../../lib/backends/file-backend.js'
import { writeTarget } from '../../lib/backends/write-file-atomic.js'
import type { KubernetesBackendOptions, KubernetesKeysetBackend } from '../../lib/backends/kubernetes/index.js'
import { createVaultBackend, type VaultSettings } from '../../lib/backends/vault/index.js'
import { checkPath } from '../../lib/backends/vault/options.js'
import { readOption } from '../../lib/config.js'
import { ConfigError } from '../../lib/errors.js'
import { OPTIONS } from '../../lib/options-table.js'
import { createProjectionSecretBackend, PROJECTION_SECRET_COMPONENT } from './kubernetes-secret.js'
import { holdsSecretKeys } from './publish.js'

/** Where each backend publishes the verification projection by default. */
export const PROJECTION_DEFAULTS = {
  /** Kubernetes: a Secret of its own, readable by verifiers without any right on `cbc-secrets`. */
  kubernetesSecret: OPTIONS.kubernetesPublicSecret.default,
  /** Vault: the private path with this suffix (`cbc/jwt-keyset-public`), under its own policy. */
  vaultPathSuffix: '-public',
  /** File: mode of a newly created projection (world-readable: it holds no secret). */
  fileMode: 0o644,
} as const

/** `keyset.json` → `keyset.public.json`; a path without `.json` gets `.public.json` appended. */
export function publicKeysetPath(keysetFile: string): string {
  return keysetFile.endsWith('.json') ? `${keysetFile.slice(0, -'.json'.length)}.public.json` : `${keysetFile}.public.json`
}

/**
 * Where a keyset file's projection goes: `CBC_JWT_PUBLIC_KEYSET_FILE` in `env` (pass the
 * environment only for the keyset it is meant for), else the sibling `.public.json`.
 */
export function projectionFile(keysetFile: string, env: NodeJS.ProcessEnv | undefined): string {
  const raw = env?.CBC_JWT_PUBLIC_KEYSET_FILE
  if (raw !== undefined && raw.trim() === '')
    throw new ConfigError(
      'CBC_JWT_PUBLIC_KEYSET_FILE is set but empty: set it to the verification keyset path, or unset it (default: the keyset path with .json → .public.json)',
    )
  return raw ?? publicKeysetPath(keysetFile)
}

/**
 * File backend: the projection of `keysetFile` (`projectionFile`), never the keyset itself. An
 * existing one whoever else may write is refused (readers trust the keys in it): the sibling
 * `.public.json` must be the keyset owner's, with no write permission for group or others that
 * the keyset lacks; an explicit `CBC_JWT_PUBLIC_KEYSET_FILE` (elsewhere on purpose) may also
 * belong to the user the CLI runs as, or to root.
 */
export function fileProjection(keysetFile: string, env: NodeJS.ProcessEnv | undefined): KeysetBackend {
  const file = projectionFile(keysetFile, env)
  if (writeTarget(file) === writeTarget(keysetFile))
    throw new ConfigError(`CBC_JWT_PUBLIC_KEYSET_FILE must differ from the keyset file (${keysetFile}): the projection must never replace the private keyset`)
  const explicit = env?.CBC_JWT_PUBLIC_KEYSET_FILE !== undefined
  const owners = explicit ? [process.geteuid?.() ?? 0, 0] : []
  return createFileBackend(file, {
    newFileMode: PROJECTION_DEFAULTS.fileMode,
    newFileOwnerOf: keysetFile,
    noWiderThan: { file: keysetFile, access: 'write', owners },
  })
}

/**
 * The private keyset whose projection `file` is, if any: the `.json` beside a `.public.json`, or
 * `CBC_JWT_KEYSET_FILE` when `file` is where its projection goes. A change written to such a
 * file is undone by the private keyset's next write, which rewrites its projection.
 */
export function projectedFrom(file: string, env: NodeJS.ProcessEnv): string | undefined {
  const target = writeTarget(file)
  const sibling = file.endsWith('.public.json') ? `${file.slice(0, -'.public.json'.length)}.json` : undefined
  const configured = env.CBC_JWT_KEYSET_FILE || undefined
  for (const candidate of [sibling, configured]) {
    if (candidate === undefined || writeTarget(candidate) === target || !fs.existsSync(candidate)) continue
    if (writeTarget(projectionFile(candidate, candidate === configured ? env : undefined)) === target) return candidate
  }
  return undefined
}

/** Vault: `CBC_JWT_VAULT_PUBLIC_PATH`, else `<CBC_JWT_VAULT_PATH>-public`; same mount and field. */
export function vaultProjection(options: VaultSettings, env: NodeJS.ProcessEnv, logger: Parameters<typeof createVaultBackend>[1]): KeysetBackend {
  const publicPath = vaultPathBeside(options, env, 'CBC_JWT_VAULT_PUBLIC_PATH', PROJECTION_DEFAULTS.vaultPathSuffix)
  if (publicPath === options.path)
    throw new ConfigError('CBC_JWT_VAULT_PUBLIC_PATH must differ from CBC_JWT_VAULT_PATH: the projection must never replace the private keyset')
  return createVaultBackend({ ...options, path: publicPath }, logger)
}

/**
 * The Vault keyset whose verification projection the keyset at `options.path` is, if any: the
 * path without the `-public` suffix, when it holds a keyset with private (or secret) keys. A
 * change written to the projection itself is undone by that keyset's next write, which rewrites
 * its projection (the file backend's `projectedFrom`). Read with the same credentials; a path
 * that cannot be read (absent, forbidden, unreachable) is taken for none.
 */
export async function vaultProjectedFrom(options: VaultSettings, logger: Parameters<typeof createVaultBackend>[1]): Promise<string | undefined> {
  const suffix = PROJECTION_DEFAULTS.vaultPathSuffix
  if (!options.path.endsWith(suffix) || options.path.length === suffix.length) return undefined
  const owner = createVaultBackend({ ...options, path: options.path.slice(0, -suffix.length) }, logger)
  try {
    const { text } = await owner.read()
    return holdsSecretKeys(text) ? owner.location : undefined
  } catch {
    return undefined
  } finally {
    await owner.close()
  }
}

/**
 * Kubernetes: when the Secret read is labelled `app.kubernetes.io/component:
 * verification-keyset` (as cbc-jwt creates a projection Secret, and as the shipped manifests
 * do), the private Secret whose writes publish it, by description — its name and namespace are
 * the rotator's settings, not this reader's. A labelled Secret without the keyset (shipped
 * empty) is one too; a Secret that cannot be fetched is taken for none.
 */
export async function kubernetesProjectedFrom(backend: KubernetesKeysetBackend): Promise<string | undefined> {
  try {
    await backend.read()
  } catch {
    // A Secret that exists without the keyset (shipped empty) still tells its label; one that
    // cannot be read at all tells nothing.
  }
  return backend.component() === PROJECTION_SECRET_COMPONENT
    ? `the private keyset Secret (the rotator's CBC_JWT_KUBERNETES_SECRET, ${OPTIONS.kubernetesSecret.default} by default)`
    : undefined
}

/**
 * A KV v2 path beside the keyset's (same mount and field): the variable `name`, else the keyset's
 * path with `suffix`. An empty value, or one with empty, `.` or `..` segments, is refused by name
 * before anything is written.
 */
export function vaultPathBeside(options: VaultSettings, env: NodeJS.ProcessEnv, name: string, suffix: string): string {
  const raw = env[name]
  if (raw === undefined) return `${options.path}${suffix}`
  if (raw.trim() === '') throw new ConfigError(`${name} is set but empty: set it to a KV v2 path, or unset it (default: CBC_JWT_VAULT_PATH with ${suffix})`)
  const path = checkPath(raw.trim(), name)
  if (!/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(path)) throw new ConfigError(`${name} must be a KV v2 path like ${options.path}${suffix} (got "${raw}")`)
  return path
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/

/**
 * Kubernetes: the Secret `CBC_JWT_KUBERNETES_PUBLIC_SECRET` (default `cbc-jwt-verification`),
 * same data key as the private keyset, in each namespace of
 * `CBC_JWT_KUBERNETES_PUBLIC_NAMESPACES` (comma-separated; default the private Secret's), so
 * verifiers in `orders` and `payments` get the same projection on every write.
 */
export function kubernetesProjections(options: KubernetesBackendOptions, env: NodeJS.ProcessEnv): KeysetBackend[] {
  const secret = readOption(env, 'kubernetesPublicSecret')
  if (!DNS_SUBDOMAIN.test(secret)) throw new ConfigError(`CBC_JWT_KUBERNETES_PUBLIC_SECRET must be a DNS subdomain name (got "${secret}")`)
  const raw = env.CBC_JWT_KUBERNETES_PUBLIC_NAMESPACES
  if (raw !== undefined && raw.trim() === '')
    throw new ConfigError(
      "CBC_JWT_KUBERNETES_PUBLIC_NAMESPACES is set but empty: list namespaces (cbc,orders,payments), or unset it (default: the keyset's namespace)",
    )
  const namespaces = raw === undefined ? [options.namespace] : [...new Set(raw.split(',').map((n) => n.trim()))]
  for (const ns of namespaces) {
    if (ns !== undefined && !DNS_LABEL.test(ns))
      throw new ConfigError(`CBC_JWT_KUBERNETES_PUBLIC_NAMESPACES: "${ns}" is not a namespace name (comma-separated DNS labels)`)
  }
  // Compared once the namespaces are resolved (an unset one is the kubeconfig context's, the
  // pod's, or `default`): `cbc` listed beside a context in `cbc` is the keyset's namespace too.
  const notThe = {
    namespace: options.namespace,
    secret: options.secret,
    message: `CBC_JWT_KUBERNETES_PUBLIC_SECRET must differ from CBC_JWT_KUBERNETES_SECRET (${options.secret}) in the keyset's namespace: verifiers must never need rights on the private Secret, and the projection must never replace it`,
  }
  return namespaces.map((namespace) =>
    createProjectionSecretBackend({ namespace, secret, key: options.key, context: options.context, timeoutMs: options.timeoutMs, notThe }, env),
  )
}
