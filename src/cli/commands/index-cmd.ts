import { Command } from 'commander';
import { existsSync } from 'node:fs';
import { plainTable, withRules } from '../../reports/table.js';
import { listSnapshots } from '../../snapshots/files.js';
import { openIndexStore, type IndexStatus } from '../../history/sqlite.js';
import type { AppendResult } from '../../history/store.js';
import { CheckFailed, UsageError } from '../../util/errors.js';
import { readableInstant } from '../../util/time.js';
import { addDbOption, indexPath } from '../index-options.js';
import type { CliIO } from '../io.js';
import { addConfigOption, addOutputOptions, addSnapshotsOption, outputFormat, Settings, SNAPSHOTS } from '../options.js';
import { progressBar } from '../progress-bar.js';

/**
 * `hourmeter index`: the SQLite index beside the snapshots. Reports keep it up to date by
 * themselves; these subcommands are for cron jobs and for operators who want to look.
 */

function addCommon(c: Command): Command {
  addSnapshotsOption(c);
  addDbOption(c);
  addConfigOption(c);
  return c;
}

const STATUS_OUTPUT = outputFormat(['table', 'json'] as const);

const mb = (bytes: number) => (bytes / 1e6).toFixed(1);

function ingestLine(r: AppendResult, verb: string): string {
  if (r.mode === 'none') return 'index is up to date: no new snapshot files\n';
  const lines = r.lines > 0 ? ` and ${r.lines} journal lines` : '';
  // Sizes are as stored: gzipped files count compressed.
  const rate = r.seconds > 0 ? `, ${mb(r.bytes / r.seconds)} MB/s` : '';
  const corrupt = r.corrupt ? `; ${r.corrupt} corrupt (see \`hourmeter index status\`)` : '';
  const why = r.mode === 'rebuild' && r.reason ? ` (${r.reason})` : '';
  return `${verb} ${r.files} snapshot files${lines}, ${mb(r.bytes)} MB as stored, in ${r.seconds.toFixed(1)} s${rate}${why}${corrupt}\n`;
}

export function indexCommand(program: Command, io: CliIO): Command {
  const cmd = new Command('index')
    .summary('build, check or inspect the SQLite index of the snapshots')
    .description(
      "The index keeps every allocation's reconstructed lifetime and a catalogue of the snapshot files, so " +
        'reports do not re-read history. Reports update it first by themselves; it is a cache, and deleting it ' +
        'loses nothing.',
    );

  const context = async (c: Command, create: boolean) => {
    const s = Settings.of(c, program);
    const dir = s.get(SNAPSHOTS);
    const path = indexPath(s, dir);
    if (!create && !existsSync(path)) throw new UsageError(`no index at ${path} yet: run \`hourmeter index update\` (or any report) to build it`);
    const listing = await listSnapshots(dir, '--snapshots', { warn: io.warn });
    return { s, dir, listing, store: openIndexStore(path, { create }) };
  };

  const update = addCommon(new Command('update').summary('read new snapshot files into the index').description('Ingests the snapshot files the index has not read yet (a cron job can run it after each snapshot).'));
  update.addHelpText('after', '\nExamples:\n  hourmeter index update\n  hourmeter snapshot && hourmeter index update');
  update.action(async () => {
    const { dir, listing, store } = await context(update, true);
    try {
      io.stdout(ingestLine(await store.append(listing, { dir, warn: io.warn, note: io.warn, progress: progressBar() }), 'read'));
    } finally {
      store.close();
    }
  });

  const rebuild = addCommon(new Command('rebuild').summary('read every snapshot file again').description('Rebuilds the index from all snapshot files, in one transaction: reports keep seeing the old index until it is done.'));
  rebuild.addHelpText('after', '\nExamples:\n  hourmeter index rebuild\n  hourmeter index rebuild --snapshots /data/snapshots --db /var/cache/hourmeter/index.sqlite');
  rebuild.action(async () => {
    const { dir, listing, store } = await context(rebuild, true);
    try {
      io.stdout(ingestLine(await store.append(listing, { rebuild: true, dir, warn: io.warn, note: io.warn, progress: progressBar() }), 'rebuilt from'));
    } finally {
      store.close();
    }
  });

  const status = addCommon(new Command('status').summary('what the index holds and what it has not read yet').description('Prints the catalogue\'s size and span, pending files, the last ingest and the corrupt files.'));
  addOutputOptions(status, STATUS_OUTPUT);
  status.addHelpText('after', '\nExamples:\n  hourmeter index status\n  hourmeter index status --json');
  status.action(async () => {
    const { s, listing, store } = await context(status, false);
    try {
      const st = await store.status(listing);
      io.stdout(s.get(STATUS_OUTPUT) === 'json' ? JSON.stringify(st, null, 2) + '\n' : renderStatus(st));
    } finally {
      store.close();
    }
  });

  const verify = addCommon(new Command('verify').summary('check every catalogued file against its checksum').description('Reads every catalogued snapshot file again and compares its SHA-256 with the one the index read. Exits 1 when a file changed or is missing; the next ingest then reads it again.'));
  verify.addHelpText('after', '\nExamples:\n  hourmeter index verify');
  verify.action(async () => {
    const { dir, listing, store } = await context(verify, false);
    try {
      const v = await store.verify(dir, listing);
      const lines = [`checked ${v.checked} snapshot files: ${v.checked - v.mismatched.length - v.missing.length} match the index`];
      for (const n of v.mismatched) lines.push(`changed since it was indexed: ${n}`);
      for (const n of v.missing) lines.push(`missing: ${n}`);
      if (v.unindexed) lines.push(`${v.unindexed} files not indexed yet (the next report or \`hourmeter index update\` reads them)`);
      io.stdout(lines.join('\n') + '\n');
      if (v.mismatched.length || v.missing.length) {
        throw new CheckFailed(`${v.mismatched.length} changed and ${v.missing.length} missing snapshot files; the next ingest re-reads what depends on them (or run \`hourmeter index rebuild\`)`);
      }
    } finally {
      store.close();
    }
  });

  for (const c of [update, rebuild, status, verify]) cmd.addCommand(c);
  cmd.addHelpText('after', '\nExamples:\n  hourmeter index status\n  hourmeter index update\n  hourmeter index verify\n  hourmeter index rebuild');
  return cmd;
}

function renderStatus(st: IndexStatus): string {
  const t = plainTable({ head: ['Index', st.path] });
  const when = (a: string | null, b: string | null) => (a && b ? `${readableInstant(a)} to ${readableInstant(b)}` : '-');
  t.push(['schema version', String(st.schema_version)]);
  t.push(['size', `${mb(st.bytes)} MB (${st.snapshots.bytes > 0 ? ((100 * st.bytes) / st.snapshots.bytes).toFixed(2) : '0'}% of the snapshot files as stored)`]);
  t.push(['snapshot files', `${st.snapshots.catalogued} (${mb(st.snapshots.bytes)} MB as stored), ${st.snapshots.corrupt} corrupt, ${st.snapshots.with_skipped_records} with skipped records`]);
  t.push(['captured', when(st.snapshots.first, st.snapshots.last)]);
  t.push(['allocations', String(st.allocations)]);
  const p = st.pending;
  t.push(['not read yet', `${p.new} new, ${p.changed} changed, ${p.removed} removed, ${p.early} out of order`]);
  if (st.journals.files > 0) t.push(['journals', `${st.journals.lines} lines read from ${st.journals.files} files`]);
  const l = st.last_ingest;
  t.push(['last ingest', l ? `${readableInstant(l.finished_at)}: ${l.mode}, ${l.files} files${l.lines ? `, ${l.lines} journal lines` : ''}, ${mb(l.bytes)} MB in ${l.seconds.toFixed(1)} s${l.reason ? ` (${l.reason})` : ''}` : '-']);
  for (const c of st.corrupt_files) t.push(['corrupt', `${c.name}: ${c.reason}${c.detail ? ` (${c.detail})` : ''}`]);
  return withRules(t, { afterHeader: true, beforeLast: false }) + '\n';
}
