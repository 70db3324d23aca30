import { join } from 'node:path';
import { Command, Option } from 'commander';
import type { CaptureResult } from '../../sources/nomad/capture.js';
import { acquireLock } from '../../snapshots/lock.js';
import { writeSnapshotFile } from '../../snapshots/write.js';
import { loadUserDb, mergeSightings, saveUserDb } from '../../userdb/store.js';
import { DataError, UsageError } from '../../util/errors.js';
import { parseDuration } from '../../util/time.js';
import type { CliIO } from '../io.js';
import { addNomadOptions, addNomadTlsOptions, JOB_PREFIX, nomadAdvice, nomadCaptureOptions, nomadSettings, PER_PAGE } from '../nomad.js';
import { addConfigOption, addSnapshotsOption, QUIET, RETRIES, Settings, SNAPSHOTS, USERDB, type SharedOption } from '../options.js';

/** A duration flag in microseconds; `positive`: zero is refused. */
function durationOption(flag: string, help: string, fallback: string | undefined, positive = true): SharedOption<number | undefined> {
  return {
    name: flag,
    option: () => new Option(`--${flag} <duration>`, fallback ? `${help} (default: ${fallback})` : help),
    read: (s) => {
      const text = fallback === undefined ? s.string(flag) : s.string(flag, fallback);
      if (text === undefined) return undefined;
      const us = parseDuration(text);
      if (us === null || (positive && us <= 0)) throw new UsageError(`${s.source(flag)} ${JSON.stringify(text)} is not a duration: use e.g. 30s, 5m or 2h`);
      return us;
    },
  };
}

const HEARTBEAT = durationOption('heartbeat', "the server's heartbeat interval; a stream silent for twice this is dropped and listed again", '30s');
const MAX_BACKOFF = durationOption('max-backoff', 'the longest wait before connecting again after a drop', '60s');
const DURATION = durationOption('duration', 'stop after this long (for trials and tests; default: run until SIGTERM)', undefined);
const LOCK_WAIT = durationOption('lock-wait', 'how long to wait for another watcher of the same cluster, or a snapshot being written, before giving up', '60s', false);

/** --quiet, with -q too. */
const QUIET_Q: SharedOption<boolean> = { ...QUIET, option: () => new Option('-q, --quiet', 'print nothing but trouble') };

const GZIP: SharedOption<boolean> = {
  name: 'gzip',
  option: () => new Option('--gzip', 'write the snapshots of each (re)connection gzip-compressed'),
  read: (s) => s.flag('gzip'),
};

export function watchCommand(program: Command, io: CliIO): Command {
  const cmd = new Command('watch')
    .summary("follow Nomad's event stream and journal every allocation start and end as it happens")
    .description(
      "Lists the cluster (written as a snapshot), then follows Nomad's event stream and writes every allocation " +
        'change to a journal beside the snapshots (journal/ in the folder), with the times the payloads give. After a ' +
        'drop it waits (bounded backoff) and lists again: events missed meanwhile are never trusted to a resumed index. ' +
        'Reports read journals and snapshots together: exact while the watcher was connected, the usual bands across a gap.',
    );
  addSnapshotsOption(cmd);
  addNomadOptions(cmd);
  cmd.addOption(PER_PAGE.option());
  addNomadTlsOptions(cmd);
  for (const o of [USERDB, HEARTBEAT, MAX_BACKOFF, DURATION, LOCK_WAIT, RETRIES, GZIP, QUIET_Q]) cmd.addOption(o.option());
  addConfigOption(cmd);
  cmd.addHelpText(
    'after',
    '\nExamples:\n  NOMAD_ADDR=https://nomad.example.org:4646 hourmeter watch --token-file /etc/hourmeter/token --snapshots /srv/hourmeter/snapshots\n' +
      '  hourmeter watch --duration 10m\n' +
      '\nExit codes: 0 stopped (SIGTERM, SIGINT or --duration); 2 bad settings; 3 the token was refused, another watcher\nholds the cluster, or the folder cannot be written.',
  );
  cmd.action(async () => {
    const s = Settings.of(cmd, program);
    await runWatch(s, io);
  });
  return cmd;
}

async function runWatch(s: Settings, io: CliIO): Promise<void> {
  const dir = s.get(SNAPSHOTS);
  const settings = nomadSettings(s, io);
  const heartbeatUs = s.get(HEARTBEAT)!;
  const maxBackoffUs = s.get(MAX_BACKOFF)!;
  const durationUs = s.get(DURATION);
  const lockWaitMs = s.get(LOCK_WAIT)! / 1000;
  const gzip = s.get(GZIP);
  const userdbDir = s.get(USERDB);
  const quiet = s.get(QUIET_Q);
  const { DEFAULT_CLIENT_OPTIONS, NomadClient, NomadHttpError } = await import('../../sources/nomad/client.js');
  const { captureNomad, emptyMetaCache } = await import('../../sources/nomad/capture.js');
  const { ServerClock, watchNomad, WatchRefused } = await import('../../sources/nomad/watch.js');
  const { JournalWriter } = await import('../../snapshots/journal.js');
  const client = new NomadClient(settings, { ...DEFAULT_CLIENT_OPTIONS, attempts: s.get(RETRIES) ?? DEFAULT_CLIENT_OPTIONS.attempts });
  // Every time the journal holds is the server's: its payload times, and its clock for the rest.
  const clock = new ServerClock();
  client.onServerDate = (ms) => clock.saw(ms * 1000);
  const now = () => new Date(Math.floor(clock.nowUs() / 1000));
  const source = { kind: 'nomad' as const, address: settings.address, region: settings.region };
  const refused = () => new WatchRefused(`the Nomad server at ${settings.address} refused the credentials; ${nomadAdvice(settings, ['refused-credentials']).join('; ')}`);

  const stop = new AbortController();
  const onSignal = () => stop.abort(new Error('stopped'));
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  const timer = durationUs === undefined ? undefined : setTimeout(onSignal, Math.min(durationUs / 1000, 2 ** 31 - 1));

  // A journal that cannot be written ends the watch (exit 3): events would be lost.
  let journalFailure: Error | null = null;
  const journal = await JournalWriter.open({
    folder: dir,
    source,
    now: () => new Date(),
    lockWaitMs,
    onError: (e) => {
      journalFailure ??= e;
      stop.abort(e);
    },
  });
  const prefixes = s.get(JOB_PREFIX);
  let cache = emptyMetaCache();
  try {
    const counts = await watchNomad(
      {
        heartbeatMs: heartbeatUs / 1000,
        firstBackoffMs: Math.min(1000, maxBackoffUs / 1000),
        maxBackoffMs: maxBackoffUs / 1000,
        mapping: nomadCaptureOptions(s, settings, now).mapping,
        keepJob: (name) => prefixes.length === 0 || (name !== null && prefixes.some((p) => name.startsWith(p))),
      },
      {
        capture: async () => {
          const result = await captureNomad(client, nomadCaptureOptions(s, settings, now), cache);
          cache = result.cache;
          if (client.problems.has('refused-credentials') && result.snapshot.scope.namespaces.length === 0) throw refused();
          if (result.snapshot.scope.namespaces.length === 0) throw new Error(`nothing could be listed: ${result.snapshot.scope.failed.map((f) => f.reason).join('; ')}`);
          return result;
        },
        saveSnapshot: (result: CaptureResult) => saveSnapshot(dir, result, gzip, userdbDir, lockWaitMs),
        openStream: async (index, signal) => {
          try {
            return await client.stream('/v1/event/stream', { topic: ['Allocation', 'Job'], namespace: '*', index }, signal);
          } catch (e) {
            if (e instanceof NomadHttpError && (e.status === 401 || e.status === 403)) throw refused();
            throw e;
          }
        },
        readJob: async (namespace, id) => {
          try {
            const res = await client.get<{ Name?: string; Meta?: Record<string, string> | null }>(`/v1/job/${encodeURIComponent(id)}`, { namespace });
            return { name: res.body?.Name ?? null, meta: res.body?.Meta ?? null };
          } catch (e) {
            if (e instanceof NomadHttpError && e.status === 404) return null;
            throw e;
          }
        },
        journal,
        nowUs: () => clock.nowUs(),
        sawServerTime: (us) => clock.saw(us),
        sleep: (ms, signal) =>
          new Promise((resolve, reject) => {
            const t = setTimeout(resolve, ms);
            signal.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason)), { once: true });
          }),
        note: (line) => io.warn(`watch: ${line}`),
      },
      stop.signal,
    );
    if (journalFailure) throw journalFailure;
    if (!quiet) io.stdout(`watched ${settings.address}: ${counts.events} allocation changes, ${counts.resyncs} lists, ${counts.drops} drops\n`);
  } catch (e) {
    if (e instanceof WatchRefused) throw new DataError(e.message);
    throw e;
  } finally {
    clearTimeout(timer);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    journal.close();
    await client.close(true);
  }
}

/** Writes a list as a snapshot under the snapshot lock (a cron `snapshot` may write at the same time), and its owners to the user database. */
async function saveSnapshot(dir: string, result: CaptureResult, gzip: boolean, userdbDir: string, lockWaitMs: number): Promise<string> {
  const release = await acquireLock(join(dir, '.hourmeter', 'snapshot.lock'), lockWaitMs);
  try {
    const name = writeSnapshotFile(dir, result.snapshot, { gzip });
    if (result.users.length > 0) saveUserDb(userdbDir, mergeSightings(loadUserDb(userdbDir), result.users, result.snapshot.captured_at));
    return name;
  } finally {
    release();
  }
}
