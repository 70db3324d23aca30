import { Command, Option } from 'commander';
import { writeSnapshotDocument, type CaptureJournal } from '../../snapshots/captures.js';
import type { NativeSnapshot } from '../../snapshots/format.js';
import type { JournalSource } from '../../snapshots/journal.js';
import type { Sighting } from '../../userdb/store.js';
import { DataError, UsageError } from '../../util/errors.js';
import { parseDuration } from '../../util/time.js';
import type { CliIO } from '../io.js';
import { addKubernetesOptions, connectKubernetes, KUBERNETES_OPTIONS, kubernetesCluster, listOptions, refuseFlags } from '../kubernetes.js';
import { addNomadOptions, addNomadTlsOptions, JOB_PREFIX, NOMAD_OPTIONS, nomadAdvice, nomadCaptureOptions, nomadCluster, nomadSettings, PER_PAGE } from '../nomad.js';
import { addConfigOption, addSnapshotsOption, CAPTURE_CLUSTER, sourceInCluster, QUIET, RETRIES, Settings, SNAPSHOTS, SOURCE, USERDB, type SharedOption } from '../options.js';
import { recordSightings } from '../user-directory.js';
import { openWatchSink, SPOOL, STORE } from '../store-options.js';

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

const HEARTBEAT = durationOption('heartbeat', "Nomad: the server's heartbeat interval; a stream silent for twice this is dropped and listed again", '30s');
// A healthy server ends every watch within --watch-timeout, so a longer --stall never fires on
// a quiet cluster, whatever its bookmark frequency (the API promises none); and a stall is
// caught well within the ~5 minutes of history the server keeps, so going on loses nothing.
const STALL = durationOption('stall', 'Kubernetes: a watch with no event, no bookmark and no end for this long has stalled, and is opened again from its resourceVersion', '3m');
const WATCH_TIMEOUT = durationOption('watch-timeout', 'Kubernetes: how long the server keeps one watch open (timeoutSeconds) before the watcher opens the next; keep it under --stall', '2m');
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
    .summary('follow the cluster and journal every allocation or pod start and end as it happens')
    .description(
      'Lists the cluster (written as a snapshot), then follows its changes and writes each one to a journal beside ' +
        'the snapshots (journal/ in the folder), with the times the objects give. Nomad: its event stream; after a ' +
        'drop it waits (bounded backoff) and lists again, since events missed meanwhile are never trusted to a resumed ' +
        'index. Kubernetes (--source kubernetes): pod watches with bookmarks; a watch that ends, drops or stalls goes on ' +
        'from its last resourceVersion, and only 410 Gone makes it list again. Reports read journals and snapshots ' +
        'together: exact while the watcher followed the cluster, the usual bands across a gap.',
    );
  addSnapshotsOption(cmd);
  cmd.addOption(SOURCE.option()).addOption(CAPTURE_CLUSTER.option());
  addNomadOptions(cmd);
  cmd.addOption(PER_PAGE.option());
  addNomadTlsOptions(cmd);
  addKubernetesOptions(cmd);
  for (const o of [STORE, SPOOL, USERDB, HEARTBEAT, STALL, WATCH_TIMEOUT, MAX_BACKOFF, DURATION, LOCK_WAIT, RETRIES, GZIP, QUIET_Q]) cmd.addOption(o.option());
  addConfigOption(cmd);
  cmd.addHelpText(
    'after',
    '\nExamples:\n  NOMAD_ADDR=https://nomad.example.org:4646 hourmeter watch --token-file /etc/hourmeter/token --snapshots /srv/hourmeter/snapshots\n' +
      '  hourmeter watch --source kubernetes --in-cluster --snapshots /data/snapshots\n' +
      '  hourmeter watch --duration 10m\n' +
      '  hourmeter watch --source kubernetes --in-cluster --store "postgres://hourmeter_writer@db.example.org/hourmeter?sslmode=verify-full&sslrootcert=/etc/hourmeter/db-ca.pem"\n' +
      '\nExit codes: 0 stopped (SIGTERM, SIGINT or --duration); 2 bad settings; 3 the credentials were refused, another\nwatcher holds the cluster, or the folder (or the store) cannot be written. A store that cannot be reached is\nwaited out: the journal goes to --spool meanwhile, and is forwarded once the store answers.',
  );
  cmd.action(async () => {
    const s = Settings.of(cmd, program);
    if (s.get(SOURCE) === 'kubernetes') {
      refuseFlags(s, [...NOMAD_OPTIONS, HEARTBEAT], 'with --source kubernetes: the kubeconfig or the service account says where and how to connect');
      await runKubernetesWatch(s, io);
    } else {
      refuseFlags(s, [...KUBERNETES_OPTIONS, STALL, WATCH_TIMEOUT], 'by the Nomad source: add --source kubernetes');
      await runWatch(s, io);
    }
  });
  return cmd;
}

/**
 * What both watchers set up: the stop (signals, --duration), where the captures go (the
 * folder, or --store) and the journal, whose failure stops the watch; `follow` runs the
 * watch and ends it the same way for both.
 */
async function session(s: Settings, io: CliIO, source: JournalSource, client: { close(now: boolean): Promise<void> }, folder: string) {
  const { WatchRefused } = await import('../../sources/watch.js');
  const stop = new AbortController();
  const onSignal = () => stop.abort(new Error('stopped'));
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  const durationUs = s.get(DURATION);
  const timer = durationUs === undefined ? undefined : setTimeout(onSignal, Math.min(durationUs / 1000, 2 ** 31 - 1));
  // A journal that cannot be written ends the watch (exit 3): events would be lost. With
  // --store, a store that cannot be reached is no such failure: lines wait in the spool.
  const failure: { error: Error | null } = { error: null };
  let sink: Awaited<ReturnType<typeof openWatchSink>> | undefined;
  let journal: CaptureJournal;
  try {
    const maxBackoffMs = s.get(MAX_BACKOFF)! / 1000;
    sink = await openWatchSink(s, io, s.get(SNAPSHOTS), { firstBackoffMs: Math.min(1000, maxBackoffMs), maxBackoffMs });
    journal = await sink.openJournal({
      source,
      now: () => new Date(),
      lockWaitMs: s.get(LOCK_WAIT)! / 1000,
      onError: (e) => {
        failure.error ??= e;
        stop.abort(e);
      },
    });
  } catch (e) {
    clearTimeout(timer);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    await sink?.close();
    throw e;
  }
  const captures = sink;
  const gzip = s.get(GZIP);
  const lockWaitMs = s.get(LOCK_WAIT)! / 1000;
  return {
    stop,
    journal,
    /** Writes a list as a snapshot under the snapshot lock (a cron `snapshot` may write at the same time), and its owners to the user database. */
    async saveSnapshot(result: { snapshot: NativeSnapshot; users: Sighting[] }): Promise<string> {
      const release = await captures.lockSnapshots(lockWaitMs);
      try {
        const name = await writeSnapshotDocument(captures, result.snapshot, { gzip, folder });
        if (captures.recordSightings) await captures.recordSightings(result.users, result.snapshot.captured_at);
        else await recordSightings(s, io, result.users, result.snapshot.captured_at);
        return name;
      } finally {
        await release();
      }
    },
    /** Runs the watch to its stop; a refusal is exit 3, and the journal and the client are closed whatever happens. */
    async follow<T>(watch: () => Promise<T>): Promise<T> {
      try {
        const result = await watch();
        if (failure.error) throw failure.error;
        return result;
      } catch (e) {
        if (e instanceof WatchRefused) throw new DataError(e.message);
        throw e;
      } finally {
        clearTimeout(timer);
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
        try {
          await journal.close();
        } finally {
          await client.close(true);
          await captures.close();
        }
      }
    },
  };
}

async function runKubernetesWatch(s: Settings, io: CliIO): Promise<void> {
  const list = listOptions(s);
  const stallUs = s.get(STALL)!;
  const watchTimeoutUs = s.get(WATCH_TIMEOUT)!;
  if (watchTimeoutUs >= stallUs) io.warn(`${s.source('watch-timeout')} is not shorter than ${s.source('stall')}: on a quiet cluster a healthy watch may be taken for a stalled one and opened again`);
  const maxBackoffUs = s.get(MAX_BACKOFF)!;
  const quiet = s.get(QUIET_Q);
  const client = await connectKubernetes(s, io.env);
  const { captureKubernetes } = await import('../../sources/kubernetes/capture.js');
  const { watchKubernetes } = await import('../../sources/kubernetes/watch.js');
  const { ApiHttpError } = await import('../../sources/http.js');
  const { ServerClock, WatchRefused } = await import('../../sources/watch.js');
  const clock = new ServerClock();
  let clockSet = false;
  client.onServerDate = (ms) => {
    clockSet = true;
    clock.saw(ms * 1000);
  };
  const now = () => new Date(Math.floor(clock.nowUs() / 1000));
  const refused = () =>
    new WatchRefused(`the credentials of ${client.origin} were refused: the user needs the RBAC verbs get, list and watch on pods (cluster-wide, or in each --namespace) and list on namespaces`);
  const { cluster, folder } = kubernetesCluster(s, client);
  const source = sourceInCluster({ kind: 'kubernetes' as const, address: client.address, region: null }, cluster);
  const run = await session(s, io, source, client, folder);
  const counts = await run.follow(() =>
    watchKubernetes(
      {
        stallMs: stallUs / 1000,
        firstBackoffMs: Math.min(1000, maxBackoffUs / 1000),
        maxBackoffMs: maxBackoffUs / 1000,
        attribution: list.attribution,
        excludeNamespaces: list.excludeNamespaces,
      },
      {
        capture: async () => {
          // The list is dated by the server's clock: learn it first from any reply (/version is public).
          if (!clockSet) await client.get('/version').catch(() => {});
          const result = await captureKubernetes(client, { ...list, now, source });
          if (client.problems.has('refused-credentials') && result.snapshot.scope.namespaces.length === 0) throw refused();
          for (const w of result.warnings) io.warn(`watch: ${w}`);
          if (result.snapshot.scope.namespaces.length === 0) throw new Error(`nothing could be listed: ${result.snapshot.scope.failed.map((f) => f.reason).join('; ')}`);
          return result;
        },
        saveSnapshot: (result) => run.saveSnapshot(result),
        openWatch: async (namespace, resourceVersion, signal) => {
          const path = namespace === null ? '/api/v1/pods' : `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`;
          try {
            return await client.watch(
              path,
              {
                resourceVersion,
                allowWatchBookmarks: 'true',
                timeoutSeconds: Math.max(1, Math.round(watchTimeoutUs / 1e6)),
                labelSelector: list.labelSelector ?? undefined,
                fieldSelector: list.fieldSelector ?? undefined,
              },
              signal,
            );
          } catch (e) {
            if (e instanceof ApiHttpError && (e.status === 401 || e.status === 403)) throw refused();
            throw e;
          }
        },
        journal: run.journal,
        nowUs: () => clock.nowUs(),
        sawServerTime: (us) => clock.saw(us),
        note: (line) => io.warn(`watch: ${line}`),
      },
      run.stop.signal,
    ),
  );
  if (!quiet) io.stdout(`watched ${client.address}: ${counts.events} pod changes, ${counts.resyncs} lists, ${counts.drops} watches dropped or expired\n`);
}

async function runWatch(s: Settings, io: CliIO): Promise<void> {
  const settings = nomadSettings(s, io);
  const heartbeatUs = s.get(HEARTBEAT)!;
  const maxBackoffUs = s.get(MAX_BACKOFF)!;
  const quiet = s.get(QUIET_Q);
  const { DEFAULT_CLIENT_OPTIONS, NomadClient, NomadHttpError } = await import('../../sources/nomad/client.js');
  const { captureNomad, emptyMetaCache } = await import('../../sources/nomad/capture.js');
  const { ServerClock, watchNomad, WatchRefused } = await import('../../sources/nomad/watch.js');
  const client = new NomadClient(settings, { ...DEFAULT_CLIENT_OPTIONS, attempts: s.get(RETRIES) ?? DEFAULT_CLIENT_OPTIONS.attempts });
  // Every time the journal holds is the server's: its payload times, and its clock for the rest.
  const clock = new ServerClock();
  client.onServerDate = (ms) => clock.saw(ms * 1000);
  const now = () => new Date(Math.floor(clock.nowUs() / 1000));
  const { cluster, folder } = nomadCluster(s, settings);
  const source = sourceInCluster({ kind: 'nomad' as const, address: settings.address, region: settings.region }, cluster);
  const refused = () => new WatchRefused(`the Nomad server at ${settings.address} refused the credentials; ${nomadAdvice(settings, ['refused-credentials']).join('; ')}`);

  const run = await session(s, io, source, client, folder);
  const prefixes = s.get(JOB_PREFIX);
  let cache = emptyMetaCache();
  const counts = await run.follow(() =>
    watchNomad(
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
        saveSnapshot: (result) => run.saveSnapshot(result),
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
        journal: run.journal,
        nowUs: () => clock.nowUs(),
        sawServerTime: (us) => clock.saw(us),
        note: (line) => io.warn(`watch: ${line}`),
      },
      run.stop.signal,
    ),
  );
  if (!quiet) io.stdout(`watched ${settings.address}: ${counts.events} allocation changes, ${counts.resyncs} lists, ${counts.drops} drops\n`);
}
