import type { ChildProcess } from 'node:child_process'

/** SIGTERM, then SIGKILL after `graceMs`; resolves once `exited` (the child's exit) has. */
export async function stopChild(child: ChildProcess, exited: Promise<unknown>, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await exited
  clearTimeout(timer)
}
