import { parseArgs } from 'node:util'
import { UsageError } from '../../lib/errors.js'
import { ALGORITHMS, isAlg, type Alg } from '../../lib/keyset/algorithms.js'
import { MAX_DURATION_MS, parseDuration } from '../../lib/duration.js'
import { printable } from '../../lib/logging/sanitize.js'

export type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>

type Values<T extends OptionSpec> = {
  [K in keyof T]?: T[K] extends { multiple: true } ? string[] : T[K]['type'] extends 'string' ? string : boolean
}

/** The options every keyset-reading command takes (see `keyset-source.ts`). */
export const KEYSET_OPTIONS = {
  'keyset-file': { type: 'string' },
  backend: { type: 'string' },
  /** Allows a keyset with private keys to be written to a terminal (`-` on a TTY). */
  'print-private-key': { type: 'boolean' },
} as const satisfies OptionSpec

export const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const satisfies OptionSpec

/**
 * `node:util` parseArgs, strict, with its errors turned into one-line `UsageError`s that
 * name the option and point at the command's help.
 */
export function parseCommandArgs<T extends OptionSpec>(
  command: string,
  args: string[],
  options: T,
  positionals: { max: number; what?: string } = { max: 0 },
): { values: Values<T>; positionals: string[] } {
  let parsed: { values: Record<string, unknown>; positionals: string[]; tokens: Array<{ kind: string; name?: string }> }
  try {
    parsed = parseArgs({ args, options: { ...options, ...HELP_OPTION }, strict: true, allowPositionals: true, tokens: true })
  } catch (err) {
    throw new UsageError(`${command}: ${describeParseError(err as NodeJS.ErrnoException)} (see cbc-jwt ${command} --help)`)
  }
  // parseArgs keeps the last of a one-value option given twice: the first would be dropped unseen.
  const given = new Set<string>()
  for (const token of parsed.tokens) {
    if (token.kind !== 'option' || token.name === undefined) continue
    const spec = options[token.name]
    if (spec?.type !== 'string' || spec.multiple === true) continue
    if (given.has(token.name)) {
      throw new UsageError(`${command}: option --${token.name} given more than once: it takes one value (see cbc-jwt ${command} --help)`)
    }
    given.add(token.name)
  }
  if (parsed.positionals.length > positionals.max) {
    const extra = parsed.positionals[positionals.max]!
    const expected = positionals.max === 0 ? 'no arguments' : `at most ${positionals.what ?? `${positionals.max} argument(s)`}`
    throw new UsageError(`${command}: ${unexpectedArgument(extra)}; it takes ${expected} (see cbc-jwt ${command} --help)`)
  }
  return { values: parsed.values as Values<T>, positionals: parsed.positionals }
}

/** Three base64url segments: a compact JWS, whatever it claims. */
const COMPACT_TOKEN = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

/** A compact JWS: its header segment is a JSON object (`eyJ…`); a file name (`keyset.public.json`) is not. */
function isCompactToken(arg: string): boolean {
  return COMPACT_TOKEN.test(arg) && /^\s*\{/.test(Buffer.from(arg.slice(0, arg.indexOf('.')), 'base64url').toString('latin1'))
}

/** Whether any word of `arg` is a compact JWS (`eyJ…`, `Bearer eyJ…`). */
export function holdsToken(arg: string): boolean {
  return arg.split(/\s+/).some(isCompactToken)
}

/**
 * `unexpected argument "…"` for an error line: the argument escaped and bounded like any foreign
 * text, and never shown when it is a token (`token verify Bearer eyJ…`, a pasted Authorization
 * value, must not put the token on a terminal or in a CI log).
 */
export function unexpectedArgument(arg: string): string {
  return holdsToken(arg) ? 'unexpected argument: a token (not shown)' : `unexpected argument ${quotedArgument(arg)}`
}

/**
 * An argument or a flag's value for an error line (`--grace: "…" is not a duration`): quoted,
 * escaped and bounded like any foreign text, and `a token (not shown)` when it is one.
 */
export function quotedArgument(arg: string): string {
  return holdsToken(arg) ? 'a token (not shown)' : `"${printable(arg, { max: 200 })}"`
}

function describeParseError(err: NodeJS.ErrnoException): string {
  const name = /'(-[^' ]+)/.exec(err.message)?.[1] ?? 'an option'
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option ${name}`
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (/does not take an argument/.test(err.message)) return `option ${name} takes no value`
      // "ambiguous": what follows starts with "-" (a negative number, a client id "-svc", or the next option).
      return /ambiguous/.test(err.message) ? `option ${name} needs a value (one starting with "-" is given as ${name}=VALUE)` : `option ${name} needs a value`
    default:
      return err.message.split('\n')[0] ?? 'bad arguments'
  }
}

/** A duration flag (`--grace 24h`); `undefined` when absent. */
export function durationFlag(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const ms = parseDuration(value)
  if (ms === undefined) throw new UsageError(`--${flag}: ${quotedArgument(value)} is not a duration (use e.g. 90s, 15m, 24h, 6d)`)
  if (ms > MAX_DURATION_MS) throw new UsageError(`--${flag}: ${value} is longer than 100 years`)
  return ms
}

/** `--alg`; `undefined` when absent. */
export function algFlag(value: string | undefined): Alg | undefined {
  if (value === undefined) return undefined
  if (!isAlg(value)) throw new UsageError(`--alg: unknown algorithm ${quotedArgument(value)} (one of ${ALGORITHMS.join(', ')})`)
  return value
}

/** Refuses flags that mean nothing in the chosen mode, instead of silently ignoring them. */
export function rejectFlags(values: Record<string, unknown>, flags: readonly string[], mode: string): void {
  for (const f of flags) if (values[f] !== undefined) throw new UsageError(`--${f} has no effect with ${mode}`)
}
