import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

/** A private certificate authority and a loopback server certificate it signed, as PEM files. */
export interface TestTls {
  dir: string
  /** The CA certificate: what `NODE_EXTRA_CA_CERTS` names. */
  caFile: string
  ca: string
  /** Server certificate for `127.0.0.1` and `localhost`, signed by the CA. */
  cert: string
  key: string
}

/**
 * Makes a throwaway CA and a server certificate with the real `openssl`: a server that presents
 * it is trusted only by a client told about this CA (never by Node's default store).
 */
export function makeTestTls(): TestTls {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-tls-'))
  const file = (name: string) => path.join(dir, name)
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] })
  openssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=cbc-jwt test CA',
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.pem'),
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  )
  openssl(
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-subj',
    '/CN=127.0.0.1',
    '-keyout',
    file('server.key'),
    '-out',
    file('server.csr'),
  )
  fs.writeFileSync(file('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n')
  openssl(
    'x509',
    '-req',
    '-in',
    file('server.csr'),
    '-CA',
    file('ca.pem'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    file('server.ext'),
    '-out',
    file('server.pem'),
  )
  return {
    dir,
    caFile: file('ca.pem'),
    ca: fs.readFileSync(file('ca.pem'), 'utf8'),
    cert: fs.readFileSync(file('server.pem'), 'utf8'),
    key: fs.readFileSync(file('server.key'), 'utf8'),
  }
}
