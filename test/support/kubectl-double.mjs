#!/usr/bin/env node
// A TEST DOUBLE of `kubectl` against the Kubernetes API server — not kubectl. It serves
// exactly the invocations docs/runbook.md makes, with the semantics the Kubernetes API and
// kubectl document, over a state directory ($KUBECTL_DOUBLE_STATE):
//   secret.json  {"resourceVersion": "7", "data": {"jwt-keyset": "<base64>", ...}}
//   pods.json    {"cbc-jwt-a": {"port": 41234, "log": "/path/a.log"}, ...}
// - get secret cbc-secrets -o jsonpath={.metadata.resourceVersion}|{.data.KEY}|{.data}
// - patch secret cbc-secrets --type merge --patch-file /dev/stdin: a JSON merge patch; a
//   metadata.resourceVersion in it is a precondition (409 Conflict when it differs), as the
//   API server does; every write bumps the resourceVersion
// - get pods -l app.kubernetes.io/name=cbc-jwt -o name
// - logs -l app.kubernetes.io/name=cbc-jwt [--prefix] [--tail=N] (kubectl's default with -l
//   is 10 lines per pod), logs pod/NAME [--tail=N]; --since and --max-log-requests accepted
// - port-forward pod/NAME LOCAL:8000: a real TCP proxy to the pod's port; prints
//   "Forwarding from 127.0.0.1:LOCAL -> 8000" once listening, fails when the port is taken
// The test's "kubelet" copies secret.json's jwt-keyset into the pods' secret volume.
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

const secretFile = path.join(state, 'secret.json')
const readSecret = () => JSON.parse(fs.readFileSync(secretFile, 'utf8'))
const pods = () => JSON.parse(fs.readFileSync(path.join(state, 'pods.json'), 'utf8'))

const [verb, kind, name] = words
if (verb === 'get' && kind === 'secret' && name === 'cbc-secrets') {
  const secret = readSecret()
  const jsonpath = flags.get('o')?.replace(/^jsonpath=/, '')
  if (jsonpath === '{.metadata.resourceVersion}') out(secret.resourceVersion)
  else if (jsonpath === '{.data}') out(JSON.stringify(secret.data))
  else if (/^\{\.data\.[\w-]+\}$/.test(jsonpath ?? '')) out(secret.data[jsonpath.slice(7, -1)] ?? '')
  else fail(`unsupported -o ${flags.get('o')}`)
} else if (verb === 'patch' && kind === 'secret' && name === 'cbc-secrets') {
  if (flags.get('type') !== 'merge' || flags.get('patch-file') !== '/dev/stdin') fail('only --type merge --patch-file /dev/stdin')
  let patch
  try {
    patch = JSON.parse(fs.readFileSync(0, 'utf8'))
  } catch (err) {
    fail(`error: unable to parse the patch: ${err.message}`)
  }
  const secret = readSecret()
  const expected = patch.metadata?.resourceVersion
  if (expected !== undefined && expected !== secret.resourceVersion) {
    fail('Error from server (Conflict): Operation cannot be fulfilled on secrets "cbc-secrets": the object has been modified; please apply your changes to the latest version and try again')
  }
  for (const [k, v] of Object.entries(patch.data ?? {})) {
    if (v === null) delete secret.data[k]
    else if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) fail(`Secret "cbc-secrets" is invalid: data[${k}]: illegal base64 data`)
    else secret.data[k] = v
  }
  secret.resourceVersion = String(Number(secret.resourceVersion) + 1)
  fs.writeFileSync(`${secretFile}.tmp`, JSON.stringify(secret))
  fs.renameSync(`${secretFile}.tmp`, secretFile)
  out('secret/cbc-secrets patched')
} else if (verb === 'get' && kind === 'pods') {
  if (flags.get('l') !== 'app.kubernetes.io/name=cbc-jwt' || flags.get('o') !== 'name') fail('only get pods -l app.kubernetes.io/name=cbc-jwt -o name')
  out(Object.keys(pods()).map((p) => `pod/${p}`).join('\n'))
} else if (verb === 'logs') {
  const tail = flags.has('tail') ? Number(flags.get('tail')) : undefined
  const lines = (file) => fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '')
  const last = (ls, n) => (n === undefined || n < 0 ? ls : ls.slice(-n))
  if (flags.has('l')) {
    if (flags.get('l') !== 'app.kubernetes.io/name=cbc-jwt') fail(`no pods match ${flags.get('l')}`)
    const all = pods()
    const max = Number(flags.get('max-log-requests') ?? 5)
    if (Object.keys(all).length > max) fail(`error: you are attempting to follow ${Object.keys(all).length} log streams, but maximum allowed concurrency is ${max}`)
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
