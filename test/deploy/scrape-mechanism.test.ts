/**
 * Every shipped layout, as kubectl renders it, enables exactly one Prometheus scrape mechanism
 * per pod that serves metrics: with two (the `prometheus.io/*` annotations and a
 * ServiceMonitor/PodMonitor), a Prometheus that discovers both ways scrapes each series twice,
 * under two job names, and every rate the alerts compute doubles.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { describe, test } from 'node:test'
import YAML from 'yaml'
import { PROJECT_ROOT } from '../support/service.js'

type Obj = Record<string, any>
const kubectl = spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0

function render(dir: string): Obj[] {
  const r = spawnSync('kubectl', ['kustomize', path.join(PROJECT_ROOT, dir)], { encoding: 'utf8', timeout: 60_000 })
  assert.equal(r.status, 0, r.stderr)
  return YAML.parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as Obj)
    .filter(Boolean)
}

const selects = (selector: Record<string, string> | undefined, labels: Record<string, string> | undefined) =>
  selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v)

/** The ways Prometheus would find one workload's pods, in the same namespace. */
function mechanisms(objects: Obj[], workload: Obj): string[] {
  const pod = workload.spec.template
  const ns = workload.metadata.namespace
  const found: string[] = []
  if (Object.keys(pod.metadata.annotations ?? {}).some((a) => a.startsWith('prometheus.io/'))) found.push('prometheus.io annotations')
  const services = objects.filter((o) => o.kind === 'Service' && o.metadata.namespace === ns && selects(o.spec.selector, pod.metadata.labels))
  for (const monitor of objects.filter((o) => o.kind === 'ServiceMonitor')) {
    const namespaces = monitor.spec.namespaceSelector?.matchNames ?? [monitor.metadata.namespace]
    if (services.some((s) => namespaces.includes(s.metadata.namespace) && selects(monitor.spec.selector.matchLabels, s.metadata.labels)))
      found.push(`ServiceMonitor ${monitor.metadata.name}`)
  }
  for (const monitor of objects.filter((o) => o.kind === 'PodMonitor')) {
    const namespaces = monitor.spec.namespaceSelector?.matchNames ?? [monitor.metadata.namespace]
    if (namespaces.includes(ns) && selects(monitor.spec.selector.matchLabels, pod.metadata.labels)) found.push(`PodMonitor ${monitor.metadata.name}`)
  }
  return found
}

/** Each layout: the workloads that serve metrics, and the one mechanism expected for each. */
const LAYOUTS: Array<{ dir: string; scraped: Record<string, string> }> = [
  { dir: 'deploy/kubernetes', scraped: { 'cbc-jwt': 'ServiceMonitor cbc-jwt' } },
  { dir: 'deploy/kubernetes-api-watch', scraped: { 'cbc-jwt': 'ServiceMonitor cbc-jwt' } },
  { dir: 'deploy/kubernetes/sidecar', scraped: { 'orders-api': 'PodMonitor orders-api-cbc-jwt' } },
  { dir: 'deploy/kubernetes-multi-namespace', scraped: { 'cbc-jwt': 'ServiceMonitor cbc-jwt', 'orders-api': 'PodMonitor orders-api-cbc-jwt' } },
]

describe('one scrape mechanism per pod, in every rendered layout', { skip: kubectl ? false : 'kubectl is not installed' }, () => {
  test('every shipped layout is listed here', () => {
    const layouts = fs
      .readdirSync(path.join(PROJECT_ROOT, 'deploy'), { recursive: true, encoding: 'utf8' })
      .filter((f) => path.basename(f) === 'kustomization.yaml')
      .map((f) => path.join('deploy', path.dirname(f)))
    assert.deepEqual(layouts.sort(), LAYOUTS.map((l) => l.dir).sort())
  })

  for (const layout of LAYOUTS) {
    test(`${layout.dir}: ${Object.entries(layout.scraped)
      .map(([w, m]) => `${w} by the ${m} alone`)
      .join(', ')}; nothing else is scraped`, () => {
      const objects = render(layout.dir)
      const workloads = objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet' || o.kind === 'DaemonSet')
      for (const name of Object.keys(layout.scraped))
        assert.ok(
          workloads.some((w) => w.metadata.name === name),
          `no workload ${name}`,
        )
      for (const workload of workloads) {
        const expected = layout.scraped[workload.metadata.name]
        assert.deepEqual(mechanisms(objects, workload), expected === undefined ? [] : [expected], workload.metadata.name)
      }
      // The CronJob's pods serve no metrics: nothing must try to scrape them.
      for (const cron of objects.filter((o) => o.kind === 'CronJob')) {
        assert.deepEqual(mechanisms(objects, { metadata: cron.metadata, spec: cron.spec.jobTemplate.spec }), [], cron.metadata.name)
      }
    })
  }

  test('the check can fail: the annotations put back beside the ServiceMonitor are two mechanisms', () => {
    const objects = render('deploy/kubernetes')
    const deployment = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'cbc-jwt')!
    deployment.spec.template.metadata.annotations = { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8000' }
    assert.deepEqual(mechanisms(objects, deployment), ['prometheus.io annotations', 'ServiceMonitor cbc-jwt'])
  })
})
