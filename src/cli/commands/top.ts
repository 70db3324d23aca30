import { Command, Option } from 'commander';
import { renderOutput } from '../../reports/output.js';
import { buildTopReport, topOutput, TOP_SORTS } from '../../reports/top.js';
import { terminalWidth } from '../../reports/table.js';
import { openCaptures } from '../../history/captures.js';
import { STORE, storeConnection } from '../store-options.js';
import { readLatestReadable } from '../../snapshots/latest.js';
import { UsageError } from '../../util/errors.js';
import { bareName, clusterLabel } from '../../accounting/clusters.js';
import type { SnapshotFile } from '../../snapshots/files.js';
import { addDbOption, INDEX, newestByCluster } from '../index-options.js';
import { filtersGiven, unmatchedFilterWarnings } from '../filters.js';
import type { CliIO } from '../io.js';
import { userNames } from '../user-names.js';
import { CSV_DELIMITER } from '../summary-options.js';
import { addConfigOption, addNowOption, addOutputOptions, CLUSTER_FILTER, outputFormat, addReadOptions, addSnapshotsOption, NAMESPACE, nowFrom, Settings, SNAPSHOTS, STRICT, USERDB, type SharedOption } from '../options.js';

const OUTPUT = outputFormat(['table', 'json', 'csv'] as const);
/** Rows a table shows by default: a screen. JSON and CSV, read by programs, list every row. */
const TABLE_LIMIT = 20;

const DEFAULT_SORT: (typeof TOP_SORTS)[number] = 'gpu';

const SORT: SharedOption<(typeof TOP_SORTS)[number]> = {
  name: 'sort',
  option: () => new Option('--sort <key>', `order: ${TOP_SORTS.join(', ')}; amounts largest first, since oldest first (default: ${DEFAULT_SORT})`),
  read: (s) => s.choice('sort', TOP_SORTS, DEFAULT_SORT),
};

/** --limit: rows to show, 0 for all; undefined for the default of the output format. */
const LIMIT: SharedOption<number | undefined> = {
  name: 'limit',
  option: () => new Option('--limit <n>', `rows to show, 0 for all (default: ${TABLE_LIMIT} in a table, all in JSON and CSV)`),
  read: (s) => {
    const text = s.string('limit');
    if (text === undefined) return undefined;
    if (!/^\d+$/.test(text.trim())) throw new UsageError(`${s.source('limit')} ${JSON.stringify(text)} is not a number of rows: use e.g. 20, or 0 for all`);
    return Number(text);
  },
};

export function topCommand(program: Command, io: CliIO): Command {
  const cmd = new Command('top')
    .summary('who holds GPUs, cores and memory now, from the latest snapshot')
    .description(
      'Every allocation holding resources in the latest snapshot (running, or on a disconnected node): ' +
        'user, namespace, job, node, GPUs, CPU cores, memory, since when and for how long (up to the ' +
        'capture time), with totals. Reads only the newest file; if it cannot be read, the newest one ' +
        'that can (with a warning; --strict fails instead). With --cluster, the newest file of that cluster.',
    );
  addSnapshotsOption(cmd);
  cmd
    .addOption(SORT.option())
    .addOption(LIMIT.option())
    .addOption(NAMESPACE.option())
    .addOption(CLUSTER_FILTER.option('the newest snapshot of this cluster, found in the index (several clusters in one history)'))
    .addOption(USERDB.option('user database folder, for the names of users'))
    .addOption(STORE.option());
  // --cluster finds its snapshot in the index.
  addDbOption(cmd).addOption(INDEX.option());
  addOutputOptions(cmd, OUTPUT);
  cmd.addOption(CSV_DELIMITER.option());
  addReadOptions(cmd);
  addNowOption(cmd, 'take this instant as now for the snapshot age');
  addConfigOption(cmd);
  cmd.addHelpText(
    'after',
    '\nExamples:\n  hourmeter top                                # who holds the GPUs\n' +
      '  hourmeter top --sort since --limit 0         # everything, oldest first\n' +
      '  hourmeter top --namespace imagine -o json',
  );
  cmd.action(async () => runTop(Settings.of(cmd, program), io));
  return cmd;
}

function parseLimit(s: Settings, output: 'table' | 'json' | 'csv'): number | null {
  const n = s.get(LIMIT);
  if (n === undefined) return output === 'table' ? TABLE_LIMIT : null;
  return n === 0 ? null : n;
}

/** The newest snapshot of one cluster (reports name the unnamed one "(unnamed)"), as a one-file list. */
async function newestOfCluster(s: Settings, io: CliIO, dir: string, cluster: string, files: readonly SnapshotFile[]): Promise<SnapshotFile[]> {
  const clusters = await newestByCluster(s, io, dir);
  const newest = clusters.find((c) => clusterLabel(c.cluster) === cluster);
  if (newest === undefined) {
    const held = clusters.map((c) => clusterLabel(c.cluster)).join(', ') || 'none';
    throw new UsageError(`${s.sourceOf(CLUSTER_FILTER)} ${cluster}: no snapshot of that cluster (the history holds ${held})`);
  }
  return files.filter((f) => f.name === newest.name);
}

/** How many of the newest snapshot files top looks at for one it can read. */
const NEWEST_LOOKED_AT = 16;

async function runTop(s: Settings, io: CliIO): Promise<void> {
  const output = s.get(OUTPUT);
  const sort = s.get(SORT);
  const limit = parseLimit(s, output);
  const nowUs = nowFrom(s) * 1000;
  const dir = s.get(SNAPSHOTS);
  const clusters = s.get(CLUSTER_FILTER);
  if (clusters.length > 1) throw new UsageError(`top shows one snapshot, of one cluster: give ${s.sourceOf(CLUSTER_FILTER)} once`);
  const cluster = clusters[0];
  const captures = await openCaptures({ dir, store: storeConnection(s, io) });
  let latest;
  try {
    if (captures.files.length === 0) {
      throw new UsageError(`${s.given(STORE) ? 'the store' : `--snapshots ${dir}`} holds no snapshot files (*.json named by capture time); run \`hourmeter snapshot\` first or point --snapshots elsewhere`);
    }
    // The newest few: a corrupt file or two is passed over, a folder of them is not searched.
    // One cluster of several: its newest snapshot, which the index knows.
    const newest = cluster === undefined ? captures.files.slice(-NEWEST_LOOKED_AT) : await newestOfCluster(s, io, dir, cluster, captures.files);
    await captures.fetch(newest);
    latest = readLatestReadable(newest, { strict: s.get(STRICT), warn: io.warn });
  } finally {
    await captures.close();
  }
  const report = buildTopReport(latest.snapshot, { nowUs, sort, limit, namespaces: s.get(NAMESPACE), unreadableNewer: latest.unreadable, names: await userNames(s, io) });
  // Top reads one snapshot, not the history: a namespace is known if that snapshot names it.
  const snap = latest.snapshot;
  const known = () => [...new Set([...snap.covered, ...snap.failedScopes.map((f) => f.namespace), ...snap.observations.map((o) => o.namespace)].map(bareName))];
  for (const line of unmatchedFilterWarnings(filtersGiven(s, ['namespace']), known, `in the latest snapshot, ${snap.file}`)) io.warn(line);
  io.stdout(renderOutput(topOutput(report), output, { delimiter: output === 'csv' ? s.get(CSV_DELIMITER) : undefined, width: terminalWidth() }));
}
