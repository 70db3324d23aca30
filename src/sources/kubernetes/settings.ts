import { accessSync, constants, existsSync } from 'node:fs';
import type { RequestOptions } from 'node:https';
import { isIPv6 } from 'node:net';
import { delimiter, join } from 'node:path';
import type { Cluster, Context, KubeConfig, User } from '@kubernetes/client-node';
import { DataError, UsageError } from '../../util/errors.js';
import { hasUserInfo, type TlsOptions } from '../http.js';

/**
 * Where the Kubernetes API is and how to authenticate, found as kubectl finds it: the
 * kubeconfig named by --kubeconfig, else the KUBECONFIG list (merged), else ~/.kube/config,
 * else the in-cluster service account. Files are loaded, and credentials produced (client
 * certificates, tokens, token files, exec plugins), by `KubeConfig` from
 * @kubernetes/client-node; the requests themselves go through ../http.ts like Nomad's.
 * Credentials are never printed.
 */

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubernetesSettingInputs {
  /** --kubeconfig (or the config file's `kubeconfig`): beats KUBECONFIG when given as a flag. */
  kubeconfig?: string;
  context?: string;
  inCluster?: boolean;
  /** Folder holding the service account's `token` and `ca.crt` (default SERVICE_ACCOUNT_DIR). */
  serviceAccountDir?: string;
}

export interface KubernetesSettings {
  /** API server URL, https, without a trailing slash. */
  server: string;
  /** Where the settings came from, for messages: never a secret. */
  origin: string;
  /** The kubeconfig context used; null in a pod's service account. */
  context?: string | null;
  tls: TlsOptions;
  /** Authorization and impersonation headers; secret. */
  headers: Record<string, string>;
}

type KubeConfigClass = typeof KubeConfig;

/** Loaded on demand: the library takes most of a second to import. */
async function kubeConfigClass(): Promise<KubeConfigClass> {
  return (await import('@kubernetes/client-node')).KubeConfig;
}

function readable(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Merges kubeconfig files as kubectl does: the first file that sets current-context wins,
 * and for each cluster, user or context name the first definition wins. (The library's own
 * loadFromDefault lets a later file's current-context win and fails on a repeated name.)
 */
function merge(KC: KubeConfigClass, loaded: KubeConfig[]): KubeConfig {
  const clusters: Cluster[] = [];
  const users: User[] = [];
  const contexts: Context[] = [];
  let currentContext = '';
  const addNew = <T extends { name: string }>(into: T[], items: T[]) => {
    for (const it of items) if (!into.some((x) => x.name === it.name)) into.push(it);
  };
  for (const k of loaded) {
    if (!currentContext && k.getCurrentContext()) currentContext = k.getCurrentContext();
    addNew(clusters, k.getClusters());
    addNew(users, k.getUsers());
    addNew(contexts, k.getContexts());
  }
  const kc = new KC();
  kc.loadFromOptions({ clusters, users, contexts, currentContext });
  return kc;
}

function loadFiles(KC: KubeConfigClass, files: string[], what: (f: string) => string): KubeConfig {
  const loaded = files.map((f) => {
    const k = new KC();
    try {
      k.loadFromFile(f);
    } catch (e) {
      throw new UsageError(`${what(f)}: ${firstLine(e)}; fix the file (kubectl config view --kubeconfig ${f} shows what kubectl makes of it)`);
    }
    return k;
  });
  return merge(KC, loaded);
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).trim().split('\n')[0] ?? 'unreadable';
}

function inCluster(KC: KubeConfigClass, inputs: KubernetesSettingInputs, env: NodeJS.ProcessEnv): { kc: KubeConfig; origin: string } {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    throw new UsageError('in-cluster credentials need KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT, which Kubernetes sets inside a pod; outside one, use --kubeconfig or KUBECONFIG');
  }
  const dir = inputs.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  const token = join(dir, 'token');
  const ca = join(dir, 'ca.crt');
  for (const f of [token, ca]) {
    if (!readable(f)) throw new UsageError(`in-cluster credentials: cannot read ${f}; mount the pod's service account token (automountServiceAccountToken) or point --service-account-dir at its folder`);
  }
  // The token file is read when the credentials are applied, once per run: the kubelet
  // rotates projected tokens, so it is never kept anywhere.
  const kc = new KC();
  kc.loadFromClusterAndUser(
    { name: 'in-cluster', server: `https://${isIPv6(host) ? `[${host}]` : host}:${port}`, caFile: ca, skipTLSVerify: false },
    { name: 'service-account', authProvider: { name: 'tokenFile', config: { tokenFile: token } } },
  );
  return { kc, origin: `the in-cluster service account (${dir})` };
}

function fromKubeconfig(KC: KubeConfigClass, inputs: KubernetesSettingInputs, env: NodeJS.ProcessEnv): { kc: KubeConfig; origin: string } | null {
  if (inputs.kubeconfig !== undefined) {
    const f = inputs.kubeconfig;
    if (!existsSync(f)) throw new UsageError(`--kubeconfig ${f}: no such file; give the path of a kubeconfig file`);
    return { kc: loadFiles(KC, [f], () => `--kubeconfig ${f}`), origin: f };
  }
  const list = env.KUBECONFIG?.split(delimiter).filter(Boolean) ?? [];
  if (list.length > 0) {
    // As kubectl does, files of the list that do not exist are skipped.
    const files = list.filter((f) => existsSync(f));
    if (files.length === 0) throw new UsageError(`KUBECONFIG names no file that exists (${list.join(delimiter)}); fix KUBECONFIG or give --kubeconfig`);
    return { kc: loadFiles(KC, files, (f) => `KUBECONFIG file ${f}`), origin: files.join(delimiter) };
  }
  const home = env.HOME;
  const f = home ? join(home, '.kube', 'config') : null;
  if (f && existsSync(f)) return { kc: loadFiles(KC, [f], () => f), origin: f };
  return null;
}

/** Resolves the API server and credentials; applies them (runs an exec plugin, reads a token file) once. */
export async function resolveKubernetesSettings(inputs: KubernetesSettingInputs, env: NodeJS.ProcessEnv): Promise<KubernetesSettings> {
  if (inputs.inCluster && (inputs.kubeconfig !== undefined || inputs.context !== undefined)) {
    throw new UsageError('--in-cluster uses the pod\'s service account: drop --kubeconfig and --context, or drop --in-cluster');
  }
  const KC = await kubeConfigClass();
  let loaded = inputs.inCluster ? inCluster(KC, inputs, env) : fromKubeconfig(KC, inputs, env);
  if (!loaded) {
    if (!env.KUBERNETES_SERVICE_HOST) {
      throw new UsageError('no Kubernetes credentials: give --kubeconfig FILE, set KUBECONFIG, create ~/.kube/config, or run inside a pod with a service account (--in-cluster)');
    }
    loaded = inCluster(KC, inputs, env);
  }
  const { kc, origin } = loaded;
  const viaServiceAccount = origin.startsWith('the in-cluster service account');
  const contextNames = kc.getContexts().map((c) => c.name);
  const known = contextNames.length > 0 ? `contexts: ${contextNames.join(', ')}` : 'it defines no context';
  if (inputs.context !== undefined) {
    if (!kc.getContextObject(inputs.context)) throw new UsageError(`--context ${inputs.context}: no such context in ${origin} (${known})`);
    kc.setCurrentContext(inputs.context);
  }
  const contextName = kc.getCurrentContext();
  const context = contextName ? kc.getContextObject(contextName) : null;
  if (!context) {
    throw new UsageError(contextName ? `${origin}: current-context ${contextName} is not defined (${known}); give --context NAME` : `${origin} sets no current-context; give --context NAME (${known})`);
  }
  const where = `context ${context.name} of ${origin}`;
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new UsageError(`${where} names cluster ${context.cluster}, which is not defined; fix the kubeconfig`);
  const user = kc.getCurrentUser();
  if (context.user && !user) throw new UsageError(`${where} names user ${context.user}, which is not defined; fix the kubeconfig`);
  if (cluster.proxyUrl) throw new UsageError(`${where}: cluster ${cluster.name} sets proxy-url, which hourmeter does not support; reach the API server directly`);
  if (hasUserInfo(cluster.server)) {
    // The server URL is never quoted here: it holds a password.
    throw new UsageError(`${where}: the server URL of cluster ${cluster.name} holds a user name or password (user:pass@host); remove it and authenticate with a token or client certificate of the user instead`);
  }
  if (!/^https:\/\/[^/]+/.test(cluster.server)) {
    throw new UsageError(`${where}: cluster ${cluster.name} has server ${JSON.stringify(cluster.server)}; hourmeter talks to the API server over https:// only`);
  }
  for (const [file, what] of [
    [cluster.caFile, 'certificate-authority'],
    [user?.certFile, 'client-certificate'],
    [user?.keyFile, 'client-key'],
  ] as const) {
    if (file && !readable(file)) throw new UsageError(`${where}: cannot read ${what} ${file}; fix the path in the kubeconfig`);
  }

  const opts: RequestOptions = {};
  try {
    await kc.applyToHTTPSOptions(opts);
  } catch (e) {
    const exec = user?.exec ?? (user?.authProvider?.config as { exec?: { command?: string } } | undefined)?.exec;
    if (exec) throw new DataError(`the exec credential plugin ${JSON.stringify(exec.command)} of user ${user!.name} (${where}) failed: ${firstLine(e) || 'no message'}; run it by hand to see why`);
    throw new DataError(`reading the credentials of user ${user?.name ?? '(none)'} (${where}): ${firstLine(e)}`);
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(opts.headers ?? {})) {
    if (value === undefined) continue;
    headers[name.toLowerCase()] = (Array.isArray(value) ? value.join(', ') : String(value)).trim();
  }
  if (opts.auth) headers.authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
  if (headers.authorization !== undefined && /^Bearer$/i.test(headers.authorization)) {
    throw new UsageError(`${where}: the token of user ${user?.name ?? '(none)'} is empty; fix its token, token file or credential plugin`);
  }
  return {
    server: cluster.server.replace(/\/+$/, ''),
    origin: where,
    context: viaServiceAccount ? null : context.name,
    tls: {
      ca: (opts.ca as Buffer | undefined) ?? null,
      cert: (opts.cert as Buffer | undefined) ?? null,
      key: (opts.key as Buffer | undefined) ?? null,
      serverName: opts.servername ?? null,
      skipVerify: opts.rejectUnauthorized === false,
    },
    headers,
  };
}

