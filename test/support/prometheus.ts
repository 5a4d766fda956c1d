import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import YAML from 'yaml'
import { freePort } from './free-port.js'
import { waitFor } from './wait.js'
import { stopChild } from './stop-child.js'

export interface RunningPrometheus {
  url: string
  /** An instant query; the result vector. */
  query(promql: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>
  output(): string
  stop(): Promise<void>
}

/**
 * Starts the real Prometheus (Debian package `prometheus`) scraping `targets` under `job`
 * every `scrapeInterval`, with `labels` on every series (e.g. `namespace`, as the
 * Kubernetes service discovery adds), its data in `dir`. Resolves once every target has been scraped
 * up, unless `waitForTargets` is false.
 */
export async function startPrometheus(opts: {
  dir: string
  job: string
  targets: string[]
  scrapeInterval?: string
  labels?: Record<string, string>
  /** More target groups of the same job, each with its own labels (replicas of another namespace). */
  groups?: Array<{ targets: string[]; labels: Record<string, string> }>
  /**
   * Resolve only once every target has been scraped up (Prometheus 2.42 hands static targets
   * to its scrapers about 5 s after start). `false`: as soon as it is ready; the caller
   * waits for the series it needs. @default true
   */
  waitForTargets?: boolean
  /** Rule files to evaluate (every `scrapeInterval`). */
  ruleFiles?: string[]
  /**
   * An Alertmanager (its URL) to send the alerts to. Firing alerts are sent again every
   * evaluation, not every minute (Prometheus's default resend delay), so that the alerts held
   * by Alertmanager follow the rules as closely as the test's compressed time needs.
   */
  alertmanager?: string
}): Promise<RunningPrometheus> {
  const interval = opts.scrapeInterval ?? '1s'
  fs.mkdirSync(opts.dir, { recursive: true })
  const config = path.join(opts.dir, 'prometheus.yml')
  fs.writeFileSync(
    config,
    YAML.stringify({
      global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
      ...(opts.ruleFiles ? { rule_files: opts.ruleFiles } : {}),
      ...(opts.alertmanager ? { alerting: { alertmanagers: [{ static_configs: [{ targets: [new URL(opts.alertmanager).host] }] }] } } : {}),
      scrape_configs: [
        { job_name: opts.job, static_configs: [{ targets: opts.targets, ...(opts.labels ? { labels: opts.labels } : {}) }, ...(opts.groups ?? [])] },
      ],
    }),
  )
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const child: ChildProcess = spawn(
    'prometheus',
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${path.join(opts.dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
      ...(opts.alertmanager ? [`--rules.alert.resend-delay=${interval}`] : []),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  const spawned = await new Promise<Error | undefined>((resolve) => {
    child.once('error', resolve)
    child.once('spawn', () => resolve(undefined))
  })
  if (spawned) assert.fail(`cannot start prometheus (${spawned.message}): install the Debian package \`prometheus\` (apt-get install -y prometheus)`)
  let out = ''
  child.stdout!.on('data', (d: Buffer) => (out += d))
  child.stderr!.on('data', (d: Buffer) => (out += d))
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const prom: RunningPrometheus = {
    url,
    async query(promql) {
      const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`, { signal: AbortSignal.timeout(5000) })
      const body = (await res.json()) as {
        status: string
        data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> }
        error?: string
      }
      assert.equal(body.status, 'success', `${promql}: ${body.error ?? res.status}`)
      return body.data.result
    },
    output: () => out,
    async stop() {
      await stopChild(child, exited)
    },
  }
  try {
    await waitFor(async () => (await fetch(`${url}/-/ready`)).status === 200, { timeoutMs: 15_000, intervalMs: 200, what: 'prometheus ready' })
    if (opts.waitForTargets !== false)
      await waitFor(
        async () =>
          (await prom.query(`up{job="${opts.job}"} == 1`)).length === opts.targets.length + (opts.groups ?? []).reduce((n, g) => n + g.targets.length, 0),
        {
          timeoutMs: 15_000,
          intervalMs: 200,
          what: 'every target up',
        },
      )
  } catch (err) {
    await prom.stop()
    throw new Error(`${(err as Error).message}\n--- prometheus ---\n${out.slice(-1500)}`)
  }
  return prom
}
