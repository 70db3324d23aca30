import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { Pool } from 'undici';
import { BIN, corpus, pad } from './harness.js';

/**
 * `hourmeter serve` under a bounded load on loopback: 50 connections for a fixed time
 * (BENCH_SERVE_SECONDS, default 30, split between two phases), against /stats and the
 * monthly CSV of the legacy-year corpus. Phase one repeats a few URLs (answers cached until
 * the next ingest); phase two asks for a different period each time (every answer computed).
 */

const CONNECTIONS = 50;

interface Load {
  requests: number;
  errors: number;
  seconds: number;
  latenciesMs: number[];
}

async function load(origin: string, seconds: number, path: (i: number) => string): Promise<Load> {
  const pool = new Pool(origin, { connections: CONNECTIONS });
  const latenciesMs: number[] = [];
  let errors = 0;
  let i = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      try {
        const r = await pool.request({ method: 'GET', path: path(i++) });
        await r.body.text();
        if (r.statusCode !== 200) errors++;
      } catch {
        errors++;
      }
      latenciesMs.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  await pool.close();
  return { requests: latenciesMs.length, errors, seconds: (performance.now() - started) / 1000, latenciesMs };
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}

function line(label: string, l: Load): string {
  return (
    `  ${pad(label)} ${(l.requests / l.seconds).toFixed(0).padStart(6)} req/s, p50 ${quantile(l.latenciesMs, 0.5).toFixed(1)} ms, ` +
    `p99 ${quantile(l.latenciesMs, 0.99).toFixed(1)} ms (${l.requests} requests in ${l.seconds.toFixed(1)} s, ${CONNECTIONS} connections, ${l.errors} errors)`
  );
}

export async function serveBench(): Promise<void> {
  const c = await corpus('legacy-year', { format: 'legacy', days: 365, intervalMinutes: 360, targetConcurrent: 800, seed: 42, fullFields: true });
  const total = Math.max(2, Number(process.env.BENCH_SERVE_SECONDS ?? 30));
  console.log(`serve on the legacy-year corpus (${c.sizes.files} files): ${total} s of load on 127.0.0.1`);
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--snapshots', c.dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const origin = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        const m = /listening on (http:\/\/\S+)\n/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.on('exit', (code) => reject(new Error(`serve exited with ${code}`)));
    });
    const months = Array.from({ length: 12 }, (_, k) => `/report/monthly/${k < 4 ? 2024 : 2025}/${((k + 8) % 12) + 1}`);
    const repeated = (i: number) => (i % 2 === 0 ? '/stats?from=2025-01-01&to=2025-01-31' : months[i % 12]!);
    console.log(line('a few URLs, repeated (cached answers)', await load(origin, total / 2, repeated)));
    // Distinct periods: day d of the year to day d + 1..30, so nearly every answer is computed.
    const day = (n: number) => new Date(Date.UTC(2024, 8, 1 + n)).toISOString().slice(0, 10);
    const distinct = (i: number) => (i % 2 === 0 ? `/stats?from=${day(i % 330)}&to=${day((i % 330) + 1 + (i % 29))}` : `${months[i % 12]}?tz=Etc/GMT-${i % 13}`);
    console.log(line('a new period each request (computed)', await load(origin, total / 2, distinct)));
    const status = await readFile(`/proc/${child.pid}/status`, 'utf8').catch(() => '');
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
    if (hwm) console.log(`  ${pad('server peak RSS')} ${(Number(hwm[1]) / 1024).toFixed(0)} MB (main thread and query workers)`);
  } finally {
    child.kill('SIGTERM');
  }
}
