/**
 * The discovery documents of the Kubernetes API test double (NOT a real API server): what the
 * real `kubectl` reads before `get`/`apply` of a Secret — the legacy group's versions (`/api`),
 * the named groups (none: `/apis`), the core group's resource list (`/api/v1`, with `secrets`
 * and its verbs), `/version`, and the OpenAPI v3 index and core-group document — only as
 * much as `kubectl apply` reads: the Secret PATCH operation with its
 * `x-kubernetes-group-version-kind` and the `fieldValidation` query parameter, which tells
 * kubectl that the server validates fields itself (so it needs no schema of its own and
 * computes the strategic merge patch from its built-in Secret type). Shapes as the published API documents them
 * (https://kubernetes.io/docs/reference/using-api/api-concepts/#discovery-api).
 */

const SECRETS = {
  name: 'secrets',
  singularName: 'secret',
  namespaced: true,
  kind: 'Secret',
  verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'],
  storageVersionHash: 'S6u1pOWzb84=',
}

const NAMESPACES = {
  name: 'namespaces',
  singularName: 'namespace',
  namespaced: false,
  kind: 'Namespace',
  shortNames: ['ns'],
  verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
  storageVersionHash: 'Q3oi5N2YM8M=',
}

const OPENAPI_V1_URL = '/openapi/v3/api/v1?hash=kube-double-1'

const secretPatch = {
  patch: {
    operationId: 'patchCoreV1NamespacedSecret',
    'x-kubernetes-action': 'patch',
    'x-kubernetes-group-version-kind': { group: '', version: 'v1', kind: 'Secret' },
    parameters: ['dryRun', 'fieldManager', 'fieldValidation', 'force'].map((name) => ({ name, in: 'query', schema: { type: 'string', uniqueItems: true } })),
    responses: { '200': { description: 'OK' } },
  },
}

/** The document served at a discovery path, or undefined when the path is not one. */
export function discovery(pathname: string): unknown {
  switch (pathname) {
    case '/openapi/v3':
      return { paths: { 'api/v1': { serverRelativeURL: OPENAPI_V1_URL } } }
    case '/openapi/v3/api/v1':
      return {
        openapi: '3.0.0',
        info: { title: 'Kubernetes (kube-double)', version: 'v1.32.0' },
        paths: { '/api/v1/namespaces/{namespace}/secrets/{name}': secretPatch },
        components: { schemas: {} },
      }
    case '/version':
      return { major: '1', minor: '32', gitVersion: 'v1.32.0-kube-double', platform: 'linux/amd64' }
    case '/api':
      return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1' }] }
    case '/apis':
      return { kind: 'APIGroupList', apiVersion: 'v1', groups: [] }
    case '/api/v1':
      return { kind: 'APIResourceList', groupVersion: 'v1', resources: [SECRETS, NAMESPACES] }
    default:
      return undefined
  }
}
