#!/usr/bin/env node
// The quick-start demo: simulate a cluster history, then report on it with the real CLI.
// Everything lands in ./demo (git-ignored) and is regenerated on every run.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { aggregate } from '../dist/accounting/aggregate.js';
import { resolvePeriod } from '../dist/accounting/period.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = (...args) => {
  console.log(`\n$ hourmeter ${args.join(' ')}`);
  const r = spawnSync(process.execPath, ['bin/hourmeter.js', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  process.stdout.write(r.stdout);
  if (r.status !== 0) process.exit(r.status ?? 1);
  return r.stdout;
};

rmSync(new URL('../demo', import.meta.url), { recursive: true, force: true });
cli('simulate', '--out', 'demo/snapshots', '--days', '14', '--interval', '15m', '--concurrent', '60', '--seed', '7', '--truth', 'demo/truth.json');
cli('stats', '--snapshots', 'demo/snapshots', '--from', '2024-09-01', '--to', '2024-09-14');
cli('stats', '--snapshots', 'demo/snapshots', '--from', '2024-09-08', '--to', '2024-09-08', '--by', 'namespace,user', '--tz', 'Europe/Madrid', '--namespace', 'ai4life');

// The simulator knows the exact truth: show how close the report is.
const json = JSON.parse(spawnSync(process.execPath, ['bin/hourmeter.js', 'stats', '--snapshots', 'demo/snapshots', '--from', '2024-09-01', '--to', '2024-09-14', '-o', 'json'], { cwd: root, encoding: 'utf8' }).stdout);
const truth = JSON.parse(readFileSync(new URL('../demo/truth.json', import.meta.url), 'utf8'));
const exact = aggregate(truth.lifetimes, resolvePeriod('2024-09-01', '2024-09-14', 'UTC'), ['namespace']).total;
console.log('\nAgainst the simulator\'s ground truth (all allocations, 2024-09-01 to 2024-09-14):');
for (const k of ['cpu_hours', 'gpu_hours', 'memory_gib_hours']) {
  const diff = (100 * (json.total[k] - exact[k])) / exact[k];
  console.log(`  ${k.padEnd(17)} hourmeter ${json.total[k].toFixed(2).padStart(12)}   truth ${exact[k].toFixed(2).padStart(12)}   (${diff >= 0 ? '+' : ''}${diff.toFixed(4)}%)`);
}
