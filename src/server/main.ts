#!/usr/bin/env node
/**
 * The service's entry point (`node dist/server/main.js [--dev]`), configured by the
 * environment. `--dev` asks for the development keyset, as
 * `CBC_JWT_DEV_KEYSET=true` does; nothing else ever generates one.
 */
import { printable } from '../lib/logging/sanitize.js'
import { runService } from './start-up.js'

const args = process.argv.slice(2)
const unknown = args.find((a) => a !== '--dev')
if (unknown !== undefined) {
  process.stderr.write(
    `cbc-jwt: unexpected argument "${printable(unknown, { max: 200 })}" (the only flag is --dev; configure the service with environment variables)\n`,
  )
  process.exit(2)
}
await runService({ dev: args.includes('--dev') })
