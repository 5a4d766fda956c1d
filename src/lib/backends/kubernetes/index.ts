/**
 * The Kubernetes Secret backend: the keyset as one key of a Secret, read and written through
 * the API server with resourceVersion check-and-set. Loaded only when CBC_JWT_BACKEND=kubernetes.
 */
export { createKubernetesBackend, type KubernetesBackendDeps, type KubernetesKeysetBackend } from './kubernetes-backend.js'
export { kubernetesOptionsFromEnv, KUBERNETES_DEFAULTS, type KubernetesBackendOptions } from './options.js'
