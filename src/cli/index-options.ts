import { Command, Option } from 'commander';
import { defaultIndexPath, openHistory as openStore, type OpenedHistory } from '../history/open.js';
import type { CliIO } from './io.js';
import { STRICT, type Settings, type SharedOption } from './options.js';
import { progressBar } from './progress-bar.js';
import { localCopyPath, STORE, storeConnection } from './store-options.js';
import { UsageError } from '../util/errors.js';

/**
 * The flags that say where reports get their history (--db, --no-index), and opening it
 * as they say; the history layer (src/history) does the rest.
 */

/** --db: the index file; undefined for the default beside the snapshots (see indexPath). */
export const DB: SharedOption<string | undefined> = {
  name: 'db',
  option: () => new Option('--db <file>', 'the index (default: <snapshots>/.hourmeter/index.sqlite); with --store, where this host keeps its copy of the store\'s index').env('HOURMETER_DB'),
  read: (s) => s.string('db'),
};

/** --no-index: whether to read through the index (the default) or the files directly. */
export const INDEX: SharedOption<boolean> = {
  name: 'index',
  option: () => new Option('--no-index', 'read the snapshot files directly instead of the index (slower; same numbers)'),
  read: (s) => (s.has('index') ? s.flag('index') : true),
};

export function addDbOption(cmd: Command): Command {
  return cmd.addOption(DB.option());
}

export function addIndexOptions(cmd: Command): Command {
  return addDbOption(cmd).addOption(INDEX.option()).addOption(STORE.option());
}

export function indexPath(s: Settings, dir: string): string {
  return s.get(DB) ?? defaultIndexPath(dir);
}

/** The history for a report: the index brought up to date first (the default), with a progress bar on a terminal, or the files with `--no-index`. */
export async function openHistory(s: Settings, io: CliIO, dir: string, opts: { perAllocation?: boolean } = {}): Promise<OpenedHistory> {
  const useIndex = s.get(INDEX);
  const store = s.get(STORE);
  if (store !== undefined && !useIndex) throw new UsageError(`--no-index reads a snapshot folder's files: drop it, or drop ${s.sourceOf(STORE)} to read the folder`);
  return openStore({
    store:
      store === undefined
        ? null
        : { ...storeConnection(s, io)!, copyPath: await localCopyPath(s, io, s.get(DB)), perAllocation: opts.perAllocation },
    dir,
    index: useIndex ? { path: indexPath(s, dir), chosen: s.given(DB) } : null,
    strict: s.get(STRICT),
    warn: io.warn,
    progress: progressBar,
  });
}

/**
 * The clusters the history holds, each with its newest snapshot (docs/accounting.md#clusters),
 * from the index brought up to date. Quietly: the report commands speak of bad files.
 */
export async function newestByCluster(s: Settings, io: CliIO, dir: string): Promise<{ cluster: string; name: string }[]> {
  const opened = await openHistory(s, { ...io, warn: () => {} }, dir);
  try {
    return opened.view.newestByCluster();
  } finally {
    opened.close();
  }
}
