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

/** An EC P-256 key made with the certificate, unencrypted. */
const NEW_EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] })
}

/**
 * Makes a throwaway CA and a server certificate with the real `openssl`: a server that presents
 * it is trusted only by a client told about this CA (never by Node's default store).
 */
export function makeTestTls(): TestTls {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-tls-'))
  const file = (name: string) => path.join(dir, name)
  openssl(
    'req',
    '-x509',
    ...NEW_EC_KEY,
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
  openssl('req', ...NEW_EC_KEY, '-subj', '/CN=127.0.0.1', '-keyout', file('server.key'), '-out', file('server.csr'))
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

/**
 * A client certificate (`extendedKeyUsage=clientAuth`, CN `name`) signed by the CA of `by`, for
 * a server that asks for one (mutual TLS); made with the real `openssl` in `by.dir`.
 */
export function makeClientCert(by: TestTls, name: string): { cert: string; key: string } {
  const file = (f: string) => path.join(by.dir, `${name}.${f}`)
  fs.writeFileSync(file('ext'), 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n')
  openssl('req', ...NEW_EC_KEY, '-subj', `/CN=${name}`, '-keyout', file('key'), '-out', file('csr'))
  openssl(
    'x509',
    '-req',
    '-in',
    file('csr'),
    '-CA',
    by.caFile,
    '-CAkey',
    path.join(by.dir, 'ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    file('ext'),
    '-out',
    file('pem'),
  )
  return { cert: fs.readFileSync(file('pem'), 'utf8'), key: fs.readFileSync(file('key'), 'utf8') }
}

/**
 * A throwaway self-signed certificate for 127.0.0.1/localhost, made with `openssl`, in a temp
 * directory: trusted by a client only when given as its CA. Undefined when `openssl` is not
 * installed (callers skip their TLS cases); any other failure of `openssl` throws.
 */
export function selfSignedCert(): { cert: string; key: string; certFile: string; dir: string } | undefined {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-self-signed-'))
  const keyFile = path.join(dir, 'key.pem')
  const certFile = path.join(dir, 'cert.pem')
  try {
    openssl(
      'req',
      '-x509',
      ...NEW_EC_KEY,
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    )
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true })
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  return { cert: fs.readFileSync(certFile, 'utf8'), key: fs.readFileSync(keyFile, 'utf8'), certFile, dir }
}
