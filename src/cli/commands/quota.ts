import { Command, Option } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { NO_REQUEST, type QuotaRequest } from '../../quota/decide.js';
import { parseQuotaFile, type QuotaConfig } from '../../quota/policy.js';
import { quotaReportOutput, renderDecisionTable } from '../../reports/quota.js';
import { renderOutput } from '../../reports/output.js';
import { parseHours, parseRequest } from '../../quota/request.js';
import { terminalWidth } from '../../reports/table.js';
import { checkQuota, reportQuota, type QuotaAnswer } from '../../quota/service.js';
import { issueToken, tokensPath } from '../../quota/tokens.js';
import { listSnapshots } from '../../snapshots/files.js';
import { readWithoutStore } from '../../history/open.js';
import type { HistoryView } from '../../history/store.js';
import { loadUserDb, namesIn } from '../../userdb/store.js';
import { CheckFailed, DataError, UsageError } from '../../util/errors.js';
import { formatTimestamp, readableInstant } from '../../util/time.js';
import type { Micros } from '../../accounting/types.js';
import { addIndexOptions, openHistory } from '../index-options.js';
import { CSV_DELIMITER } from '../summary-options.js';
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
        'user; it is shown once. Only its SHA-256 is kept, in <userdb>/quota-tokens.json (mode 0600); ' +
        'issuing again replaces (revokes) the previous token of the user.',
    )
    .addOption(QUOTA_USER.option())
    .addOption(USERDB.option(USERDB_HELP));
  addNowOption(token, 'take this instant as the issue time');
  addConfigOption(token);
  token.addHelpText('after', '\nExamples:\n  hourmeter quota token --user alice > alice.token');
  token.action(() => {
    const s = Settings.of(token, program);
    const user = s.get(QUOTA_USER);
    const dir = s.get(USERDB);
    const t = issueToken(dir, user, formatTimestamp(nowFrom(s) * 1000));
    io.stdout(t + '\n');
    io.warn(`issued a quota token for ${user}; only its hash is kept, in ${tokensPath(dir)}: this is the one time it is shown`);
  });

  for (const c of [check, show, report, token]) quota.addCommand(c);
  quota.addHelpText(
    'after',
    EXAMPLE_FILE +
      '\nExamples:\n  hourmeter quota check --user alice --request memory=4GiB --hours 8\n  hourmeter quota show --user alice\n' +
          '  hourmeter quota report -o csv\n  hourmeter quota token --user alice',
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
  const listing = await listSnapshots(dir, '--snapshots', { stat: false });
  const byThen = listing.files.filter((f) => f.timeUs <= nowUs);
  if (byThen.length === 0) return use(null);
  if (byThen.length < listing.files.length) {
    return use(await readWithoutStore({ ...listing, files: byThen }, { strict: s.get(STRICT), warn: io.warn }, dir, nowUs));
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
  const userdb = loadUserDb(s.get(USERDB));
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
  const userdb = loadUserDb(s.get(USERDB));
  const maxGapUs = s.get(MAX_GAP);
  const r = await withHistory(s, io, nowUs, (view) => reportQuota(view, config, userdb, nowUs, maxGapUs));
  if (r.stale) io.warn(r.latest_snapshot === null ? 'no snapshot: every user shows no usage' : `the latest snapshot, ${readableInstant(r.latest_snapshot)}, is older than stale_after ${r.stale_after}: usage since then is missing`);
  io.stdout(renderOutput(quotaReportOutput(r, output === 'table' ? namesIn(userdb) : undefined), output, { delimiter: output === 'csv' ? s.get(CSV_DELIMITER) : undefined, width: terminalWidth() }));
  reportCoverage(s, io, r.coverage.warning, { printed: output === 'table' });
}
