import type { Micros } from '../accounting/types.js';
import { resource as declared } from '../accounting/resources.js';
import { QUOTA_RESOURCES, scaleDecimal, type QuotaResource } from './policy.js';
import type { QuotaRequest } from './decide.js';

/**
 * A request as callers write it: `cpu=2,memory=4GiB,gpu=1,disk=10GiB` (CPU in cores or
 * millicores `500m`; memory and disk in MiB, GiB or TiB, Kubernetes' Mi/Gi/Ti too; GPUs
 * whole), and `--hours` as a decimal number of hours. Errors are returned as text for the
 * caller to wrap (a CLI flag, an API field).
 */

const SIZE = /^(\d+(?:\.\d{1,6})?)\s*(MiB|GiB|TiB|Mi|Gi|Ti)$/i;
const BYTES: Record<string, bigint> = { m: 1n << 20n, g: 1n << 30n, t: 1n << 40n };

export function parseRequest(text: string): Record<QuotaResource, number> | string {
  const out = Object.fromEntries(QUOTA_RESOURCES.map((r) => [r, 0])) as Record<QuotaResource, number>;
  const seen = new Set<string>();
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^([a-z]+)\s*=\s*(.+)$/i.exec(part);
    if (!m) return `"${part}" is not resource=amount; write e.g. cpu=2,memory=4GiB,gpu=1`;
    const resource = m[1]!.toLowerCase();
    const value = m[2]!.trim();
    if (!(QUOTA_RESOURCES as readonly string[]).includes(resource)) return `"${resource}" is not one of ${QUOTA_RESOURCES.join(', ')}`;
    if (seen.has(resource)) return `${resource} is given twice`;
    seen.add(resource);
    const r = resource as QuotaResource;
    // How an amount is written follows the resource's base unit (resources.ts).
    const { baseUnit, unitName, perUnit } = declared(r);
    if (baseUnit === 'millicores') {
      const c = /^(\d+(?:\.\d{1,3})?)$/.exec(value);
      const milli = /^(\d+)m$/.exec(value);
      if (c) out[r] = Number(scaleDecimal(c[1]!, perUnit));
      else if (milli) out[r] = Number(milli[1]);
      else return `${r}=${value}: give ${unitName} (2, 0.5) or ${baseUnit} (500m)`;
    } else if (baseUnit === 'bytes') {
      const s = SIZE.exec(value);
      if (!s) return `${r}=${value}: give a size with its unit, e.g. ${r}=4GiB (MiB, GiB, TiB)`;
      out[r] = Number(scaleDecimal(s[1]!, BYTES[s[2]![0]!.toLowerCase()]!));
    } else {
      // Counted whole, in the reported unit (GPUs).
      if (!/^\d+$/.test(value)) return `${r}=${value}: give a whole number of ${unitName}`;
      out[r] = Number(BigInt(value) * perUnit);
    }
    if (!Number.isSafeInteger(out[r])) return `${r}=${value} is too large`;
  }
  return out;
}

/** "2", "0.5", "1.25" hours → microseconds (> 0), or why not. */
export function parseHours(text: string): Micros | string {
  const t = text.trim();
  if (!/^\d+(?:\.\d{1,6})?$/.test(t)) return `"${text}" is not a number of hours, e.g. 2 or 0.5`;
  const us = Number(scaleDecimal(t, 3_600_000_000n));
  if (us <= 0) return `"${text}": give more than 0 hours (leave it out to count no expected usage)`;
  return us;
}

export function quotaRequest(amounts: Record<QuotaResource, number>, hoursUs: Micros | null): QuotaRequest {
  return { amounts, hoursUs };
}
