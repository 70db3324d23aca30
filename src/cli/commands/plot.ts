import { Command, InvalidArgumentError, Option } from 'commander';
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Assets, IndexEntry } from '../../reports/html.js';
import { replaceFile } from '../../snapshots/write.js';
import { CheckFailed, DataError, UsageError } from '../../util/errors.js';
import type { CliIO } from '../io.js';
import { STORE } from '../store-options.js';
import { loadUsers } from '../user-directory.js';
import { addConfigOption, addRequireCoverageOption, NAMESPACE, QUIET, REQUIRE_COVERAGE, reportCoverage, Settings, USERDB, type SharedOption } from '../options.js';
import { SUMMARIES, SUMMARY_DELIMITER } from '../summary-options.js';
import { makeFolder } from '../../util/folders.js';

const DEFAULT_HTMLS = 'htmls';
const DEFAULT_TOP = 10;

const HTMLS: SharedOption<string> = {
  name: 'htmls',
  option: () => new Option('--htmls <dir>', `folder the HTML pages are written to (default: ./${DEFAULT_HTMLS})`).env('HOURMETER_HTMLS'),
  read: (s) => s.string('htmls', DEFAULT_HTMLS),
};

/** --top: users in the top-user charts. */
const TOP: SharedOption<number> = {
  name: 'top',
  option: () => new Option('--top <n>', `how many users the top-user charts show (default: ${DEFAULT_TOP})`).argParser(positiveInt),
  read: (s) => {
    const text = s.string('top', String(DEFAULT_TOP));
    const top = Number(text);
    if (!Number.isInteger(top) || top < 1 || top > 1000) throw new UsageError(`${s.source('top')} ${JSON.stringify(text)}: give a whole number of users from 1 to 1000`);
    return top;
  },
};

export function plotCommand(program: Command, io: CliIO): Command {
  const cmd = new Command('plot')
    .summary('write interactive HTML charts of the summaries, one page per namespace and an index')
    .description(
      'Reads the CSV files `summarize` wrote and writes one self-contained HTML page per namespace, ' +
        'plus index.html, into the htmls folder: daily resource-hours for each resource, running and ' +
        'queued jobs, snapshots per day and the top users, with values on hover. The chart library is ' +
        'inlined, so the pages work offline. The coverage.json `summarize` wrote is copied beside the ' +
        'pages, and its warning shows on stderr and on the index page.',
    );
  cmd.addOption(SUMMARIES.option());
  cmd
    .addOption(HTMLS.option())
    .addOption(USERDB.option('user database folder, for the names of the top users'))
    .addOption(STORE.option('the --userdb folder, for the names of the top users'))
    .addOption(NAMESPACE.option())
    .addOption(TOP.option());
  cmd.addOption(SUMMARY_DELIMITER.option());
  addRequireCoverageOption(cmd);
  addConfigOption(cmd);
  cmd.addOption(QUIET.option());
  cmd.addHelpText('after', '\nExamples:\n  hourmeter summarize && hourmeter plot\n  hourmeter plot --summaries /srv/summaries --htmls /var/www/usage --top 20');
  cmd.action(async () => {
    // Loaded here, not at start-up: other commands do not need them.
    const [{ indexPageHtml, namespacePageHtml }, { indexEntry, namespacePage, PlotInputError }, { namespaceFileBase, SUFFIXES }, { readSummaryCsv, summaryNamespaces }, { COVERAGE_FILE, coverageFileWarning }] =
      await Promise.all([
        import('../../reports/html.js'),
        import('../../reports/plot.js'),
        import('../../reports/summaries.js'),
        import('../summary-files.js'),
        import('../../reports/coverage-file.js'),
      ]);
    /** A namespace page's name; a namespace called "index" must not replace the index page. */
    const pageBase = (namespace: string): string => {
      const base = namespaceFileBase(namespace);
      return base === 'index' ? '%69ndex' : base;
    };
    const s = Settings.of(cmd, program);
    const dir = s.get(SUMMARIES);
    const out = s.get(HTMLS);
    const delimiter = s.get(SUMMARY_DELIMITER);
    const top = s.get(TOP);
    const namespaces = summaryNamespaces(dir, SUFFIXES.timeseries, s.get(NAMESPACE), '--summaries');
    const db = await loadUsers(s, io);
    const names = (user: string) => (Object.hasOwn(db, user) ? (db[user]!.name ?? null) : null);
    const assets = loadAssets();
    // Summaries written before coverage.json existed have none: then nothing is said.
    const coveragePath = join(dir, COVERAGE_FILE);
    let coverage: { text: string; warning: string | null } | null = null;
    if (existsSync(coveragePath)) {
      const text = readFileSync(coveragePath, 'utf8');
      try {
        coverage = { text, warning: coverageFileWarning(text) };
      } catch (e) {
        throw new DataError(`${coveragePath}: ${(e as Error).message}; run \`hourmeter summarize\` again to rewrite it`);
      }
    }
    try {
      makeFolder(out);
    } catch (e) {
      throw new UsageError(`${s.sourceOf(HTMLS)} ${out}: cannot create the folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); point --htmls at a writable folder`);
    }
    const entries: IndexEntry[] = [];
    for (const ns of namespaces) {
      const base = ns.file.slice(0, -SUFFIXES.timeseries.length);
      const read = (suffix: string) => readSummaryCsv(dir, base + suffix, delimiter);
      const timeseries = read(SUFFIXES.timeseries);
      const users = read(SUFFIXES.users);
      const full = read(SUFFIXES.full);
      const file = `${pageBase(ns.namespace)}.html`;
      let page;
      let entry;
      try {
        page = namespacePage({ namespace: ns.namespace, timeseries: timeseries.csv, users: users.csv, names, top });
        entry = indexEntry(page, encodeURIComponent(file), full.csv);
      } catch (e) {
        if (!(e instanceof PlotInputError)) throw e;
        throw new DataError(`${{ timeseries, users, full }[e.file].path}: ${e.message}`);
      }
      replaceFile(join(out, file), namespacePageHtml(page, assets));
      entries.push(entry);
      if (!s.get(QUIET)) io.stdout(`wrote ${join(out, file)}\n`);
    }
    replaceFile(join(out, 'index.html'), indexPageHtml(entries, coverage?.warning ?? null));
    if (!s.get(QUIET)) io.stdout(`wrote ${join(out, 'index.html')}\n`);
    const copied = join(out, COVERAGE_FILE);
    if (coverage) {
      replaceFile(copied, coverage.text);
      if (!s.get(QUIET)) io.stdout(`wrote ${copied}\n`);
    } else if (existsSync(copied)) {
      // From an earlier plot of other summaries: it would describe data these pages do not show.
      unlinkSync(copied);
    }
    if (!coverage && s.get(REQUIRE_COVERAGE)) {
      throw new CheckFailed(`--require-coverage: ${coveragePath} does not exist, so what the snapshots cover is unknown; run \`hourmeter summarize\` again to write it`);
    }
    reportCoverage(s, io, coverage?.warning ?? null);
  });
  return cmd;
}

function positiveInt(value: string): string {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('give a whole number, e.g. 10');
  return value;
}

/** uPlot's browser build and stylesheet, from the installed package. */
function loadAssets(): Assets {
  const req = createRequire(import.meta.url);
  try {
    return {
      js: readFileSync(req.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
      css: readFileSync(req.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
    };
  } catch (e) {
    throw new DataError(`the chart library uplot is not installed (${(e as Error).message.split('\n')[0]}); run \`npm install\` in hourmeter's folder`);
  }
}
