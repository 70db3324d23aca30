/**
 * What a snapshot file may hold before a reader refuses it, in one place (documented in
 * docs/snapshot-format.md and the README). The limits are generous, far above any real
 * machine, but finite: one absurd value must not overflow a report's sums or blow up a
 * reader's memory.
 */

/**
 * The most one allocation may reserve, in the native format's units. In base units
 * (millicores, bytes) every limit stays an exact integer in a double, so sums stay exact.
 */
export const RESOURCE_MAXIMA = {
  /** The largest single machines have a few thousand cores. */
  cpu_cores: 10_000,
  /** 10,000 cores at 10 GHz. */
  cpu_mhz: 100_000_000,
  /** 64 TiB, above the largest single servers. */
  memory_mib: 64 * 1024 * 1024,
  /** 1 PiB. */
  disk_mib: 1024 * 1024 * 1024,
  /** GPUs (or other accelerators) in one allocation. */
  gpu: 1_024,
  /** Allocations of one queued job waiting to be placed. */
  queued: 1_000_000,
} as const;

export type LimitedAmount = keyof typeof RESOURCE_MAXIMA;

const UNITS: Record<LimitedAmount, string> = {
  cpu_cores: 'cores',
  cpu_mhz: 'MHz',
  memory_mib: 'MiB (64 TiB)',
  disk_mib: 'MiB (1 PiB)',
  gpu: 'GPUs',
  queued: 'allocations',
};

/**
 * Why `value` cannot be an amount of `resource` (non-finite, negative or above its
 * maximum), or null when it can. The caller names the field.
 */
export function amountProblem(resource: LimitedAmount, value: number): string | null {
  if (!Number.isFinite(value)) return `is ${value}, not a finite number`;
  if (value < 0) return `is ${value}, below zero`;
  const max = RESOURCE_MAXIMA[resource];
  if (value > max) return `is ${value}, above the maximum of ${max.toLocaleString('en-US')} ${UNITS[resource]}`;
  return null;
}

/**
 * A gzip file may inflate to at most GZIP_MAX_RATIO times its own size, or GZIP_FLOOR_BYTES
 * if that is more, and never beyond MAX_JSON_BYTES. JSON snapshots shrink about 5 to 30
 * times; a ratio near deflate's limit (about 1000) is a "gzip bomb". The decompression
 * stops at the cap, so such a file costs no more memory than the cap.
 */
export const GZIP_MAX_RATIO = 200;
export const GZIP_FLOOR_BYTES = 16 * 1024 * 1024;
/**
 * The most JSON one snapshot file may hold, gzipped or not: 512 MiB, close to the longest
 * string the JavaScript engine can make. The largest native snapshots seen are a few MB
 * (about 2.5 MB for 2,000 allocations).
 */
export const MAX_JSON_BYTES = 512 * 1024 * 1024;

/** The most bytes a gzip file of `compressedBytes` may inflate to. */
export function gunzipCap(compressedBytes: number): number {
  return Math.min(MAX_JSON_BYTES, Math.max(GZIP_FLOOR_BYTES, GZIP_MAX_RATIO * compressedBytes));
}
