import type { LOG_LEVELS } from '../config.js'

/**
 * What cbc-jwt writes its log lines to. pino loggers (and so Fastify's `app.log`) fit as they
 * are; so does anything with these three methods.
 */
export interface CbcJwtLogger {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

type Level = (typeof LOG_LEVELS)[number]

/** pino's numeric levels, so the lines read the same whether pino wrote them or not. */
const LEVEL_VALUES: Record<Level, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity }

/**
 * The default logger of the library: one JSON line per event on stdout, in pino's shape
 * (`level`, `time`, `service`, fields, `msg`), so the service's tooling (`jq`, the runbook's
 * queries) reads an embedding API's lines as it reads the service's. No dependency: importing
 * cbc-jwt does not load pino.
 */
export function createJsonLogger(level: string = 'info', write: (line: string) => void = (line) => process.stdout.write(line)): CbcJwtLogger {
  const threshold = LEVEL_VALUES[level as Level] ?? LEVEL_VALUES.info
  const at = (value: number) => (obj: object, msg?: string) => {
    if (value < threshold) return
    write(`${JSON.stringify({ level: value, time: Date.now(), service: 'cbc-jwt', ...obj, ...(msg === undefined ? {} : { msg }) })}\n`)
  }
  return { info: at(30), warn: at(40), error: at(50) }
}

const SILENT: CbcJwtLogger = Object.freeze({ info() {}, warn() {}, error() {} })

/**
 * The logger an option names, checked when cbc-jwt is built rather than at the first line:
 * `false` is silence (pino's and Fastify's way to say it), `undefined` the default JSON
 * lines, and anything else must have `info`, `warn` and `error` functions — else a
 * `TypeError` naming the option.
 */
export function loggerFromOption(given: unknown, level: string | undefined): CbcJwtLogger {
  if (given === undefined) return createJsonLogger(level)
  if (given === false) return SILENT
  const candidate = given as Partial<Record<'info' | 'warn' | 'error', unknown>> | null
  const missing = (['info', 'warn', 'error'] as const).filter((m) => typeof candidate?.[m] !== 'function')
  if (typeof given !== 'object' || given === null || missing.length > 0) {
    throw new TypeError(
      `createCbcJwt({ logger }): logger must be false or an object with info, warn and error methods (a pino logger, Fastify's app.log); ${given === null || typeof given !== 'object' ? `got ${given === null ? 'null' : typeof given}` : `missing ${missing.join(', ')}`}`,
    )
  }
  return given as CbcJwtLogger
}
