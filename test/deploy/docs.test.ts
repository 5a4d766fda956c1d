/**
 * The runbook and the metrics page agree with the code and the alert rules: every alert has
 * its section at the anchor its runbook_url names, every metric named exists, every reason
 * is documented, the thresholds quoted are the ones in the rules.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, test } from 'node:test'
import YAML from 'yaml'
import { METRIC_NAMES } from '../../src/lib/metrics/names.js'
import { AUTH_FAILURE_REASONS, BACKEND_ERROR_REASONS } from '../../src/lib/reasons.js'
import { makeKey, makeKeyset, signToken, validClaims } from '../support/keys.js'
import { anchors } from '../support/markdown.js'
import { CLI_MAIN, PROJECT_ROOT } from '../support/service.js'

const RUNBOOK = fs.readFileSync(path.join(PROJECT_ROOT, 'docs/runbook.md'), 'utf8')
const METRICS_DOC = fs.readFileSync(path.join(PROJECT_ROOT, 'docs/metrics.md'), 'utf8')
const EXPORTED = new Set<string>(Object.values(METRIC_NAMES))

interface AlertRule {
  alert: string
  expr: string
  annotations: { runbook_url: string }
}
const RULES = (
  YAML.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'deploy/prometheus/cbc-jwt.rules.yml'), 'utf8')) as { groups: Array<{ rules: AlertRule[] }> }
).groups
  .flatMap((g) => g.rules)
  .filter((r) => r.alert)

/** The text of the section under the heading whose text is `title`, up to the next heading of its level or above. */
function section(markdown: string, title: string): string {
  const lines = markdown.split('\n')
  let fenced = false
  const heading = lines.map((l) => {
    if (l.startsWith('```')) fenced = !fenced
    const m = !fenced && /^(#{1,6})\s+(.*)$/.exec(l)
    return m ? { level: m[1]!.length, text: m[2]!.replace(/`/g, '').trim() } : undefined
  })
  const start = heading.findIndex((h) => h?.text === title)
  if (start < 0) return ''
  const level = heading[start]!.level
  const end = heading.findIndex((h, i) => i > start && h !== undefined && h.level <= level)
  return lines.slice(start + 1, end < 0 ? undefined : end).join('\n')
}

function metricNamesIn(text: string): string[] {
  return [...new Set([...text.matchAll(/\bcbc_jwt_[a-z_]+[a-z]\b/g)].map((m) => m[0]))]
}

describe('docs/runbook.md', () => {
  test('the anchor helper follows GitHub', () => {
    const a = anchors('# A B\n## `JWTKeyAgeExceeded`\n```\n# not a heading\n```\n## Verification Checklist After Rotation\n## A B\n')
    assert.deepEqual([...a.keys()], ['a-b', 'jwtkeyageexceeded', 'verification-checklist-after-rotation', 'a-b-1'])
  })

  test("every alert has a section at its runbook_url's anchor", () => {
    const slugs = anchors(RUNBOOK)
    assert.ok(RULES.length >= 6)
    for (const rule of RULES) {
      const url = new URL(rule.annotations.runbook_url)
      assert.equal(`${url.origin}${url.pathname}`, 'https://github.com/cbc-omega2/cbc-jwt/blob/main/docs/runbook.md', rule.alert)
      const anchor = url.hash.slice(1)
      assert.equal(slugs.get(anchor), rule.alert, `${rule.alert}: no heading "${rule.alert}" at #${anchor}`)
      assert.ok(section(RUNBOOK, rule.alert).length > 200, `${rule.alert}: the section is empty`)
    }
  })

  test('every section of an alert belongs to an alert in the rules', () => {
    const alerts = new Set(RULES.map((r) => r.alert))
    for (const heading of section(RUNBOOK, 'Alert Playbooks').matchAll(/^### (.*)$/gm)) {
      assert.ok(alerts.has(heading[1]!.replace(/`/g, '')), `runbook section ${heading[1]} has no alert`)
    }
  })

  test('every in-page link resolves', () => {
    const slugs = anchors(RUNBOOK)
    for (const link of RUNBOOK.matchAll(/\]\(#([^)]+)\)/g)) assert.ok(slugs.has(link[1]!), `broken link #${link[1]}`)
  })

  test("keeps the seed runbook's structure and escalation contacts", () => {
    for (const heading of [
      '# JWT Secrets Rotation Runbook',
      '## Related Metrics',
      '## Alert Playbooks',
      '### `JWTSecretsBackendErrors`',
      '### `JWTAuthFailureSpike`',
      '### `JWTKeyAgeExceeded`',
      '## Verification Checklist After Rotation',
      '## Useful Commands',
      '## Escalation Contacts',
    ]) {
      assert.ok(RUNBOOK.split('\n').includes(heading), `missing heading ${heading}`)
    }
    assert.match(section(RUNBOOK, 'Escalation Contacts'), /\*\*On-call Platform Engineer\*\* – Slack `#oncall-platform`/)
    assert.match(section(RUNBOOK, 'Escalation Contacts'), /\*\*Security Operations\*\* – PagerDuty schedule `secops-primary`/)
  })

  test('names the exact commands', () => {
    for (const command of [
      /pod_port "\$POD" 18000 && curl -fsS http:\/\/127\.0\.0\.1:18000\/metrics \| grep "?\^?cbc_jwt/,
      /^export CBC_JWT_BACKEND=kubernetes CBC_JWT_KUBERNETES_NAMESPACE=cbc CBC_JWT_KUBERNETES_SECRET=cbc-secrets \\$/m,
      /^cbc-jwt status$/m,
      /^ *cbc-jwt keyset validate$/m,
      /cbc-jwt rotate --grace 24h/,
      /^ *cbc-jwt rotate --compromised --prometheus "\$PROM" --selector 'job="cbc-jwt",namespace="cbc"' --wait 2m --reason /m,
      /^ *cbc-jwt rotate --stage --reason /m,
      /^ *cbc-jwt rotate --promote --prometheus "\$PROM" --selector 'job="cbc-jwt",namespace="cbc"' --reason /m,
      /^ *cbc-jwt revoke --issued-before \S+ --prometheus "\$PROM" --selector 'job="cbc-jwt",namespace="cbc"' --wait 2m --reason /m,
      /^ *cbc-jwt revoke --client-id \S+ --issued-before \S+ --prometheus "\$PROM" --selector 'job="cbc-jwt",namespace="cbc"' --wait 2m --reason /m,
      /^ *cbc-jwt keyset restore --dry-run$/m,
      /^ *cbc-jwt keyset restore --reason /m,
      /printf '%s' "\$LEGACY" \| cbc-jwt verify-rotation --url \S+ --previous-kid \S+ --legacy-token - /,
      /printf '%s' "\$LEGACY" \| cbc-jwt verify-rotation --url \S+ --previous-kid \S+ --legacy-token - --compromised/,
      /kubectl -n cbc get secret cbc-secrets -o jsonpath='\{\.data\}' \| jq -r 'keys\[\]'/,
      /kubectl -n cbc logs -l app\.kubernetes\.io\/name=cbc-jwt --prefix --tail=-1 /,
      /cbc-jwt failures --since 30m /,
      /cbc-jwt failures --kid /,
      /cbc-jwt rotate --auto --every 6d/,
    ]) {
      assert.match(RUNBOOK, command)
    }
  })

  // The Setup block's settings are the ones the code reads: a misspelt variable would send
  // every command to the default Secret (or none).
  test('every CBC_JWT_ variable it sets is one the code reads', () => {
    const src = fs
      .readdirSync(path.join(PROJECT_ROOT, 'src'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => fs.readFileSync(path.join(PROJECT_ROOT, 'src', f), 'utf8'))
      .join('\n')
    const named = new Set([...RUNBOOK.matchAll(/\b(CBC_JWT_[A-Z_]+)=/g)].map((m) => m[1]!))
    assert.ok(named.has('CBC_JWT_KUBERNETES_LAST_GOOD_SECRET'), [...named].join(' '))
    for (const name of named) assert.ok(src.includes(name), `${name} is read nowhere in src/`)
  })

  // What the drill found wrong: reads of one pod, 10 lines per pod, localhost that may be
  // another process, a pipeline that can store an empty keyset.
  test('names none of the commands the drill found unsafe', () => {
    const code =
      [...RUNBOOK.matchAll(/```bash\n([\s\S]*?)```/g)].map((m) => m[1]!).join('\n') + [...RUNBOOK.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!).join('\n')
    assert.doesNotMatch(code, /curl[^\n]*localhost:8000/, 'curl localhost:8000 may read another process')
    assert.doesNotMatch(code, /kubectl[^\n]* logs deploy\//, 'kubectl logs deploy/… reads one pod')
    for (const m of code.matchAll(/kubectl[^\n]* logs -l [^\n]*/g)) assert.match(m[0], /--tail=-1/, `${m[0]}: 10 lines per pod`)
    assert.doesNotMatch(
      code,
      /create secret generic[^\n]*\n?[^\n]*kubectl[^\n]* apply/,
      'a pipeline into kubectl apply stores an empty keyset when cbc-jwt fails',
    )
    assert.doesNotMatch(code, /port-forward (deploy|svc|service)\//, 'a port-forward to the Deployment or Service picks one pod at random')
    // Every write is one cbc-jwt command (check-and-set, validated, last good copy kept).
    assert.doesNotMatch(
      code,
      /kubectl[^\n]* (patch|edit|replace|apply|create)[^\n]*secret/,
      'a keyset written with kubectl bypasses validation and the last good copy',
    )
    assert.doesNotMatch(code, /base64 -d \| cbc-jwt/, 'the keyset is read through the backend, not piped')
  })

  // A token on the command line is visible to every local user (`ps`, /proc/PID/cmdline) for as
  // long as verify-rotation runs (up to --wait 2m): the docs feed it on stdin, printf being a
  // shell builtin that no process list shows.
  test('passes no live token on a command line (runbook, README, rotation.md, cli.md)', () => {
    for (const doc of ['docs/runbook.md', 'README.md', 'docs/rotation.md', 'docs/cli.md']) {
      const text = fs.readFileSync(path.join(PROJECT_ROOT, doc), 'utf8')
      const code = [...text.matchAll(/```(?:bash|sh|console)\n([\s\S]*?)```/g)].map((m) => m[1]!.replace(/\\\n\s*/g, ' ')).join('\n')
      const uses = [...code.matchAll(/[^\n]*--legacy-token[^\n]*/g)].map((m) => m[0])
      assert.ok(uses.length > 0, `${doc}: no verify-rotation --legacy-token block`)
      for (const line of uses) {
        assert.match(line, /--legacy-token - /, `${doc}: ${line}`)
        assert.match(line, /printf '%s' "\$[A-Z]+" \| cbc-jwt verify-rotation /, `${doc}: ${line}`)
      }
    }
  })

  // Every `cbc-jwt …` the runbook tells an operator to type runs with the built CLI: flags
  // and argument order as written (placeholders filled in), on a keyset file instead of the
  // Secret, exit 0. Those that need live replicas, Prometheus or the Secret's last good copy
  // run in test/e2e/runbook-drill.test.ts; here every flag they are given must exist.
  test('every cbc-jwt command it names runs with the built CLI', () => {
    assert.ok(fs.existsSync(CLI_MAIN), `${CLI_MAIN} is missing: run npm run build first`)
    const all = [...new Set([...RUNBOOK.matchAll(/cbc-jwt [a-z][^`|<>#)\n\\]*/g)].map((m) => m[0].trim()))]
    // A bare mention ("after a `cbc-jwt revoke`") is a prefix of the full command elsewhere.
    const commands = all.filter((c) => !all.some((o) => o !== c && o.startsWith(`${c} `)))
    assert.ok(commands.length >= 15, commands.join('\n'))
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-runbook-'))
    try {
      const key = makeKey('ES256', 'k-runbook')
      const keyset = JSON.stringify(makeKeyset([{ key, opts: { createdAt: new Date(Date.now() - 3_600_000) } }]))
      const token = signToken(key, validClaims())
      const log = path.join(dir, 'service.log')
      fs.writeFileSync(
        log,
        `${JSON.stringify({ level: 40, time: Date.now(), service: 'cbc-jwt', event: 'auth_rejected', reason: 'expired', kid: key.kid, client_id: 'acme' })}\n`,
      )
      const cli = (args: string[], input?: string, env: Record<string, string> = {}) =>
        spawnSync(process.execPath, [CLI_MAIN, ...args], { input, encoding: 'utf8', timeout: 20_000, env: { PATH: process.env.PATH ?? '', ...env } })
      // `rotate --promote` needs a staged key that has propagated: stage it an hour ago.
      const staged = cli(['rotate', '--stage', '-'], keyset, { CBC_JWT_NOW: new Date(Date.now() - 3_000_000).toISOString() })
      assert.equal(staged.status, 0, staged.stderr)
      for (const [i, command] of commands.entries()) {
        const file = path.join(dir, `keyset-${i}.json`)
        const input = command.startsWith('cbc-jwt rotate --promote') ? staged.stdout : keyset
        fs.writeFileSync(file, input)
        const args = [...command.slice('cbc-jwt '.length).matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((m) =>
          (m[1] ?? m[2] ?? m[3]!)
            .replace(/^\$(TOKEN|LEGACY)$/, token)
            .replace(/^\$work\/\S+$/, file)
            .replace(/^\S+\.log$/, log),
        )
        if (args[0] === 'verify-rotation' || args.includes('--prometheus') || args.slice(0, 2).join(' ') === 'keyset restore') {
          const help = cli([...args.slice(0, args[0] === 'keyset' ? 2 : 1), '--help'])
          for (const flag of args.filter((a) => a.startsWith('--'))) assert.ok(help.stdout.includes(flag), `${command}: ${flag}`)
          continue
        }
        const stdin = args.includes('-') || args[args.indexOf('--keyset-file') + 1] === '-'
        const hasSource = stdin || args.includes('--keyset-file') || (args[0] === 'keyset' && args[1] === 'init') || args[0] === 'failures'
        const r = cli(hasSource ? args : [...args, '--keyset-file', file], stdin ? input : undefined)
        assert.equal(r.status, 0, `${command}\n${r.stderr}`)
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  test("Routine Rotation's stage step says what to do when the CronJob's standby is staged", () => {
    // The shipped CronJob (rotate --auto) keeps a standby staged at all times, so in a
    // deployment that runs it the stage step is refused as written: the step must say so.
    const step = section(RUNBOOK, 'Routine Rotation')
    const stage = /```bash\n\s*(cbc-jwt rotate --stage[^\n]*)\n/.exec(step)?.[1]
    assert.ok(stage, 'Routine Rotation has a stage block')
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-standby-'))
    try {
      const file = path.join(dir, 'keyset.json')
      const key = makeKey('ES256', 'k-current')
      fs.writeFileSync(file, JSON.stringify(makeKeyset([{ key, opts: { createdAt: new Date(Date.now() - 3_600_000) } }])), { mode: 0o600 })
      const cli = (args: string[]) => spawnSync(process.execPath, [CLI_MAIN, ...args, '--keyset-file', file], { encoding: 'utf8', timeout: 20_000 })
      const cron = cli(['rotate', '--auto', '--every', '6d'])
      assert.equal(cron.status, 0, cron.stderr)
      const args = [...stage.slice('cbc-jwt '.length).matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!)
      const r = cli(args)
      assert.equal(r.status, 1, r.stderr)
      const refusal = /is already staged/.exec(r.stderr)?.[0]
      assert.ok(refusal, r.stderr)
      assert.ok(step.includes(refusal), `Routine Rotation does not say what to do when the stage step answers "${refusal}"`)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  test('JWTCompromiseNotContained: with revocation="rules" the action does not send the on-call to delete the replicas that are right', () => {
    // A write drops expired rules: a replica stuck since then keeps the higher newest rule, and
    // the alert names every other replica — the healthy ones. "Delete that pod" would take
    // them down and leave the stuck one serving.
    const rule = RULES.find((r) => r.alert === 'JWTCompromiseNotContained')!
    assert.match(rule.expr, /cbc_jwt_revocations_newest_timestamp_seconds[\s\S]*"revocation", "rules"/, 'the rule pages on the newest rule')
    const text = section(RUNBOOK, 'JWTCompromiseNotContained')
    const step = (name: string) => text.split('\n').find((l) => l.includes(`**${name}**`)) ?? ''
    assert.match(step('Triage'), /revocation="rules"[\s\S]*cbc-jwt revoke --list/, 'Triage says how to tell which side is behind')
    assert.match(step('Immediate Action'), /revocation="rules"/, 'Immediate Action says which replica to delete when the alert names the ones that are right')
  })

  test('the verification checklist is the one cbc-jwt verify-rotation runs', () => {
    const checklist = section(RUNBOOK, 'Verification Checklist After Rotation')
    assert.match(checklist, /cbc-jwt verify-rotation/)
    const items = checklist.split('\n').filter((l) => l.startsWith('- [ ]'))
    assert.equal(items.length, 4)
    for (const metric of [METRIC_NAMES.activeKeyAge, METRIC_NAMES.keysLoaded, METRIC_NAMES.backendErrors]) {
      assert.ok(
        items.some((i) => i.includes(metric)),
        `no checklist item about ${metric}`,
      )
    }
    assert.ok(items.some((i) => i.includes('--legacy-token')))
  })

  test('quotes the thresholds the rules use', () => {
    const expr = (name: string) => RULES.find((r) => r.alert === name)!.expr
    const spike = expr('JWTAuthFailureSpike')
    const floor = /\[5m\]\)\)\s*>\s*([\d.]+)/.exec(spike)![1]!
    const factor = />\s*(\d+)\s*\*\s*\(/.exec(spike)![1]!
    const spikeText = section(RUNBOOK, 'JWTAuthFailureSpike')
    assert.ok(spikeText.includes(`**${floor} per second**`), `runbook floor ≠ ${floor}`)
    assert.ok(spikeText.includes(`**${factor}×**`), `runbook factor ≠ ${factor}`)
    assert.match(expr('JWTKeyAgeExceeded'), />\s*604800\b/)
    assert.match(section(RUNBOOK, 'JWTKeyAgeExceeded'), /604,800 s/)
    const stale = /(\d+)\s*\*\s*cbc_jwt_keyset_refresh_interval_seconds/.exec(expr('JWTKeysetStale'))![1]!
    assert.ok(section(RUNBOOK, 'JWTKeysetStale').includes(`**${stale} × \`cbc_jwt_keyset_refresh_interval_seconds\`**`))
  })

  test('every metric named exists in the code, and the metrics table lists them all', () => {
    for (const name of metricNamesIn(RUNBOOK)) assert.ok(EXPORTED.has(name), `runbook names ${name}, which the code does not export`)
    const table = section(RUNBOOK, 'Related Metrics')
    for (const name of EXPORTED) assert.ok(table.includes(`\`${name}\``), `Related Metrics lacks ${name}`)
  })
})

describe('docs/metrics.md', () => {
  test('names exactly the alert rules that select job="cbc-jwt", as many as the rules file says', () => {
    const selecting = RULES.filter((r) => r.expr.includes('job="cbc-jwt"'))
      .map((r) => r.alert)
      .sort()
    assert.ok(selecting.length > 0)
    const named = [...new Set(section(METRICS_DOC, 'The job label the alert rules select').match(/\bJWT[A-Za-z]+/g))].sort()
    assert.deepEqual(named, selecting)
    const rulesText = fs.readFileSync(path.join(PROJECT_ROOT, 'deploy/prometheus/cbc-jwt.rules.yml'), 'utf8')
    const words = ['one', 'two', 'three', 'four']
    assert.match(rulesText, new RegExp(`change the ${words[selecting.length - 1]} \`job="cbc-jwt"\` selectors`))
  })

  test('documents every metric, and only those', () => {
    for (const name of metricNamesIn(METRICS_DOC)) assert.ok(EXPORTED.has(name), `metrics.md names ${name}, which the code does not export`)
    const examples = [...section(METRICS_DOC, 'Example queries').matchAll(/```promql\n([\s\S]*?)```/g)].map((m) => m[1]!).join('\n')
    for (const name of EXPORTED) {
      assert.match(METRICS_DOC, new RegExp(`^\\| \`${name}\` \\| (gauge|counter) \\|`, 'm'), `no table row for ${name}`)
      assert.ok(metricNamesIn(examples).includes(name), `no example query with ${name}`)
    }
  })

  test('each example query is given once, and the stale-keyset one leaves out replicas that never read it', () => {
    const examples = [...section(METRICS_DOC, 'Example queries').matchAll(/```promql\n([\s\S]*?)```/g)].map((m) => m[1]!).join('\n')
    const queries = examples.split(/\n(?=# )/).map((q) => q.trim())
    const headings = queries.map((q) => q.split('\n')[0]!)
    assert.deepEqual(
      headings.filter((h, i) => headings.indexOf(h) !== i),
      [],
      'an example heading appears twice',
    )
    // JWTKeysetStale pages only replicas that have read their keyset once (timestamp > 0):
    // one that never did is JWTNoKeysLoaded's, and would read as "stale for 56 years".
    for (const q of queries.filter((q) => /time\(\) - cbc_jwt_keyset_last_success_timestamp_seconds/.test(q))) {
      assert.match(q, /cbc_jwt_keyset_last_success_timestamp_seconds\{job="cbc-jwt"\} > 0/, q)
    }
  })

  test('documents every auth failure and backend error reason, and only those', () => {
    const rows = (title: string) => [...section(METRICS_DOC, title).matchAll(/^\| `(\w+)` \|/gm)].map((m) => m[1]!)
    assert.deepEqual(rows('Auth failure reasons'), [...AUTH_FAILURE_REASONS])
    assert.deepEqual(rows('Backend error reasons'), [...BACKEND_ERROR_REASONS])
  })

  test("the runbook's backend errors triage has a branch for every reason the counter can carry", () => {
    // The page names the reason; a reason without a branch leaves the on-call with nowhere to go
    // (a keyset path that is a directory, an EIO on the node, a hung mount).
    const triage = section(RUNBOOK, 'JWTSecretsBackendErrors')
    const leads = [...triage.matchAll(/^\s*- \*\*(.*?)\*\*/gm)].map((m) => m[1]!)
    for (const reason of BACKEND_ERROR_REASONS)
      assert.ok(
        leads.some((lead) => lead.includes(`\`${reason}\``)),
        `no branch of JWTSecretsBackendErrors names ${reason}`,
      )
    // A Vault secret that is gone (deleted, destroyed, a KV v1 mount) is not_found too: its branch says where to look.
    assert.match(triage.split('\n').find((l) => /^\s*- \*\*`not_found`\*\*/.test(l)) ?? '', /vault kv/)
  })

  test("the backend errors triage's log command shows every log line the alert sends the on-call to", () => {
    // The page says "its backend_error, … or issuer_error log lines say which": a triage command
    // that greps fewer shows nothing for a failing trusted issuer, and the reason alone (invalid_json)
    // would send the reader to restore a keyset that is fine.
    const rule = RULES.find((r) => r.alert === 'JWTSecretsBackendErrors') as AlertRule & { annotations: { description: string } }
    const named = /its ([\w, ]+) log\s+lines say which/.exec(rule.annotations.description)?.[1]
    const events = [...(named ?? '').matchAll(/\b[a-z]+_[a-z_]+\b/g)].map((m) => m[0])
    assert.ok(events.length >= 3, `a positive control: the description names the log lines (${events.join(', ')})`)
    const triage = section(RUNBOOK, 'JWTSecretsBackendErrors')
    const logCommand = triage.split('\n').find((l) => l.includes('kubectl -n cbc logs')) ?? ''
    for (const event of events) assert.ok(logCommand.includes(event), `the triage's log command misses ${event}: ${logCommand}`)
    // Each reason an issuer's read can fail with is in the issuer branch (a 401 at its JWKS URL, an HTML page answered 200).
    const issuerBranch = triage.split('\n').find((l) => l.includes("**A trusted issuer's keys**")) ?? ''
    for (const reason of ['unreachable', 'timeout', 'forbidden', 'server_error', 'bad_response', 'invalid_json', 'invalid_keyset'])
      assert.ok(issuerBranch.includes(`\`${reason}\``), `the trusted issuer branch misses ${reason}`)
  })

  test('the backend errors triage tells a Vault token past its TTL from a policy that denies (both are 403 permission denied)', () => {
    // The service never renews a VAULT_TOKEN: one with a TTL is refused once it runs out, and
    // "check the token's policy" leads the reader to a policy that is fine.
    const triage = section(RUNBOOK, 'JWTSecretsBackendErrors')
    const vault = triage.split('\n').find((l) => /^\s*- \*\*.*\*\* on \*\*Vault\*\*/.test(l)) ?? ''
    assert.match(vault, /vault token lookup/)
    assert.match(vault, /never renews/)
    assert.match(section(fs.readFileSync(path.join(PROJECT_ROOT, 'docs/vault.md'), 'utf8'), 'Authentication'), /never renew/)
  })

  test('says what each reason means on the Kubernetes API, and the runbook has a branch for it (the API-watch layout pages too)', () => {
    // The reasons the Kubernetes backend gives (src/lib/backends/kubernetes): 404 or no data key,
    // 401/403, a status it does not expect, an answer that is not a Secret.
    const row = (reason: string) => new RegExp(`^\\| \`${reason}\` \\|(.*)$`, 'm').exec(section(METRICS_DOC, 'Backend error reasons'))?.[1] ?? ''
    for (const reason of ['not_found', 'forbidden', 'server_error', 'bad_response']) assert.match(row(reason), /Kubernetes/, `the ${reason} row`)
    const triage = section(RUNBOOK, 'JWTSecretsBackendErrors')
    assert.match(triage, /`forbidden`, `unreachable`, `timeout`, `server_error`, `bad_response`\*\* on the \*\*Kubernetes API\*\*/)
  })
})

describe('README.md', () => {
  test('names every Debian package .ci/run installs for the tests, in its apt-get line', () => {
    // A newcomer runs `npm test` on a machine of their own: a package only .ci/run knows of
    // would fail a test there with nothing in the README to say why.
    const ci = fs.readFileSync(path.join(PROJECT_ROOT, '.ci/run'), 'utf8')
    const installed = new Set(
      [...ci.matchAll(/need\+=\(([a-z0-9.+-]+)\)/g), ...ci.matchAll(/apt-get install -y --no-install-recommends ([a-z0-9.+-]+) /g)].map((m) => m[1]!),
    )
    assert.ok(installed.size >= 8, `read the packages of .ci/run: ${[...installed].join(' ')}`)
    const readme = fs.readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8')
    const line = /^apt-get install -y (.*)$/m.exec(readme)
    assert.ok(line, 'the README has one apt-get install line')
    const named = new Set(line[1]!.split(/\s+/))
    assert.deepEqual(
      [...installed].filter((p) => !named.has(p)),
      [],
      'every package .ci/run installs is in the README',
    )
  })
})
