import { Command, Option } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { gracePercent, NO_REQUEST, type Enforcement, type QuotaRequest } from '../../quota/decide.js';
import { parseQuotaFile, scaleDecimal, type QuotaConfig } from '../../quota/policy.js';
import { quotaReportOutput, renderDecisionTable } from '../../reports/quota.js';
import { renderOutput } from '../../reports/output.js';
import { parseHours, parseRequest } from '../../quota/request.js';
import { terminalWidth } from '../../reports/table.js';
import { checkQuota, enforceQuota, reportQuota, type QuotaAnswer } from '../../quota/service.js';
import { HubClient, hubApiSettings, type RunningUser } from '../../server/jupyterhub.js';
import { readWithoutStore } from '../../history/open.js';
import type { HistoryView } from '../../history/store.js';
import { namesIn } from '../../userdb/store.js';
import { CheckFailed, DataError, UsageError } from '../../util/errors.js';
import { formatTimestamp, readableInstant } from '../../util/time.js';
import type { Micros } from '../../accounting/types.js';
import { addIndexOptions, openHistory } from '../index-options.js';
import { openCaptures } from '../../history/captures.js';
import { storeConnection } from '../store-options.js';
import { CSV_DELIMITER } from '../summary-options.js';
import { STORE } from '../store-options.js';
import { loadUsers, openUserDirectory } from '../user-directory.js';
import type { CliIO } from '../io.js';
import { addConfigOption, addCoverageOptions, addMaxGapOption, addNowOption, addOutputOptions, outputFormat, addReadOptions, addSnapshotsOption, MAX_GAP, nowFrom, reportCoverage, Settings, SNAPSHOTS, STRICT, USERDB, type SharedOption } from '../options.js';

export const DEFAULT_QUOTA_FILE = 'quota.yaml';

/** --quota: the quota file (also read by `serve`). */
export const QUOTA_FILE: SharedOption<string> = {
  name: 'quota',
  option: () => new Option('--quota <file>', `the quota file (default: ./${DEFAULT_QUOTA_FILE})`).env('HOURMETER_QUOTA'),
  read: (s) => s.string('quota', DEFAULT_QUOTA_FILE),
};

/** --user of check, show and token: one user, named. */
const QUOTA_USER: SharedOption<string> = {
  name: 'user',
  option: () => new Option('--user <name>', 'the user').makeOptionMandatory(),
  read: (s) => {
    const user = (s.string('user') ?? '').trim();
    if (user === '') throw new UsageError('--user: give a user name');
    return user;
  },
};

/** --groups: the user's groups as the caller knows them, or null to look them up. */
const GROUPS: SharedOption<string[] | null> = {
  name: 'groups',
  option: (help = "the user's groups (default: the quota file's groups:, then the user database)") => new Option('--groups <a,b>', help),
  read: (s) => (s.has('groups') ? s.list('groups') : null),
};

const REQUEST: SharedOption<QuotaRequest['amounts']> = {
  name: 'request',
  option: () => new Option('--request <list>', 'what the user asks for, e.g. cpu=2,memory=4GiB,gpu=1,disk=10GiB'),
  read: (s) => {
    const amounts = s.has('request') ? parseRequest(s.string('request')!) : NO_REQUEST.amounts;
    if (typeof amounts === 'string') throw new UsageError(`${s.source('request')}: ${amounts}`);
    return amounts;
  },
};

/** --hours in microseconds, or null for "just starting". */
const HOURS: SharedOption<Micros | null> = {
  name: 'hours',
  option: () => new Option('--hours <h>', 'count the request for this many hours (default: just starting)'),
  read: (s) => {
    const hours = s.has('hours') ? parseHours(s.string('hours')!) : null;
    if (typeof hours === 'string') throw new UsageError(`${s.source('hours')}: ${hours}`);
    return hours;
  },
};

const DECISION_OUTPUT = outputFormat(['table', 'json'] as const);
const REPORT_OUTPUT = outputFormat(['table', 'csv', 'json'] as const);
const ENFORCE_OUTPUT = outputFormat(['table', 'json'] as const);

const USERDB_HELP = 'user database folder: groups, names for the report table, and the hashes of quota tokens';

/** Reads and validates the quota file; every problem is a usage error naming its line. */
export function loadQuotaFile(s: Settings): QuotaConfig {
  const file = s.get(QUOTA_FILE);
  if (!existsSync(file)) throw new UsageError(`${s.sourceOf(QUOTA_FILE)} ${file}: no such file; write a quota file (see \`hourmeter quota --help\`) or point --quota at one`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`${s.sourceOf(QUOTA_FILE)} ${file}: ${(e as Error).message}`);
  }
  return parseQuotaFile(text, file);
}

export const EXAMPLE_FILE = `
Quota file (YAML):
  stale_after: 2h            # usage data older than this is stale ...
  failure: closed            # ... and then: closed = deny, open = allow (unset: exit 3)
  combine: max               # limits of several policies for one resource and window: max, min, sum
  contact: "Ask for more in #hub-help."
  groups:                    # optional membership (else --groups, else the user database)
    gpu-dev: [alice]
  policies:
    - name: regular-memory
      resource: memory       # cpu, memory, gpu or disk
      limit: 60 GiB-hours    # CPU-hours, GiB-hours (MiB-, TiB-), GPU-hours; decimals allowed
      window: 30d            # rolling: 30d = 720 h before now
      scope: groups          # groups, users or both
      groups: [regular]
  default:                   # users no policy matches
    - { resource: memory, limit: 10 GiB-hours, window: 30d }
  overrides:                 # replace the limit for one resource and window
    carol: [{ resource: gpu, limit: 500 GPU-hours, window: 30d }]
  exempt: [admin]
  message: "{details}. {contact}"   # deny message template
`;

export function quotaCommand(program: Command, io: CliIO): Command {
  const quota = new Command('quota')
    .summary('usage quotas: resource-hours per group or user over a rolling window')
    .description(
      'Checks users against the limits of a quota file (--quota, default ./quota.yaml), on the same exact ' +
        "resource-hours as every report: a user's allocations clipped to [now - window, now), open ones " +
        'counted up to the latest snapshot.',
    );

  const check = new Command('check')
    .summary('may this user start this request? exit 0 allowed, 1 denied, 3 unable to decide')
    .description(
      'Decides for each limit that applies to the user: used, limit, remaining, allowed, and when enough ' +
        'usage will have left the window (open allocations assumed to keep running). Allowed when ' +
        'used + request x --hours <= limit; without --hours a requested resource needs used < limit. ' +
        "When the latest snapshot is older than stale_after, the file's failure rule decides (open: allow, " +
        'closed: deny); with no rule, exit 3. Denied prints the deny message (the file\'s template).',
    )
    .addOption(QUOTA_USER.option())
    .addOption(GROUPS.option("the user's groups, as the caller knows them (default: the quota file's groups:, then the user database)"))
    .addOption(REQUEST.option())
    .addOption(HOURS.option());
  addCommon(check, DECISION_OUTPUT);
  // No --require-coverage: exit 1 means "denied" here, and stale data has the file's failure rule.
  addMaxGapOption(check);
  check.addHelpText(
    'after',
    '\nExamples:\n  hourmeter quota check --user alice --request cpu=2,memory=4GiB\n' +
      '  hourmeter quota check --user alice --groups regular,gpu-dev --request gpu=1 --hours 8 -o json\n' +
      '  hourmeter quota check --user alice && start-server alice',
  );
  check.action(async () => runCheck(Settings.of(check, program), io, 'check'));

  const show = new Command('show')
    .summary("one user's limits, usage and what remains (what the user may see)")
    .description("Like `quota check` without a request, and always exit 0 when it can answer: the user's own limits, used, remaining and % used.")
    .addOption(QUOTA_USER.option())
    .addOption(GROUPS.option());
  addCommon(show, DECISION_OUTPUT);
  addMaxGapOption(show);
  show.addHelpText('after', '\nExamples:\n  hourmeter quota show --user alice\n  hourmeter quota show --user alice -o json');
  show.action(async () => runCheck(Settings.of(show, program), io, 'show'));

  const report = new Command('report')
    .summary('every user and every limit: used, limit and % used, highest first (for admins)')
    .description(
      'Every user the user database, the quota file or the usage names, with each limit that applies ' +
        '(groups from the quota file, then the user database), sorted by % used, highest first.',
    );
  addCommon(report, REPORT_OUTPUT);
  report.addOption(CSV_DELIMITER.option());
  addCoverageOptions(report);
  report.addHelpText('after', '\nExamples:\n  hourmeter quota report\n  hourmeter quota report -o csv > quota.csv');
  report.action(async () => runReport(Settings.of(report, program), io));

  const token = new Command('token')
    .summary('issue a token for `serve` that sees only this user')
    .description(
      'Prints a new bearer token for the quota endpoints of `hourmeter serve` that may ask only about this ' +
        'user; it is shown once. Only its SHA-256 is kept, in <userdb>/quota-tokens.json (mode 0600), or with ' +
        '--store in the quota_tokens table of the PostgreSQL store (the writer role); issuing again replaces ' +
        '(revokes) the previous token of the user.',
    )
    .addOption(QUOTA_USER.option())
    .addOption(USERDB.option(USERDB_HELP))
    .addOption(STORE.option('the --userdb folder'));
  addNowOption(token, 'take this instant as the issue time');
  addConfigOption(token);
  token.addHelpText('after', '\nExamples:\n  hourmeter quota token --user alice > alice.token\n  hourmeter quota token --user alice --store postgres://hourmeter_writer@db.example.org/hourmeter > alice.token');
  token.action(async () => {
    const s = Settings.of(token, program);
    const user = s.get(QUOTA_USER);
    const issuedAt = formatTimestamp(nowFrom(s) * 1000);
    const directory = await openUserDirectory(s, io);
    const t = await directory.issueToken(user, issuedAt).finally(() => directory.close());
    io.stdout(t + '\n');
    io.warn(`issued a quota token for ${user}; only its hash is kept, in ${directory.tokensWhere}: this is the one time it is shown`);
  });

  const enforceCmd = new Command('enforce')
    .summary("stop the running JupyterHub servers of users over a limit now (dry run unless --stop); for cron")
    .description(
      'Asks the hub (JUPYTERHUB_API_URL, JUPYTERHUB_API_TOKEN, or --hub-url, --hub-token-file) for the users ' +
        'whose servers are running, and checks each against the quota file with their hub groups and their ' +
        'running allocations counted up to now (not up to the latest snapshot, as `show` counts them). ' +
        'A user over a limit by more than --grace is listed, one line each (when, who, why): "would stop" ' +
        'without --stop, "stopped" with it (DELETE of the default server, and of named ones when the token ' +
        'may read them). Nothing is stopped on stale data. Exit 0: nothing to do or all stopped; 1: some ' +
        'could not be stopped; 2: bad settings; 3: the hub could not be asked, or the data is stale.',
    )
    .addOption(new Option('--stop', 'stop the servers (default: a dry run that says whom it would stop)'))
    .addOption(new Option('--grace <percent>', 'how far over a limit a user may run before being stopped, as a percentage of the limit, e.g. 10% (default: 0%)'))
    .addOption(new Option('--hub-url <url>', "the hub's REST API, e.g. http://127.0.0.1:8081/hub/api (default: $JUPYTERHUB_API_URL)"))
    .addOption(new Option('--hub-token-file <file>', 'a file holding the API token (default: $JUPYTERHUB_API_TOKEN); needs list:users, read:users, delete:servers'))
    .addOption(QUOTA_FILE.option());
  addSnapshotsOption(enforceCmd);
  addOutputOptions(enforceCmd, ENFORCE_OUTPUT);
  addReadOptions(enforceCmd);
  addIndexOptions(enforceCmd);
  addNowOption(enforceCmd, 'take this instant as now');
  addConfigOption(enforceCmd);
  enforceCmd.addHelpText(
    'after',
    '\nExamples:\n  hourmeter quota enforce                       # dry run: whom it would stop, and why\n' +
      '  hourmeter quota enforce --stop --grace 10%\n' +
      '  hourmeter quota enforce --stop --hub-url http://127.0.0.1:8081/hub/api --hub-token-file /etc/hourmeter/hub-token -o json\n' +
      '  */10 * * * * cd /srv/hourmeter && JUPYTERHUB_API_URL=http://127.0.0.1:8081/hub/api JUPYTERHUB_API_TOKEN=... hourmeter quota enforce --stop --grace 10%',
  );
  enforceCmd.action(async () => runEnforce(Settings.of(enforceCmd, program), io));

  for (const c of [check, show, report, token, enforceCmd]) quota.addCommand(c);
  quota.addHelpText(
    'after',
    EXAMPLE_FILE +
      '\nExamples:\n  hourmeter quota check --user alice --request memory=4GiB --hours 8\n  hourmeter quota show --user alice\n' +
          '  hourmeter quota report -o csv\n  hourmeter quota token --user alice\n  hourmeter quota enforce --stop --grace 10%',
  );
  return quota;
}

function addCommon(cmd: Command, output: SharedOption<string>): void {
  cmd.addOption(QUOTA_FILE.option());
  cmd.addOption(USERDB.option(USERDB_HELP));
  addSnapshotsOption(cmd);
  addOutputOptions(cmd, output);
  addReadOptions(cmd);
  addIndexOptions(cmd);
  addNowOption(cmd, 'take this instant as now');
  addConfigOption(cmd);
}

/**
 * The history as it stood at now, or null when no snapshot had been captured by then (the
 * failure rule decides). A replay (--now before the latest file) reads only the files
 * captured by then: later ones change what the past looks like (an end learnt, an allocation
 * first listed), so the index, which holds every file, cannot answer it. The usual case, now
 * after the latest file, reads the index.
 */
async function withHistory<T>(s: Settings, io: CliIO, nowUs: number, use: (view: HistoryView | null) => T): Promise<T> {
  const dir = s.get(SNAPSHOTS);
  const captures = await openCaptures({ dir, store: storeConnection(s, io) });
  try {
    const byThen = captures.files.filter((f) => f.timeUs <= nowUs);
    if (byThen.length === 0) return use(null);
    if (byThen.length < captures.files.length) {
      await captures.fetch(byThen);
      await captures.fetchJournals();
      return use(await readWithoutStore({ files: byThen, unnamed: [], folders: [] }, { strict: s.get(STRICT), warn: io.warn }, captures.dir, nowUs));
    }
  } finally {
    await captures.close();
  }
  const opened = await openHistory(s, io, dir);
  try {
    return use(opened.view);
  } finally {
    opened.close();
  }
}

async function runCheck(s: Settings, io: CliIO, mode: 'check' | 'show'): Promise<void> {
  const output = s.get(DECISION_OUTPUT);
  const config = loadQuotaFile(s);
  const user = s.get(QUOTA_USER);
  const groups = s.get(GROUPS);
  let request = NO_REQUEST;
  if (mode === 'check') {
    const amounts = s.get(REQUEST);
    request = { amounts, hoursUs: s.get(HOURS) };
  }
  const nowUs = nowFrom(s) * 1000;
  const userdb = await loadUsers(s, io);
  const maxGapUs = s.get(MAX_GAP);
  const d: QuotaAnswer = await withHistory(s, io, nowUs, (view) => checkQuota(view, config, userdb, { user, groups, request, nowUs, maxGapUs }));
  io.stdout(output === 'json' ? JSON.stringify(d, null, 2) + '\n' : renderDecisionTable(d, { request: mode === 'check' }));
  reportCoverage(s, io, d.coverage.warning, { printed: output === 'table' });
  if (d.decision === 'unable') throw new DataError(d.reason);
  if (mode === 'check' && d.decision === 'denied') throw new CheckFailed(`quota check: ${user} denied: ${d.reason}`);
}

async function runReport(s: Settings, io: CliIO): Promise<void> {
  const output = s.get(REPORT_OUTPUT);
  const config = loadQuotaFile(s);
  const nowUs = nowFrom(s) * 1000;
  const userdb = await loadUsers(s, io);
  const maxGapUs = s.get(MAX_GAP);
  const r = await withHistory(s, io, nowUs, (view) => reportQuota(view, config, userdb, nowUs, maxGapUs));
  if (r.stale) io.warn(r.latest_snapshot === null ? 'no snapshot: every user shows no usage' : `the latest snapshot, ${readableInstant(r.latest_snapshot)}, is older than stale_after ${r.stale_after}: usage since then is missing`);
  io.stdout(renderOutput(quotaReportOutput(r, output === 'table' ? namesIn(userdb) : undefined), output, { delimiter: output === 'csv' ? s.get(CSV_DELIMITER) : undefined, width: terminalWidth() }));
  reportCoverage(s, io, r.coverage.warning, { printed: output === 'table' });
}

/** --grace: "10%", "2.5%" or "0" → parts per million of the limit. */
function graceFrom(s: Settings): bigint {
  if (!s.has('grace')) return 0n;
  const text = s.string('grace')!.trim();
  const m = /^(\d+(?:\.\d{1,4})?)\s*%$/.exec(text) ?? (/^0+$/.test(text) ? ['0', '0'] : null);
  if (!m) throw new UsageError(`${s.source('grace')} "${text}": give a percentage of the limit, e.g. --grace 10% (or 0)`);
  return scaleDecimal(m[1]!, 10_000n);
}

/** The hub's API and a token: the flags, else the environment a hub service or a hub's cron job has. */
function hubFrom(s: Settings, io: CliIO): HubClient {
  const url = (s.string('hub-url') ?? io.env.JUPYTERHUB_API_URL ?? '').trim();
  if (url === '') throw new UsageError("--hub-url: give the hub's REST API, e.g. --hub-url http://127.0.0.1:8081/hub/api (or set JUPYTERHUB_API_URL)");
  if (!/^https?:\/\/[^/]/.test(url)) throw new UsageError(`${s.has('hub-url') ? '--hub-url' : 'JUPYTERHUB_API_URL'} "${url}": give an http:// or https:// URL, e.g. http://127.0.0.1:8081/hub/api`);
  let token = io.env.JUPYTERHUB_API_TOKEN ?? '';
  if (s.has('hub-token-file')) {
    const file = s.string('hub-token-file')!;
    try {
      token = readFileSync(file, 'utf8');
    } catch (e) {
      throw new UsageError(`--hub-token-file ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
    }
    token = token.trim();
    if (token === '') throw new UsageError(`--hub-token-file ${file}: the file is empty; put the hub API token in it`);
  }
  token = token.trim();
  if (token === '') throw new UsageError('--hub-token-file: give a file holding a hub API token (or set JUPYTERHUB_API_TOKEN); its role needs list:users, read:users and delete:servers');
  return new HubClient(hubApiSettings(url, token));
}

interface EnforceAction {
  user: string;
  /** '' for the default server. */
  server: string;
  action: 'would_stop' | 'stopped' | 'stopping' | 'failed';
  reason: string;
  over: Enforcement['over'];
  error: string | null;
}

async function runEnforce(s: Settings, io: CliIO): Promise<void> {
  const output = s.get(ENFORCE_OUTPUT);
  const config = loadQuotaFile(s);
  const gracePpm = graceFrom(s);
  const stop = s.flag('stop');
  const hub = hubFrom(s, io);
  const nowUs = nowFrom(s) * 1000;
  const at = formatTimestamp(nowUs);
  const when = readableInstant(at);
  let running: RunningUser[];
  try {
    running = await hub.runningUsers();
  } catch (e) {
    throw new DataError(`quota enforce: could not ask the hub at ${hub.settings.apiUrl}: ${(e as Error).message}`);
  }
  for (const u of running) {
    if (u.servers.length === 0) io.warn(`${u.name} has an active server, but none the token sees as ready (still starting, or a named server: those need read:servers); left alone`);
  }
  const users = running.filter((u) => u.servers.length > 0);
  const r = await withHistory(s, io, nowUs, (view) => enforceQuota(view, config, users, nowUs, gracePpm));
  const unable = r.users.find((e) => e.action === 'unable');
  if (unable) {
    if (output === 'json') io.stdout(JSON.stringify({ now: at, dry_run: !stop, grace: gracePercent(gracePpm), latest_snapshot: r.latest_snapshot, running: users.map((u) => u.name), actions: [] }, null, 2) + '\n');
    throw new DataError(`quota enforce: stopped no one: ${unable.reason}`);
  }
  const actions: EnforceAction[] = [];
  for (const e of r.users) {
    if (e.action !== 'stop') continue;
    for (const server of users.find((u) => u.name === e.user)!.servers) {
      const who = server === '' ? e.user : `${e.user}/${server}`;
      const a: EnforceAction = { user: e.user, server, action: 'would_stop', reason: e.reason, over: e.over, error: null };
      if (stop) {
        try {
          a.action = await hub.stopServer(e.user, server);
        } catch (err) {
          a.action = 'failed';
          a.error = (err as Error).message;
          io.warn(`${when} could not stop ${who}: ${a.error}; over quota: ${e.reason}`);
        }
      }
      actions.push(a);
      if (output === 'table' && a.action !== 'failed') io.stdout(`${when} ${a.action === 'would_stop' ? 'would stop' : a.action} ${who}: ${e.reason}\n`);
    }
  }
  if (output === 'json') {
    io.stdout(JSON.stringify({ now: at, dry_run: !stop, grace: gracePercent(gracePpm), latest_snapshot: r.latest_snapshot, running: users.map((u) => u.name), actions }, null, 2) + '\n');
  }
  const failed = actions.filter((a) => a.action === 'failed').length;
  if (failed > 0) throw new CheckFailed(`quota enforce: ${failed} of ${actions.length} servers over quota could not be stopped`);
}
