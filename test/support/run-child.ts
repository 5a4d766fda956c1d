import { spawn } from 'node:child_process'

export interface ChildResult {
  code: number | null
  stdout: string
  stderr: string
}

export interface RunChildOptions {
  /** The whole environment of the child: nothing is inherited that is not here. */
  env: Record<string, string>
  cwd?: string
  /** Written to stdin, which is then closed (closed at once when absent). */
  input?: string
  /** Killed (SIGKILL) and the promise rejected after this long. */
  timeoutMs: number
  /** Names the child in the timeout error. */
  what: string
  /** Run as this user (and its group): only possible when the test runs as root. */
  uid?: number
}

/** Runs a process to its end and collects its output: the one way tests run a CLI, a server or a shell script to completion. */
export function runChild(command: string, args: readonly string[], opts: RunChildOptions): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: opts.env,
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
      ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.uid } : {}),
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d))
    child.stderr.on('data', (d: Buffer) => (stderr += d))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${opts.what} did not finish in ${opts.timeoutMs / 1000} s; stdout: ${stdout}\nstderr: ${stderr}`))
    }, opts.timeoutMs)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
    child.stdin.on('error', () => {}) // the child may exit before reading stdin
    child.stdin.end(opts.input ?? '')
  })
}
