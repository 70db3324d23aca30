import type { Document, Node, Pair, Scalar, YAMLMap, YAMLSeq } from 'yaml';
import { createRequire } from 'node:module';
import { hourDivisor, QUOTA_ORDER } from '../accounting/resources.js';
import type { Micros } from '../accounting/types.js';
import { UsageError } from '../util/errors.js';
import { parseDuration } from '../util/time.js';

/**
 * The quota file: which groups and users get how many resource-hours over which rolling
 * window. Pure: the file's text in, typed policies out, or a UsageError that names the
 * file, line and column of the first problem.
 */

/** The resources quotas cover (resources.ts), in the order quota output lists them. */
export const QUOTA_RESOURCES = QUOTA_ORDER.map((r) => r.name);
export type QuotaResource = (typeof QUOTA_ORDER)[number]['name'];
/** Each quota resource's field in a decision's `request`. */
export type RequestKey = (typeof QUOTA_ORDER)[number]['quota']['request']['key'];
export const COMBINES = ['max', 'min', 'sum'] as const;
export type Combine = (typeof COMBINES)[number];
export const SCOPES = ['groups', 'users', 'both'] as const;
export type Scope = (typeof SCOPES)[number];
export type Failure = 'open' | 'closed';

const MICROS_PER_HOUR = 3_600_000_000n;
/** The sizes a limit on a resource in bytes is written in. */
const SIZES = [
  ['MiB', 1n << 20n],
  ['GiB', 1n << 30n],
  ['TiB', 1n << 40n],
] as const;
/** A limit's unit as written, lower case → the resources it measures, base units (see Amounts) per unit, and its name. */
const UNIT_FACTORS = new Map<string, { resources: QuotaResource[]; base: bigint; name: string }>();
for (const r of QUOTA_ORDER) {
  const units = r.baseUnit === 'bytes' ? SIZES.map(([size, base]) => [size.toLowerCase(), base, `${size}-hours`] as const) : r.quota.words.map((w) => [w, r.perUnit, r.quota.unit] as const);
  for (const [word, base, name] of units) {
    const known = UNIT_FACTORS.get(word);
    if (known) known.resources.push(r.name);
    else UNIT_FACTORS.set(word, { resources: [r.name], base, name });
  }
}
const LIMIT = new RegExp(`^(\\d+(?:\\.\\d{1,6})?)\\s*(${[...UNIT_FACTORS.keys()].join('|')})[- ]?hours?$`, 'i');

/** The unit a resource's hours are reported in. */
export const DISPLAY_UNIT = Object.fromEntries(QUOTA_ORDER.map((r) => [r.name, { name: r.quota.unit, perHour: hourDivisor(r) }])) as Record<QuotaResource, { name: string; perHour: bigint }>;

/** A limit as the quota file gives one. */
export interface LimitSpec {
  /** A name for output: the policy's `name`, or one made from where it stands. */
  name: string;
  resource: QuotaResource;
  /** Base units × microseconds (exact). */
  limit: bigint;
  /** As written, e.g. "500 GiB-hours". */
  limitText: string;
  windowUs: Micros;
  /** As written, e.g. "30d". */
  window: string;
}

export interface Policy extends LimitSpec {
  scope: Scope;
  groups: string[];
  users: string[];
}

export interface QuotaConfig {
  policies: Policy[];
  /** Limits for users that no policy matches. */
  defaults: LimitSpec[];
  combine: Combine;
  /**
   * Group → members, when the file says who is in which group. Maps, as every table keyed
   * by a name: a group or user may be called `constructor` or `__proto__`.
   */
  members: Map<string, string[]>;
  /** User → limits that replace what the policies give for the same resource and window. */
  overrides: Map<string, LimitSpec[]>;
  exempt: string[];
  /** Groups whose members see every user's report on the JupyterHub service's admin page, as hub admins do. */
  admins: string[];
  staleAfterUs: Micros;
  staleAfter: string;
  failure: Failure | null;
  /** Deny message template (see TEMPLATE_FIELDS), or null for the default text. */
  message: string | null;
  contact: string | null;
}

export const DEFAULT_STALE_AFTER = '2h';

/** The placeholders a deny message may use. */
export const TEMPLATE_FIELDS = ['user', 'details', 'retry', 'retry_at', 'retry_in', 'contact', 'resource', 'window', 'used', 'limit', 'unit', 'requested', 'over', 'policy'] as const;

type Yaml = typeof import('yaml');
let yamlModule: Yaml | null = null;
/** Loaded on first use, as in config.ts: commands that never read a quota file start faster. */
const loadYaml = (): Yaml => (yamlModule ??= createRequire(import.meta.url)('yaml') as Yaml);

/** Reads a quota file's text; `file` names it in messages. */
export function parseQuotaFile(text: string, file: string): QuotaConfig {
  const Y = loadYaml();
  const lines = new Y.LineCounter();
  const doc = Y.parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined): string => {
    if (offset === undefined) return file;
    const p = lines.linePos(offset);
    return `${file}:${p.line}:${p.col}`;
  };
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new UsageError(`${at(e.pos[0])}: ${e.message.split('\n')[0]}; fix the YAML syntax`);
  }
  return new Reader(Y, doc, at).config();
}

class Reader {
  constructor(
    private readonly Y: Yaml,
    private readonly doc: Document,
    private readonly at: (offset: number | undefined) => string,
  ) {}

  private fail(node: Node | Pair | null | undefined, message: string): never {
    const offset = node && 'range' in node ? node.range?.[0] : node && 'key' in node ? (node.key as Node | null)?.range?.[0] : undefined;
    throw new UsageError(`${this.at(offset)}: ${message}`);
  }

  private map(node: unknown, what: string, keys: readonly string[]): Map<string, { key: Node; value: Node | null }> {
    if (!this.Y.isMap(node)) this.fail(node as Node, `${what} must be a map (key: value lines)`);
    const out = new Map<string, { key: Node; value: Node | null }>();
    for (const pair of (node as YAMLMap).items) {
      const key = pair.key as Node;
      const name = this.Y.isScalar(key) ? String(key.value) : null;
      if (name === null) this.fail(key, `${what}: keys must be plain names`);
      if (keys.length > 0 && !keys.includes(name)) this.fail(key, `${what}: unknown key "${name}"; expected one of ${keys.join(', ')}`);
      out.set(name, { key, value: pair.value as Node | null });
    }
    return out;
  }

  private text(node: Node | null, what: string): string {
    if (!this.Y.isScalar(node) || node.value === null || typeof node.value === 'object') this.fail(node, `${what} must be a single value`);
    return String((node as Scalar).value).trim();
  }

  private names(node: Node | null, what: string): string[] {
    if (this.Y.isScalar(node) && typeof node.value === 'string') return node.value.split(',').map((s) => s.trim()).filter(Boolean);
    if (!this.Y.isSeq(node)) this.fail(node, `${what} must be a list of names, e.g. [alice, bob]`);
    return (node as YAMLSeq).items.map((item) => {
      const name = this.text(item as Node, `${what} entries`);
      if (name === '') this.fail(item as Node, `${what}: empty name`);
      return name;
    });
  }

  private window(node: Node | null, what: string): { windowUs: number; window: string } {
    const window = this.text(node, what);
    const us = parseDuration(window);
    if (us === null || us <= 0) this.fail(node, `${what} "${window}" is not a duration: use e.g. 30d, 7d or 12h (rolling, 1d = 24h)`);
    return { windowUs: us, window };
  }

  private limit(entries: Map<string, { key: Node; value: Node | null }>, owner: Node, what: string, name: string): LimitSpec {
    const need = (key: string): Node | null => {
      const e = entries.get(key);
      if (!e) this.fail(owner, `${what}: missing "${key}"`);
      return e.value;
    };
    const resourceNode = need('resource');
    const resource = this.text(resourceNode, `${what}: resource`).toLowerCase();
    if (!(QUOTA_RESOURCES as readonly string[]).includes(resource)) this.fail(resourceNode, `${what}: resource "${resource}" is not one of ${QUOTA_RESOURCES.join(', ')}`);
    const limitNode = need('limit');
    const limit = parseLimit(this.Y.isScalar(limitNode) ? String((limitNode as Scalar).value) : '', resource as QuotaResource);
    if (typeof limit === 'string') this.fail(limitNode, `${what}: limit ${limit}`);
    const { windowUs, window } = this.window(need('window'), `${what}: window`);
    return { name, resource: resource as QuotaResource, limit: limit.value, limitText: limit.text, windowUs, window };
  }

  config(): QuotaConfig {
    const root = this.doc.contents;
    if (root === null) throw new UsageError(`${this.at(undefined)}: the quota file is empty; it needs at least "policies:"`);
    const top = this.map(root, 'the quota file', ['policies', 'default', 'combine', 'groups', 'overrides', 'exempt', 'admins', 'stale_after', 'failure', 'message', 'contact']);
    const get = (k: string) => top.get(k)?.value ?? null;
    if (!top.has('policies')) this.fail(root, 'missing "policies:" (a list of {resource, limit, window, scope, groups, users})');

    const combineText = top.has('combine') ? this.text(get('combine'), 'combine') : 'max';
    if (!(COMBINES as readonly string[]).includes(combineText)) this.fail(get('combine'), `combine "${combineText}" is not one of ${COMBINES.join(', ')}`);

    const policiesNode = get('policies');
    if (!this.Y.isSeq(policiesNode)) this.fail(policiesNode ?? top.get('policies')!.key, 'policies must be a list; start each policy with "- resource: ..."');
    const policies: Policy[] = [];
    const seenNames = new Set<string>();
    (policiesNode as YAMLSeq).items.forEach((item, i) => {
      const node = item as Node;
      const what = `policy ${i + 1}`;
      const e = this.map(node, what, ['name', 'resource', 'limit', 'window', 'scope', 'groups', 'users']);
      const name = e.has('name') ? this.text(e.get('name')!.value, `${what}: name`) : '';
      const spec = this.limit(e, node, what, name);
      if (!name) spec.name = `${spec.resource}/${spec.window}#${i + 1}`;
      if (seenNames.has(spec.name)) this.fail(e.get('name')?.value ?? node, `${what}: the name "${spec.name}" is used twice`);
      seenNames.add(spec.name);
      const groups = e.has('groups') ? this.names(e.get('groups')!.value, `${what}: groups`) : [];
      const users = e.has('users') ? this.names(e.get('users')!.value, `${what}: users`) : [];
      let scope: Scope;
      if (e.has('scope')) {
        const s = this.text(e.get('scope')!.value, `${what}: scope`);
        if (!(SCOPES as readonly string[]).includes(s)) this.fail(e.get('scope')!.value, `${what}: scope "${s}" is not one of ${SCOPES.join(', ')}`);
        scope = s as Scope;
      } else scope = groups.length > 0 && users.length > 0 ? 'both' : users.length > 0 ? 'users' : 'groups';
      if ((scope === 'groups' || scope === 'both') && groups.length === 0) this.fail(e.get('scope')?.value ?? node, `${what}: scope ${scope} needs a non-empty "groups:" list`);
      if ((scope === 'users' || scope === 'both') && users.length === 0) this.fail(e.get('scope')?.value ?? node, `${what}: scope ${scope} needs a non-empty "users:" list`);
      if (scope === 'groups' && users.length > 0) this.fail(e.get('users')!.key, `${what}: "users:" given with scope groups; use scope: both to match both`);
      if (scope === 'users' && groups.length > 0) this.fail(e.get('groups')!.key, `${what}: "groups:" given with scope users; use scope: both to match both`);
      policies.push({ ...spec, scope, groups, users });
    });

    const limitList = (node: Node | null, what: string, prefix: string): LimitSpec[] => {
      if (!this.Y.isSeq(node)) this.fail(node, `${what} must be a list of {resource, limit, window}`);
      const out = (node as YAMLSeq).items.map((item, i) => {
        const e = this.map(item, `${what} ${i + 1}`, ['resource', 'limit', 'window']);
        const spec = this.limit(e, item as Node, `${what} ${i + 1}`, '');
        spec.name = `${prefix}${spec.resource}/${spec.window}`;
        return spec;
      });
      const keys = new Set<string>();
      out.forEach((s, i) => {
        const k = `${s.resource}/${s.windowUs}`;
        if (keys.has(k)) this.fail((node as YAMLSeq).items[i] as Node, `${what} ${i + 1}: ${s.resource} over ${s.window} is given twice`);
        keys.add(k);
      });
      return out;
    };
    const defaults = top.has('default') ? limitList(get('default'), 'default', 'default ') : [];

    const members = new Map<string, string[]>();
    if (top.has('groups')) {
      for (const [group, { value }] of this.map(get('groups'), 'groups', [])) members.set(group, this.names(value, `groups: ${group}`));
    }
    const overrides = new Map<string, LimitSpec[]>();
    if (top.has('overrides')) {
      for (const [user, { value }] of this.map(get('overrides'), 'overrides', [])) overrides.set(user, limitList(value, `overrides: ${user}`, `override ${user} `));
    }
    const exempt = top.has('exempt') ? this.names(get('exempt'), 'exempt') : [];
    const admins = top.has('admins') ? this.names(get('admins'), 'admins') : [];

    const stale = top.has('stale_after') ? this.window(get('stale_after'), 'stale_after') : { windowUs: parseDuration(DEFAULT_STALE_AFTER)!, window: DEFAULT_STALE_AFTER };
    let failure: Failure | null = null;
    if (top.has('failure')) {
      const f = this.text(get('failure'), 'failure');
      if (f !== 'open' && f !== 'closed') this.fail(get('failure'), `failure "${f}" is not open or closed (what to decide when the usage data is stale)`);
      failure = f;
    }
    let message: string | null = null;
    if (top.has('message')) {
      const node = get('message');
      message = this.text(node, 'message');
      for (const m of message.matchAll(/\{([^{}]*)\}/g)) {
        if (!(TEMPLATE_FIELDS as readonly string[]).includes(m[1]!)) this.fail(node, `message: unknown placeholder {${m[1]}}; use ${TEMPLATE_FIELDS.map((f) => `{${f}}`).join(', ')}`);
      }
    }
    const contact = top.has('contact') ? this.text(get('contact'), 'contact') : null;
    return {
      policies,
      defaults,
      combine: combineText as Combine,
      members,
      overrides,
      exempt,
      admins,
      staleAfterUs: stale.windowUs,
      staleAfter: stale.window,
      failure,
      message,
      contact,
    };
  }
}

/** "500 GiB-hours", "120 CPU-hours", "0.5 TiB-hours" → base units × µs; or why not. */
export function parseLimit(text: string, resource: QuotaResource): { value: bigint; text: string } | string {
  const m = LIMIT.exec(text.trim());
  const r = QUOTA_ORDER.find((q) => q.name === resource)!;
  const others = SIZES.map(([size]) => `${size}-hours`).filter((u) => !r.quota.example.endsWith(` ${u}`));
  const examples = r.baseUnit === 'bytes' ? `${r.quota.example} (or ${others.join(', ')})` : r.quota.example;
  if (!m) return `"${text}" is not an amount of resource-hours: write e.g. ${examples}`;
  const unit = UNIT_FACTORS.get(m[2]!.toLowerCase())!;
  if (!unit.resources.includes(resource)) return `"${text}": ${unit.name} do not measure ${resource}; write e.g. ${examples}`;
  return { value: scaleDecimal(m[1]!, unit.base * MICROS_PER_HOUR), text: `${m[1]} ${unit.name}` };
}

/** A decimal string times an integer, exactly; the factor has enough powers of ten for six places. */
export function scaleDecimal(decimal: string, factor: bigint): bigint {
  const [whole, fraction = ''] = decimal.split('.') as [string, string?];
  const scale = 10n ** BigInt(fraction.length);
  return (BigInt(whole + fraction) * factor) / scale;
}
