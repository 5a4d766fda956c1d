import fs from 'node:fs'
import { CbcJwtError, ERROR_REGISTRY, UsageError } from '../../lib/errors.js'
import type { Command } from './commands/command.js'
import { failuresCommand } from './commands/failures.js'
import { keysetInitCommand } from './commands/keyset-init.js'
import { keysetRestoreCommand } from './commands/keyset-restore.js'
import { keysetValidateCommand } from './commands/keyset-validate.js'
import { revokeCommand } from './commands/revoke.js'
import { rotateCommand } from './commands/rotate.js'
import { serveCommand } from './commands/serve.js'
import { statusCommand } from './commands/status.js'
import { tokenIssueCommand } from './commands/token-issue.js'
import { tokenVerifyCommand } from './commands/token-verify.js'
import { verifyRotationCommand } from './commands/verify-rotation.js'
import { println, type CliContext } from './context.js'
import { groupHelp, topHelp } from './help.js'
import { quotedArgument } from './args.js'

/** Every command, in the order `--help` lists them. */
export const COMMANDS: readonly Command[] = [
  keysetInitCommand,
  keysetValidateCommand,
  keysetRestoreCommand,
  rotateCommand,
  revokeCommand,
  tokenIssueCommand,
  tokenVerifyCommand,
  statusCommand,
  verifyRotationCommand,
  failuresCommand,
  serveCommand,
]

const GROUPS = ['keyset', 'token'] as const

/** Exit status of the documented contract: 0 ok, 1 failed check / refused / backend, 2 usage. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const

/**
 * Runs one invocation: finds the command, answers `--help`, maps errors to one line on
 * stderr and an exit status. Never throws.
 */
export async function runCli(argv: readonly string[], ctx: CliContext): Promise<number> {
  const args = [...argv]
  try {
    const first = args[0]
    // Bad usage is one line on stderr, as every other: the help is what --help prints.
    if (first === undefined) {
      const names = [...new Set(COMMANDS.map((c) => c.name.split(' ')[0]))]
      throw new UsageError(`give a command: ${names.join(', ')} (see cbc-jwt --help)`)
    }
    if (first === '--help' || first === '-h' || (first === 'help' && args.length === 1)) {
      println(ctx.stdout, topHelp(COMMANDS))
      return EXIT.ok
    }
    if (first === '--version' || first === '-V') {
      println(ctx.stdout, version())
      return EXIT.ok
    }
    if (first === 'help') return runCli([...args.slice(1), '--help'], ctx)
    const found = findCommand(args)
    if (!found) {
      if ((GROUPS as readonly string[]).includes(first)) {
        const sub = args[1]
        if (sub === undefined) {
          const subs = COMMANDS.filter((c) => c.name.startsWith(`${first} `)).map((c) => c.name.split(' ')[1])
          throw new UsageError(`${first}: give a command: ${subs.join(', ')} (see cbc-jwt ${first} --help)`)
        }
        if (wantsHelp([sub])) {
          println(ctx.stdout, groupHelp(first, COMMANDS))
          return EXIT.ok
        }
        throw new UsageError(`unknown command ${quotedArgument(`${first} ${sub}`)} (see cbc-jwt ${first} --help)`)
      }
      throw new UsageError(`unknown command ${quotedArgument(first)} (see cbc-jwt --help)`)
    }
    const { command, rest } = found
    if (wantsHelp(rest)) {
      println(ctx.stdout, command.help)
      return EXIT.ok
    }
    return await command.run(ctx, rest)
  } catch (err) {
    return reportError(ctx, err)
  }
}

function findCommand(args: string[]): { command: Command; rest: string[] } | undefined {
  for (const command of COMMANDS) {
    const words = command.name.split(' ')
    if (words.every((w, i) => args[i] === w)) return { command, rest: args.slice(words.length) }
  }
  return undefined
}

/** `-h`/`--help` before any `--` terminator. */
function wantsHelp(args: readonly string[]): boolean {
  const end = args.indexOf('--')
  return (end === -1 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h')
}

function reportError(ctx: CliContext, err: unknown): number {
  const oneLine = (s: string) => s.replace(/\s*\n\s*/g, ' ')
  if (err instanceof CbcJwtError) {
    // The registry decides by code: ERR_USAGE and ERR_CONFIG end with 2 whoever threw them.
    println(ctx.stderr, `cbc-jwt: ${oneLine(err.message)}`)
    return ERROR_REGISTRY[err.code].cliExit
  }
  const message = err instanceof Error ? err.message : String(err)
  println(ctx.stderr, `cbc-jwt: unexpected error: ${oneLine(message)}${ctx.env.CBC_JWT_DEBUG ? '' : ' (CBC_JWT_DEBUG=1 shows the stack)'}`)
  if (ctx.env.CBC_JWT_DEBUG && err instanceof Error && err.stack) ctx.stderr.write(`${err.stack}\n`)
  return EXIT.failed
}

function version(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string }
    return `cbc-jwt ${pkg.version ?? 'unknown'}`
  } catch {
    return 'cbc-jwt (version unknown)'
  }
}
