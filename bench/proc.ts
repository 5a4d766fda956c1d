import fs from 'node:fs'

/** USER_HZ: /proc/<pid>/stat counts CPU in 1/100 s. */
export const TICKS = 100

/** CPU ticks (user + system) of every thread of a process so far. */
export function cpuTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return Number(fields[11]) + Number(fields[12])
}
