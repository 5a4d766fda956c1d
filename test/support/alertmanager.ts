import assert from 'node:assert/strict'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { freePort } from './free-port.js'
import { stopChild } from './stop-child.js'
import { waitFor } from './wait.js'

const MISSING = 'install the Debian package `prometheus-alertmanager` (apt-get install -y prometheus-alertmanager), as .ci/run does'

/** Debian names the binary prometheus-alertmanager; the upstream release, alertmanager. */
export const ALERTMANAGER = ['prometheus-alertmanager', 'alertmanager'].find((bin) => spawnSync(bin, ['--version']).error === undefined)

/** One alert as Alertmanager's API v2 lists it. */
export interface AlertmanagerAlert {
  fingerprint: string
  labels: Record<string, string>
  receivers: Array<{ name: string }>
  status: { state: 'active' | 'suppressed' | 'unprocessed'; inhibitedBy: string[]; silencedBy: string[] }
}

export interface RunningAlertmanager {
  url: string
  /** GET /api/v2/alerts: every alert it holds, with its state and what inhibits it. */
  alerts(): Promise<AlertmanagerAlert[]>
  /** POST /api/v2/alerts, as Prometheus does. */
  post(alerts: Array<{ labels: Record<string, string>; endsAt?: string }>): Promise<void>
  output(): string
  stop(): Promise<void>
}

/** `amtool` with `args`; fails the test, naming the package, when amtool is not installed. */
export function amtool(args: string[]): { status: number | null; out: string } {
  const r = spawnSync('amtool', args, { encoding: 'utf8', timeout: 30_000 })
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') assert.fail(`amtool is not installed: ${MISSING}`)
  if (r.error) throw r.error
  return { status: r.status, out: `${r.stdout}${r.stderr}` }
}

/**
 * Starts the real Alertmanager (Debian package `prometheus-alertmanager`) on a free loopback
 * port with `config` (YAML text), its state in `dir`, clustering off (it would bind a fixed
 * port). Resolves once it is ready; fails, naming the package, when it is not installed.
 */
export async function startAlertmanager(dir: string, config: string): Promise<RunningAlertmanager> {
  if (!ALERTMANAGER) assert.fail(`Alertmanager is not installed: ${MISSING}`)
  fs.mkdirSync(dir, { recursive: true })
  const file = path.join(dir, 'alertmanager.yml')
  fs.writeFileSync(file, config)
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const child: ChildProcess = spawn(
    ALERTMANAGER,
    [
      `--config.file=${file}`,
      `--storage.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--cluster.listen-address=',
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let out = ''
  child.stdout!.on('data', (d: Buffer) => (out += d))
  child.stderr!.on('data', (d: Buffer) => (out += d))
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const api = async (route: string, init?: RequestInit) => {
    const res = await fetch(`${url}/api/v2${route}`, { ...init, signal: AbortSignal.timeout(5000) })
    assert.equal(res.status, 200, `${route}: ${res.status} ${await res.clone().text()}`)
    return res
  }
  const am: RunningAlertmanager = {
    url,
    alerts: async () => (await (await api('/alerts')).json()) as AlertmanagerAlert[],
    async post(alerts) {
      await api('/alerts', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(alerts) })
    },
    output: () => out,
    stop: () => stopChild(child, exited),
  }
  try {
    await waitFor(async () => child.exitCode === null && (await fetch(`${url}/-/ready`)).status === 200, {
      timeoutMs: 15_000,
      intervalMs: 100,
      what: 'alertmanager ready',
    })
  } catch (err) {
    await am.stop()
    throw new Error(`${(err as Error).message}\n--- alertmanager ---\n${out.slice(-1500)}`)
  }
  return am
}
