import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../../util/errors.js';
import { hasUserInfo } from '../http.js';

/**
 * Connection settings, read as the `nomad` CLI reads them: a flag beats the environment,
 * which beats the config file, which beats the default. The token is never printed.
 */

export interface NomadSettings {
  address: string;
  token: string | null;
  region: string | null;
  tls: {
    ca: string[] | null;
    cert: string | null;
    key: string | null;
    serverName: string | null;
    skipVerify: boolean;
  };
}

export interface NomadSettingInputs {
  /** Values already resolved from flags and config (undefined when not given). */
  address?: string;
  /** Where `address` came from, for messages (default --address). */
  addressFrom?: string;
  tokenFile?: string;
  region?: string;
  caCert?: string;
  caPath?: string;
  clientCert?: string;
  clientKey?: string;
  tlsServerName?: string;
  tlsSkipVerify?: boolean;
}

function readPem(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? 'unreadable'}; give a readable PEM file`);
  }
}

/** Go's strconv.ParseBool, as the Nomad client reads NOMAD_SKIP_VERIFY. */
export function parseBool(value: string, what: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False', ''].includes(value)) return false;
  throw new UsageError(`${what}=${JSON.stringify(value)} is not a boolean: use true or false`);
}

export function resolveNomadSettings(flags: NomadSettingInputs, env: NodeJS.ProcessEnv): NomadSettings {
  const address = (flags.address ?? env.NOMAD_ADDR ?? 'http://127.0.0.1:4646').replace(/\/+$/, '');
  const addressFrom = flags.address !== undefined ? (flags.addressFrom ?? '--address') : 'NOMAD_ADDR';
  // Checked before anything quotes the address: it would carry the password into messages and every snapshot.
  if (hasUserInfo(address)) {
    throw new UsageError(`${addressFrom} holds a user name or password (user:pass@host); remove it and give an ACL token instead (NOMAD_TOKEN or --token-file)`);
  }
  if (!/^https?:\/\/[^/]+$/.test(address)) {
    throw new UsageError(`--address ${JSON.stringify(address)} is not an HTTP address: use e.g. http://127.0.0.1:4646 or https://nomad.example.org:4646`);
  }
  let token: string | null = null;
  if (flags.tokenFile !== undefined) {
    try {
      token = readFileSync(flags.tokenFile, 'utf8').trim();
    } catch (e) {
      throw new UsageError(`--token-file ${flags.tokenFile}: ${(e as NodeJS.ErrnoException).code ?? 'unreadable'}; give a readable file holding the ACL token's secret ID`);
    }
    if (token === '') throw new UsageError(`--token-file ${flags.tokenFile} is empty; put the ACL token's secret ID in it`);
  } else if (env.NOMAD_TOKEN) {
    token = env.NOMAD_TOKEN.trim();
  }
  let ca: string[] | null = null;
  const caCert = flags.caCert ?? env.NOMAD_CACERT;
  const caPath = flags.caPath ?? env.NOMAD_CAPATH;
  if (caCert) ca = [readPem(caCert, 'CA certificate')];
  else if (caPath) {
    // NOMAD_CAPATH: every PEM file in the folder (NOMAD_CACERT wins when both are set).
    let names: string[];
    try {
      names = readdirSync(caPath).filter((n) => statSync(join(caPath, n)).isFile());
    } catch {
      throw new UsageError(`CA path ${caPath} is not a readable folder`);
    }
    ca = names.sort().map((n) => readPem(join(caPath, n), 'CA certificate'));
  }
  const certPath = flags.clientCert ?? env.NOMAD_CLIENT_CERT;
  const keyPath = flags.clientKey ?? env.NOMAD_CLIENT_KEY;
  if ((certPath && !keyPath) || (!certPath && keyPath)) {
    throw new UsageError('a client certificate needs its key: set both NOMAD_CLIENT_CERT and NOMAD_CLIENT_KEY (or --client-cert and --client-key)');
  }
  const skip = flags.tlsSkipVerify ?? (env.NOMAD_SKIP_VERIFY !== undefined ? parseBool(env.NOMAD_SKIP_VERIFY, 'NOMAD_SKIP_VERIFY') : false);
  return {
    address,
    token,
    region: flags.region ?? env.NOMAD_REGION ?? null,
    tls: {
      ca,
      cert: certPath ? readPem(certPath, 'client certificate') : null,
      key: keyPath ? readPem(keyPath, 'client key') : null,
      serverName: flags.tlsServerName ?? env.NOMAD_TLS_SERVER_NAME ?? null,
      skipVerify: skip,
    },
  };
}
