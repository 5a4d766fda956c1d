import fs from 'node:fs'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import YAML from 'yaml'
import { startAlertWebhook, type AlertWebhook, type Notification } from './alert-webhook.js'
import { startAlertmanager, type AlertmanagerAlert, type RunningAlertmanager } from './alertmanager.js'
import { startPrometheus, type RunningPrometheus } from './prometheus.js'
import { PROJECT_ROOT } from './service.js'
import { compressedAlertmanagerConfig, compressedRules } from './time-compression.js'
import { waitFor } from './wait.js'

export const RULES_FILE = path.join(PROJECT_ROOT, 'deploy/prometheus/cbc-jwt.rules.yml')
export const ALERTMANAGER_CONFIG_FILE = path.join(PROJECT_ROOT, 'deploy/alertmanager/cbc-jwt.alertmanager.yml')

/** Labels an alert must carry (a subset of its labels): `{ alertname, instance }`, `{ alertname, namespace }`. */
export type AlertMatch = Record<string, string>

interface Route {
  receiver?: string
  matchers?: string[]
  group_wait?: string
  group_interval?: string
  routes?: Route[]
}

/** A route's timings, in milliseconds, as the test's (compressed) copy of the configuration has them. */
export interface RouteTimings {
  groupWaitMs: number
  groupIntervalMs: number
}

export interface AlertPipeline {
  webhook: AlertWebhook
  am: RunningAlertmanager
  prom: RunningPrometheus
  /** The timings of the cbc-jwt route that ends at `receiver` (its own, else its parent's). */
  timingsOf(receiver: string): RouteTimings
  /** Whether a notification to `receiver` (any, when omitted) carried a firing alert with these labels. */
  delivered(match: AlertMatch, receiver?: string): boolean
  /** Waits until a notification to `receiver` carries a firing alert with these labels; returns that notification. */
  waitForDelivery(receiver: string, match: AlertMatch): Promise<Notification>
  /** A time at which Alertmanager held the alert (one not yet through its pipeline is not held): at the latest, now. */
  heldSince(match: AlertMatch): Promise<number>
  /** Waits until the alert is suppressed by one that `causes` accepts, and returns that one. */
  silencedBy(match: AlertMatch, causes: (cause: AlertmanagerAlert) => boolean): Promise<AlertmanagerAlert>
  /**
   * Waits until an alert held since `since` has been held longer than the group_wait plus one
   * group_interval of the route to `receiver`: had it not been silenced, it would have been
   * delivered by then. The twin of "not delivered", tied to Alertmanager's own timers.
   */
  pastDelivery(receiver: string, since: number): Promise<void>
  stop(): Promise<void>
}

/** Whether `labels` carry every label of `match`. */
export const matches = (labels: Record<string, string>, match: AlertMatch) => Object.entries(match).every(([k, v]) => labels[k] === v)

const describeMatch = (match: AlertMatch) =>
  Object.entries(match)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')

/**
 * The shipped rules on a real Prometheus, feeding a real Alertmanager that runs the shipped
 * configuration, whose webhook receivers are a loopback server. Both files are loaded as
 * shipped but for their durations, compressed alike (test/support/time-compression.ts): the
 * rules' `for:` and windows, the routes' group_wait, group_interval and repeat_interval. So
 * a cause and its symptoms reach Alertmanager, and leave it, in the order they would in
 * production. Prometheus scrapes `targets` (with `labels`) and `groups` under the job
 * `cbc-jwt`, the one the rules expect, every second.
 */
export async function startAlertPipeline(opts: {
  dir: string
  targets: string[]
  labels?: Record<string, string>
  groups?: Array<{ targets: string[]; labels: Record<string, string> }>
  /**
   * The group_interval of every route of the test's copy, instead of the compressed shipped
   * one: how soon a group already notified (or held back, all silenced) is looked at again.
   * A timing field only: a shorter one makes a lapse of an inhibition show sooner, and the
   * wait for "never delivered" shorter.
   */
  groupInterval?: string
}): Promise<AlertPipeline> {
  fs.mkdirSync(opts.dir, { recursive: true })
  const webhook = await startAlertWebhook()
  let am: RunningAlertmanager | undefined
  let prom: RunningPrometheus | undefined
  const stop = async () => {
    await prom?.stop()
    await am?.stop()
    await webhook.close()
  }
  try {
    const doc = YAML.parse(compressedAlertmanagerConfig(fs.readFileSync(ALERTMANAGER_CONFIG_FILE, 'utf8'), webhook.urlFor)) as { route: Route }
    const subtree = doc.route.routes![0]!
    // The routes that set one: the others inherit it.
    if (opts.groupInterval)
      for (const route of [doc.route, subtree, ...(subtree.routes ?? [])]) if (route.group_interval) route.group_interval = opts.groupInterval
    const config = YAML.stringify(doc)
    am = await startAlertmanager(path.join(opts.dir, 'alertmanager'), config)
    const rules = path.join(opts.dir, 'rules.yml')
    fs.writeFileSync(rules, compressedRules(fs.readFileSync(RULES_FILE, 'utf8')))
    prom = await startPrometheus({
      dir: path.join(opts.dir, 'prometheus'),
      job: 'cbc-jwt',
      targets: opts.targets,
      ...(opts.labels ? { labels: opts.labels } : {}),
      ...(opts.groups ? { groups: opts.groups } : {}),
      ruleFiles: [rules],
      alertmanager: am.url,
    })
    return pipeline(webhook, am, prom, subtree, stop)
  } catch (err) {
    await stop()
    throw err
  }
}

function pipeline(webhook: AlertWebhook, am: RunningAlertmanager, prom: RunningPrometheus, subtree: Route, stop: () => Promise<void>): AlertPipeline {
  const seconds = (d: string) => {
    const m = /^(\d+)s$/.exec(d)
    if (!m) throw new Error(`unexpected duration ${d} in the compressed configuration`)
    return Number(m[1]) * 1000
  }
  const timingsOf = (receiver: string): RouteTimings => {
    const route = subtree.receiver === receiver ? subtree : subtree.routes?.find((r) => r.receiver === receiver)
    if (!route) throw new Error(`no route of the cbc-jwt subtree ends at ${receiver}`)
    return { groupWaitMs: seconds(route.group_wait ?? subtree.group_wait!), groupIntervalMs: seconds(route.group_interval ?? subtree.group_interval!) }
  }
  const delivered = (match: AlertMatch, receiver?: string) =>
    webhook
      .notifications()
      .some((n) => (receiver === undefined || n.receiver === receiver) && n.alerts.some((a) => a.status === 'firing' && matches(a.labels, match)))
  const deliveredSoFar = () =>
    JSON.stringify(
      webhook
        .notifications()
        .map((n) => [
          n.receiver,
          n.status,
          n.alerts.map((a) => describeMatch({ alertname: a.labels.alertname!, ...(a.labels.instance ? { instance: a.labels.instance } : {}) })),
        ]),
    )
  const heldList = (alerts: AlertmanagerAlert[]) =>
    alerts.map((a) => `${describeMatch(a.labels)} ${a.status.state} ${a.status.inhibitedBy.join(',')} (${a.fingerprint})`).join('\n')
  return {
    webhook,
    am,
    prom,
    timingsOf,
    delivered,
    waitForDelivery: (receiver, match) =>
      waitFor(() => webhook.notifications().find((n) => n.receiver === receiver && n.alerts.some((a) => a.status === 'firing' && matches(a.labels, match))), {
        timeoutMs: 30_000,
        intervalMs: 200,
        what: `${describeMatch(match)} delivered to ${receiver}; delivered so far: ${deliveredSoFar()}\n--- alertmanager ---\n${am.output().slice(-1000)}`,
      }),
    async heldSince(match) {
      await waitFor(async () => (await am.alerts()).some((a) => matches(a.labels, match) && a.status.state !== 'unprocessed'), {
        timeoutMs: 30_000,
        intervalMs: 200,
        what: `${describeMatch(match)} in Alertmanager\n--- prometheus ---\n${prom.output().slice(-1000)}`,
      })
      return Date.now()
    },
    async silencedBy(match, causes) {
      let seen: AlertmanagerAlert[] = []
      try {
        return await waitFor(
          async () => {
            seen = await am.alerts()
            const alert = seen.find((a) => matches(a.labels, match))
            if (alert?.status.state !== 'suppressed') return undefined
            return seen.find((c) => alert.status.inhibitedBy.includes(c.fingerprint) && causes(c))
          },
          { timeoutMs: 30_000, intervalMs: 200, what: `${describeMatch(match)} inhibited by its cause` },
        )
      } catch (err) {
        throw new Error(`${(err as Error).message}\nAlertmanager holds:\n${heldList(seen)}`)
      }
    },
    async pastDelivery(receiver, since) {
      const { groupWaitMs, groupIntervalMs } = timingsOf(receiver)
      await sleep(Math.max(0, since + groupWaitMs + groupIntervalMs + 1000 - Date.now()))
    },
    stop,
  }
}
