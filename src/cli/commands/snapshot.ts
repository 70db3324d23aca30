import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import type { MetaCache } from '../../sources/nomad/capture.js';
import { DEFAULT_META_KEYS } from '../../sources/nomad/map.js';
import { DeadlineExceeded } from '../../sources/http.js';
import { resolveNomadSettings } from '../../sources/nomad/settings.js';
import { acquireLock } from '../../snapshots/lock.js';
import { parseSnapshotName } from '../../snapshots/files.js';
import { removeLeftoverTemps, replaceFile, writeNewFile } from '../../snapshots/write.js';
import type { NativeSnapshot } from '../../snapshots/format.js';
import { loadUserDb, mergeSightings, saveUserDb, USERDB_FILE, type Sighting } from '../../userdb/store.js';
import { DataError, UsageError } from '../../util/errors.js';
import { isStorageFailure, makeFolder } from '../../util/folders.js';
import { parseDuration } from '../../util/time.js';
import type { CliIO } from '../io.js';
import { addKubernetesOptions, connectKubernetes, KUBERNETES_FLAGS, listOptions, refuseFlags } from '../kubernetes.js';
import { addConfigOption, addSnapshotsOption, collect, Settings, SNAPSHOTS } from '../options.js';

const STATE_DIR = '.hourmeter';
const META_CACHE = 'nomad-meta-cache.json';
const emptyMetaCache = (): MetaCache => ({ jobs: {}, allocs: {} });

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
    .addOption(new Option('--source <kind>', 'cluster kind: nomad or kubernetes (default: nomad)'))
    .addOption(new Option('--address <url>', 'Nomad HTTP API address (NOMAD_ADDR; default http://127.0.0.1:4646)'))
    .addOption(new Option('--token-file <file>', 'file holding the ACL token (otherwise NOMAD_TOKEN)'))
    .addOption(new Option('--region <region>', 'Nomad region (NOMAD_REGION)'))
    .addOption(new Option('--namespace <name>', 'capture only this namespace (repeatable; default: every readable namespace)').argParser(collect))
    .addOption(new Option('--exclude-namespace <name>', 'leave this namespace out (repeatable)').argParser(collect))
    .addOption(new Option('--job-prefix <prefix>', 'keep only jobs whose name starts with this (repeatable; default: keep all)').argParser(collect))
    .addOption(new Option('--main-task <name>', 'task whose start and end are the allocation\'s (default: main, else the earliest task)'))
    .addOption(new Option('--meta-user <key>', 'job meta key of the owner (default: owner)'))
    .addOption(new Option('--meta-user-name <key>', 'job meta key of the owner\'s name (default: owner_name)'))
    .addOption(new Option('--meta-user-email <key>', 'job meta key of the owner\'s e-mail (default: owner_email)'))
    .addOption(new Option('--meta-group <key>', 'job meta key of the group (default: group)'))
    .addOption(new Option('--meta-component <key>', 'job meta key of the component (default: component)'))
    .addOption(new Option('--meta-mode <mode>', 'auto (detect servers before 1.5), list (meta=true) or per-job (default: auto)'))
    .addOption(new Option('--per-page <n>', 'items per API page (default: 1000 for Nomad, 500 for Kubernetes)'))
    .addOption(new Option('--ca-cert <file>', 'CA certificate (NOMAD_CACERT)'))
    .addOption(new Option('--ca-path <dir>', 'folder of CA certificates (NOMAD_CAPATH)'))
    .addOption(new Option('--client-cert <file>', 'client certificate for mutual TLS (NOMAD_CLIENT_CERT)'))
    .addOption(new Option('--client-key <file>', 'client key for mutual TLS (NOMAD_CLIENT_KEY)'))
    .addOption(new Option('--tls-server-name <name>', 'server name to verify (NOMAD_TLS_SERVER_NAME)'))
    .addOption(new Option('--tls-skip-verify', 'do not verify the server certificate (NOMAD_SKIP_VERIFY)'));
  addKubernetesOptions(cmd);
  cmd
    .addOption(new Option('--userdb <dir>', 'user database folder (default: ./userdb)'))
    .addOption(new Option('--lock-wait <duration>', 'how long to wait for another running snapshot (default: 60s)'))
    .addOption(new Option('--retries <n>', 'attempts per request on connection errors, 429 and 5xx (default: 4)'))
    .addOption(new Option('--timeout <duration>', 'give up on a capture that has not finished after this long, writing nothing (default: 2m)'))
    .addOption(new Option('--gzip', 'write the snapshot gzip-compressed (.json.gz)'))
    .addOption(new Option('--now <instant>', 'testing: record this RFC 3339 capture time instead of the clock').env('HOURMETER_NOW'))
    .addOption(new Option('-q, --quiet', 'print nothing on success'));
  addConfigOption(cmd);
  cmd.addHelpText(
    'after',
    '\nExamples:\n  NOMAD_ADDR=https://nomad.example.org:4646 hourmeter snapshot --token-file /etc/hourmeter/token\n' +
      '  */10 * * * *  cd /srv/hourmeter && hourmeter snapshot --quiet --token-file /etc/hourmeter/token\n' +
      '  hourmeter snapshot --source kubernetes --context prod\n' +
      '  hourmeter snapshot --source kubernetes --in-cluster --pod-user label:owner --pod-group label:team\n' +
      '\nExit codes: 0 written and complete; 2 bad settings; 3 a namespace or page failed after retries\n(the snapshot is written with its scope and failures), or the file could not be written.',
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

/** Flags only the Nomad source reads. */
const NOMAD_FLAGS = [
  'address', 'token-file', 'region', 'job-prefix', 'main-task', 'meta-user', 'meta-user-name', 'meta-user-email', 'meta-group',
  'meta-component', 'meta-mode', 'ca-cert', 'ca-path', 'client-cert', 'client-key', 'tls-server-name', 'tls-skip-verify',
] as const;

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
}

async function prepareNomad(s: Settings, io: CliIO, stateDir: string, signal: AbortSignal): Promise<PreparedSource> {
  // The HTTP client is loaded only here: reports start faster without it.
  const { DEFAULT_CLIENT_OPTIONS, NomadClient } = await import('../../sources/nomad/client.js');
  const { captureNomad } = await import('../../sources/nomad/capture.js');
  const settings = resolveNomadSettings(
    {
      address: s.string('address'),
      addressFrom: s.source('address'),
      tokenFile: s.string('token-file'),
      region: s.string('region'),
      caCert: s.string('ca-cert'),
      caPath: s.string('ca-path'),
      clientCert: s.string('client-cert'),
      clientKey: s.string('client-key'),
      tlsServerName: s.string('tls-server-name'),
      tlsSkipVerify: s.has('tls-skip-verify') ? s.flag('tls-skip-verify') : undefined,
    },
    io.env,
  );
  const metaMode = s.choice('meta-mode', ['auto', 'list', 'per-job'] as const, 'auto');
  const perPage = s.positiveInt('per-page', 1000);
  const client = new NomadClient(settings, { ...DEFAULT_CLIENT_OPTIONS, attempts: s.positiveInt('retries', DEFAULT_CLIENT_OPTIONS.attempts), signal });
  const cachePath = join(stateDir, META_CACHE);
  return {
    requests: () => client.requests,
    close: (now) => client.close(now),
    address: settings.address,
    advice: () =>
      [...client.problems].map((p) =>
        p === 'refused-credentials'
          ? settings.token === null
            ? 'no ACL token was given: set NOMAD_TOKEN or give --token-file'
            : 'the ACL token (NOMAD_TOKEN or --token-file) was refused: its policy must grant the namespace capabilities list-jobs and read-job on every namespace to capture (e.g. namespace "*" { policy = "read" })'
          : p === 'unreachable'
            ? `nothing answered at ${settings.address}: check NOMAD_ADDR or --address`
            : "the server's certificate could not be verified: give the CA that signed it with NOMAD_CACERT or --ca-cert",
      ),
    capture: async (now) => {
      const result = await captureNomad(
        client,
        {
          namespaces: s.list('namespace').length > 0 ? s.list('namespace') : null,
          excludeNamespaces: s.list('exclude-namespace'),
          jobPrefixes: s.list('job-prefix'),
          perPage,
          metaMode,
          metaConcurrency: 8,
          mapping: {
            mainTask: s.string('main-task', 'main'),
            meta: {
              user: s.string('meta-user', DEFAULT_META_KEYS.user),
              userName: s.string('meta-user-name', DEFAULT_META_KEYS.userName),
              userEmail: s.string('meta-user-email', DEFAULT_META_KEYS.userEmail),
              group: s.string('meta-group', DEFAULT_META_KEYS.group),
              component: s.string('meta-component', DEFAULT_META_KEYS.component),
            },
          },
          now,
          source: { kind: 'nomad', address: settings.address, region: settings.region },
        },
        existsSync(cachePath) ? loadCache(cachePath) : emptyMetaCache(),
      );
      return {
        ...result,
        warnings: [],
        noun: 'allocations',
        note: '',
        saved: () => {
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
  return {
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
      const result = await captureKubernetes(client, { ...list, now, source: { kind: 'kubernetes', address: client.address, region: null } });
      const note = result.restarts > 0 ? `, ${result.restarts} list${result.restarts > 1 ? 's' : ''} restarted after an expired continue token` : '';
      return { ...result, noun: 'pods', note, saved: () => {} };
    },
  };
}

/**
 * Removes the temp files of the files a snapshot writes (the snapshot, the meta cache, the
 * user database) that an interrupted run left behind; under the lock, no other run is writing them.
 */
function removeLeftovers(dir: string, stateDir: string, userdbDir: string, io: CliIO): void {
  const now = Date.now();
  const removed = [
    ...removeLeftoverTemps(dir, (name) => parseSnapshotName(name) !== null, now).map((n) => join(dir, n)),
    ...removeLeftoverTemps(stateDir, (name) => name === META_CACHE, now).map((n) => join(stateDir, n)),
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
  const kind = s.choice('source', ['nomad', 'kubernetes'] as const, 'nomad');
  if (kind === 'kubernetes') refuseFlags(s, NOMAD_FLAGS, 'with --source kubernetes: the kubeconfig or the service account says where and how to connect');
  else refuseFlags(s, KUBERNETES_FLAGS, 'by the Nomad source: add --source kubernetes');
  const dir = s.get(SNAPSHOTS);
  let fixedNow: Date | null = null;
  const nowText = s.string('now');
  if (nowText !== undefined) {
    fixedNow = new Date(nowText);
    if (Number.isNaN(fixedNow.getTime()) || !/^\d{4}-\d{2}-\d{2}T/.test(nowText)) throw new UsageError(`${s.source('now')} ${JSON.stringify(nowText)} is not an RFC 3339 instant such as 2024-09-01T06:00:00Z`);
  }
  const lockWait = parseDuration(s.string('lock-wait', '60s'));
  if (lockWait === null) throw new UsageError(`${s.source('lock-wait')}: not a duration, use e.g. 60s or 5m`);
  const userdbDir = s.string('userdb', 'userdb');
  const gzip = s.flag('gzip');
  const stateDir = join(dir, STATE_DIR);
  const timeoutText = s.string('timeout', '2m');
  const timeoutUs = parseDuration(timeoutText);
  if (timeoutUs === null || timeoutUs <= 0) throw new UsageError(`${s.source('timeout')} ${JSON.stringify(timeoutText)} is not a duration: use e.g. 90s or 2m`);
  // setTimeout holds at most 2^31-1 ms (about 24 days).
  const timeoutMs = Math.min(Math.ceil(timeoutUs / 1000), 2 ** 31 - 1);
  // One deadline for the whole capture, retries and waits included: cron must not pile up runs.
  const deadline = new AbortController();
  const source = kind === 'kubernetes' ? await prepareKubernetes(s, io, deadline.signal) : await prepareNomad(s, io, stateDir, deadline.signal);
  let timer: NodeJS.Timeout | undefined;

  let release: (() => void) | null = null;
  try {
    try {
      makeFolder(stateDir);
    } catch (e) {
      // A full or read-only disk is said plainly, naming the path (main.ts).
      if (isStorageFailure(e)) throw e;
      throw new DataError(`cannot create ${stateDir}: ${(e as Error).message}`);
    }
    release = await acquireLock(join(stateDir, 'snapshot.lock'), lockWait / 1000);
    removeLeftovers(dir, stateDir, userdbDir, io);
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
        const message = `the capture did not finish within ${timeoutText} (${s.source('timeout')}); no snapshot written: the API server at ${source.address} is slow or does not answer; check it, or raise --timeout`;
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
    const text = JSON.stringify(snap);
    const base = snap.captured_at.slice(0, 19) + 'Z';
    let name = `${base}.json${gzip ? '.gz' : ''}`;
    // Two runs in the same second: the second keeps its milliseconds rather than overwrite.
    if (!writeNewFile(join(dir, name), text, { gzip })) {
      name = `${snap.captured_at.slice(0, 23)}Z.json${gzip ? '.gz' : ''}`;
      if (!writeNewFile(join(dir, name), text, { gzip })) throw new DataError(`${join(dir, name)} already exists; snapshots are never overwritten`);
    }
    result.saved();
    if (result.users.length > 0) saveUserDb(userdbDir, mergeSightings(loadUserDb(userdbDir), result.users, snap.captured_at));
    if (!s.flag('quiet')) {
      io.stdout(
        `wrote ${join(dir, name)}: ${snap.allocations.length} ${result.noun}, ${snap.queued.length} queued jobs, ` +
          `${snap.scope.namespaces.length} namespaces${snap.scope.failed.length ? `, ${snap.scope.failed.length} failed` : ''} (${source.requests()} requests${result.note})\n`,
      );
    }
    if (!result.complete) throw new DataError(`the snapshot ${name} is incomplete: ${snap.scope.failed.length} scope${snap.scope.failed.length > 1 ? 's' : ''} failed (listed in the file)${howToFix(source)}`);
  } finally {
    clearTimeout(timer);
    await source.close(deadline.signal.aborted);
    release?.();
  }
}
