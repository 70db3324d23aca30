/**
 * Throwaway certificates for HTTPS and mutual-TLS tests: a CA, a server certificate for
 * 127.0.0.1/localhost and a client certificate, both signed by the CA. Made with the
 * `openssl` command so no key material is ever checked in.
 */

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCertificates {
  caCert: string;
  serverKey: string;
  serverCert: string;
  clientKey: string;
  clientCert: string;
  paths: {
    caCert: string;
    caKey: string;
    serverKey: string;
    serverCert: string;
    clientKey: string;
    clientCert: string;
  };
}

/** Our own config, so the system openssl.cnf cannot add or clash with extensions. */
const REQ_CONFIG = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
`;

const SERVER_EXT = `basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost, DNS:server.global.nomad
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
`;

const CLIENT_EXT = `basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
`;

// P-256 keys are generated in milliseconds, unlike RSA.
const KEY_ARGS = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
const DAYS = '7';

async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args, { timeout: 30_000, maxBuffer: 1 << 20 });
  } catch (err) {
    const e = err as { stderr?: string; message?: string };
    throw new Error(`openssl ${args[0]} failed: ${(e.stderr ?? e.message ?? String(err)).trim()}`);
  }
}

async function signedCert(dir: string, name: string, cn: string, ext: string, config: string, ca: { cert: string; key: string }) {
  const key = join(dir, `${name}-key.pem`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.pem`);
  const extFile = join(dir, `${name}.ext`);
  await writeFile(extFile, ext);
  await openssl(['req', '-new', '-config', config, ...KEY_ARGS, '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`]);
  await openssl([
    'x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key,
    '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', DAYS, '-sha256', '-extfile', extFile, '-out', cert,
  ]);
  return { key, cert };
}

/** Creates the certificates in `dir` (created if missing) and returns their PEM text and paths. */
export async function makeTestCertificates(dir: string): Promise<TestCertificates> {
  await mkdir(dir, { recursive: true });
  const config = join(dir, 'openssl.cnf');
  await writeFile(config, REQ_CONFIG);
  const caKey = join(dir, 'ca-key.pem');
  const caCert = join(dir, 'ca.pem');
  await openssl([
    'req', '-x509', '-config', config, '-extensions', 'v3_ca', ...KEY_ARGS,
    '-keyout', caKey, '-out', caCert, '-days', DAYS, '-sha256', '-subj', '/CN=hourmeter test CA',
  ]);
  const ca = { cert: caCert, key: caKey };
  const server = await signedCert(dir, 'server', 'localhost', SERVER_EXT, config, ca);
  const client = await signedCert(dir, 'client', 'hourmeter-test-client', CLIENT_EXT, config, ca);
  const [caText, serverKey, serverCert, clientKey, clientCert] = await Promise.all(
    [caCert, server.key, server.cert, client.key, client.cert].map((p) => readFile(p, 'utf8')),
  );
  return {
    caCert: caText!,
    serverKey: serverKey!,
    serverCert: serverCert!,
    clientKey: clientKey!,
    clientCert: clientCert!,
    paths: { caCert, caKey, serverKey: server.key, serverCert: server.cert, clientKey: client.key, clientCert: client.cert },
  };
}

/**
 * Another server certificate from the CA in `certs`, for the names given (e.g. DNS:db.example.org)
 * and no others: a server that presents it to a client that asked for 127.0.0.1 has the wrong name.
 */
export async function makeServerCertificate(certs: TestCertificates, fileName: string, altNames: string[]): Promise<{ key: string; cert: string }> {
  const dir = dirname(certs.paths.caCert);
  const ext = SERVER_EXT.replace(/^subjectAltName = .*$/m, `subjectAltName = ${altNames.join(', ')}`);
  const cn = altNames[0]!.replace(/^[A-Z]+:/, '');
  return signedCert(dir, fileName, cn, ext, join(dir, 'openssl.cnf'), { cert: certs.paths.caCert, key: certs.paths.caKey });
}
