#!/usr/bin/env node
// The quick-start demo, end to end: a simulated cluster behind a fake Nomad API on
// 127.0.0.1, `hourmeter snapshot` run at simulated times (as cron would), then
// `hourmeter stats` on the folder, checked against the simulator's exact truth.
// Everything lands in ./demo (git-ignored) and is regenerated on every run.
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { aggregate } from '../dist/accounting/aggregate.js';
import { resolvePeriod } from '../dist/accounting/period.js';
import { startFakeNomad } from '../dist-tools/fake/nomad-server.js';
import { computeTruth, createCluster } from '../dist/simulator/index.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const DAYS = 2;

function cli(args, env = {}, { echo = true } = {}) {
  if (echo) console.log(`\n$ hourmeter ${args.join(' ')}`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/hourmeter.js', ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (b) => (out += b));
    child.on('error', reject);
    child.on('close', (code) => {
      if (echo) process.stdout.write(out);
      if (code === 0) resolve(out);
      else reject(new Error(`hourmeter ${args[0]} exited ${code}`));
    });
  });
}

rmSync(new URL('../demo', import.meta.url), { recursive: true, force: true });
const cluster = createCluster({ seed: 7, days: DAYS, intervalMinutes: 60, targetConcurrent: 40 });
const fake = await startFakeNomad({ cluster, token: 'demo-token' });
console.log(`A simulated Nomad cluster (${cluster.jobs.length} jobs over ${DAYS} days) answers at ${fake.url}.`);
console.log(`Taking ${cluster.snapshots.length} snapshots, one every simulated hour, as cron would:`);
try {
  for (const [i, s] of cluster.snapshots.entries()) {
    fake.setNow(s.timeUs);
    const at = new Date(s.timeUs / 1000).toISOString();
    const out = await cli(['snapshot', '--snapshots', 'demo/snapshots', '--userdb', 'demo/userdb', '--now', at], { NOMAD_ADDR: fake.url, NOMAD_TOKEN: 'demo-token' }, { echo: false });
    if (i < 2 || i === cluster.snapshots.length - 1) process.stdout.write(`  ${out}`);
    else if (i === 2) process.stdout.write('  ...\n');
  }
} finally {
  await fake.close();
}

const last = new Date(cluster.snapshots.at(-1).timeUs / 1000).toISOString().slice(0, 10);
await cli(['stats', '--snapshots', 'demo/snapshots', '--from', '2024-09-01', '--to', last]);
await cli(['stats', '--snapshots', 'demo/snapshots', '--from', '2024-09-02', '--to', '2024-09-02', '--by', 'namespace,user', '--namespace', 'ai4life', '--tz', 'Europe/Madrid']);
await cli(['userdb', 'show', '--userdb', 'demo/userdb']).catch(() => undefined);

// The simulator knows the exact truth, both as the snapshots showed it (all a report can
// count, and what its sure band bounds) and of every allocation.
const json = JSON.parse(await cli(['stats', '--snapshots', 'demo/snapshots', '--from', '2024-09-01', '--to', last, '-o', 'json'], {}, { echo: false }));
const period = resolvePeriod('2024-09-01', last, 'UTC');
const truth = computeTruth(cluster, { format: 'native' });
const seen = aggregate(truth.seen, period, ['namespace']).total;
const all = aggregate(truth.all, period, ['namespace']).total;
const inPeriod = (l) => l.startUs < period.endUs && l.endUs > period.startUs;
const seenCount = truth.seen.filter(inPeriod).length;
const unseen = truth.all.filter((l) => !l.observable && inPeriod(l)).length;
const restartedUnseen = truth.observable.filter((l) => inPeriod(l) && l.seenStartUs > l.startUs).length;

const low = json.bounds.low.total;
const high = json.bounds.high.total;
const num = (x, width) => x.toFixed(2).padStart(width);
// Both sides are exact sums divided once; the slack only absorbs floating-point rounding.
const place = (x, k) => {
  const slack = 1e-9 * Math.max(1, Math.abs(high[k]));
  return x < low[k] - slack ? 'below band' : x > high[k] + slack ? 'above band' : 'in band';
};
const against = (t, k) => {
  const diff = t[k] === 0 ? 0 : (100 * (json.total[k] - t[k])) / t[k];
  return `${num(t[k], 9)} (${diff >= 0 ? '+' : ''}${diff.toFixed(4)}%) ${place(t[k], k)}`;
};
const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
console.log(`\nAgainst the simulator's exact truth, 2024-09-01 to ${last} (hourmeter's difference in parentheses):`);
console.log(`${''.padEnd(18)} hourmeter   sure band (low – high)   truth as seen                  truth of all`);
for (const k of ['cpu_hours', 'gpu_hours', 'memory_gib_hours']) {
  console.log(`  ${k.padEnd(16)} ${num(json.total[k], 9)}   ${num(low[k], 9)} – ${num(high[k], 9)}    ${against(seen, k).padEnd(30)} ${against(all, k)}`);
}
console.log(
  [
    `Truth as seen: the ${plural(seenCount, 'allocation', 'allocations')} some snapshot saw, each from the first start a snapshot`,
    'listed. That is all a report can count, and what the sure band bounds.',
    `Truth of all adds what no snapshot saw: ${plural(unseen, 'allocation', 'allocations')} that started and ended between two`,
    `snapshots (gone before the next), and the hours before an in-place restart of ${plural(restartedUnseen, 'task', 'tasks')} that`,
    'no snapshot saw before the restart. Snapshots taken more often miss less of both.',
  ].join('\n'),
);
