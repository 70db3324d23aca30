import { clusterNameFrom, hostPort } from '../accounting/clusters.js';
import { Option, type Command } from 'commander';
import type { CaptureOptions } from '../sources/nomad/capture.js';
import { DEFAULT_META_KEYS } from '../sources/nomad/map.js';
import { resolveNomadSettings, type NomadSettings } from '../sources/nomad/settings.js';
import type { SettingsProblem } from '../sources/http.js';
import type { CliIO } from './io.js';
import { KUBERNETES_PER_PAGE } from './kubernetes.js';
import { captureCluster, collect, sourceInCluster, EXCLUDE_NAMESPACE, NAMESPACE, type Settings, type SharedOption } from './options.js';

/**
 * Options of the commands that talk to a Nomad API server (`snapshot`, `watch`), declared
 * once so they mean the same everywhere, and what they resolve to.
 */

/** A Nomad setting passed on as given; unset, the NOMAD_* variable or the client's default applies. */
function nomadSetting(flag: string, arg: string, help: string): SharedOption<string | undefined> {
  return { name: flag, option: () => new Option(`--${flag} <${arg}>`, help), read: (s) => s.string(flag) };
}

export const ADDRESS = nomadSetting('address', 'url', 'Nomad HTTP API address (NOMAD_ADDR; default http://127.0.0.1:4646)');
export const TOKEN_FILE = nomadSetting('token-file', 'file', 'file holding the ACL token (otherwise NOMAD_TOKEN)');
export const REGION = nomadSetting('region', 'region', 'Nomad region (NOMAD_REGION)');
export const CA_CERT = nomadSetting('ca-cert', 'file', 'CA certificate (NOMAD_CACERT)');
export const CA_PATH = nomadSetting('ca-path', 'dir', 'folder of CA certificates (NOMAD_CAPATH)');
export const CLIENT_CERT = nomadSetting('client-cert', 'file', 'client certificate for mutual TLS (NOMAD_CLIENT_CERT)');
export const CLIENT_KEY = nomadSetting('client-key', 'file', 'client key for mutual TLS (NOMAD_CLIENT_KEY)');
export const TLS_SERVER_NAME = nomadSetting('tls-server-name', 'name', 'server name to verify (NOMAD_TLS_SERVER_NAME)');

/** --tls-skip-verify; undefined leaves it to NOMAD_SKIP_VERIFY. */
export const TLS_SKIP_VERIFY: SharedOption<boolean | undefined> = {
  name: 'tls-skip-verify',
  option: () => new Option('--tls-skip-verify', 'do not verify the server certificate (NOMAD_SKIP_VERIFY)'),
  read: (s) => (s.has('tls-skip-verify') ? s.flag('tls-skip-verify') : undefined),
};

export const JOB_PREFIX: SharedOption<string[]> = {
  name: 'job-prefix',
  option: () => new Option('--job-prefix <prefix>', 'keep only jobs whose name starts with this (repeatable; default: keep all)').argParser(collect),
  read: (s) => s.list('job-prefix'),
};

const DEFAULT_MAIN_TASK = 'main';

export const MAIN_TASK: SharedOption<string> = {
  name: 'main-task',
  option: () => new Option('--main-task <name>', `task whose start and end are the allocation's (default: ${DEFAULT_MAIN_TASK}, else the earliest task)`),
  read: (s) => s.string('main-task', DEFAULT_MAIN_TASK),
};

/** A job meta key to read an owner's field from. */
function metaKey(flag: string, what: string, fallback: string): SharedOption<string> {
  return { name: flag, option: () => new Option(`--${flag} <key>`, `job meta key of ${what} (default: ${fallback})`), read: (s) => s.string(flag, fallback) };
}

export const META_USER = metaKey('meta-user', 'the owner', DEFAULT_META_KEYS.user);
export const META_USER_NAME = metaKey('meta-user-name', "the owner's name", DEFAULT_META_KEYS.userName);
export const META_USER_EMAIL = metaKey('meta-user-email', "the owner's e-mail", DEFAULT_META_KEYS.userEmail);
export const META_GROUP = metaKey('meta-group', 'the group', DEFAULT_META_KEYS.group);
export const META_COMPONENT = metaKey('meta-component', 'the component', DEFAULT_META_KEYS.component);

const META_MODES = ['auto', 'list', 'per-job'] as const;

export const META_MODE: SharedOption<(typeof META_MODES)[number]> = {
  name: 'meta-mode',
  option: () => new Option('--meta-mode <mode>', `auto (detect servers before 1.5), list (meta=true) or per-job (default: ${META_MODES[0]})`),
  read: (s) => s.choice('meta-mode', META_MODES, META_MODES[0]),
};

export const NOMAD_PER_PAGE = 1000;

/** --per-page of a Nomad capture; a Kubernetes one reads it as PODS_PER_PAGE. */
export const PER_PAGE: SharedOption<number> = {
  name: 'per-page',
  option: () => new Option('--per-page <n>', `items per API page (default: ${NOMAD_PER_PAGE} for Nomad, ${KUBERNETES_PER_PAGE} for Kubernetes)`),
  read: (s) => s.positiveInt('per-page', NOMAD_PER_PAGE),
};


/** Options only the Nomad source reads. */
export const NOMAD_OPTIONS: readonly SharedOption<unknown>[] = [
  ADDRESS, TOKEN_FILE, REGION, JOB_PREFIX, MAIN_TASK, META_USER, META_USER_NAME, META_USER_EMAIL, META_GROUP,
  META_COMPONENT, META_MODE, CA_CERT, CA_PATH, CLIENT_CERT, CLIENT_KEY, TLS_SERVER_NAME, TLS_SKIP_VERIFY,
];

/** Adds the connection, scope and attribution options of a Nomad capture (all but --per-page). */
export function addNomadOptions(cmd: Command): Command {
  for (const o of [ADDRESS, TOKEN_FILE, REGION]) cmd.addOption(o.option());
  cmd.addOption(NAMESPACE.option('capture only this namespace (repeatable; default: every readable namespace)')).addOption(EXCLUDE_NAMESPACE.option());
  for (const o of [JOB_PREFIX, MAIN_TASK, META_USER, META_USER_NAME, META_USER_EMAIL, META_GROUP, META_COMPONENT, META_MODE]) cmd.addOption(o.option());
  return cmd;
}

/** Adds the TLS options of a Nomad connection. */
export function addNomadTlsOptions(cmd: Command): Command {
  for (const o of [CA_CERT, CA_PATH, CLIENT_CERT, CLIENT_KEY, TLS_SERVER_NAME, TLS_SKIP_VERIFY]) cmd.addOption(o.option());
  return cmd;
}

/** The connection settings: flags, then NOMAD_* variables, then the config file, then defaults. */
export function nomadSettings(s: Settings, io: CliIO): NomadSettings {
  return resolveNomadSettings(
    {
      address: s.get(ADDRESS),
      addressFrom: s.sourceOf(ADDRESS),
      tokenFile: s.get(TOKEN_FILE),
      region: s.get(REGION),
      caCert: s.get(CA_CERT),
      caPath: s.get(CA_PATH),
      clientCert: s.get(CLIENT_CERT),
      clientKey: s.get(CLIENT_KEY),
      tlsServerName: s.get(TLS_SERVER_NAME),
      tlsSkipVerify: s.get(TLS_SKIP_VERIFY),
    },
    io.env,
  );
}

/** What a capture lists and how it attributes, from the options (the clock is the caller's). */
export function nomadCaptureOptions(s: Settings, settings: NomadSettings, now: () => Date): CaptureOptions {
  return {
    namespaces: s.get(NAMESPACE).length > 0 ? s.get(NAMESPACE) : null,
    excludeNamespaces: s.get(EXCLUDE_NAMESPACE),
    jobPrefixes: s.get(JOB_PREFIX),
    perPage: s.get(PER_PAGE),
    metaMode: s.get(META_MODE),
    metaConcurrency: 8,
    mapping: {
      mainTask: s.get(MAIN_TASK),
      meta: {
        user: s.get(META_USER),
        userName: s.get(META_USER_NAME),
        userEmail: s.get(META_USER_EMAIL),
        group: s.get(META_GROUP),
        component: s.get(META_COMPONENT),
      },
    },
    now,
    source: sourceInCluster({ kind: 'nomad' as const, address: settings.address, region: settings.region }, nomadCluster(s, settings).cluster),
  };
}

/** The cluster a Nomad capture names: --cluster, else the region and the server's host and port. */
export function nomadCluster(s: Settings, settings: NomadSettings): { cluster: string; folder: string } {
  return captureCluster(s, clusterNameFrom([settings.region, hostPort(settings.address)]));
}

/** How to fix the failures whose cause is in the settings (a refused token, a wrong address, an unknown CA). */
export function nomadAdvice(settings: NomadSettings, problems: Iterable<SettingsProblem>): string[] {
  return [...problems].map((p) =>
    p === 'refused-credentials'
      ? settings.token === null
        ? 'no ACL token was given: set NOMAD_TOKEN or give --token-file'
        : 'the ACL token (NOMAD_TOKEN or --token-file) was refused: its policy must grant the namespace capabilities list-jobs and read-job on every namespace to capture (e.g. namespace "*" { policy = "read" })'
      : p === 'unreachable'
        ? `nothing answered at ${settings.address}: check NOMAD_ADDR or --address`
        : "the server's certificate could not be verified: give the CA that signed it with NOMAD_CACERT or --ca-cert",
  );
}
