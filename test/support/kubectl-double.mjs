#!/usr/bin/env node
// A TEST DOUBLE of `kubectl` — not kubectl. It serves exactly the invocations docs/runbook.md
// makes, with the semantics kubectl documents:
// - get secret cbc-secrets|cbc-jwt-last-good|cbc-jwt-verification [-o jsonpath={.metadata.resourceVersion}|{.data.KEY}|{.data}]
//   (without -o, kubectl's table: NAME TYPE DATA AGE; a missing Secret, its NotFound line): asks
//   the API server — here the Kubernetes API test double (test/support/kube-double.ts) —
//   over HTTP, found as kubectl finds it: $KUBECONFIG, its current context, server and bearer
//   token. So it sees exactly what `cbc-jwt` (CBC_JWT_BACKEND=kubernetes) wrote there: one
//   Secret state, held by the API double.
// - get pods -l app.kubernetes.io/name=cbc-jwt -o name
// - logs -l app.kubernetes.io/name=cbc-jwt [--prefix] [--tail=N] (kubectl's default with -l
//   is 10 lines per pod), logs pod/NAME [--tail=N]; --since and --max-log-requests accepted
// - port-forward pod/NAME LOCAL:8000: a real TCP proxy to the pod's port; prints
//   "Forwarding from 127.0.0.1:LOCAL -> 8000" once listening, fails when the port is taken
// The pods are listed in $KUBECTL_DOUBLE_STATE/pods.json: {"cbc-jwt-a": {"port": 41234, "log": "/path/a.log"}, ...}.
// Nothing here writes a Secret: the runbook writes only through cbc-jwt.
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'

const state = process.env.KUBECTL_DOUBLE_STATE
if (!state) fail('KUBECTL_DOUBLE_STATE is not set')
const args = process.argv.slice(2)
const flags = new Map()
const words = []
for (let i = 0; i < args.length; i++) {
  const a = args[i]
  if (a.startsWith('--') && a.includes('=')) flags.set(a.slice(2, a.indexOf('=')), a.slice(a.indexOf('=') + 1))
  else if (a === '--prefix') flags.set('prefix', true)
  else if (a.startsWith('-') && a !== '-') flags.set(a.replace(/^-+/, ''), args[++i])
  else words.push(a)
}
if (flags.get('n') !== 'cbc' && flags.get('namespace') !== 'cbc') fail('the runbook always names the namespace: -n cbc')

const pods = () => JSON.parse(fs.readFileSync(path.join(state, 'pods.json'), 'utf8'))

/** GET from the API server of $KUBECONFIG's current context, as kubectl would; Status errors as kubectl prints them. */
async function apiGet(apiPath) {
  if (!process.env.KUBECONFIG) fail('error: KUBECONFIG is not set (the drill points it at the API double)')
  const config = JSON.parse(fs.readFileSync(process.env.KUBECONFIG, 'utf8')) // the double writes JSON, which is YAML
  const context = config.contexts.find((c) => c.name === config['current-context']).context
  const { server } = config.clusters.find((c) => c.name === context.cluster).cluster
  const { token } = config.users.find((u) => u.name === context.user).user
  const res = await fetch(`${server}${apiPath}`, { headers: { authorization: `Bearer ${token}` } })
  const body = await res.json()
  if (res.status !== 200) fail(`Error from server (${body.reason}): ${body.message}`)
  return body
}

const [verb, kind, name] = words
if (verb === 'get' && kind === 'secret' && ['cbc-secrets', 'cbc-jwt-last-good', 'cbc-jwt-verification'].includes(name)) {
  const secret = await apiGet(`/api/v1/namespaces/cbc/secrets/${name}`)
  const jsonpath = flags.get('o')?.replace(/^jsonpath=/, '')
  const age = Math.max(0, Math.round((Date.now() - Date.parse(secret.metadata.creationTimestamp)) / 1000))
  if (jsonpath === undefined)
    out(`NAME${' '.repeat(name.length - 2)}TYPE     DATA   AGE\n${name}  ${secret.type}   ${Object.keys(secret.data ?? {}).length}      ${age}s`)
  else if (jsonpath === '{.metadata.resourceVersion}') out(secret.metadata.resourceVersion)
  else if (jsonpath === '{.data}') out(JSON.stringify(secret.data ?? {}))
  else if (/^\{\.data\.[\w-]+\}$/.test(jsonpath ?? '')) out(secret.data[jsonpath.slice(7, -1)] ?? '')
  else fail(`unsupported -o ${flags.get('o')}`)
} else if (verb === 'get' && kind === 'pods') {
  if (flags.get('l') !== 'app.kubernetes.io/name=cbc-jwt' || flags.get('o') !== 'name') fail('only get pods -l app.kubernetes.io/name=cbc-jwt -o name')
  out(
    Object.keys(pods())
      .map((p) => `pod/${p}`)
      .join('\n'),
  )
} else if (verb === 'logs') {
  const tail = flags.has('tail') ? Number(flags.get('tail')) : undefined
  const lines = (file) =>
    fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
  const last = (ls, n) => (n === undefined || n < 0 ? ls : ls.slice(-n))
  if (flags.has('l')) {
    if (flags.get('l') !== 'app.kubernetes.io/name=cbc-jwt') fail(`no pods match ${flags.get('l')}`)
    const all = pods()
    const max = Number(flags.get('max-log-requests') ?? 5)
    if (Object.keys(all).length > max)
      fail(`error: you are attempting to follow ${Object.keys(all).length} log streams, but maximum allowed concurrency is ${max}`)
    for (const [pod, { log }] of Object.entries(all)) {
      for (const l of last(lines(log), tail ?? 10)) out(flags.get('prefix') ? `[pod/${pod}/cbc-jwt] ${l}` : l)
    }
  } else {
    const pod = kind?.replace(/^pod\//, '')
    const entry = pods()[pod]
    if (!entry) fail(`Error from server (NotFound): pods "${pod}" not found`)
    for (const l of last(lines(entry.log), tail)) out(l)
  }
} else if (verb === 'port-forward') {
  const pod = kind?.replace(/^pod\//, '')
  const entry = pods()[pod]
  if (!kind?.startsWith('pod/') || !entry) fail(`Error from server (NotFound): pods "${pod}" not found`)
  const [local, remote] = (name ?? '').split(':').map(Number)
  if (remote !== 8000) fail('the pods listen on 8000')
  const server = net.createServer((client) => {
    const upstream = net.connect(entry.port, '127.0.0.1')
    client.pipe(upstream).pipe(client)
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
  })
  server.on('error', (err) => fail(`Unable to listen on port ${local}: ${err.code}\nerror: unable to listen on any of the requested ports: [{${local} 8000}]`))
  server.listen(local, '127.0.0.1', () => out(`Forwarding from 127.0.0.1:${local} -> 8000`))
  process.on('SIGTERM', () => process.exit(0))
} else {
  fail(`kubectl double: unsupported invocation: kubectl ${args.join(' ')}`)
}

function out(text) {
  process.stdout.write(`${text}\n`)
}

function fail(message) {
  process.stderr.write(`${message}\n`)
  process.exit(1)
}
