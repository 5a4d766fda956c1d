// An app on either supported prom-client major sees the cbc_jwt_* series on its own registry.
// prom-client is a peer dependency: cbc-jwt uses the app's copy. As a plain dependency, an app
// on another major got cbc-jwt's own nested copy, whose default registry the app never serves:
// no cbc_jwt_* series at all.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, it } from 'node:test'
import { KubeletVolume } from '../support/kubelet-volume.js'
import { makeKey, makeKeyset } from '../support/keys.js'
import { parseExposition, valueOf } from '../support/metrics-text.js'
import { exampleBlock, installPackedTarball, runApp, type RunningApp } from '../support/packed-app.js'
import { PROJECT_ROOT } from '../support/service.js'

const ADOPTING = fs.readFileSync(path.join(PROJECT_ROOT, 'docs/adopting.md'), 'utf8')
/** Each supported major, as installed here: this checkout's prom-client, and the `prom-client-14` alias. */
const MAJORS = [
  { major: 15, installed: 'prom-client' },
  { major: 14, installed: 'prom-client-14' },
]
const versionOf = (installed: string) =>
  JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'node_modules', installed, 'package.json'), 'utf8')).version as string

describe('prom-client: a peer dependency, tested on each supported major', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8'))

  it('is declared as a peer, never a plain dependency, with a range naming each tested major', () => {
    assert.equal(pkg.dependencies['prom-client'], undefined, 'a plain dependency installs a second copy for an app on another major')
    const range: string = pkg.peerDependencies['prom-client']
    for (const { major, installed } of MAJORS) {
      assert.match(range, new RegExp(`\\^${major}\\.`), `the range ${range} does not name ${major}`)
      assert.equal(Number(versionOf(installed).split('.')[0]), major, `${installed} is not prom-client ${major}`)
    }
  })

  for (const { major, installed } of MAJORS) {
    it(`an Express app on prom-client ${major} (${versionOf(installed)}) serves the cbc_jwt_* series from its own default registry`, async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), `cbc-jwt-prom-${major}-`))
      let app: RunningApp | undefined
      try {
        const { packageDir } = installPackedTarball(dir)
        const appCopy = path.join(dir, 'node_modules/prom-client')
        fs.rmSync(appCopy)
        fs.symlinkSync(path.join(PROJECT_ROOT, 'node_modules', installed), appCopy)
        // What npm does with a plain dependency the app's copy does not satisfy: a nested copy.
        const declared: string | undefined = JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8')).dependencies?.['prom-client']
        if (declared !== undefined && !declared.includes(`^${major}.`)) {
          fs.mkdirSync(path.join(packageDir, 'node_modules'), { recursive: true })
          fs.symlinkSync(path.join(PROJECT_ROOT, 'node_modules/prom-client'), path.join(packageDir, 'node_modules/prom-client'))
        }
        const volume = new KubeletVolume(path.join(dir, 'secret'))
        volume.writeKeyset(makeKeyset([makeKey('ES256', 'k-prom')]))
        fs.writeFileSync(
          path.join(dir, 'app.js'),
          `${exampleBlock(ADOPTING, 'express').replace(/app\.listen[^\n]*/, '')}
import { register } from 'prom-client'
import { createRequire } from 'node:module'
const { version } = createRequire(import.meta.url)('prom-client/package.json')
app.get('/metrics', async (_req, res) => res.set('content-type', register.contentType).set('x-prom-client', version).send(await register.metrics()))
app.listen(Number(process.env.PORT), '127.0.0.1')
`,
        )
        app = await runApp(dir, ['app.js'], { CBC_JWT_KEYSET_FILE: volume.file() }, '/metrics')
        for (let i = 0; i < 3; i++) assert.equal((await fetch(`${app.base}/orders`)).status, 401)
        const res = await fetch(`${app.base}/metrics`)
        assert.equal(res.headers.get('x-prom-client'), versionOf(installed))
        const expo = parseExposition(await res.text())
        assert.equal(valueOf(expo, 'cbc_jwt_auth_failures_total', { reason: 'missing' }), 3, 'the rejections are not on the app’s registry')
        assert.equal(valueOf(expo, 'cbc_jwt_keys_loaded'), 1)
      } finally {
        await app?.stop()
        fs.rmSync(dir, { recursive: true, force: true })
      }
    })
  }
})
