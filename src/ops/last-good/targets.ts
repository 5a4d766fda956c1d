import type { KeysetBackend } from '../../lib/backends/backend.js'
import { createFileBackend } from '../../lib/backends/file-backend.js'
import { writeTarget } from '../../lib/backends/write-file-atomic.js'
import type { KubernetesBackendOptions } from '../../lib/backends/kubernetes/index.js'
import { createVaultBackend, type VaultSettings } from '../../lib/backends/vault/index.js'
import { readOption } from '../../lib/config.js'
import { ConfigError } from '../../lib/errors.js'
import { OPTIONS } from '../../lib/options-table.js'
import { createProjectionSecretBackend } from '../projection/kubernetes-secret.js'
import { PROJECTION_DEFAULTS, projectionFile, vaultPathBeside } from '../projection/targets.js'

/**
 * Where each backend keeps the last good copy: never inside the object it backs up, so deleting
 * that object (or its file) leaves the copy for `keyset restore`. The copy holds private keys:
 * it is as secret as the keyset, readable by the rotator and operators only.
 */
export const LAST_GOOD_DEFAULTS = {
  /** Kubernetes: a Secret of its own in the keyset's namespace, shipped empty with the manifests. */
  kubernetesSecret: OPTIONS.kubernetesLastGoodSecret.default,
  /** Vault: the keyset's path with this suffix (`cbc/jwt-keyset-last-good`), same mount and field. */
  vaultPathSuffix: '-last-good',
} as const

/** `keyset.json` → `keyset.last-good.json`; a path without `.json` gets `.last-good.json` appended. */
export function lastGoodKeysetPath(keysetFile: string): string {
  return keysetFile.endsWith('.json') ? `${keysetFile.slice(0, -'.json'.length)}.last-good.json` : `${keysetFile}.last-good.json`
}

/**
 * File backend: the sibling `….last-good.json`, created 0600 (it holds private keys), and never
 * written while it is open to more than the keyset file (another owner, a wider mode). A file
 * deleted by mistake leaves its sibling; a lost directory or disk takes both (back it up).
 */
export function fileLastGood(keysetFile: string, env: NodeJS.ProcessEnv | undefined): () => KeysetBackend {
  const file = lastGoodKeysetPath(keysetFile)
  const projection = projectionFile(keysetFile, env)
  if (writeTarget(projection) === writeTarget(file))
    throw new ConfigError(`CBC_JWT_PUBLIC_KEYSET_FILE must differ from ${file}: that is where the last good copy (private keys) is kept`)
  return () => createFileBackend(file, { newFileOwnerOf: keysetFile, noWiderThan: { file: keysetFile } })
}

/** Vault: `CBC_JWT_VAULT_LAST_GOOD_PATH`, else `<CBC_JWT_VAULT_PATH>-last-good`; same mount and field. */
export function vaultLastGood(options: VaultSettings, env: NodeJS.ProcessEnv, logger: Parameters<typeof createVaultBackend>[1]): () => KeysetBackend {
  const copyPath = vaultPathBeside(options, env, 'CBC_JWT_VAULT_LAST_GOOD_PATH', LAST_GOOD_DEFAULTS.vaultPathSuffix)
  const publicPath = vaultPathBeside(options, env, 'CBC_JWT_VAULT_PUBLIC_PATH', PROJECTION_DEFAULTS.vaultPathSuffix)
  if (copyPath === options.path || copyPath === publicPath)
    throw new ConfigError(
      'CBC_JWT_VAULT_LAST_GOOD_PATH must differ from CBC_JWT_VAULT_PATH and from the projection path: the copy must survive the keyset and never be public',
    )
  return () => createVaultBackend({ ...options, path: copyPath }, logger)
}

const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/

/**
 * Kubernetes: the Secret `CBC_JWT_KUBERNETES_LAST_GOOD_SECRET` (default `cbc-jwt-last-good`), in
 * the keyset's namespace, under the keyset's data key. The manifests ship it empty, so the
 * rotator needs only `get` and `update` on it by name, never `create`.
 */
export function kubernetesLastGood(options: KubernetesBackendOptions, env: NodeJS.ProcessEnv): () => KeysetBackend {
  if (env.CBC_JWT_KUBERNETES_LAST_GOOD_KEY !== undefined)
    throw new ConfigError(
      `CBC_JWT_KUBERNETES_LAST_GOOD_KEY is no longer read: the last good copy lives in a Secret of its own, CBC_JWT_KUBERNETES_LAST_GOOD_SECRET (default ${LAST_GOOD_DEFAULTS.kubernetesSecret}); unset it`,
    )
  const secret = readOption(env, 'kubernetesLastGoodSecret')
  if (!DNS_SUBDOMAIN.test(secret)) throw new ConfigError(`CBC_JWT_KUBERNETES_LAST_GOOD_SECRET must be a DNS subdomain name (got "${secret}")`)
  const publicSecret = readOption(env, 'kubernetesPublicSecret')
  if (secret === options.secret || secret === publicSecret)
    throw new ConfigError(
      `CBC_JWT_KUBERNETES_LAST_GOOD_SECRET must differ from the keyset's Secret (${options.secret}) and from the verification projection's (${publicSecret}): the copy must survive the keyset's deletion and never be readable by verifiers`,
    )
  return () =>
    createProjectionSecretBackend(
      { namespace: options.namespace, secret, key: options.key, context: options.context, timeoutMs: options.timeoutMs, component: 'last-good-keyset' },
      env,
    )
}
