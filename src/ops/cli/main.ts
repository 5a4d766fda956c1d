#!/usr/bin/env node
/** The `cbc-jwt` command (docs/cli.md): the package's bin. */
import { clockFromEnv, println, type CliContext } from './context.js'
import { runCli } from './run.js'

// A closed pipe (`cbc-jwt status | head -1`) is not an error worth a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0)
  throw err
})

let now: () => number
try {
  now = clockFromEnv(process.env)
} catch (err) {
  println(process.stderr, `cbc-jwt: ${(err as Error).message}`)
  process.exit(2)
}

const ctx: CliContext = { env: process.env, stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, now }
process.exitCode = await runCli(process.argv.slice(2), ctx)
