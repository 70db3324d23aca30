import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import type { MetaCache } from '../../sources/nomad/capture.js';
import { DeadlineExceeded } from '../../sources/http.js';
import { writeSnapshotDocument, type SnapshotSink } from '../../snapshots/captures.js';
import { removeLeftoverTemps, replaceFile } from '../../snapshots/write.js';
import type { NativeSnapshot } from '../../snapshots/format.js';
import { USERDB_FILE, type Sighting } from '../../userdb/store.js';
import { DataError, UsageError } from '../../util/errors.js';
import { parseDuration } from '../../util/time.js';
import type { CliIO } from '../io.js';
import { addKubernetesOptions, connectKubernetes, KUBERNETES_OPTIONS, kubernetesCluster, listOptions, refuseFlags } from '../kubernetes.js';
import { addNomadOptions, addNomadTlsOptions, NOMAD_OPTIONS, nomadAdvice, nomadCaptureOptions, nomadCluster, nomadSettings, PER_PAGE } from '../nomad.js';
import { addConfigOption, addSnapshotsOption, CAPTURE_CLUSTER, sourceInCluster, NOW, QUIET, RETRIES, Settings, SNAPSHOTS, SOURCE, USERDB, type SharedOption } from '../options.js';
import { forwardSpoolNow, spoolSightings } from '../spool.js';
import { openCaptureSink, SPOOL, STORE } from '../store-options.js';
import { recordSightings } from '../user-directory.js';

const META_CACHE = 'nomad-meta-cache.json';
const emptyMetaCache = (): MetaCache => ({ jobs: {}, allocs: {} });

const DEFAULT_LOCK_WAIT = '60s';

/** --lock-wait in microseconds. */
const LOCK_WAIT: SharedOption<number> = {
  name: 'lock-wait',
  option: () => new Option('--lock-wait <duration>', `how long to wait for another running snapshot (default: ${DEFAULT_LOCK_WAIT})`),
  read: (s) => {
    const us = parseDuration(s.string('lock-wait', DEFAULT_LOCK_WAIT));
    if (us === null) throw new UsageError(`${s.source('lock-wait')}: not a duration, use e.g. 60s or 5m`);
    return us;
  },
};

const DEFAULT_TIMEOUT = '2m';

/** --timeout, as given (for messages) and in microseconds. */
const TIMEOUT: SharedOption<{ text: string; us: number }> = {
  name: 'timeout',
  option: () => new Option('--timeout <duration>', `give up on a capture that has not finished after this long, writing nothing (default: ${DEFAULT_TIMEOUT})`),
  read: (s) => {
    const text = s.string('timeout', DEFAULT_TIMEOUT);
    const us = parseDuration(text);
    if (us === null || us <= 0) throw new UsageError(`${s.source('timeout')} ${JSON.stringify(text)} is not a duration: use e.g. 90s or 2m`);
    return { text, us };
  },
};

const GZIP: SharedOption<boolean> = {
  name: 'gzip',
  option: () => new Option('--gzip', 'write the snapshot gzip-compressed (.json.gz)'),
  read: (s) => s.flag('gzip'),
};

/** --quiet, with -q too: cron lines are short. */
const QUIET_Q: SharedOption<boolean> = { ...QUIET, option: () => new Option('-q, --quiet', 'print nothing on success') };

export function snapshotCommand(program: Command, io: CliIO): Command {
  const cmd = new Command('snapshot')
    .summary('capture the cluster\'s allocations into a new snapshot file (run it from cron)')
    .description(
      'Captures every allocation in every namespace the credentials can read, with resources, owners and start and ' +
        'end times, in a handful of API requests, and writes one snapshot file atomically: Nomad allocations by default, ' +
        'Kubernetes pods with --source kubernetes.\n\n' +
        "NOMAD_NAMESPACE and the kubeconfig context's namespace are ignored on purpose: a shell default must not shrink " +
        'an accounting capture; use --namespace to narrow it.',
    );
  addSnapshotsOption(cmd);
  cmd
    .addOption(SOURCE.option())
    .addOption(CAPTURE_CLUSTER.option());
  addNomadOptions(cmd);
  cmd.addOption(PER_PAGE.option());
  addNomadTlsOptions(cmd);
  addKubernetesOptions(cmd);
  cmd
    .addOption(STORE.option())
    .addOption(SPOOL.option())
    .addOption(USERDB.option())
    .addOption(LOCK_WAIT.option())
    .addOption(RETRIES.option())
    .addOption(TIMEOUT.option())
    .addOption(GZIP.option())
    .addOption(NOW.option('testing: record this RFC 3339 capture time instead of the clock'))
    .addOption(QUIET_Q.option());
  addConfigOption(cmd);
  cmd.addHelpText(
    'after',
    '\nExamples:\n  NOMAD_ADDR=https://nomad.example.org:4646 hourmeter snapshot --token-file /etc/hourmeter/token\n' +
      '  */10 * * * *  cd /srv/hourmeter && hourmeter snapshot --quiet --token-file /etc/hourmeter/token\n' +
      '  hourmeter snapshot --source kubernetes --context prod\n' +
      '  hourmeter snapshot --source kubernetes --in-cluster --pod-user label:owner --pod-group label:team\n' +
      '  hourmeter snapshot --quiet --store "postgres://hourmeter_writer@db.example.org/hourmeter?sslmode=verify-full&sslrootcert=/etc/hourmeter/db-ca.pem"\n' +
      '\nExit codes: 0 written and complete; 2 bad settings; 3 a namespace or page failed after retries\n(the snapshot is written with its scope and failures), or the file (or the store) could not be written.',
  );
  cmd.action(async () => {
    const s = Settings.of(cmd, program);
    await runSnapshot(s, io);
  });
  return cmd;
}

function loadCache(path: string): MetaCache {
  try {
    const c = JSON.parse(readFileSync(path, 'utf8')) as MetaCache;
    return c && typeof c.jobs === 'object' && typeof c.allocs === 'object' ? c : emptyMetaCache();
  } catch {
    return emptyMetaCache(); // a cache: losing it costs requests, never data
  }
}

/** What a source's capture hands to the writer. */
interface Captured {
  snapshot: NativeSnapshot;
  users: Sighting[];
  complete: boolean;
  warnings: string[];
  /** What the summary line calls the records. */
  noun: string;
  /** Extra words for the summary line's parenthesis. */
  note: string;
  /** Runs once the snapshot file is written. */
  saved: () => void;
}

/** A source ready to capture: connection settings resolved, nothing sent yet. */
interface PreparedSource {
  capture: (now: () => Date) => Promise<Captured>;
  requests: () => number;
  /** Cuts requests in flight when `now` (the deadline passed). */
  close: (now: boolean) => Promise<void>;
  /** Where the API server is, for messages (never a secret). */
  address: string;
  /** How to fix the failures seen whose cause is in the settings (a refused token, a wrong address). */
  advice: () => string[];
  /** The sub-folder its snapshots go in ('' : the top; see captureCluster). */
  folder: string;
}

async function prepareNomad(s: Settings, io: CliIO, stateDir: string | null, signal: AbortSignal): Promise<PreparedSource> {
  // The HTTP client is loaded only here: reports start faster without it.
  const { DEFAULT_CLIENT_OPTIONS, NomadClient } = await import('../../sources/nomad/client.js');
  const { captureNomad } = await import('../../sources/nomad/capture.js');
  const settings = nomadSettings(s, io);
  const client = new NomadClient(settings, { ...DEFAULT_CLIENT_OPTIONS, attempts: s.get(RETRIES) ?? DEFAULT_CLIENT_OPTIONS.attempts, signal });
  // A sink without a state folder (the store) keeps no cache: each run asks for every job's meta.
  const cachePath = stateDir === null ? null : join(stateDir, META_CACHE);
  return {
    requests: () => client.requests,
    close: (now) => client.close(now),
    address: settings.address,
    advice: () => nomadAdvice(settings, client.problems),
    folder: nomadCluster(s, settings).folder,
    capture: async (now) => {
      const result = await captureNomad(client, nomadCaptureOptions(s, settings, now), cachePath !== null && existsSync(cachePath) ? loadCache(cachePath) : emptyMetaCache());
      return {
        ...result,
        warnings: [],
        noun: 'allocations',
        note: '',
        saved: () => {
          if (cachePath === null) return;
          try {
            replaceFile(cachePath, JSON.stringify(result.cache));
          } catch {
            io.warn(`could not save ${cachePath}; the next run will make more requests`);
          }
        },
      };
    },
  };
}

async function prepareKubernetes(s: Settings, io: CliIO, signal: AbortSignal): Promise<PreparedSource> {
  const { captureKubernetes } = await import('../../sources/kubernetes/capture.js');
  const list = listOptions(s);
  const client = await connectKubernetes(s, io.env, signal);
  const { cluster, folder } = kubernetesCluster(s, client);
  return {
    folder,
    requests: () => client.requests,
    close: (now) => client.close(now),
    address: client.address,
    advice: () =>
      [...client.problems].map((p) =>
        p === 'refused-credentials'
          ? `the credentials of ${client.origin} were refused: the user needs the RBAC verb list on pods (cluster-wide, or in each --namespace) and list on namespaces`
          : p === 'unreachable'
            ? `nothing answered at ${client.address}: check the server of the cluster in ${client.origin}`
            : `the server's certificate could not be verified: check certificate-authority or certificate-authority-data of the cluster in ${client.origin}`,
      ),
    capture: async (now) => {
      const result = await captureKubernetes(client, { ...list, now, source: sourceInCluster({ kind: 'kubernetes' as const, address: client.address, region: null }, cluster) });
      const note = result.restarts > 0 ? `, ${result.restarts} list${result.restarts > 1 ? 's' : ''} restarted after an expired continue token` : '';
      return { ...result, noun: 'pods', note, saved: () => {} };
    },
  };
}

/**
 * Removes the temp files of the files a snapshot writes beside the snapshots (the meta cache,
 * the user database) that an interrupted run left behind; under the lock, no other run is
 * writing them. The sink removes its own (the snapshots').
 */
function removeLeftovers(stateDir: string | null, userdbDir: string, io: CliIO): void {
  const now = Date.now();
  const removed = [
    ...(stateDir === null ? [] : removeLeftoverTemps(stateDir, (name) => name === META_CACHE, now).map((n) => join(stateDir, n))),
    ...removeLeftoverTemps(userdbDir, (name) => name === USERDB_FILE, now).map((n) => join(userdbDir, n)),
  ];
  for (const path of removed) io.warn(`removed ${path}, a temp file left by an interrupted run`);
}

/** The fixes for failures caused by the settings, as the end of the final message. */
function howToFix(source: PreparedSource): string {
  const advice = source.advice();
  return advice.length > 0 ? `; ${advice.join('; ')}` : '';
}

async function runSnapshot(s: Settings, io: CliIO): Promise<void> {
  const kind = s.get(SOURCE);
  if (kind === 'kubernetes') refuseFlags(s, NOMAD_OPTIONS, 'with --source kubernetes: the kubeconfig or the service account says where and how to connect');
  else refuseFlags(s, KUBERNETES_OPTIONS, 'by the Nomad source: add --source kubernetes');
  const dir = s.get(SNAPSHOTS);
  const nowMs = s.get(NOW);
  const fixedNow = nowMs === undefined ? null : new Date(nowMs);
  const lockWait = s.get(LOCK_WAIT);
  const userdbDir = s.get(USERDB);
  const gzip = s.get(GZIP);
  const { text: timeoutText, us: timeoutUs } = s.get(TIMEOUT);
  // setTimeout holds at most 2^31-1 ms (about 24 days).
  const timeoutMs = Math.min(Math.ceil(timeoutUs / 1000), 2 ** 31 - 1);
  // One deadline for the whole capture, retries and waits included: cron must not pile up runs.
  const deadline = new AbortController();
  // The store is reached (and its grants checked) before the cluster: a refused role captures nothing in vain.
  const sink: SnapshotSink = await openCaptureSink(s, io, dir);
  let source: PreparedSource;
  try {
    source = kind === 'kubernetes' ? await prepareKubernetes(s, io, deadline.signal) : await prepareNomad(s, io, sink.stateDir, deadline.signal);
  } catch (e) {
    await sink.close();
    throw e;
  }
  let timer: NodeJS.Timeout | undefined;

  let release: (() => Promise<void>) | null = null;
  try {
    release = await sink.lockSnapshots(lockWait / 1000);
    removeLeftovers(sink.stateDir, userdbDir, io);
    const started = Date.now();
    // With a fixed capture time (tests, simulations) the finish time keeps the real duration.
    let firstReading = true;
    const now = fixedNow
      ? () => {
          // The capture time is exactly --now; later readings (the finish) add the real duration.
          const at = firstReading ? fixedNow!.getTime() : fixedNow!.getTime() + (Date.now() - started);
          firstReading = false;
          return new Date(at);
        }
      : () => new Date();
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const message = `the capture did not finish within ${timeoutText} (${s.sourceOf(TIMEOUT)}); no snapshot written: the API server at ${source.address} is slow or does not answer; check it, or raise --timeout`;
        deadline.abort(new DeadlineExceeded(message));
        reject(new DataError(message));
      }, timeoutMs);
    });
    const result = await Promise.race([source.capture(now), timedOut]);
    // A scope that failed on the deadline is no reason to write a partial file.
    if (deadline.signal.aborted) throw new DataError((deadline.signal.reason as Error).message);
    const snap = result.snapshot;
    for (const w of result.warnings) io.warn(w);
    for (const f of snap.scope.failed) io.warn(`namespace ${f.namespace}: ${f.reason}`);
    if (snap.scope.namespaces.length === 0 && snap.scope.failed.length > 0) {
      // Nothing was captured: a file would cover nothing, so none is written.
      throw new DataError(`no snapshot written: nothing could be captured (${snap.scope.failed.length} failure${snap.scope.failed.length > 1 ? 's' : ''} above)${howToFix(source)}`);
    }
    const name = await writeSnapshotDocument(sink, snap, { gzip, folder: source.folder });
    result.saved();
    if (sink.spooledBecause !== undefined) {
      await spoolSightings(s, result.users, snap.captured_at);
      throw new DataError(
        `the store could not be reached (${sink.spooledBecause}): the snapshot waits in the spool, ${sink.where(name)}; ` +
          'the next `hourmeter snapshot --store` that reaches the store forwards it, as does `hourmeter store push`',
      );
    }
    await recordSightings(s, io, result.users, snap.captured_at);
    if (!s.get(QUIET_Q)) {
      io.stdout(
        `wrote ${sink.where(name)}: ${snap.allocations.length} ${result.noun}, ${snap.queued.length} queued jobs, ` +
          `${snap.scope.namespaces.length} namespaces${snap.scope.failed.length ? `, ${snap.scope.failed.length} failed` : ''} (${source.requests()} requests${result.note})\n`,
      );
    }
    // Reached again: what waited in the spool goes now, once.
    if (s.get(STORE) !== undefined) await forwardSpoolNow(s, io, s.get(QUIET_Q));
    if (!result.complete) throw new DataError(`the snapshot ${name} is incomplete: ${snap.scope.failed.length} scope${snap.scope.failed.length > 1 ? 's' : ''} failed (listed in the file)${howToFix(source)}`);
  } finally {
    clearTimeout(timer);
    await source.close(deadline.signal.aborted);
    await release?.();
    await sink.close();
  }
}
