import { Command } from 'commander';
import { DataError } from '../../util/errors.js';
import type { CliIO } from '../io.js';
import { addKubernetesOptions, connectKubernetes, listOptions, PODS_PER_PAGE } from '../kubernetes.js';
import { addConfigOption, addOutputOptions, outputFormat, EXCLUDE_NAMESPACE, NAMESPACE, RETRIES, Settings } from '../options.js';

/** `hourmeter k8s ...`: Kubernetes helpers that read the live cluster and change nothing. */

const OUTPUT = outputFormat(['text', 'json'] as const);

export function k8sCommand(program: Command, io: CliIO): Command {
  const k8s = new Command('k8s')
    .summary('Kubernetes helpers: find running pods that no user is attributed to')
    .description('Kubernetes helpers. They read the cluster, with the same settings as `snapshot --source kubernetes`, and never change it.');
  k8s.addHelpText('after', '\nExamples:\n  hourmeter k8s unattributed\n  hourmeter k8s unattributed --namespace ml-batch --pod-user annotation:example.org/owner > annotate.sh');

  const cmd = new Command('unattributed')
    .summary('list running pods with no user, and the kubectl commands that would attribute them')
    .description(
      'Lists the pods that hold resources but that no --pod-user source attributes to a user, and prints for each ' +
        'the kubectl command that would set the first --pod-user source (and the first --pod-group source when the pod ' +
        'has no group), with <user> and <group> to fill in. Review them before running any: hourmeter never changes ' +
        'the cluster. Until then their usage is reported as (unattributed).',
    );
  addKubernetesOptions(cmd);
  cmd
    .addOption(NAMESPACE.option('look only in this namespace (repeatable; default: every namespace)'))
    .addOption(EXCLUDE_NAMESPACE.option())
    .addOption(PODS_PER_PAGE.option())
    .addOption(RETRIES.option());
  addOutputOptions(cmd, OUTPUT);
  addConfigOption(cmd);
  cmd.addHelpText(
    'after',
    '\nExamples:\n  hourmeter k8s unattributed\n  hourmeter k8s unattributed --context prod --namespace hub -o json\n' +
      '  hourmeter k8s unattributed --pod-user label:owner --pod-group label:team > annotate.sh\n' +
      '\nExit codes: 0 listed (even when some pods lack a user); 2 bad settings; 3 the pods could not be listed.',
  );
  cmd.action(async () => {
    await runUnattributed(Settings.of(cmd, program), io);
  });
  k8s.addCommand(cmd);
  return k8s;
}

async function runUnattributed(s: Settings, io: CliIO): Promise<void> {
  const { captureKubernetes } = await import('../../sources/kubernetes/capture.js');
  const { renderSuggestions, unattributedPods } = await import('../../sources/kubernetes/unattributed.js');
  const output = s.get(OUTPUT);
  const list = listOptions(s);
  const client = await connectKubernetes(s, io.env);
  try {
    const result = await captureKubernetes(client, { ...list, now: () => new Date(), source: { kind: 'kubernetes', address: client.address, region: null } });
    const { scope, allocations } = result.snapshot;
    for (const w of result.warnings) io.warn(w);
    for (const f of scope.failed) io.warn(`namespace ${f.namespace}: ${f.reason}`);
    if (scope.namespaces.length === 0 && scope.failed.length > 0) throw new DataError(`no pods could be listed (${scope.failed.length} failure${scope.failed.length > 1 ? 's' : ''} above)`);
    const found = unattributedPods(result.pods, allocations, list.attribution);
    io.stdout(output === 'json' ? JSON.stringify(found, null, 2) + '\n' : renderSuggestions(found, list.attribution));
    if (!result.complete) throw new DataError(`the list is incomplete: ${scope.failed.length} namespace${scope.failed.length > 1 ? 's' : ''} could not be read`);
  } finally {
    await client.close();
  }
}
