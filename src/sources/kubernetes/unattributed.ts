import type { NativeAllocation } from '../../snapshots/format.js';
import { controllerOf, formatAttributionSource, type AttributionConfig, type AttributionSource } from './map.js';
import type { Pod } from './types.js';
import { readableInstant, timestampText } from '../../util/time.js';

/**
 * Running pods that no configured source attributes to a user, and the kubectl commands that
 * would attribute them, for the operator to review and run (PrimeHub's legacy-pods helper
 * did the same). Pure: it takes the pods and their records, and returns text.
 */

export const USER_PLACEHOLDER = '<user>';
export const GROUP_PLACEHOLDER = '<group>';

export interface Suggestion {
  namespace: string;
  pod: string;
  uid: string;
  node: string | null;
  start: string | null;
  controller: { kind: string; name: string } | null;
  resources: NativeAllocation['resources'];
  group: string | null;
  /** Labels and annotations whose names suggest who owns the pod. */
  hints: string[];
  /** Commands to review, fill in and run. */
  commands: string[];
}

const HOLDING = new Set(['running', 'unknown']);
const HINT = /(user|owner|creator|author|group|team|project)/i;

/** Single-quotes a shell word unless it is plainly safe. */
export function shellQuote(word: string): string {
  return /^[\w./:=@-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function jsonObject(text: string | undefined): Record<string, unknown> | null {
  if (text === undefined) return null;
  try {
    const v = JSON.parse(text) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** The command that sets `values` (field → value) through source kind and key. */
function setCommand(pod: Pod, s: AttributionSource, values: Record<string, string>): string {
  const meta = pod.metadata;
  const current = (s.from === 'annotation' ? meta.annotations : meta.labels)?.[s.key];
  let value: string;
  if (s.field === null) value = Object.values(values)[0]!;
  else value = JSON.stringify({ ...(jsonObject(current) ?? {}), ...values });
  const verb = s.from === 'annotation' ? 'annotate' : 'label';
  const overwrite = current !== undefined ? ' --overwrite' : '';
  return `kubectl -n ${shellQuote(meta.namespace ?? 'default')} ${verb} pod ${shellQuote(meta.name)}${overwrite} ${shellQuote(`${s.key}=${value}`)}`;
}

/** Commands that would give the pod a user, and a group when it has none. */
function commandsFor(pod: Pod, record: NativeAllocation, config: AttributionConfig): string[] {
  const userSource = config.user[0];
  if (!userSource) return [];
  const groupSource = record.group === null ? config.group[0] : undefined;
  const sameTarget = groupSource && groupSource.from === userSource.from && groupSource.key === userSource.key;
  if (sameTarget && userSource.field !== null && groupSource.field !== null) {
    return [setCommand(pod, userSource, { [userSource.field]: USER_PLACEHOLDER, [groupSource.field]: GROUP_PLACEHOLDER })];
  }
  const out = [setCommand(pod, userSource, { [userSource.field ?? 'user']: USER_PLACEHOLDER })];
  if (groupSource) out.push(setCommand(pod, groupSource, { [groupSource.field ?? 'group']: GROUP_PLACEHOLDER }));
  return out;
}

function hintsOf(pod: Pod, config: AttributionConfig): string[] {
  const used = new Set([...config.user, ...config.group, ...config.component].map((s) => `${s.from}:${s.key}`));
  const out: string[] = [];
  for (const [from, map] of [['label', pod.metadata.labels], ['annotation', pod.metadata.annotations]] as const) {
    for (const [k, v] of Object.entries(map ?? {})) {
      if (v !== '' && HINT.test(k) && !used.has(`${from}:${k}`) && v.length <= 100) out.push(`${from} ${k}=${v}`);
    }
  }
  return out;
}

export interface Unattributed {
  /** Pods holding resources, attributed or not. */
  checked: number;
  pods: Suggestion[];
}

/** Pods holding resources with no user, sorted by namespace and name. `records[i]` maps `pods[i]`. */
export function unattributedPods(pods: readonly Pod[], records: readonly NativeAllocation[], config: AttributionConfig): Unattributed {
  const out: Suggestion[] = [];
  let checked = 0;
  pods.forEach((pod, i) => {
    const r = records[i]!;
    if (!HOLDING.has(r.status)) return;
    checked++;
    if (r.user !== null) return;
    const owner = controllerOf(pod.metadata);
    out.push({
      namespace: r.namespace,
      pod: pod.metadata.name,
      uid: r.id,
      node: r.node,
      start: r.start === null ? null : timestampText(r.start),
      controller: owner ? { kind: owner.kind, name: owner.name } : null,
      resources: r.resources,
      group: r.group,
      hints: hintsOf(pod, config),
      commands: commandsFor(pod, r, config),
    });
  });
  out.sort((a, b) => (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : a.pod < b.pod ? -1 : a.pod > b.pod ? 1 : 0));
  return { checked, pods: out };
}

function amount(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(2).replace(/0$/, '');
}

/** The commands as a reviewable shell script: comments say what each pod is. */
export function renderSuggestions({ checked, pods: list }: Unattributed, config: AttributionConfig): string {
  const lines: string[] = [];
  const reads = config.user.map(formatAttributionSource).join(', ') || 'no source (give --pod-user)';
  if (list.length === 0) return `# every running pod has a user (${checked} running pod${checked === 1 ? '' : 's'} checked; users are read from ${reads})\n`;
  lines.push(
    `# ${list.length} of ${checked} running pod${checked === 1 ? '' : 's'} have no user (read from ${reads}).`,
    `# Review each command and replace ${USER_PLACEHOLDER} and ${GROUP_PLACEHOLDER} before running it; hourmeter changes nothing.`,
    '# A pod made by a controller loses its annotations when it is replaced: set them in the pod template too.',
  );
  for (const s of list) {
    const r = s.resources;
    const what = [`${amount(r.cpu_cores)} CPU`, `${amount(r.memory_mib / 1024)} GiB`, ...(r.gpu > 0 ? [`${r.gpu} GPU`] : [])].join(', ');
    lines.push('', `# ${s.namespace}/${s.pod}${s.controller ? ` (${s.controller.kind} ${s.controller.name})` : ''}${s.node ? ` on ${s.node}` : ''}${s.start ? ` since ${readableInstant(s.start)}` : ''}: ${what}`);
    if (s.hints.length > 0) lines.push(`# hints: ${s.hints.join(', ')}`);
    lines.push(...s.commands);
  }
  return lines.join('\n') + '\n';
}
