/**
 * One clear line for a failure to listen, instead of a stack trace: the operator's fix is a
 * different PORT or HOST, or stopping whatever holds the port. Undefined for other errors.
 */
export function listenErrorMessage(err: unknown, host: string, port: number): string | undefined {
  switch ((err as NodeJS.ErrnoException | undefined)?.code) {
    case 'EADDRINUSE':
      return `cannot listen on ${host}:${port}: the address is already in use (another process listens there); set PORT or stop it`
    case 'EACCES':
      return `cannot listen on ${host}:${port}: permission denied (ports below 1024 need privileges); set PORT`
    case 'EADDRNOTAVAIL':
      return `cannot listen on ${host}:${port}: HOST "${host}" is not an address of this machine; set HOST`
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
      return `cannot listen on ${host}:${port}: HOST "${host}" does not resolve; set HOST`
    default:
      return undefined
  }
}
