import { Option, type Command } from 'commander';
import { DEFAULT_ATTRIBUTION, formatAttributionSource, parseAttributionSource, type AttributionConfig, type AttributionSource } from '../sources/kubernetes/map.js';
import type { KubernetesCaptureOptions } from '../sources/kubernetes/capture.js';
import type { KubernetesClient } from '../sources/kubernetes/client.js';
import { UsageError } from '../util/errors.js';
import { collect, type Settings } from './options.js';

/**
 * Options of the commands that talk to a Kubernetes API server (`snapshot --source
 * kubernetes`, `k8s unattributed`), declared once so they mean the same everywhere.
 */

/** Long flags only Kubernetes reads. */
export const KUBERNETES_FLAGS = ['kubeconfig', 'context', 'in-cluster', 'service-account-dir', 'label-selector', 'field-selector', 'pod-user', 'pod-group', 'pod-component'] as const;

const defaults = (list: AttributionSource[]) => list.map(formatAttributionSource).join(', ');

export function addKubernetesOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--kubeconfig <file>', 'kubeconfig file (default: the KUBECONFIG list, merged, else ~/.kube/config, else the in-cluster service account)'))
    .addOption(new Option('--context <name>', 'kubeconfig context to use (default: its current-context)'))
    .addOption(new Option('--in-cluster', "use the pod's service account, re-reading its token on each run"))
    .addOption(new Option('--service-account-dir <dir>', 'folder of the service account token and ca.crt (default: /var/run/secrets/kubernetes.io/serviceaccount)').env('HOURMETER_SERVICE_ACCOUNT_DIR'))
    .addOption(new Option('--label-selector <selector>', 'only pods with these labels, e.g. component=singleuser-server'))
    .addOption(new Option('--field-selector <selector>', 'only pods with these fields, e.g. spec.nodeName=gpu-1'))
    .addOption(new Option('--pod-user <source>', `where a pod's user is read, first found wins (repeatable; annotation:KEY, label:KEY or annotation:KEY#FIELD of a JSON value; default: ${defaults(DEFAULT_ATTRIBUTION.user)})`).argParser(collect))
    .addOption(new Option('--pod-group <source>', `where a pod's group is read (repeatable; default: ${defaults(DEFAULT_ATTRIBUTION.group)})`).argParser(collect))
    .addOption(new Option('--pod-component <source>', `where a pod's component is read (repeatable; default: ${defaults(DEFAULT_ATTRIBUTION.component)})`).argParser(collect));
}

function sources(s: Settings, flag: string, fallback: AttributionSource[]): AttributionSource[] {
  const given = s.list(flag);
  if (given.length === 0) return fallback;
  return given.map((text) => {
    try {
      return parseAttributionSource(text);
    } catch (e) {
      throw new UsageError(`${s.source(flag)}: ${(e as Error).message}`);
    }
  });
}

/** Attribution sources: given ones replace the defaults, in the order given. */
export function attributionConfig(s: Settings): AttributionConfig {
  return {
    user: sources(s, 'pod-user', DEFAULT_ATTRIBUTION.user),
    group: sources(s, 'pod-group', DEFAULT_ATTRIBUTION.group),
    component: sources(s, 'pod-component', DEFAULT_ATTRIBUTION.component),
  };
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
  const attempts = s.positiveInt('retries', DEFAULT_CLIENT_OPTIONS.attempts);
  const kubeconfig = s.string('kubeconfig');
  const fromFlag = kubeconfig !== undefined && s.source('kubeconfig') === '--kubeconfig';
  const settings = await resolveKubernetesSettings(
    {
      kubeconfig: fromFlag || !env.KUBECONFIG ? kubeconfig : undefined,
      context: s.string('context'),
      inCluster: s.flag('in-cluster'),
      serviceAccountDir: s.string('service-account-dir'),
    },
    env,
  );
  return new KubernetesClient(settings, { ...DEFAULT_CLIENT_OPTIONS, attempts, ...(signal ? { signal } : {}) });
}

/** What to list and how to attribute it, from the shared options. */
export function listOptions(s: Settings): Pick<KubernetesCaptureOptions, 'namespaces' | 'excludeNamespaces' | 'labelSelector' | 'fieldSelector' | 'limit' | 'attribution'> {
  return {
    namespaces: s.list('namespace').length > 0 ? s.list('namespace') : null,
    excludeNamespaces: s.list('exclude-namespace'),
    labelSelector: s.string('label-selector') ?? null,
    fieldSelector: s.string('field-selector') ?? null,
    limit: s.positiveInt('per-page', 500),
    attribution: attributionConfig(s),
  };
}

/** Refuses flags given on the command line that the chosen source does not read. */
export function refuseFlags(s: Settings, flags: readonly string[], why: string): void {
  const given = flags.filter((f) => s.has(f) && s.source(f) === `--${f}`);
  if (given.length > 0) throw new UsageError(`${given.map((f) => `--${f}`).join(', ')} ${given.length > 1 ? 'are' : 'is'} not read ${why}`);
}
