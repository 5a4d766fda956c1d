import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { waitFor } from './wait.js'
import { stopChild } from './stop-child.js'

export const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => fs.existsSync(p))

/**
 * The headers-more module (`more_clear_input_headers`), which the documented gateway block
 * needs to remove every client-sent `X-Auth-*` header: Debian's libnginx-mod-http-headers-more-filter.
 */
export const HEADERS_MORE_MODULE = [
  '/usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so',
  '/usr/share/nginx/modules/ngx_http_headers_more_filter_module.so',
].find((p) => fs.existsSync(p))

export interface RunningNginx {
  process: ChildProcess
  output(): string
  stop(): Promise<void>
}

/**
 * A real nginx as a non-daemon child: one process (no master, so no user switch when run as
 * root), every path in `dir`, `serverBlock` included in its `http {}`, the headers-more module
 * loaded. Resolves once `port` accepts connections.
 */
export async function startNginx(dir: string, serverBlock: string, port: number, opts: { workerConnections?: number } = {}): Promise<RunningNginx> {
  if (!NGINX) throw new Error('nginx is not installed (apt-get install nginx; .ci/run does)')
  if (!HEADERS_MORE_MODULE)
    throw new Error('the nginx headers-more module is not installed (apt-get install libnginx-mod-http-headers-more-filter; .ci/run does)')
  const tmp = path.join(dir, 'tmp')
  fs.mkdirSync(tmp, { recursive: true })
  fs.writeFileSync(path.join(dir, 'server.conf'), serverBlock)
  const conf = path.join(dir, 'nginx.conf')
  fs.writeFileSync(
    conf,
    `load_module ${HEADERS_MORE_MODULE};
daemon off;
master_process off;
worker_processes 1;
error_log ${path.join(dir, 'error.log')} warn;
pid ${path.join(dir, 'nginx.pid')};
events { worker_connections ${opts.workerConnections ?? 64}; }
http {
  access_log off;
  client_body_temp_path ${tmp}/body;
  proxy_temp_path ${tmp}/proxy;
  fastcgi_temp_path ${tmp}/fastcgi;
  uwsgi_temp_path ${tmp}/uwsgi;
  scgi_temp_path ${tmp}/scgi;
  include ${path.join(dir, 'server.conf')};
}
`,
  )
  const child = spawn(NGINX, ['-p', dir, '-c', conf, '-e', path.join(dir, 'error.log')], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => (out += d))
  child.stderr!.on('data', (d: Buffer) => (out += d))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const errorLog = () => {
    try {
      return fs.readFileSync(path.join(dir, 'error.log'), 'utf8')
    } catch {
      return ''
    }
  }
  const running: RunningNginx = {
    process: child,
    output: () => `${out}${errorLog()}`,
    async stop() {
      await stopChild(child, exited)
    },
  }
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}: ${running.output()}`)
        await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) })
        return true
      },
      { timeoutMs: 15_000, intervalMs: 100, what: 'nginx to listen' },
    )
  } catch (err) {
    await running.stop()
    throw err
  }
  return running
}
