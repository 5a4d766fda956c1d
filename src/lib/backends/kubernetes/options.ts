import { ConfigError } from '../../errors.js'
import { OPTIONS } from '../../options-table.js'

/**
 * Options of the Kubernetes Secret backend; each maps to one environment variable, read by
 * `kubernetesOptionsFromEnv`.
 */
export interface KubernetesBackendOptions {
  /**
   * Namespace of the secret. Env `CBC_JWT_KUBERNETES_NAMESPACE`.
   * @default the kubeconfig context's namespace, else the pod's (service account), else `default` — as kubectl
   */
  namespace?: string
  /** Name of the Secret. Env `CBC_JWT_KUBERNETES_SECRET`. @default 'cbc-secrets' */
  secret: string
  /** Key of the Secret's `data` that holds the keyset. Env `CBC_JWT_KUBERNETES_KEY`. @default 'jwt-keyset' */
  key: string
  /**
   * Second key of the same Secret where every write also stores the document it writes: the
   * last good keyset, which `cbc-jwt keyset restore` puts back when `key` was broken by a write
   * that bypassed cbc-jwt (a Secret has no history). Env `CBC_JWT_KUBERNETES_LAST_GOOD_KEY`.
   * @default `${key}-last-good` (`jwt-keyset-last-good`)
   */
  lastGoodKey: string
  /** kubeconfig context other than the current one. Env `CBC_JWT_KUBERNETES_CONTEXT`. */
  context?: string
  /** Deadline of one API request, in ms. @default 10000 */
  timeoutMs: number
}

export const KUBERNETES_DEFAULTS = {
  secret: OPTIONS.kubernetesSecret.default,
  key: OPTIONS.kubernetesKey.default,
  lastGoodSuffix: '-last-good',
  timeoutMs: 10_000,
} as const

// RFC 1123 names, as the API server validates them; Secret data keys are [-._a-zA-Z0-9]+.
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const DATA_KEY = /^[-._a-zA-Z0-9]{1,253}$/

export function kubernetesOptionsFromEnv(env: NodeJS.ProcessEnv): KubernetesBackendOptions {
  const namespace = env.CBC_JWT_KUBERNETES_NAMESPACE || undefined
  const secret = env.CBC_JWT_KUBERNETES_SECRET || KUBERNETES_DEFAULTS.secret
  const key = env.CBC_JWT_KUBERNETES_KEY || KUBERNETES_DEFAULTS.key
  if (namespace !== undefined && !DNS_LABEL.test(namespace)) throw new ConfigError(`CBC_JWT_KUBERNETES_NAMESPACE must be a DNS label (got "${namespace}")`)
  if (!DNS_SUBDOMAIN.test(secret)) throw new ConfigError(`CBC_JWT_KUBERNETES_SECRET must be a DNS subdomain name (got "${secret}")`)
  if (!DATA_KEY.test(key)) throw new ConfigError(`CBC_JWT_KUBERNETES_KEY must be 1-253 characters of [-._a-zA-Z0-9] (got "${key}")`)
  const lastGoodKey = env.CBC_JWT_KUBERNETES_LAST_GOOD_KEY || `${key}${KUBERNETES_DEFAULTS.lastGoodSuffix}`
  if (!DATA_KEY.test(lastGoodKey)) throw new ConfigError(`CBC_JWT_KUBERNETES_LAST_GOOD_KEY must be 1-253 characters of [-._a-zA-Z0-9] (got "${lastGoodKey}")`)
  if (lastGoodKey === key) throw new ConfigError(`CBC_JWT_KUBERNETES_LAST_GOOD_KEY must differ from the keyset key (${key})`)
  return {
    ...(namespace ? { namespace } : {}),
    secret,
    key,
    lastGoodKey,
    ...(env.CBC_JWT_KUBERNETES_CONTEXT ? { context: env.CBC_JWT_KUBERNETES_CONTEXT } : {}),
    timeoutMs: KUBERNETES_DEFAULTS.timeoutMs,
  }
}
