import { clusterNameFrom, hostPort } from '../accounting/clusters.js';
import { Option, type Command } from 'commander';
import { DEFAULT_ATTRIBUTION, formatAttributionSource, parseAttributionSource, type AttributionConfig, type AttributionSource } from '../sources/kubernetes/map.js';
import type { KubernetesCaptureOptions } from '../sources/kubernetes/capture.js';
import type { KubernetesClient } from '../sources/kubernetes/client.js';
import { UsageError } from '../util/errors.js';
import { captureCluster, collect, EXCLUDE_NAMESPACE, NAMESPACE, RETRIES, type Settings, type SharedOption } from './options.js';

/**
 * Options of the commands that talk to a Kubernetes API server (`snapshot --source
 * kubernetes`, `k8s unattributed`), declared once so they mean the same everywhere.
 */

const defaults = (list: AttributionSource[]) => list.map(formatAttributionSource).join(', ');

/** Attribution sources of --pod-user, --pod-group or --pod-component: given ones replace the defaults, in the order given. */
function podSources(flag: string, fallback: AttributionSource[], help: string): SharedOption<AttributionSource[]> {
  return {
    name: flag,
    option: () => new Option(`--${flag} <source>`, help).argParser(collect),
    read: (s) => {
      const given = s.list(flag);
      if (given.length === 0) return fallback;
      return given.map((text) => {
        try {
          return parseAttributionSource(text);
        } catch (e) {
          throw new UsageError(`${s.source(flag)}: ${(e as Error).message}`);
        }
      });
    },
  };
}

export const KUBECONFIG: SharedOption<string | undefined> = {
  name: 'kubeconfig',
  option: () => new Option('--kubeconfig <file>', 'kubeconfig file (default: the KUBECONFIG list, merged, else ~/.kube/config, else the in-cluster service account)'),
  read: (s) => s.string('kubeconfig'),
};

export const CONTEXT: SharedOption<string | undefined> = {
  name: 'context',
  option: () => new Option('--context <name>', 'kubeconfig context to use (default: its current-context)'),
  read: (s) => s.string('context'),
};

export const IN_CLUSTER: SharedOption<boolean> = {
  name: 'in-cluster',
  option: () => new Option('--in-cluster', "use the pod's service account, re-reading its token on each run"),
  read: (s) => s.flag('in-cluster'),
};

export const SERVICE_ACCOUNT_DIR: SharedOption<string | undefined> = {
  name: 'service-account-dir',
  option: () => new Option('--service-account-dir <dir>', 'folder of the service account token and ca.crt (default: /var/run/secrets/kubernetes.io/serviceaccount)').env('HOURMETER_SERVICE_ACCOUNT_DIR'),
  read: (s) => s.string('service-account-dir'),
};

export const LABEL_SELECTOR: SharedOption<string | null> = {
  name: 'label-selector',
  option: () => new Option('--label-selector <selector>', 'only pods with these labels, e.g. component=singleuser-server'),
  read: (s) => s.string('label-selector') ?? null,
};

export const FIELD_SELECTOR: SharedOption<string | null> = {
  name: 'field-selector',
  option: () => new Option('--field-selector <selector>', 'only pods with these fields, e.g. spec.nodeName=gpu-1'),
  read: (s) => s.string('field-selector') ?? null,
};

export const POD_USER = podSources(
  'pod-user',
  DEFAULT_ATTRIBUTION.user,
  `where a pod's user is read, first found wins (repeatable; annotation:KEY, label:KEY or annotation:KEY#FIELD of a JSON value; default: ${defaults(DEFAULT_ATTRIBUTION.user)})`,
);
export const POD_GROUP = podSources('pod-group', DEFAULT_ATTRIBUTION.group, `where a pod's group is read (repeatable; default: ${defaults(DEFAULT_ATTRIBUTION.group)})`);
export const POD_COMPONENT = podSources('pod-component', DEFAULT_ATTRIBUTION.component, `where a pod's component is read (repeatable; default: ${defaults(DEFAULT_ATTRIBUTION.component)})`);

/** Options only Kubernetes reads. */
export const KUBERNETES_OPTIONS: readonly SharedOption<unknown>[] = [KUBECONFIG, CONTEXT, IN_CLUSTER, SERVICE_ACCOUNT_DIR, LABEL_SELECTOR, FIELD_SELECTOR, POD_USER, POD_GROUP, POD_COMPONENT];

/** Pods per page of a list; `snapshot` says the Nomad default beside it. */
export const KUBERNETES_PER_PAGE = 500;

export const PODS_PER_PAGE: SharedOption<number> = {
  name: 'per-page',
  option: (help = `pods per API page (default: ${KUBERNETES_PER_PAGE})`) => new Option('--per-page <n>', help),
  read: (s) => s.positiveInt('per-page', KUBERNETES_PER_PAGE),
};

export function addKubernetesOptions(cmd: Command): Command {
  for (const o of KUBERNETES_OPTIONS) cmd.addOption(o.option());
  return cmd;
}

/** Attribution sources: given ones replace the defaults, in the order given. */
export function attributionConfig(s: Settings): AttributionConfig {
  return { user: s.get(POD_USER), group: s.get(POD_GROUP), component: s.get(POD_COMPONENT) };
}

/**
 * A client for the API server the settings name, credentials applied, with kubectl's
 * precedence for the kubeconfig: --kubeconfig, KUBECONFIG, the config file, ~/.kube/config.
 */
export async function connectKubernetes(s: Settings, env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<KubernetesClient> {
  // Loaded only here: the Kubernetes client library takes most of a second to import.
  const { resolveKubernetesSettings } = await import('../sources/kubernetes/settings.js');
  const { KubernetesClient } = await import('../sources/kubernetes/client.js');
  const { DEFAULT_CLIENT_OPTIONS } = await import('../sources/http.js');
  const attempts = s.get(RETRIES) ?? DEFAULT_CLIENT_OPTIONS.attempts;
  const kubeconfig = s.get(KUBECONFIG);
  const fromFlag = kubeconfig !== undefined && s.sourceOf(KUBECONFIG) === '--kubeconfig';
  const settings = await resolveKubernetesSettings(
    {
      kubeconfig: fromFlag || !env.KUBECONFIG ? kubeconfig : undefined,
      context: s.get(CONTEXT),
      inCluster: s.get(IN_CLUSTER),
      serviceAccountDir: s.get(SERVICE_ACCOUNT_DIR),
    },
    env,
  );
  return new KubernetesClient(settings, { ...DEFAULT_CLIENT_OPTIONS, attempts, ...(signal ? { signal } : {}) });
}

/** The cluster a Kubernetes capture names: --cluster, else the kubeconfig context, else (in a pod) the API server's host and port. */
export function kubernetesCluster(s: Settings, client: { context: string | null; address: string }): { cluster: string; folder: string } {
  return captureCluster(s, clusterNameFrom(client.context ? [client.context] : [hostPort(client.address)]));
}

/** What to list and how to attribute it, from the shared options. */
export function listOptions(s: Settings): Pick<KubernetesCaptureOptions, 'namespaces' | 'excludeNamespaces' | 'labelSelector' | 'fieldSelector' | 'limit' | 'attribution'> {
  const namespaces = s.get(NAMESPACE);
  return {
    namespaces: namespaces.length > 0 ? namespaces : null,
    excludeNamespaces: s.get(EXCLUDE_NAMESPACE),
    labelSelector: s.get(LABEL_SELECTOR),
    fieldSelector: s.get(FIELD_SELECTOR),
    limit: s.get(PODS_PER_PAGE),
    attribution: attributionConfig(s),
  };
}

/** Refuses options given on the command line that the chosen source does not read. */
export function refuseFlags(s: Settings, options: readonly SharedOption<unknown>[], why: string): void {
  const given = options.filter((o) => s.given(o) && s.sourceOf(o) === `--${o.name}`).map((o) => `--${o.name}`);
  if (given.length > 0) throw new UsageError(`${given.join(', ')} ${given.length > 1 ? 'are' : 'is'} not read ${why}`);
}
