import type { Ai4osResult, Ai4osRow } from '../accounting/ai4os.js';
import { toCsv } from './csv.js';
import { plainTable } from './table.js';

/** `--method ai4os` output, in the original's vocabulary and table layout. */

export interface Ai4osReport extends Ai4osResult {
  period: { from: string; to: string };
}

const LABELS: [keyof Ai4osRow, string][] = [
  ['cpu_num_hours', 'cpu_num hours'],
  ['cpu_MHz_hours', 'cpu_MHz hours'],
  ['gpu_num_hours', 'gpu_num hours'],
  ['memory_MB_hours', 'memory_MB hours'],
  ['disk_MB_hours', 'disk_MB hours'],
  ['jobs', 'Nº jobs'],
  ['users', 'Nº active users'],
];

function block(title: string, row: Ai4osRow): string {
  const t = plainTable({ colAligns: ['right', 'right'] });
  for (const [key, label] of LABELS) t.push([label, String(row[key])]);
  return `${title}\n${t.toString()}`;
}

export function renderAi4osTable(r: Ai4osReport): string {
  const span = `${r.period.from}:${r.period.to}`;
  const parts = r.rows.map((row) => block(`${row.namespace.toUpperCase()} accounting for the period ${span}`, row));
  parts.push(block(`Aggregated accounting for the period ${span}`, r.total));
  return parts.join('\n') + '\n';
}

export function renderAi4osCsv(r: Ai4osReport, delimiter = ','): string {
  const columns = ['namespace', ...LABELS.map(([k]) => k)];
  const rows = [...r.rows, { namespace: '(total)', ...r.total }] as unknown as Record<string, unknown>[];
  return toCsv(columns, rows, delimiter);
}
