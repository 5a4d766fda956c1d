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
