/**
 * Which Secrets each pod of a set of rendered Kubernetes objects can read, and how: a secret
 * volume (or a projected volume's secret source), an `env` `secretKeyRef`, an `envFrom`
 * `secretRef`, the cbc-jwt Kubernetes backend's own Secret (it reads through the API), and
 * RBAC — every Role or ClusterRole bound to the pod's ServiceAccount (by name, or by the
 * groups every service account is in) whose rules allow get, list or watch on secrets,
 * restricted by `resourceNames` or not. An RBAC grant counts whether or not the pod mounts
 * a token: any pod that runs as that ServiceAccount can.
 */
import { kubernetesOptionsFromEnv } from '../../src/lib/backends/kubernetes/index.js'

type Obj = Record<string, any>

export interface SecretAccess {
  /** The Secret's namespace, or `*` for every namespace (a ClusterRoleBinding). */
  namespace: string
  /** The Secret's name, or `*` for every Secret (no `resourceNames`). */
  name: string
  /** How: `volume jwt-keyset`, `env X`, `envFrom`, `API backend`, `RBAC Role cbc/x via RoleBinding cbc/y`. */
  how: string
}

export interface PodAccess {
  /** `Deployment cbc/cbc-jwt`, `CronJob cbc/cbc-jwt-rotate`. */
  workload: string
  namespace: string
  serviceAccount: string
  /** The pod's containers' command and args, joined: tells the rotator from the verifiers. */
  commands: string[]
  /** The environment of each container (literal values only). */
  env: Array<Record<string, string>>
  access: SecretAccess[]
}

const READ_VERBS = ['get', 'list', 'watch', '*']

function podTemplate(o: Obj): Obj | undefined {
  if (['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job'].includes(o.kind)) return o.spec?.template
  if (o.kind === 'CronJob') return o.spec?.jobTemplate?.spec?.template
  if (o.kind === 'Pod') return o
  return undefined
}

/** True when a binding subject is the ServiceAccount `ns/name` or a group it belongs to. */
function subjectMatches(s: Obj, ns: string, name: string): boolean {
  if (s.kind === 'ServiceAccount') return s.name === name && (s.namespace ?? ns) === ns
  if (s.kind === 'Group') return ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'].includes(s.name)
  if (s.kind === 'User') return s.name === `system:serviceaccount:${ns}:${name}`
  return false
}

/** The Secrets a rule lets its holder read in `namespace`. */
function secretsReadable(rule: Obj, namespace: string, how: string): SecretAccess[] {
  const groups: string[] = rule.apiGroups ?? []
  const resources: string[] = rule.resources ?? []
  const verbs: string[] = rule.verbs ?? []
  if (!groups.some((g) => g === '' || g === '*')) return []
  if (!resources.some((r) => r === 'secrets' || r === '*')) return []
  if (!verbs.some((v) => READ_VERBS.includes(v))) return []
  const names: string[] = rule.resourceNames ?? []
  return (names.length === 0 ? ['*'] : names).map((name) => ({ namespace, name, how }))
}

/** Every pod of `objects` with the Secrets it can read. */
export function podSecretAccess(objects: readonly Obj[]): PodAccess[] {
  const roles = new Map(objects.filter((o) => o.kind === 'Role').map((o) => [`${o.metadata.namespace}/${o.metadata.name}`, o]))
  const clusterRoles = new Map(objects.filter((o) => o.kind === 'ClusterRole').map((o) => [o.metadata.name as string, o]))
  const bindings = objects.filter((o) => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding')
  return objects.flatMap((o) => {
    const pod = podTemplate(o)
    if (!pod) return []
    const namespace: string = o.metadata.namespace ?? 'default'
    const serviceAccount: string = pod.spec.serviceAccountName ?? 'default'
    const access: SecretAccess[] = []
    for (const v of pod.spec.volumes ?? []) {
      if (v.secret?.secretName) access.push({ namespace, name: v.secret.secretName, how: `volume ${v.name}` })
      for (const source of v.projected?.sources ?? [])
        if (source.secret?.name) access.push({ namespace, name: source.secret.name, how: `projected volume ${v.name}` })
    }
    const containers: Obj[] = [...(pod.spec.initContainers ?? []), ...pod.spec.containers]
    const env = containers.map((c) => Object.fromEntries((c.env ?? []).filter((e: Obj) => typeof e.value === 'string').map((e: Obj) => [e.name, e.value])))
    for (const [i, c] of containers.entries()) {
      for (const e of c.env ?? [])
        if (e.valueFrom?.secretKeyRef?.name) access.push({ namespace, name: e.valueFrom.secretKeyRef.name, how: `env ${e.name} of ${c.name}` })
      for (const e of c.envFrom ?? []) if (e.secretRef?.name) access.push({ namespace, name: e.secretRef.name, how: `envFrom of ${c.name}` })
      // The service on the Kubernetes backend reads its Secret through the API (RBAC decides whether it may).
      if (env[i]!.CBC_JWT_BACKEND === 'kubernetes' && !(c.args ?? []).includes('rotate')) {
        const k8s = kubernetesOptionsFromEnv(env[i]!)
        access.push({ namespace: k8s.namespace ?? namespace, name: k8s.secret, how: `API backend of ${c.name}` })
      }
    }
    for (const b of bindings) {
      if (!(b.subjects ?? []).some((s: Obj) => subjectMatches(s, namespace, serviceAccount))) continue
      const scope = b.kind === 'ClusterRoleBinding' ? '*' : b.metadata.namespace
      const role = b.roleRef.kind === 'Role' ? roles.get(`${b.metadata.namespace}/${b.roleRef.name}`) : clusterRoles.get(b.roleRef.name)
      for (const rule of role?.rules ?? []) {
        access.push(...secretsReadable(rule, scope, `RBAC ${b.roleRef.kind} ${b.roleRef.name} via ${b.kind} ${b.metadata.namespace ?? ''}/${b.metadata.name}`))
      }
    }
    const commands = containers.map((c) => [...(c.command ?? []), ...(c.args ?? [])].join(' '))
    return [{ workload: `${o.kind} ${namespace}/${o.metadata.name}`, namespace, serviceAccount, commands, env, access }]
  })
}

/** The grants of `pod` that reach a Secret called `name` in any namespace (every-Secret grants included). */
export function accessTo(pod: PodAccess, name: string): SecretAccess[] {
  return pod.access.filter((a) => a.name === '*' || a.name === name)
}

/** `cbc-jwt rotate …`, by the bin's name or by the CLI's path in the image (node is its entrypoint). */
const ROTATE_COMMAND = /^(cbc-jwt|\S*\/cbc-jwt\/dist\/ops\/cli\/main\.js) rotate\b/

/** A pod that runs `cbc-jwt rotate`: the one that signs (writes keys). Every other pod verifies. */
export function isRotator(pod: PodAccess): boolean {
  return pod.commands.some((c) => ROTATE_COMMAND.test(c))
}

/** The rotator's `cbc-jwt rotate …` command line, whichever way it names the CLI. */
export function rotateCommand(pod: PodAccess): string | undefined {
  return pod.commands.find((c) => ROTATE_COMMAND.test(c))
}
