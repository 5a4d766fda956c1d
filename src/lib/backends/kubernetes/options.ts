import { ConfigError } from '../../errors.js'
import { OPTIONS } from '../../options-table.js'
import { readOption } from '../../config.js'

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
  /** kubeconfig context other than the current one. Env `CBC_JWT_KUBERNETES_CONTEXT`. */
  context?: string
  /** Deadline of one API request, in ms. @default 10000 */
  timeoutMs: number
}

export const KUBERNETES_DEFAULTS = {
  secret: OPTIONS.kubernetesSecret.default,
  key: OPTIONS.kubernetesKey.default,
  timeoutMs: 10_000,
} as const

// RFC 1123 names, as the API server validates them; Secret data keys are [-._a-zA-Z0-9]+, not . or ..*.
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const DATA_KEY = /^[-._a-zA-Z0-9]{1,253}$/

export function kubernetesOptionsFromEnv(env: NodeJS.ProcessEnv): KubernetesBackendOptions {
  // An empty namespace is refused, not read as the kubeconfig's or the pod's: that may be another team's.
  const namespace = readOption(env, 'kubernetesNamespace')
  const secret = readOption(env, 'kubernetesSecret')
  const key = readOption(env, 'kubernetesKey')
  // An empty context is refused, not read as the current one: that may be another cluster's.
  const context = readOption(env, 'kubernetesContext')
  if (namespace !== undefined && !DNS_LABEL.test(namespace)) throw new ConfigError(`CBC_JWT_KUBERNETES_NAMESPACE must be a DNS label (got "${namespace}")`)
  if (!DNS_SUBDOMAIN.test(secret)) throw new ConfigError(`CBC_JWT_KUBERNETES_SECRET must be a DNS subdomain name (got "${secret}")`)
  // The API server refuses '.', '..' and a '..' prefix too (in a volume those are the kubelet's own names).
  if (!DATA_KEY.test(key) || key === '.' || key.startsWith('..')) {
    throw new ConfigError(`CBC_JWT_KUBERNETES_KEY must be 1-253 characters of [-._a-zA-Z0-9], not "." nor starting with ".." (got "${key}")`)
  }
  return {
    ...(namespace !== undefined ? { namespace } : {}),
    secret,
    key,
    ...(context !== undefined ? { context } : {}),
    timeoutMs: KUBERNETES_DEFAULTS.timeoutMs,
  }
}
