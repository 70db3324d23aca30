import { Command, Option } from 'commander';
import { defaultIndexPath, openHistory as openStore, type OpenedHistory } from '../history/open.js';
import type { CliIO } from './io.js';
import { STRICT, type Settings } from './options.js';
import { progressBar } from './progress-bar.js';

/**
 * The flags that say where reports get their history (--db, --no-index), and opening it
 * as they say; the history layer (src/history) does the rest.
 */

export function addDbOption(cmd: Command): Command {
  return cmd.addOption(new Option('--db <file>', 'the index (default: <snapshots>/.hourmeter/index.sqlite)').env('HOURMETER_DB'));
}

export function addIndexOptions(cmd: Command): Command {
  return addDbOption(cmd).addOption(new Option('--no-index', 'read the snapshot files directly instead of the index (slower; same numbers)'));
}

export function indexPath(s: Settings, dir: string): string {
  return s.string('db') ?? defaultIndexPath(dir);
}

/** The history for a report: the index brought up to date first (the default), with a progress bar on a terminal, or the files with `--no-index`. */
export function openHistory(s: Settings, io: CliIO, dir: string): Promise<OpenedHistory> {
  const useIndex = s.has('index') ? s.flag('index') : true;
  return openStore({
    dir,
    index: useIndex ? { path: indexPath(s, dir), chosen: s.has('db') } : null,
    strict: s.get(STRICT),
    warn: io.warn,
    progress: progressBar,
  });
}
