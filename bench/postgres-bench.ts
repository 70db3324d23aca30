/**
 * The PostgreSQL store on the real-churn legacy year: `store import` of the folder (rate,
 * stored size, a re-import that adds nothing), then warm full-year `stats` from the store
 * beside the SQLite index, in interleaved rounds, their reports compared byte for byte.
 * Issue 25's target: the store at most 2x SQLite's wall time. The server is a throwaway
 * PostgreSQL 15 cluster on 127.0.0.1, started as the tests start it (fsync off), and stopped
 * at the end whatever happens.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { startPostgres, type Postgres } from '../test/helpers/postgres.js';
import { BIN, corpus, fewRuns, goalText, mb, meets, nodeBaseline, pad, record, RUNS, runCommand, summarize, target, timeText, type Corpus, type Goal, type Measured } from './harness.js';
import { LEGACY_YEAR_CHURN, ratio, sameReport } from './index-bench.js';

export const POSTGRES_GOAL = { label: 'warm year stats, PostgreSQL store / SQLite index', limit: 2, atMost: true, format: ratio } satisfies Goal;

const NAME = 'legacy-year-churn';

const rssOf = (ms: Measured[]) => `peak RSS ${summarize(ms).peakRssMb.toFixed(0).padStart(4)} MB`;
const line = (label: string, ms: Measured[]) => `  ${pad(label)} ${timeText(summarize(ms))}  ${rssOf(ms)}`;

export async function postgresBench(): Promise<void> {
  const c = await corpus(NAME, LEGACY_YEAR_CHURN);
  const gen = c.sizes.seconds !== null ? `, generated in ${c.sizes.seconds.toFixed(0)} s${c.generated ? '' : ' (earlier)'}` : '';
  console.log(`corpus ${NAME} (real churn): ${c.sizes.files} AI4OS files, ${mb(c.sizes.bytes)} MB (${(c.sizes.bytes / 2 ** 30).toFixed(2)} GiB)${gen}`);
  process.stderr.write('starting PostgreSQL 15 ...\n');
  const pg = await startPostgres();
  // Ctrl-C or a kill skips `finally`: the server is stopped (and its folder removed) then too.
  const stopOnExit = () => pg.stop();
  const stopOnSignal = (signal: NodeJS.Signals) => {
    pg.stop();
    process.kill(process.pid, signal);
  };
  process.once('exit', stopOnExit);
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  try {
    await storeFigures(pg, c);
  } finally {
    pg.stop();
    process.off('exit', stopOnExit);
    process.off('SIGINT', stopOnSignal);
    process.off('SIGTERM', stopOnSignal);
  }
}

async function storeFigures(pg: Postgres, c: Corpus): Promise<void> {
  const [version, fsync, fullPageWrites, syncCommit] = pg.psql(`SELECT current_setting('server_version'), current_setting('fsync'), current_setting('full_page_writes'), current_setting('synchronous_commit')`).trim().split('|');
  console.log(
    `PostgreSQL ${version} on 127.0.0.1, a throwaway cluster as the tests start it: fsync=${fsync}, full_page_writes=${fullPageWrites}, ` +
      `synchronous_commit=${syncCommit} (speed, not durability: imports would be slower on a server that syncs)`,
  );
  // The password travels in PGPASSWORD, out of the command lines.
  const url = pg.url({ password: '' });
  const cli = (args: string[]) => runCommand([process.execPath, BIN, ...args], { env: { PGPASSWORD: pg.password } });
  const storedFiles = () => Number(pg.psql('SELECT count(*) FROM snapshot_documents').trim());

  await cli(['store', 'migrate', '--store', url, '--quiet']);
  const imported = await cli(['store', 'import', c.dir, '--store', url, '--quiet']);
  if (storedFiles() !== c.sizes.files) throw new Error(`store import: the store holds ${storedFiles()} snapshot files, the folder ${c.sizes.files}`);
  const secs = imported.seconds;
  console.log(line('store import, into an empty store', [imported]));
  console.log(`  ${pad('')} ${(c.sizes.files / secs).toFixed(0)} files/s, ${(c.sizes.bytes / 1e6 / secs).toFixed(0)} MB/s of JSON, ${secs.toFixed(1)} s (the whole process)`);
  const documentsBytes = Number(pg.psql(`SELECT pg_total_relation_size('snapshot_documents')`).trim());
  console.log(`  ${pad('stored size of snapshot_documents')} ${mb(documentsBytes)} MB (pg_total_relation_size: table, TOAST, indexes) = ${((100 * documentsBytes) / c.sizes.bytes).toFixed(1)}% of the files`);
  const again = await cli(['store', 'import', c.dir, '--store', url, '--quiet']);
  if (storedFiles() !== c.sizes.files) throw new Error(`store import, again: the store now holds ${storedFiles()} snapshot files, the folder ${c.sizes.files}`);
  console.log(line('store import again (adds nothing)', [again]));

  // Full year, as the legacy part's warm year stats. The first run of each builds its index.
  const fromStore = ['stats', '--store', url, '-o', 'json'];
  const fromFolder = ['stats', '--snapshots', c.dir, '-o', 'json'];
  rmSync(join(c.dir, '.hourmeter'), { recursive: true, force: true });
  const fold = await cli(fromStore);
  const build = await cli(fromFolder);
  console.log(line('stats --store, first', [fold]));
  console.log(`  ${pad('')} first report folds the year into the store's index`);
  const indexBytes = Number(
    pg.psql(`SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname LIKE 'index\\_%'`).trim(),
  );
  console.log(`  ${pad('')} the store's index_* tables: ${mb(indexBytes)} MB (pg_total_relation_size)`);
  console.log(line('stats --snapshots, first (builds the SQLite index)', [build]));

  console.log(`\n${RUNS} interleaved rounds${fewRuns(RUNS)}; each runs node -e 0, warm year stats --store, warm year stats --snapshots`);
  const baseline: Measured[] = [];
  const store: Measured[] = [];
  const sqlite: Measured[] = [];
  for (let r = 0; r < RUNS; r++) {
    process.stderr.write(`postgres round ${r + 1}/${RUNS} ...\n`);
    baseline.push(await nodeBaseline());
    store.push(await cli(fromStore));
    sqlite.push(await cli(fromFolder));
  }
  const s = summarize(store);
  const q = summarize(sqlite);
  const x = s.median / q.median;
  console.log(line('node -e 0 (the yardstick)', baseline));
  console.log(line('stats, whole year, PostgreSQL store warm', store));
  console.log(line('stats, whole year, SQLite index warm', sqlite));
  console.log(`  ${pad('')} the store takes ${ratio(x)} SQLite's wall time, ${ratio(s.cpuMedian / q.cpuMedian)} its CPU time ${target(meets(POSTGRES_GOAL, x), goalText(POSTGRES_GOAL))}`);
  console.log(`  ${pad('')} peak RSS of the CLI: ${s.peakRssMb.toFixed(0)} MB from the store, ${q.peakRssMb.toFixed(0)} MB from SQLite (the server's memory not counted)`);
  record(POSTGRES_GOAL, NAME, x, Math.min(s.n, q.n));

  // The store must answer byte for byte as the folder does: every run against the first SQLite report.
  const differing = [fold, ...store, ...sqlite].map((m) => sameReport(build.stdout, m.stdout)).filter((v) => v !== 'identical');
  if (differing.length > 0) {
    throw new Error(`stats --store and stats --snapshots: ${differing.length} of ${1 + 2 * RUNS} reports differ from the first SQLite one, e.g. ${differing[0]}`);
  }
  console.log(`  ${pad('')} store and SQLite reports: identical (${2 + 2 * RUNS} runs, byte for byte)`);
}
