import { Command, Option } from 'commander';
import { bareName, clusterLabel } from '../../accounting/clusters.js';
import { checkClusters, checkLatest, spoolReason } from '../../reports/check.js';
import { addDbOption, INDEX, newestByCluster } from '../index-options.js';
import { openCaptures } from '../../history/captures.js';
import { spoolContents } from '../../history/spool.js';
import { SPOOL, STORE, StoreUnreachable, storeConnection } from '../store-options.js';
import { listJournals, readJournalFile } from '../../snapshots/journal.js';
import { describeRecordSkips } from '../../snapshots/skips.js';
import { tryReadSnapshot } from '../../snapshots/latest.js';
import { CheckFailed, UsageError } from '../../util/errors.js';
import { parseDuration } from '../../util/time.js';
import type { CliIO } from '../io.js';
import { addConfigOption, addNowOption, addSnapshotsOption, nowFrom, Settings, SNAPSHOTS, type SharedOption } from '../options.js';

/** Also how old the latest snapshot may be before `serve`'s /health says "stale". */
const DEFAULT_MAX_AGE = '12h';

/** --max-age, as given (for messages) and in microseconds; `help` says what it bounds. */
export const MAX_AGE: SharedOption<{ text: string; us: number }> = {
  name: 'max-age',
  option: (help = 'oldest acceptable latest snapshot, e.g. 12h, 90m, 1d') => new Option('--max-age <duration>', `${help} (default: ${DEFAULT_MAX_AGE})`),
  read: (s) => {
    const text = s.string('max-age', DEFAULT_MAX_AGE);
    const us = parseDuration(text);
    if (us === null) throw new UsageError(`${s.source('max-age')} ${JSON.stringify(text)} is not a duration: use e.g. 12h, 90m or 1d`);
    return { text, us };
  },
};

const DEFAULT_MAX_SILENCE = '5m';

/** --max-silence, as given and in microseconds. */
const MAX_SILENCE: SharedOption<{ text: string; us: number }> = {
  name: 'max-silence',
  option: () => new Option('--max-silence <duration>', `longest a watcher's journal may go without a line (default: ${DEFAULT_MAX_SILENCE})`),
  read: (s) => {
    const text = s.string('max-silence', DEFAULT_MAX_SILENCE);
    const us = parseDuration(text);
    if (us === null) throw new UsageError(`${s.source('max-silence')} ${JSON.stringify(text)} is not a duration: use e.g. 5m or 90s`);
    return { text, us };
  },
};

export function checkCommand(program: Command, io: CliIO): Command {
  const cmd = new Command('check')
    .summary('exit 1 when the latest snapshot is too old or recorded failures (for cron and monitoring)')
    .description(
      'Looks at the newest snapshot file only (and at the newest of each cluster, see below). Exits 0 and prints one "ok: ..." line on stdout when it ' +
        'is at most --max-age old and complete; otherwise exits 1 and prints one line with every reason ' +
        'on stderr: too old, unreadable, or namespaces whose capture failed. A folder with no snapshot ' +
        'files fails too. Its age is from its capture time (its content, else its file name) to now. ' +
        'Each watcher\'s journal (journal/ in the folder) fails the check when its last line is older than --max-silence. ' +
        'A history of several clusters is checked per cluster too: each cluster\'s newest snapshot must pass.',
    );
  addSnapshotsOption(cmd);
  cmd.addOption(STORE.option());
  cmd.addOption(SPOOL.option());
  cmd.addOption(MAX_AGE.option()).addOption(MAX_SILENCE.option());
  addNowOption(cmd, 'take this instant as now');
  // The index tells the clusters apart (see newestByCluster); --store is added above.
  addDbOption(cmd).addOption(INDEX.option());
  addConfigOption(cmd);
  cmd.addHelpText(
    'after',
    '\nExamples:\n  hourmeter check --max-age 2h\n' +
      '  # crontab: mail only when something is wrong\n' +
      '  0 * * * *  hourmeter check --snapshots /srv/hourmeter/snapshots --max-age 3h > /dev/null',
  );
  cmd.action(async () => runCheck(Settings.of(cmd, program), io));
  return cmd;
}

async function runCheck(s: Settings, io: CliIO): Promise<void> {
  const { text: maxAgeText, us: maxAgeUs } = s.get(MAX_AGE);
  const { text: maxSilenceText, us: maxSilenceUs } = s.get(MAX_SILENCE);
  const nowUs = nowFrom(s) * 1000;
  const dir = s.get(SNAPSHOTS);
  const waiting = await spoolContents(s.get(SPOOL));
  const spool = { dir: s.get(SPOOL), ...waiting };
  let captures;
  try {
    captures = await openCaptures({ dir, store: storeConnection(s, io) });
  } catch (e) {
    // The store away: say so, with what waits for it.
    if (!(e instanceof StoreUnreachable)) throw e;
    const spooled = spoolReason(spool, nowUs);
    throw new CheckFailed(`check failed: the store cannot be reached (${e.message})${spooled ? `; ${spooled}` : ''}`);
  }
  let verdict;
  try {
    const file = captures.files[captures.files.length - 1];
    if (file === undefined) throw new CheckFailed(`check failed: no snapshot files in ${s.given(STORE) ? 'the store' : dir}; is \`hourmeter snapshot\` running?`);
    await captures.fetch([file]);
    // A watcher's newest file may hold only headers (it just started): the one before says it.
    await captures.fetchJournals(2);
    const read = tryReadSnapshot(file);
    const snap = read.ok ? read.snapshot : null;
    if (snap && snap.skips.length > 0) io.warn(describeRecordSkips(file.name, snap.skips));
    verdict = checkLatest(
      {
        file: file.name,
        capturedUs: snap?.timeUs ?? file.timeUs,
        unreadable: read.ok ? null : read.reason,
        failedScopes: (snap?.failedScopes ?? []).map((x) => ({ ...x, namespace: bareName(x.namespace) })),
        namespaces: snap?.covered.size ?? 0,
        holding: snap?.observations.filter((o) => o.phase === 'holding').length ?? 0,
        watchers: lastLines(captures.dir, io),
        spool,
      },
      { nowUs, maxAgeUs, maxAgeText, maxSilenceUs, maxSilenceText },
    );
    // Several clusters: each one's newest snapshot must pass too (docs/accounting.md#clusters).
    const clusters = await newestByCluster(s, io, dir);
    if (clusters.length > 1) {
      const facts = [];
      for (const c of clusters) {
        const f = captures.files.find((x) => x.name === c.name);
        if (f === undefined) continue;
        await captures.fetch([f]);
        const r = tryReadSnapshot(f);
        facts.push({
          cluster: clusterLabel(c.cluster),
          file: f.name,
          capturedUs: r.ok ? r.snapshot.timeUs : f.timeUs,
          unreadable: r.ok ? null : r.reason,
          failedScopes: r.ok ? r.snapshot.failedScopes.map((x) => ({ ...x, namespace: bareName(x.namespace) })) : [],
          namespaces: r.ok ? r.snapshot.covered.size : 0,
          holding: r.ok ? r.snapshot.observations.filter((o) => o.phase === 'holding').length : 0,
        });
      }
      verdict = checkClusters(verdict, facts, { nowUs, maxAgeUs, maxAgeText, maxSilenceUs, maxSilenceText });
    }
  } finally {
    await captures.close();
  }
  if (!verdict.ok) throw new CheckFailed(`check failed: ${verdict.reason}`);
  io.stdout(verdict.line + '\n');
}

/** Each watcher's last journal line: its time, and whether it says the stream dropped. */
function lastLines(dir: string, io: CliIO): { source: string; lastUs: number | null; disconnected: boolean }[] {
  return listJournals(dir).map((j) => {
    let last: { atUs: number; type: string } | null = null;
    // The newest file with a line says it; a file of headers only (a watcher just started) falls back.
    for (const f of [...j.files].reverse()) {
      const read = readJournalFile(f.path);
      for (const p of read.problems) io.warn(`${p.file} line ${p.line}: ${p.reason}`);
      const lines = read.entries.filter((e) => e.line.type !== 'journal');
      const e = lines[lines.length - 1];
      if (e) {
        last = { atUs: e.atUs, type: e.line.type };
        break;
      }
    }
    return { source: j.sourceId, lastUs: last?.atUs ?? null, disconnected: last?.type === 'disconnected' };
  });
}
