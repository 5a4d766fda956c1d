import fs from 'node:fs'
import type { KeysetBackend, KeysetSnapshot } from '../../lib/backends/backend.js'
import { createFileBackend } from '../../lib/backends/file-backend.js'
import { writeTarget } from '../../lib/backends/write-file-atomic.js'
import { printable } from '../../lib/logging/sanitize.js'
import { chooseBackend, isKubernetesBackend, type BackendChoice } from '../../lib/backends/choose.js'
import { kubernetesOptionsFromEnv } from '../../lib/backends/kubernetes/index.js'
import { vaultOptionsFromEnv } from '../../lib/backends/vault/index.js'
import { BackendError, RefusedError, UsageError } from '../../lib/errors.js'
import { MAX_KEYSET_BYTES } from '../../lib/keyset/document.js'
import { loadKeyset, parseKeysetText, type LoadedKeyset } from '../../lib/keyset/load.js'
import { locate } from '../rotation/update-keyset.js'
import { devKeysetFile } from '../../lib/backends/dev-keyset.js'
import { holdsSecretKeys } from '../projection/publish.js'
import { fileProjection, kubernetesProjectedFrom, kubernetesProjections, publicKeysetPath, vaultProjectedFrom, vaultProjection } from '../projection/targets.js'
import { withLastGoodCopy } from '../last-good/copy.js'
import { fileLastGood, kubernetesLastGood, vaultLastGood } from '../last-good/targets.js'
import { quotedArgument } from './args.js'
import { println, type CliContext } from './context.js'
import { serviceSettings } from './settings.js'

const BACKENDS = ['file', 'vault', 'kubernetes'] as const

/** Where a command reads (and writes) the keyset document. */
export interface KeysetSource {
  /** The keyset; except for `-`, every write also keeps its last good copy apart (`withLastGoodCopy`). */
  backend: KeysetBackend
  /** True when the document is written to stdout (`-`): reports then go to stderr. */
  streamsDocument: boolean
  /**
   * Where every write also publishes the verification projection (the keyset without private
   * keys, for verifiers): the sibling `.public.json` file, the Vault path `…-public`, the
   * Secret `cbc-jwt-verification` in each namespace of `CBC_JWT_KUBERNETES_PUBLIC_NAMESPACES`.
   * Empty for `-` (a pipeline carries one document). Made on first call, so read-only
   * commands never touch them.
   */
  projections: (() => KeysetBackend[]) & { made(): KeysetBackend[] }
  /** The keyset file, when the keyset is one (`--keyset-file`, or the configured file backend). */
  file?: string | undefined
  /**
   * Vault: the private keyset whose projection this path is (`cbc/jwt-keyset` for
   * `cbc/jwt-keyset-public`), when it holds private keys; Kubernetes: the private Secret, when
   * this one is labelled a verification projection; undefined otherwise. One read.
   */
  projectionOwner?: (() => Promise<string | undefined>) | undefined
}

export interface SourceFlags {
  'keyset-file'?: string | undefined
  backend?: string | undefined
  'print-private-key'?: boolean | undefined
}

/**
 * Private keys go to a pipe or a file, never to a terminal unless the flag that says so is given
 * — and never into a file others can read: `cbc-jwt keyset init > keyset.json` under umask 022
 * has the shell create it 0644 before cbc-jwt runs. Called before `text` is written to stdout.
 */
export function guardPrivateOutput(ctx: CliContext, flags: SourceFlags, text: string): void {
  if ((ctx.stdout as { isTTY?: boolean }).isTTY === true && flags['print-private-key'] !== true) {
    throw new UsageError(
      'refusing to print a keyset with private keys to the terminal: redirect stdout to a file or a pipe, write it with --keyset-file PATH or --backend, or add --print-private-key',
    )
  }
  if (holdsSecretKeys(text)) makeStdoutFilePrivate(ctx)
}

/**
 * When stdout is a regular file whose mode grants group or others any access, takes those bits
 * away (fchmod on the open descriptor, as `install -m 600` would; the owner keeps theirs) and says
 * so in one note on stderr. One cbc-jwt may not change (another user's, not root), or one that
 * already holds something (a log, `>>`): refused, nothing written. Pipes, FIFOs, terminals and
 * devices (`/dev/null`) are left as they are.
 */
function makeStdoutFilePrivate(ctx: CliContext): void {
  const fd = (ctx.stdout as { fd?: unknown }).fd
  if (typeof fd !== 'number') return
  let st: fs.Stats
  try {
    st = fs.fstatSync(fd)
  } catch {
    return
  }
  if (!st.isFile() || (st.mode & 0o077) === 0) return
  const was = `0${(st.mode & 0o777).toString(8)}`
  if (st.size > 0) {
    // Not a file the shell just made for this output: a parent's log that stdout inherits, or
    // `>>`. Others may hold it open already (a log shipper, `tail -f`), which no chmod takes
    // back, and its mode is its owner's concern.
    throw new RefusedError(
      `refusing to write private keys to stdout: it is a file that already holds ${st.size} bytes others could read (${st.uid}:${st.gid} ${was}); nothing was written: redirect to a new file (> FILE), or write it with --keyset-file PATH (created 0600)`,
    )
  }
  const tight = st.mode & 0o7700
  try {
    fs.fchmodSync(fd, tight)
  } catch (err) {
    throw new RefusedError(
      `refusing to write private keys to stdout: it is a file others could read (${st.uid}:${st.gid} ${was}) that cbc-jwt cannot make 0${(tight & 0o777).toString(8)} (${(err as NodeJS.ErrnoException).code ?? 'fchmod failed'}); nothing was written: redirect to a file of your own, or write it with --keyset-file PATH (created 0600)`,
      { cause: err },
    )
  }
  // Both streams sent to one file (`> FILE 2>&1`): a note there would precede the keys and leave
  // a file that is no keyset.
  if (sameFile(st, (ctx.stderr as { fd?: unknown }).fd)) return
  println(ctx.stderr, `cbc-jwt: note: stdout is a file others could read (${was}); made it 0${(tight & 0o777).toString(8)}: it holds private keys`)
}

/** Whether descriptor `fd` is open on the file `st` describes. */
function sameFile(st: fs.Stats, fd: unknown): boolean {
  if (typeof fd !== 'number') return false
  try {
    const other = fs.fstatSync(fd)
    return other.dev === st.dev && other.ino === st.ino
  } catch {
    return false
  }
}

/**
 * The one place that decides where the keyset lives, for every command:
 *
 * 1. `-` (as the argument or as `--keyset-file -`): read stdin, write stdout;
 * 2. `--keyset-file PATH`: that file (atomic writes, mode kept, new files 0600);
 * 3. the configured backend, as the service finds it: `--backend` > `CBC_JWT_BACKEND` >
 *    `file`; for `file`, `CBC_JWT_KEYSET_FILE`, else the development keyset of the current
 *    folder if it exists (never generated here); for `vault`, the Vault variables (`vaultOptionsFromEnv`); for
 *    `kubernetes`, the Secret through the API server (`kubernetesOptionsFromEnv`).
 */
export function openKeysetSource(ctx: CliContext, flags: SourceFlags, positionals: readonly string[] = []): KeysetSource {
  const dash = positionals.includes('-') || flags['keyset-file'] === '-'
  const file = flags['keyset-file']
  if (flags.backend !== undefined && !(BACKENDS as readonly string[]).includes(flags.backend)) {
    throw new UsageError(`--backend must be one of ${BACKENDS.join(', ')} (got ${quotedArgument(flags.backend)})`)
  }
  if ((dash || file !== undefined) && flags.backend !== undefined && flags.backend !== 'file') {
    throw new UsageError(`--backend ${flags.backend} cannot be combined with --keyset-file or -`)
  }
  if (dash && file !== undefined && file !== '-') throw new UsageError('give either - or --keyset-file PATH, not both')
  if (dash) return { backend: stdioBackend(ctx, flags), streamsDocument: true, projections: once(() => []) }
  if (file !== undefined) {
    if (file === '') throw new UsageError('--keyset-file needs a path')
    const env = projectionEnvFor(ctx, file)
    return {
      backend: withLastGoodCopy(createFileBackend(file), fileLastGood(file, env), () => ctx.now()),
      streamsDocument: false,
      projections: once(() => [fileProjection(file, env)]),
      file,
    }
  }
  // `kubernetes` is read here rather than by the service's parser, which the CLI gives only the
  // variables it uses (serviceSettings).
  const choice: BackendChoice =
    (flags.backend ?? ctx.env.CBC_JWT_BACKEND) === 'kubernetes'
      ? { backend: 'kubernetes', keysetFile: undefined }
      : serviceSettings(flags.backend === undefined ? ctx.env : { ...ctx.env, CBC_JWT_BACKEND: flags.backend })
  const logger = {
    // A retry in progress is not news on a terminal: a failure that lasts ends in its one error
    // line, a success in none. The service logs every attempt; the CLI's warnings are the rest.
    warn: (obj: object, msg?: string) => {
      if (!('retry_in_ms' in obj)) println(ctx.stderr, `cbc-jwt: warning: ${msg ?? 'vault'}`)
    },
    info: () => {},
  }
  // A configured keyset file takes CBC_JWT_PUBLIC_KEYSET_FILE; the development keyset, its sibling.
  let keysetFile = choice.backend === 'file' ? choice.keysetFile : undefined
  let fileProjectionOf = () => fileProjection(choice.keysetFile!, ctx.env)
  let fileLastGoodOf = () => fileLastGood(choice.keysetFile!, ctx.env)
  const backend = chooseBackend(choice, {
    env: ctx.env,
    logger,
    // The CLI never generates a keyset on its own: the development one only if it exists.
    whenNothingConfigured: () => {
      const devFile = devKeysetFile()
      if (!fs.existsSync(devFile)) {
        throw new UsageError('no keyset given: use --keyset-file PATH, - for stdin/stdout, or set CBC_JWT_KEYSET_FILE (or CBC_JWT_BACKEND=vault or kubernetes)')
      }
      println(ctx.stderr, `cbc-jwt: no keyset configured; using the development keyset ${devFile}`)
      keysetFile = devFile
      fileProjectionOf = () => fileProjection(devFile, undefined)
      fileLastGoodOf = () => fileLastGood(devFile, undefined)
      return createFileBackend(devFile)
    },
  })
  const projections = (): KeysetBackend[] => {
    if (choice.backend === 'vault') return [vaultProjection(vaultOptionsFromEnv(ctx.env), ctx.env, { logger })]
    if (choice.backend === 'kubernetes') return kubernetesProjections(kubernetesOptionsFromEnv(ctx.env), ctx.env)
    return [fileProjectionOf()]
  }
  // The last good copy's place is checked now (a bad setting fails before anything is written).
  const lastGood =
    choice.backend === 'vault'
      ? vaultLastGood(vaultOptionsFromEnv(ctx.env), ctx.env, { logger })
      : choice.backend === 'kubernetes'
        ? kubernetesLastGood(kubernetesOptionsFromEnv(ctx.env), ctx.env)
        : fileLastGoodOf()
  const projectionOwner =
    choice.backend === 'vault'
      ? () => vaultProjectedFrom(vaultOptionsFromEnv(ctx.env), { logger })
      : isKubernetesBackend(backend)
        ? () => kubernetesProjectedFrom(backend)
        : undefined
  return {
    backend: withLastGoodCopy(backend, lastGood, () => ctx.now()),
    streamsDocument: false,
    projections: once(projections),
    file: keysetFile,
    projectionOwner,
  }
}

/**
 * The environment that places `--keyset-file`'s projection: `CBC_JWT_PUBLIC_KEYSET_FILE` is where
 * the verifiers read the projection of the configured keyset, so it is this file's when no keyset
 * is configured or the configured one is this file. Beside another configured keyset it belongs
 * to that one — a scratch keyset must not overwrite the live projection — and this file's
 * projection goes beside it, with a line that says so.
 */
function projectionEnvFor(ctx: CliContext, file: string): NodeJS.ProcessEnv | undefined {
  const publicFile = ctx.env.CBC_JWT_PUBLIC_KEYSET_FILE
  // The file is that projection itself: a verification keyset, which has no projection of its own.
  if (publicFile === undefined || writeTarget(publicFile) === writeTarget(file)) return undefined
  const configured = ctx.env.CBC_JWT_KEYSET_FILE
  if (!configured || writeTarget(configured) === writeTarget(file)) return ctx.env
  println(
    ctx.stderr,
    `cbc-jwt: note: CBC_JWT_PUBLIC_KEYSET_FILE is the projection of CBC_JWT_KEYSET_FILE ${printable(configured)}, not of ${printable(file)}: its projection goes to ${printable(publicKeysetPath(file))}`,
  )
  return undefined
}

/**
 * Reads and validates the keyset of a read-only command, then closes the backend. Throws
 * `KeysetInvalidError` (with the location in its message) when it does not validate.
 */
export async function readKeyset(source: KeysetSource, now: number): Promise<{ text: string; keyset: LoadedKeyset }> {
  let text: string
  try {
    text = (await source.backend.read()).text
  } finally {
    await source.backend.close()
  }
  return { text, keyset: locate(source.backend.location, () => loadKeyset(parseKeysetText(text), now)) }
}

/**
 * The keyset on stdin, the result on stdout. No check-and-set: a pipe has one writer. A
 * terminal never gets private key material unless `--print-private-key` asks for it, and a
 * file others can read never gets it at all (`guardPrivateOutput`).
 */
function stdioBackend(ctx: CliContext, flags: SourceFlags): KeysetBackend {
  let input: Promise<string> | undefined
  return {
    kind: 'stdio',
    location: 'stdin',
    read(): Promise<KeysetSnapshot> {
      input ??= readStdin(ctx)
      return input.then((text) => ({ text, version: 'stdin' }))
    },
    async write(text) {
      guardPrivateOutput(ctx, flags, text)
      ctx.stdout.write(text)
      return { text, version: 'stdout' }
    },
    async close() {},
  }
}

async function readStdin(ctx: CliContext): Promise<string> {
  if (ctx.stdin.isTTY) println(ctx.stderr, 'cbc-jwt: reading the keyset from stdin (end with Ctrl-D)')
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of ctx.stdin) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer)
    size += buf.length
    if (size > MAX_KEYSET_BYTES) throw new BackendError('invalid_keyset', `stdin: the keyset is larger than ${MAX_KEYSET_BYTES} bytes`)
    chunks.push(buf)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  if (text.trim() === '') throw new BackendError('not_found', 'stdin is empty: expected a keyset document')
  return text
}

function once(make: () => KeysetBackend[]): KeysetSource['projections'] {
  let made: KeysetBackend[] | undefined
  return Object.assign(() => (made ??= make()), { made: () => made ?? [] })
}

/** Closes the backend and every projection target that was made. */
export async function closeSource(source: KeysetSource): Promise<void> {
  await source.backend.close()
  await Promise.all(source.projections.made().map((p) => p.close()))
}
