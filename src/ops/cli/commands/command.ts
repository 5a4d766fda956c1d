import type { CliContext } from '../context.js'

/** A subcommand: its words (`keyset init`), a one-line summary, its --help text, and `run`. */
export interface Command {
  name: string
  summary: string
  help: string
  /** Returns the exit status; throws coded errors (mapped to 1 or 2 by main). */
  run(ctx: CliContext, args: string[]): Promise<number>
}
