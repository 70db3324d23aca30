import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXAMPLE_FILE } from '../../src/cli/commands/quota.js';
import { decide, limitsFor, membershipOf, NO_REQUEST, quotaReport, type QuotaRequest } from '../../src/quota/decide.js';
import { parseLimit, parseQuotaFile, type QuotaConfig } from '../../src/quota/policy.js';
import { parseHours, parseRequest } from '../../src/quota/request.js';
import type { QuotaAnswer } from '../../src/quota/service.js';
import { renderDecisionTable } from '../../src/reports/quota.js';
import { retryTime, usedBetween, type UsageInterval } from '../../src/quota/usage.js';
import { amounts, us } from '../helpers/builders.js';

/**
 * Quota decisions on hand-computed windows. Now is 2024-10-02T00:00Z and the latest
 * snapshot 2024-10-01T23:00Z unless a test says otherwise; "1d" windows are [10-01 00:00, now).
 */

const NOW = us('2024-10-02T00:00:00Z');
const LATEST = us('2024-10-01T23:00:00Z');
const HOUR = 3_600_000_000;
const GIB_HOUR = BigInt(2 ** 30) * 3_600_000_000n;

const iv = (start: string, end: string, res: Parameters<typeof amounts>[0], open = false): UsageInterval => ({ startUs: us(start), endUs: us(end), open, amounts: amounts(res) });

/** 4 GiB from 09-30 12:00 to 10-01 06:00: 18 h, of which 6 h (24 GiB-hours) lie in the 1d window. */
const STRADDLING = iv('2024-09-30T12:00:00Z', '2024-10-01T06:00:00Z', { memMiB: 4096 });
/** 2 cores from 10-01 20:00, still running at the latest snapshot (23:00): 6 CPU-hours so far. */
const OPEN_CPU = iv('2024-10-01T20:00:00Z', '2024-10-01T23:00:00Z', { cpu: 2 }, true);

const config = (yaml: string): QuotaConfig => parseQuotaFile(yaml, 'quota.yaml');

const BASE = `
stale_after: 2h
failure: closed
policies:
  - name: mem
    resource: memory
    limit: 30 GiB-hours
    window: 1d
    groups: [regular]
  - name: cpu
    resource: cpu
    limit: 8 CPU-hours
    window: 1d
    groups: [regular]
`;

const request = (text: string, hours: string | null): QuotaRequest => {
  const a = parseRequest(text);
  if (typeof a === 'string') throw new Error(a);
  const h = hours === null ? null : parseHours(hours);
  if (typeof h === 'string') throw new Error(h);
  return { amounts: a, hoursUs: h };
};

const check = (c: QuotaConfig, intervals: UsageInterval[], req: QuotaRequest, opts: { user?: string; groups?: string[]; latestUs?: number | null } = {}) =>
  decide(c, {
    user: opts.user ?? 'alice',
    membership: { groups: opts.groups ?? ['regular'], from: 'caller' },
    request: req,
    nowUs: NOW,
    latestUs: opts.latestUs === undefined ? LATEST : opts.latestUs,
    intervals,
  });

describe('usage over a rolling window', () => {
  it('counts only the part of a lifetime inside [now - window, now)', () => {
    expect(usedBetween([STRADDLING], 'memory', NOW - 24 * HOUR, NOW)).toBe(24n * GIB_HOUR);
    // A 7d window holds all 18 h: 72 GiB-hours.
    expect(usedBetween([STRADDLING], 'memory', NOW - 7 * 24 * HOUR, NOW)).toBe(72n * GIB_HOUR);
    expect(usedBetween([STRADDLING], 'cpu', NOW - 24 * HOUR, NOW)).toBe(0n);
  });

  it('counts open allocations up to the latest snapshot', () => {
    expect(usedBetween([OPEN_CPU], 'cpu', NOW - 24 * HOUR, NOW)).toBe(6n * 1000n * 3_600_000_000n);
  });
});

describe('quota check', () => {
  it('denies when usage plus request x hours exceeds the limit, with the exact retry time', () => {
    // 24 used + 4 GiB x 2 h = 32 > 30. Usage leaves the window at 4 GiB-hours per hour from
    // now: 24 - 4x <= 30 - 8 at x = 0.5 h.
    const d = check(config(BASE), [STRADDLING, OPEN_CPU], request('memory=4GiB', '2'));
    expect(d.decision).toBe('denied');
    expect(d.exit_code).toBe(1);
    const mem = d.policies.find((p) => p.resource === 'memory')!;
    expect(mem).toMatchObject({ used: 24, limit: 30, requested: 8, remaining: 6, percent: 80, allowed: false, retry_at: '2024-10-02T00:30:00.000000Z', retry_in_seconds: 1800 });
    expect(d.policies.find((p) => p.resource === 'cpu')).toMatchObject({ used: 6, limit: 8, allowed: true, retry_at: null });
    expect(d.retry_at).toBe('2024-10-02T00:30:00.000000Z');
    expect(d.message).toBe(
      'Quota exceeded for alice: memory over the last 1d: used 24.00 of 30.00 GiB-hours, this request needs 8.00 more: 2.00 GiB-hours over; it frees up at 2024-10-02T00:30:00Z (in 30m).',
    );
  });

  it('allows usage exactly at the limit: used + request x hours = limit', () => {
    // 6 CPU-hours used + 1 core x 2 h = 8 = the limit.
    const d = check(config(BASE), [STRADDLING, OPEN_CPU], request('cpu=1', '2'));
    expect(d.decision).toBe('allowed');
    expect(d.exit_code).toBe(0);
    expect(d.policies.find((p) => p.resource === 'cpu')).toMatchObject({ used: 6, requested: 2, limit: 8, remaining: 2, allowed: true });
    expect(d.message).toBeNull();
  });

  it('at the limit without --hours: a zero request is allowed, a positive one denied until the next microsecond frees room', () => {
    const c = config(BASE.replace('30 GiB-hours', '24 GiB-hours'));
    const zero = check(c, [STRADDLING], NO_REQUEST);
    expect(zero.decision).toBe('allowed');
    expect(zero.policies[1]).toMatchObject({ resource: 'memory', used: 24, limit: 24, remaining: 0, percent: 100, allowed: true });
    // A CPU-only request does not ask for memory: still allowed.
    expect(check(c, [STRADDLING], request('cpu=1', null)).decision).toBe('allowed');
    const mem = check(c, [STRADDLING], request('memory=1GiB', null));
    expect(mem.decision).toBe('denied');
    // Usage leaves the window continuously: one microsecond later it is below the limit.
    expect(mem.retry_at).toBe('2024-10-02T00:00:00.000001Z');
  });

  it('an open allocation keeps running: no retry time when it alone fills the window', () => {
    // 6 used + 1 core x 3 h = 9 > 8; the 2 cores running since 20:00 reach 48 CPU-hours a day.
    const d = check(config(BASE), [OPEN_CPU], request('cpu=1', '3'));
    expect(d.decision).toBe('denied');
    expect(d.policies.find((p) => p.resource === 'cpu')).toMatchObject({ allowed: false, retry_at: null, retry_note: expect.stringContaining('running allocations') });
    expect(d.retry_at).toBeNull();
    expect(d.message).toContain('it frees up only once your running servers stop');
  });

  it('a closed allocation frees the window once it slides past: retry 20:30 the next day', () => {
    // [20:00, 23:00) x 2 cores = 6 stays whole in the window until t - 24h passes 20:00,
    // then leaves at 2 CPU-hours per hour: 6 - 2x <= 8 - 3 at x = 0.5 h.
    const closed = { ...OPEN_CPU, open: false };
    const d = check(config(BASE), [closed], request('cpu=1', '3'));
    expect(d.policies.find((p) => p.resource === 'cpu')!.retry_at).toBe('2024-10-02T20:30:00.000000Z');
  });

  it('a request larger than the limit never fits', () => {
    const d = check(config(BASE), [], request('cpu=5', '2'));
    expect(d.policies.find((p) => p.resource === 'cpu')).toMatchObject({ allowed: false, retry_at: null, retry_note: 'the request alone exceeds the limit' });
  });
});

describe('which limits apply', () => {
  const groups = (combine: string) => `
combine: ${combine}
groups:
  regular: [alice, bob]
  power: [alice]
policies:
  - { name: regular-mem, resource: memory, limit: 60 GiB-hours, window: 30d, scope: groups, groups: [regular] }
  - { name: power-mem, resource: memory, limit: 240 GiB-hours, window: 30d, scope: groups, groups: [power] }
  - { name: power-gpu, resource: gpu, limit: 10 GPU-hours, window: 7d, scope: groups, groups: [power] }
  - { name: carol-cpu, resource: cpu, limit: 1.5 CPU-hours, window: 12h, scope: users, users: [carol] }
default:
  - { resource: memory, limit: 500 MiB-hours, window: 30d }
overrides:
  bob:
    - { resource: memory, limit: 0.5 TiB-hours, window: 30d }
exempt: [root]
`;
  const gib = (l: { limit: bigint }) => Number(l.limit / GIB_HOUR);

  it('a user in two groups gets the max by default, or min or sum', () => {
    for (const [how, expected] of [
      ['max', 240],
      ['min', 60],
      ['sum', 300],
    ] as const) {
      const c = config(groups(how));
      const m = membershipOf(c, 'alice', null, null);
      expect(m).toEqual({ groups: ['power', 'regular'], from: 'file' });
      const { limits } = limitsFor(c, 'alice', m.groups);
      expect(limits.map((l) => [l.resource, l.window, l.source, l.from])).toEqual([
        ['memory', '30d', 'policies', ['regular-mem', 'power-mem']],
        ['gpu', '7d', 'policies', ['power-gpu']],
      ]);
      expect(gib(limits[0]!)).toBe(expected);
    }
  });

  it('an override replaces the combined limit; an exempt user has none; others get the default', () => {
    const c = config(groups('max'));
    const bob = limitsFor(c, 'bob', ['regular']).limits;
    expect(bob.map((l) => [l.source, l.from, gib(l)])).toEqual([['override', ['override bob memory/30d'], 512]]);
    expect(limitsFor(c, 'root', ['power'])).toEqual({ exempt: true, limits: [] });
    const dave = limitsFor(c, 'dave', []).limits;
    expect(dave.map((l) => [l.source, l.limit])).toEqual([['default', 500n * 1_048_576n * 3_600_000_000n]]);
    const carol = limitsFor(c, 'carol', []).limits;
    expect(carol.map((l) => [l.from, l.limit])).toEqual([[['carol-cpu'], 1500n * 3_600_000_000n]]);
  });

  it('an exempt user is allowed whatever the usage', () => {
    const d = decide(config(groups('max')), { user: 'root', membership: { groups: [], from: 'none' }, request: request('gpu=8', '100'), nowUs: NOW, latestUs: LATEST, intervals: [] });
    expect(d).toMatchObject({ decision: 'allowed', exempt: true, policies: [], reason: 'root is exempt from quotas' });
  });

  it('groups: the caller beats the file, which beats the user database', () => {
    const c = config(groups('max'));
    expect(membershipOf(c, 'alice', ['x', 'x'], ['y'])).toEqual({ groups: ['x'], from: 'caller' });
    expect(membershipOf(c, 'alice', [], ['y'])).toEqual({ groups: [], from: 'caller' });
    expect(membershipOf(c, 'alice', null, ['y'])).toEqual({ groups: ['power', 'regular'], from: 'file' });
    expect(membershipOf(c, 'erin', null, ['regular'])).toEqual({ groups: ['regular'], from: 'userdb' });
    expect(membershipOf(c, 'erin', null, null)).toEqual({ groups: [], from: 'none' });
  });

  it('the report lists every user and limit by % used, highest first', () => {
    const c = config(groups('max'));
    const rows = quotaReport(
      c,
      [
        { user: 'alice', membership: membershipOf(c, 'alice', null, null), intervals: [iv('2024-09-20T00:00:00Z', '2024-09-21T00:00:00Z', { memMiB: 5120 })] },
        { user: 'bob', membership: membershipOf(c, 'bob', null, null), intervals: [iv('2024-09-20T00:00:00Z', '2024-09-30T00:00:00Z', { memMiB: 1024 })] },
        { user: 'root', membership: { groups: [], from: 'none' }, intervals: [] },
      ],
      NOW,
    );
    // alice: 5 GiB x 24 h = 120 of 240 (50%); bob: 1 GiB x 240 h = 240 of 512 (46.875%).
    expect(rows.map((r) => [r.user, r.resource, r.used, r.limit, r.percent])).toEqual([
      ['alice', 'memory', 120, 240, 50],
      ['bob', 'memory', 240, 512, 46.875],
      ['alice', 'gpu', 0, 10, 0],
    ]);
  });
});

describe('stale data is a decision', () => {
  const stale = { latestUs: us('2024-10-01T21:00:00Z') }; // 3 h old, stale_after 2h
  it('failure: closed denies, and says so', () => {
    const d = check(config(BASE), [], NO_REQUEST, stale);
    expect(d).toMatchObject({ decision: 'denied', exit_code: 1, data: { stale: true, age_seconds: 10800, failure: 'closed', failure_applied: 'closed' } });
    expect(d.reason).toBe('denied because the accounting data is stale: the latest snapshot, 2024-10-01T21:00:00Z, is 3h 0m old (stale_after 2h) and the quota file says failure: closed');
    expect(d.reason_code).toBe('stale');
    expect(d.message).toBe(`The quota of ${d.user} cannot be checked: the accounting data is stale: the latest snapshot, 2024-10-01T21:00:00Z, is 3h 0m old (stale_after 2h); new requests are refused until it is up to date.`);
  });
  it('failure: open allows, and says so', () => {
    const d = check(config(BASE.replace('failure: closed', 'failure: open')), [STRADDLING], request('memory=100GiB', '10'), stale);
    expect(d).toMatchObject({ decision: 'allowed', exit_code: 0, data: { stale: true, failure_applied: 'open' } });
    expect(d.reason).toContain('failure: open');
  });
  it('no failure rule: unable to decide (exit 3); no snapshot at all is stale too', () => {
    const c = config(BASE.replace('failure: closed\n', ''));
    expect(check(c, [], NO_REQUEST, stale)).toMatchObject({ decision: 'unable', exit_code: 3, data: { failure_applied: null } });
    expect(check(c, [], NO_REQUEST, { latestUs: null })).toMatchObject({ decision: 'unable', exit_code: 3, data: { latest_snapshot: null, age_seconds: null } });
    expect(check(config(BASE), [], NO_REQUEST, { latestUs: null })).toMatchObject({ decision: 'denied', data: { failure_applied: 'closed' } });
  });
  it('exactly stale_after old is still fresh', () => {
    expect(check(config(BASE), [], NO_REQUEST, { latestUs: NOW - 2 * HOUR }).data.stale).toBe(false);
  });
});

describe('deny message template', () => {
  it('fills the placeholders from the policy that frees up last', () => {
    const c = config(`${BASE}contact: "Ask in #hub-help."\nmessage: "{user}: {resource} quota {limit} {unit} per {window} is used up ({used} used, {over} over). Try again {retry}. {contact}"\n`);
    const d = check(c, [STRADDLING], request('memory=4GiB', '2'));
    expect(d.message).toBe('alice: memory quota 30.00 GiB-hours per 1d is used up (24.00 used, 2.00 over). Try again at 2024-10-02T00:30:00Z (in 30m). Ask in #hub-help.');
  });
});

describe('retry time is exact', () => {
  it('is the first microsecond at which usage in the window is at most the target', () => {
    // A small deterministic generator: many overlapping lifetimes, open and closed.
    let seed = 12345;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const W = 24 * HOUR;
    for (let round = 0; round < 40; round++) {
      const intervals: UsageInterval[] = [];
      for (let i = 0; i < 1 + rand(6); i++) {
        const start = NOW - rand(40) * HOUR - rand(3600) * 1_000_000;
        const open = rand(4) === 0;
        const end = open ? LATEST : Math.min(NOW, start + rand(30) * HOUR + rand(999_999));
        intervals.push({ startUs: start, endUs: Math.max(start, end), open, amounts: amounts({ cpu: 0.25 * (1 + rand(8)) }) });
      }
      const usedNow = usedBetween(intervals, 'cpu', NOW - W, NOW);
      const target = usedNow === 0n ? 0n : (usedNow * BigInt(rand(100))) / 100n;
      const t = retryTime(intervals, 'cpu', W, NOW, target);
      const valueAt = (x: number) => usedBetween(intervals.map((v) => (v.open ? { ...v, endUs: Infinity } : v)), 'cpu', x - W, x);
      if (t === null) {
        // Never: the open ones alone exceed the target over a whole window.
        expect(valueAt(NOW + 10 * W)).toBeGreaterThan(target);
        continue;
      }
      expect(valueAt(t)).toBeLessThanOrEqual(target);
      if (t > NOW) expect(valueAt(t - 1)).toBeGreaterThan(target);
    }
  });
});

describe('the quota file', () => {
  const error = (yaml: string): string => {
    try {
      parseQuotaFile(yaml, 'quota.yaml');
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error('no error');
  };

  it('reads limits with units, decimals allowed', () => {
    expect(parseLimit('500 GiB-hours', 'memory')).toEqual({ value: 500n * GIB_HOUR, text: '500 GiB-hours' });
    expect(parseLimit('120 cpu-hours', 'cpu')).toEqual({ value: 120n * 1000n * 3_600_000_000n, text: '120 CPU-hours' });
    expect(parseLimit('0.5 GPU-hours', 'gpu')).toEqual({ value: 1_800_000_000n, text: '0.5 GPU-hours' });
    expect(parseLimit('1.5 MiB-hours', 'disk')).toEqual({ value: 1_572_864n * 3_600_000_000n, text: '1.5 MiB-hours' });
    expect(parseLimit('500 GPU-hours', 'memory')).toBe('"500 GPU-hours": GPU-hours do not measure memory; write e.g. 500 GiB-hours (or MiB-hours, TiB-hours)');
    expect(parseLimit('500', 'cpu')).toBe('"500" is not an amount of resource-hours: write e.g. 120 CPU-hours');
    expect(parseLimit('2 core-hours', 'cpu')).toEqual({ value: 2n * 1000n * 3_600_000_000n, text: '2 CPU-hours' });
    expect(parseLimit('0.5 tib hours', 'disk')).toEqual({ value: (1n << 39n) * 3_600_000_000n, text: '0.5 TiB-hours' });
    expect(parseLimit('1 GiB-hours', 'cpu')).toBe('"1 GiB-hours": GiB-hours do not measure cpu; write e.g. 120 CPU-hours');
    expect(parseLimit('1 core-hours', 'gpu')).toBe('"1 core-hours": CPU-hours do not measure gpu; write e.g. 40 GPU-hours');
    expect(parseLimit('1 TB-hours', 'disk')).toBe('"1 TB-hours" is not an amount of resource-hours: write e.g. 500 GiB-hours (or MiB-hours, TiB-hours)');
  });

  it.each([
    ['policies:\n  - resource: memory\n    limit: 500 GB-hours\n    window: 30d\n    groups: [a]\n', 'quota.yaml:3:12: policy 1: limit "500 GB-hours" is not an amount of resource-hours: write e.g. 500 GiB-hours (or MiB-hours, TiB-hours)'],
    ['policies:\n  - resource: memory\n    limit: 5 GiB-hours\n    window: 30 days\n    groups: [a]\n', 'quota.yaml:4:13: policy 1: window "30 days" is not a duration: use e.g. 30d, 7d or 12h (rolling, 1d = 24h)'],
    ['policies:\n  - resource: ram\n    limit: 5 GiB-hours\n', 'quota.yaml:2:15: policy 1: resource "ram" is not one of cpu, memory, gpu, disk'],
    ['policies: []\nfailure: maybe\n', 'quota.yaml:2:10: failure "maybe" is not open or closed (what to decide when the usage data is stale)'],
    ['policies: []\nlimits: 3\n', 'quota.yaml:2:1: the quota file: unknown key "limits"; expected one of policies, default, combine, groups, overrides, exempt, admins, stale_after, failure, message, contact'],
    ['policies:\n  - resource: gpu\n    limit: 1 GPU-hours\n    window: 7d\n    scope: users\n', 'quota.yaml:5:12: policy 1: scope users needs a non-empty "users:" list'],
    ['policies:\n  - resource: gpu\n    limit: 1 GPU-hours\n    window: 7d\n    groups: [a]\n    users: [b]\n    scope: groups\n', 'quota.yaml:6:5: policy 1: "users:" given with scope groups; use scope: both to match both'],
    ['policies: []\nmessage: "Sorry {name}"\n', 'quota.yaml:2:10: message: unknown placeholder {name}; use {user}, {details}, {retry}, {retry_at}, {retry_in}, {contact}, {resource}, {window}, {used}, {limit}, {unit}, {requested}, {over}, {policy}'],
    ['policies:\n  - resource: cpu\n   limit: 2\n', 'quota.yaml:3:1: Sequence item without - indicator; fix the YAML syntax'],
    ['combine: max\n', 'quota.yaml:1:1: missing "policies:"'],
    ['', 'quota.yaml: the quota file is empty'],
  ])('names the line and column of a problem: %j', (yaml, message) => {
    expect(error(yaml)).toContain(message);
  });

  it('reads the defaults: max, stale after 2h, no failure rule', () => {
    const c = config('policies: []\n');
    expect(c).toMatchObject({ combine: 'max', staleAfter: '2h', staleAfterUs: 2 * HOUR, failure: null, message: null, exempt: [], defaults: [] });
  });
});

describe('requests', () => {
  it('reads cores, millicores, sizes and GPUs into base units', () => {
    expect(parseRequest('cpu=2,memory=4GiB,gpu=1,disk=10GiB')).toEqual({ cpu: 2000, memory: 4 * 2 ** 30, gpu: 1, disk: 10 * 2 ** 30 });
    expect(parseRequest('cpu=500m, memory=512Mi')).toEqual({ cpu: 500, memory: 512 * 2 ** 20, gpu: 0, disk: 0 });
    expect(parseRequest('memory=4GB')).toBe('memory=4GB: give a size with its unit, e.g. memory=4GiB (MiB, GiB, TiB)');
    expect(parseRequest('tpu=1')).toBe('"tpu" is not one of cpu, memory, gpu, disk');
    expect(parseRequest('gpu=0.5')).toBe('gpu=0.5: give a whole number of GPUs');
    expect(parseRequest('cpu=2c')).toBe('cpu=2c: give cores (2, 0.5) or millicores (500m)');
    expect(parseHours('1.5')).toBe(1.5 * HOUR);
    expect(parseHours('0')).toContain('give more than 0 hours');
  });

  it("keeps the decision's request fields, their order and the table's request line", () => {
    const d = check(config(BASE), [], request('disk=10GiB,gpu=2,memory=512MiB,cpu=1500m', '2'));
    expect(JSON.stringify(d.request)).toBe('{"cpu":1.5,"memory_gib":0.5,"gpu":2,"disk_gib":10,"hours":2}');
    const table = renderDecisionTable({ ...d, coverage: { warning: null } } as QuotaAnswer, { request: true });
    expect(table.split('\n')[2]).toBe('request: cpu 1.5, memory 0.5 GiB, gpu 2, disk 10 GiB for 2 h');
    const none = renderDecisionTable({ ...check(config(BASE), [], NO_REQUEST), coverage: { warning: null } } as QuotaAnswer, { request: true });
    expect(none.split('\n')[2]).toBe('request: nothing');
  });
});

describe('the documented examples', () => {
  it('the quota files in the README and in `quota --help` are valid', () => {
    const readme = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### hourmeter quota'));
    const yaml = /```yaml\n([\s\S]*?)```/.exec(section)![1]!;
    const c = parseQuotaFile(yaml, 'README.md');
    expect(c.policies.map((p) => [p.name, p.scope, p.groups, p.users])).toEqual([
      ['regular-memory', 'groups', ['regular'], []],
      ['gpu-dev', 'both', ['gpu-dev'], ['carol']],
    ]);
    expect(limitsFor(c, 'bob', ['regular']).limits.map((l) => [l.source, l.limit])).toEqual([['override', 512n * GIB_HOUR]]);
    const help = EXAMPLE_FILE.split('\n').filter((l) => l.startsWith('  ')).map((l) => l.slice(2)).join('\n');
    expect(parseQuotaFile(help, 'help').policies).toHaveLength(1);
  });
});
