import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { describe, it } from 'node:test'
import { AUTH_FAILURE_REASONS } from '../../src/lib/reasons.js'
import { PROJECT_ROOT } from '../support/service.js'

describe('docs/reasons.md', () => {
  const doc = fs.readFileSync(path.join(PROJECT_ROOT, 'docs/reasons.md'), 'utf8')
  const documented = [...doc.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1])

  it('documents exactly the reasons the code can produce, in the order they are checked', () => {
    assert.deepEqual([...documented].sort(), [...AUTH_FAILURE_REASONS].sort())
  })

  const contractFile = path.join(PROJECT_ROOT, '../shared/CONTRACT.md')
  it('matches the reason list of the contract', { skip: !fs.existsSync(contractFile) && 'CONTRACT.md is not next to this checkout' }, () => {
    const contract = fs.readFileSync(contractFile, 'utf8')
    const m = /Auth failure reasons, a closed set: ([^.]+)\./.exec(contract.replace(/\n/g, ' '))
    assert.ok(m, 'the contract no longer lists the reasons in the expected sentence')
    const listed = [...m[1]!.matchAll(/`([a-z_]+)`/g)].map((x) => x[1])
    assert.deepEqual([...listed].sort(), [...AUTH_FAILURE_REASONS].sort())
  })
})

describe('links to the reasons', () => {
  const pages = ['README.md', ...fs.readdirSync(path.join(PROJECT_ROOT, 'docs')).flatMap((f) => (f.endsWith('.md') ? [`docs/${f}`] : []))]
  /** Lines that send the reader to reasons.md for the backend error reasons, which it does not list. */
  const misdirected = (text: string) =>
    text.split('\n').filter((l) => /backend error reasons?|BACKEND_ERROR_REASONS/.test(l) && /\]\([^)]*reasons\.md[)#]/.test(l))

  it('the check can fail', () => {
    assert.equal(misdirected('`BackendError.reason` is one of the backend error reasons ([reasons.md](reasons.md))').length, 1)
  })

  it('the backend error reasons are linked where they are listed (metrics.md), never to reasons.md', () => {
    const doc = fs.readFileSync(path.join(PROJECT_ROOT, 'docs/reasons.md'), 'utf8')
    assert.ok(!doc.includes('`sealed`'), 'reasons.md now lists backend error reasons: drop this test')
    const found = pages.flatMap((page) => misdirected(fs.readFileSync(path.join(PROJECT_ROOT, page), 'utf8')).map((l) => `${page}: ${l}`))
    assert.deepEqual(found, [])
  })
})
