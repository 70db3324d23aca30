/**
 * The resources an allocation reserves (docs/accounting.md#resources), each declared once:
 * a list, as Slurm's trackable resources are. Amounts, sums, the flavour table, report
 * columns, summaries, plots, quotas, the index and /metrics all derive from this list;
 * adding a resource is adding its entry here, plus its mapping in each source that
 * supplies it (src/sources, the snapshot readers) and a column in the index's schema.
 *
 * The list's order is the order of the flavour table the index stores (columns.ts) and of
 * the sums: moving an entry changes that layout. Outputs keep their own historical orders,
 * named below by resource.
 */

const MICROS_PER_HOUR = 3_600_000_000n;
const MIB = 1n << 20n;
const GIB = 1n << 30n;

export interface Resource {
  /** Its name in quota files, requests and messages, and what the orders below name it by. */
  readonly name: string;
  /** Its field in Amounts, in integer base units. */
  readonly amount: string;
  /** The base unit, and how many base units make one reported unit (a core, a GiB). */
  readonly baseUnit: string;
  readonly perUnit: bigint;
  /** Its field in the native snapshot format (`resources.<native>`), and base units per unit of it. */
  readonly native: { readonly field: string; readonly perBase: number };
  /** Its field in AI4OS legacy snapshots (`resources.<legacy>`; MB there are MiB). */
  readonly legacy: string;
  /** Its column in the index's `allocations` table (store/schema.ts). */
  readonly column: string;
  /** The report column of its hours (stats, summaries, plots), and its table headers. */
  readonly hours: string;
  readonly header: string;
  /** The compact table's header; null for a detail resource: shown after the others, and not in compact tables. */
  readonly compact: string | null;
  /** The plot's title for its hours per day. */
  readonly perDay: string;
  /** The column of an amount held, in reported units (top, monthly details), and top's full and compact headers for it. */
  readonly held: string;
  readonly heldHeader: readonly [full: string, compact: string | null];
  /** PrimeHub's monthly column of its hours; null when PrimeHub has none. */
  readonly primehub: string | null;
  /** The average amount held over a day (accounting/daily.ts), and its summary column. */
  readonly average: string;
  readonly averageColumn: string;
  /** The AI4OS `summarize.py` column, and AI4OS units per reported unit (MB per GiB). */
  readonly ai4os: { readonly column: string; readonly perUnit: number };
  /** Its reported unit as messages write it, plural (a request's "whole number of GPUs", "memory 4 GiB"). */
  readonly unitName: string;
  /**
   * Quotas; null when they do not cover it. `unit`: limits' unit as files and messages write
   * it; `words`: how a limit may spell its unit before "-hours", any case (a resource in bytes
   * takes MiB, GiB and TiB instead); `example`: a limit for messages; `request`: its field in a
   * decision's `request` (JSON, in reported units), and whether people read the amount with its
   * unitName after it.
   */
  readonly quota: {
    readonly unit: string;
    readonly words: readonly string[];
    readonly example: string;
    readonly request: { readonly key: string; readonly withUnit: boolean };
  } | null;
  /** The /metrics counter of unit-seconds allocated, and its units per reported unit (bytes per GiB); null when none is exported. */
  readonly metric: { readonly name: string; readonly help: string; readonly perUnit: number } | null;
}

export const RESOURCES = [
  {
    name: 'cpu',
    amount: 'cpuMilli',
    baseUnit: 'millicores',
    perUnit: 1000n,
    native: { field: 'cpu_cores', perBase: 1000 },
    legacy: 'cpu_num',
    column: 'cpu_milli',
    hours: 'cpu_hours',
    header: 'CPU-hours',
    compact: 'CPU h',
    perDay: 'CPU-hours per day',
    held: 'cpu_cores',
    heldHeader: ['CPU cores', 'CPU'],
    primehub: 'cpu_hours',
    average: 'cpu_cores',
    averageColumn: 'cpu_cores_avg',
    ai4os: { column: 'cpu_num', perUnit: 1 },
    unitName: 'cores',
    quota: { unit: 'CPU-hours', words: ['cpu', 'core'], example: '120 CPU-hours', request: { key: 'cpu', withUnit: false } },
    metric: { name: 'hourmeter_allocated_cpu_core_seconds_total', help: 'CPU core-seconds allocated since the first snapshot (exact, see docs/accounting.md#resource-hours).', perUnit: 1 },
  },
  {
    name: 'cpu_mhz',
    amount: 'cpuMhz',
    baseUnit: 'MHz',
    perUnit: 1n,
    native: { field: 'cpu_mhz', perBase: 1 },
    legacy: 'cpu_MHz',
    column: 'cpu_mhz',
    hours: 'cpu_mhz_hours',
    header: 'CPU MHz-hours',
    compact: null,
    perDay: 'CPU MHz-hours per day',
    held: 'cpu_mhz',
    heldHeader: ['CPU MHz', null],
    primehub: null,
    average: 'cpu_mhz',
    averageColumn: 'cpu_mhz_avg',
    ai4os: { column: 'cpu_MHz', perUnit: 1 },
    unitName: 'MHz',
    quota: null,
    metric: null,
  },
  {
    name: 'gpu',
    amount: 'gpu',
    baseUnit: 'devices',
    perUnit: 1n,
    native: { field: 'gpu', perBase: 1 },
    legacy: 'gpu_num',
    column: 'gpu',
    hours: 'gpu_hours',
    header: 'GPU-hours',
    compact: 'GPU h',
    perDay: 'GPU-hours per day',
    held: 'gpu',
    heldHeader: ['GPU', 'GPU'],
    primehub: 'gpu_hours',
    average: 'gpus',
    averageColumn: 'gpus_avg',
    ai4os: { column: 'gpu_num', perUnit: 1 },
    unitName: 'GPUs',
    quota: { unit: 'GPU-hours', words: ['gpu'], example: '40 GPU-hours', request: { key: 'gpu', withUnit: false } },
    metric: { name: 'hourmeter_allocated_gpu_seconds_total', help: 'GPU-seconds allocated since the first snapshot.', perUnit: 1 },
  },
  {
    name: 'memory',
    amount: 'memoryBytes',
    baseUnit: 'bytes',
    perUnit: GIB,
    native: { field: 'memory_mib', perBase: Number(MIB) },
    legacy: 'memory_MB',
    column: 'memory_bytes',
    hours: 'memory_gib_hours',
    header: 'Memory GiB-hours',
    compact: 'Mem GiB h',
    perDay: 'Memory GiB-hours per day',
    held: 'memory_gib',
    heldHeader: ['Memory GiB', 'Mem GiB'],
    primehub: 'memory_gb_hours',
    average: 'memory_gib',
    averageColumn: 'memory_gib_avg',
    ai4os: { column: 'memory_MB', perUnit: 1024 },
    unitName: 'GiB',
    quota: { unit: 'GiB-hours', words: [], example: '500 GiB-hours', request: { key: 'memory_gib', withUnit: true } },
    metric: { name: 'hourmeter_allocated_memory_byte_seconds_total', help: 'Memory byte-seconds allocated since the first snapshot.', perUnit: 2 ** 30 },
  },
  {
    name: 'disk',
    amount: 'diskBytes',
    baseUnit: 'bytes',
    perUnit: GIB,
    native: { field: 'disk_mib', perBase: Number(MIB) },
    legacy: 'disk_MB',
    column: 'disk_bytes',
    hours: 'disk_gib_hours',
    header: 'Disk GiB-hours',
    compact: 'Disk GiB h',
    perDay: 'Disk GiB-hours per day',
    held: 'disk_gib',
    heldHeader: ['Disk GiB', null],
    primehub: null,
    average: 'disk_gib',
    averageColumn: 'disk_gib_avg',
    ai4os: { column: 'disk_MB', perUnit: 1024 },
    unitName: 'GiB',
    quota: { unit: 'GiB-hours', words: [], example: '500 GiB-hours', request: { key: 'disk_gib', withUnit: true } },
    metric: { name: 'hourmeter_allocated_disk_byte_seconds_total', help: 'Disk byte-seconds allocated since the first snapshot.', perUnit: 2 ** 30 },
  },
] as const satisfies readonly Resource[];

type Declared = (typeof RESOURCES)[number];
export type ResourceName = Declared['name'];
export type AmountField = Declared['amount'];
export type HoursField = Declared['hours'];
export type AverageField = Declared['average'];

/** Resources in integer base units, so that resource × duration sums exactly with BigInt. */
export type Amounts = Record<AmountField, number>;
/** Resource-hours per resource, under its report column. */
export type ResourceHours = Record<HoursField, number>;

export const RESOURCE_COUNT = RESOURCES.length;
/** Amounts' fields in the list's order: the stride and layout of a flavour table (columns.ts). */
export const AMOUNT_FIELDS: readonly AmountField[] = RESOURCES.map((r) => r.amount);
/** Base units × µs in one reported unit-hour of a resource: millicores / 1000 × hour, bytes / 2^30 × hour. */
export function hourDivisor(r: Resource): bigint {
  return r.perUnit * MICROS_PER_HOUR;
}
/** hourDivisor of each resource, in the list's order. */
export const HOUR_DIVISORS: readonly bigint[] = RESOURCES.map(hourDivisor);

/** A resource by name. */
export function resource(name: ResourceName): Declared {
  return RESOURCES.find((r) => r.name === name)!;
}

/** The resources in an order given by name: an output that keeps its own historical order. */
function inOrder<N extends ResourceName>(names: readonly N[]): readonly Extract<Declared, { name: N }>[] {
  if (names.length !== new Set(names).size) throw new Error(`resource order names one twice: ${names.join(', ')}`);
  return names.map((n) => resource(n) as Extract<Declared, { name: N }>);
}

/** Zero of every resource. */
export function zeroAmounts(): Amounts {
  const a = {} as Amounts;
  for (const r of RESOURCES) a[r.amount] = 0;
  return a;
}

/**
 * The order of reports (stats, summaries, plots, summarize's days): the list's, with detail
 * resources (no compact header) after the others, as the tables always showed them.
 */
export const REPORT_ORDER: readonly Declared[] = [...RESOURCES.filter((r) => r.compact !== null), ...RESOURCES.filter((r) => r.compact === null)];
/** The report's hour columns, in REPORT_ORDER. */
export const HOUR_COLUMNS: readonly HoursField[] = REPORT_ORDER.map((r) => r.hours);

/** The native snapshot format's order of amounts (its tuples and checks, snapshots/). */
export const NATIVE_ORDER = inOrder(['cpu', 'cpu_mhz', 'memory', 'disk', 'gpu']);
/** AI4OS `summarize.py`'s column order. */
export const AI4OS_SUMMARY_ORDER = inOrder(['cpu', 'cpu_mhz', 'memory', 'disk', 'gpu']);
/** PrimeHub's monthly columns, in its order. */
export const PRIMEHUB_ORDER = inOrder(['gpu', 'cpu', 'memory']);
/** The amounts `top` shows and sorts by, in its order. */
export const TOP_ORDER = inOrder(['gpu', 'cpu', 'memory']);
/** The resources `plot` draws top-user charts by, in its order. */
export const PLOT_TOP_ORDER = inOrder(['cpu', 'gpu']);
/** The resources of the sure band line under a stats table: three, to fit one line. */
export const STATS_BAND_ORDER = inOrder(['cpu', 'gpu', 'memory']);
/** Quota resources, in the order quota output lists them. */
export const QUOTA_ORDER = inOrder(['cpu', 'memory', 'gpu', 'disk']);
