import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run, startServe, tempDir } from '../helpers/cli.js';
import { hubSnapshot } from '../helpers/monthly-folder.js';
import { QUOTA_FILE, QUOTA_NOW, quotaFolder } from '../helpers/quota-folder.js';

/** Quota decisions that no reading path, instant, stale history or user name can bend. */

const quota = (cwd: string, args: string[], now = QUOTA_NOW) => run(['quota', ...args, '--now', now], { cwd });

describe('quota --no-index', () => {
  it('check, show and report read the same usage from the files as from the index', () => {
    const cwd = quotaFolder();
    const cases = [
      ['check', '--user', 'alice', '--request', 'memory=4GiB', '--hours', '2', '-o', 'json'],
      ['check', '--user', 'bob', '--request', 'gpu=1', '--hours', '3', '-o', 'json'],
      ['show', '--user', 'bob', '-o', 'json'],
      ['report', '-o', 'csv'],
    ];
    for (const args of cases) {
      const files = quota(cwd, [...args, '--no-index']);
      const index = quota(cwd, args);
      expect(files.stdout).toBe(index.stdout);
      expect(files.code).toBe(index.code);
    }
    // The hand-computed numbers, read from the files.
    const alice = JSON.parse(quota(cwd, [...cases[0]!, '--no-index']).stdout) as { decision: string; policies: unknown[] };
    expect(alice).toMatchObject({ decision: 'denied', policies: [{ used: 24, requested: 8, limit: 30, allowed: false }] });
    const bob = JSON.parse(quota(cwd, ['show', '--user', 'bob', '-o', 'json', '--no-index']).stdout) as { policies: unknown[] };
    expect(bob.policies).toEqual([expect.objectContaining({ resource: 'gpu', used: 18, limit: 20, remaining: 2, percent: 90 })]);
    expect(quota(cwd, ['report', '-o', 'csv', '--no-index']).stdout).toBe(
      'user,groups,resource,window,unit,used,limit,remaining,percent,source,policies\n' +
        'bob,gpu,gpu,1d,GPU-hours,18.00,20.00,2.00,90.00,policies,gpu-hours\n' +
        'alice,regular,memory,1d,GiB-hours,24.00,30.00,6.00,80.00,policies,regular-memory\n' +
        'carol,,cpu,1d,CPU-hours,0.00,1.00,1.00,0.00,default,default cpu/1d\n',
    );
  });
});

/**
 * Three snapshots, the quota file of quota-folder.ts (alice regular, bob gpu, carol default):
 * - 10-01 00:00: a1 (alice, 4 GiB) running since 09-30 12:00;
 * - 10-01 06:00: a1 running; b1 (bob, 1 GPU) running since 05:00;
 * - 10-01 12:00: a1 complete at 08:00; b1 running; c1 (carol, 1 core) running since 06:30.
 * Only the files given by their capture time are written, so a copy holds a prefix.
 */
const REPLAY_FILES = ['2024-10-01T00:00:00Z', '2024-10-01T06:00:00Z', '2024-10-01T12:00:00Z'];
function replayFolder(upTo = REPLAY_FILES.length): string {
  const cwd = tempDir();
  mkdirSync(join(cwd, 'snapshots'));
  const alloc = (id: string, user: string, status: string, start: string, end: string | null, cores: number, gpu: number, memGiB: number) => ({
    id, namespace: 'hub', job_id: `job-${id}`, job_name: `nb-${id}`, user, group: null, component: 'jupyter', node: 'n1', status,
    created: null, start, end, modified: null, resources: { cpu_cores: cores, cpu_mhz: 0, memory_mib: memGiB * 1024, disk_mib: 0, gpu },
  });
  const a1 = (status: string, end: string | null) => alloc('a1', 'alice', status, '2024-09-30T12:00:00Z', end, 0, 0, 4);
  const b1 = alloc('b1', 'bob', 'running', '2024-10-01T05:00:00Z', null, 0, 1, 0);
  const c1 = alloc('c1', 'carol', 'running', '2024-10-01T06:30:00Z', null, 1, 0, 0);
  const contents = [[a1('running', null)], [a1('running', null), b1], [a1('complete', '2024-10-01T08:00:00Z'), b1, c1]];
  REPLAY_FILES.slice(0, upTo).forEach((at, i) => writeFileSync(join(cwd, 'snapshots', `${at}.json`), JSON.stringify(hubSnapshot(at, contents[i]!))));
  writeFileSync(join(cwd, 'quota.yaml'), QUOTA_FILE);
  return cwd;
}

describe('quota --now before the latest snapshot', () => {
  const NOW = '2024-10-01T07:00:00Z'; // after the second file, before the third
  const cases = [
    ['report', '-o', 'json'],
    ['report', '-o', 'csv'],
    ['show', '--user', 'alice', '-o', 'json'],
    ['check', '--user', 'alice', '--request', 'memory=1GiB', '-o', 'json'],
    ['check', '--user', 'bob', '--request', 'gpu=1', '--hours', '2', '-o', 'json'],
    ['check', '--user', 'carol', '-o', 'json'],
  ];

  it('a replay counts only what the files captured by then say: the run made at that time', () => {
    const full = replayFolder();
    const then = replayFolder(2);
    for (const args of cases) {
      for (const index of [[], ['--no-index']]) {
        const replay = quota(full, [...args, ...index], NOW);
        const atTheTime = quota(then, [...args, ...index], NOW);
        expect({ args, index, stdout: replay.stdout, code: replay.code }).toEqual({ args, index, stdout: atTheTime.stdout, code: atTheTime.code });
      }
    }
    // By hand, window [09-30 07:00, 10-01 07:00), latest snapshot 06:00: alice's a1 held 4 GiB
    // from 09-30 12:00 and was running at 06:00 (18 h: 72 GiB-hours; its end at 08:00 is not
    // known yet); bob's b1 from 05:00 to 06:00 (1 GPU-hour); carol's c1 was not seen yet.
    expect(quota(full, ['report', '-o', 'csv'], NOW).stdout).toBe(
      'user,groups,resource,window,unit,used,limit,remaining,percent,source,policies\n' +
        'alice,regular,memory,1d,GiB-hours,72.00,30.00,0.00,240.00,policies,regular-memory\n' +
        'bob,gpu,gpu,1d,GPU-hours,1.00,20.00,19.00,5.00,policies,gpu-hours\n',
    );
    const alice = JSON.parse(quota(full, cases[3]!, NOW).stdout) as Record<string, unknown>;
    expect(alice).toMatchObject({ decision: 'denied', data: { latest_snapshot: '2024-10-01T06:00:00.000000Z', age_seconds: 3600 }, policies: [{ used: 72, retry_at: null }] });
  });

  it('the index, kept up to date by the replay or not, still answers the present from every file', () => {
    const cwd = replayFolder();
    quota(cwd, ['report', '-o', 'csv'], NOW);
    // At 12:00 (by hand): a1 from 09-30 12:00 to 10-01 08:00 = 20 h x 4 GiB; b1 7 GPU-hours; c1 5.5 CPU-hours.
    expect(quota(cwd, ['report', '-o', 'csv'], '2024-10-01T12:00:00Z').stdout).toBe(
      'user,groups,resource,window,unit,used,limit,remaining,percent,source,policies\n' +
        'carol,,cpu,1d,CPU-hours,5.50,1.00,0.00,550.00,default,default cpu/1d\n' +
        'alice,regular,memory,1d,GiB-hours,80.00,30.00,0.00,266.67,policies,regular-memory\n' +
        'bob,gpu,gpu,1d,GPU-hours,7.00,20.00,13.00,35.00,policies,gpu-hours\n',
    );
  });
});

const ADMIN = 'admin-s3cret';
async function serve(cwd: string, now = QUOTA_NOW): Promise<string> {
  writeFileSync(join(cwd, 'token'), `${ADMIN}\n`);
  return (await startServe(cwd, ['--token-file', 'token', '--quota', 'quota.yaml', '--now', now, '--workers', '1'])).url;
}
const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
const post = async (url: string, token: string, body: unknown) =>
  (await fetch(`${url}/quota/check`, { method: 'POST', headers: { ...bearer(token), 'Content-Type': 'application/json' }, body: JSON.stringify(body) })).json() as Promise<Record<string, unknown>>;

describe('a denial for stale data is not a quota exceeded', () => {
  const LATER = '2024-10-02T01:00:01Z'; // the 23:00 snapshot is just over 2h old
  const STALE =
    'The quota of alice cannot be checked: the accounting data is stale: the latest snapshot, 2024-10-01T23:00:00Z, is 2h 0m old (stale_after 2h); ' +
    'new requests are refused until it is up to date. Ask for more in #hub-help.';

  it('check says the accounting data is stale and how old, with reason_code "stale", whatever the deny template', () => {
    const cwd = quotaFolder();
    // alice would also be over her memory limit: the stale data decides, and says so.
    const args = ['check', '--user', 'alice', '--request', 'memory=64GiB', '--hours', '10'];
    const r = quota(cwd, [...args, '-o', 'json'], LATER);
    expect(r.code).toBe(1);
    const d = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(d).toMatchObject({ decision: 'denied', reason_code: 'stale', data: { stale: true, age_seconds: 7201, failure_applied: 'closed' }, message: STALE });
    expect(d.reason).toBe('denied because the accounting data is stale: the latest snapshot, 2024-10-01T23:00:00Z, is 2h 0m old (stale_after 2h) and the quota file says failure: closed');
    const table = quota(cwd, args, LATER);
    expect(table.stdout).not.toMatch(/exceeded/i);
    expect(table.stdout.split('\n').at(-2)).toBe(STALE);
    expect(table.stderr).toBe(`hourmeter: quota check: alice denied: ${d.reason as string}\n`);

    // A template written for over-limit denials is not used for stale ones.
    writeFileSync(join(cwd, 'quota.yaml'), QUOTA_FILE + 'message: "Your {resource} quota ({limit} {unit} per {window}) is used up: {details}. {contact}"\n');
    expect(JSON.parse(quota(cwd, [...args, '-o', 'json'], LATER).stdout)).toMatchObject({ reason_code: 'stale', message: STALE });
    // The same request on fresh data is over the limit, and says that.
    const over = JSON.parse(quota(cwd, [...args, '-o', 'json']).stdout) as Record<string, unknown>;
    expect(over).toMatchObject({ decision: 'denied', reason_code: 'over_limit', reason: 'quota exceeded: memory over 1d' });
    expect(over.message).toMatch(/^Your memory quota \(30\.00 GiB-hours per 1d\) is used up: /);
  });

  it('reason_code tells every verdict apart', () => {
    const cwd = quotaFolder();
    const code = (args: string[], now?: string) => (JSON.parse(quota(cwd, [...args, '-o', 'json'], now).stdout) as { reason_code: string }).reason_code;
    expect(code(['check', '--user', 'alice'])).toBe('within_limits');
    expect(code(['check', '--user', 'alice', '--request', 'memory=64GiB', '--hours', '10'])).toBe('over_limit');
    expect(code(['check', '--user', 'alice'], LATER)).toBe('stale');
    expect(code(['check', '--user', 'alice'], '2024-09-30T00:00:00Z')).toBe('no_data');
    writeFileSync(join(cwd, 'quota.yaml'), QUOTA_FILE.replace('default:\n  - { resource: cpu, limit: 1 CPU-hours, window: 1d }\n', '') + 'exempt: [bob]\n');
    expect(code(['check', '--user', 'carol'])).toBe('no_limits');
    expect(code(['check', '--user', 'bob'], LATER)).toBe('exempt');
    const none = JSON.parse(quota(cwd, ['check', '--user', 'alice', '-o', 'json'], '2024-09-30T00:00:00Z').stdout) as Record<string, unknown>;
    expect(none.message).toBe('The quota of alice cannot be checked: there is no accounting data (no readable snapshot); new requests are refused until it is up to date. Ask for more in #hub-help.');
  });

  it('POST /quota/check answers a stale denial as the CLI does', async () => {
    const cwd = quotaFolder();
    const url = await serve(cwd, LATER);
    const d = await post(url, ADMIN, { user: 'alice', request: 'memory=64GiB', hours: 10 });
    expect(d).toMatchObject({ decision: 'denied', reason_code: 'stale', message: STALE });
    expect(d).toEqual(JSON.parse(quota(cwd, ['check', '--user', 'alice', '--request', 'memory=64GiB', '--hours', '10', '-o', 'json'], LATER).stdout));
  });
});

/**
 * Users and groups named like the properties every plain object has, 1d windows, now
 * 2024-10-02T00:00:00Z (window [10-01 00:00, 10-02 00:00)), snapshots 10-01 00:00, 12:00, 23:00:
 * - __proto__: 4 GiB from 12:00 to 18:00: 24 GiB-hours; group constructor (file), an override
 *   of 10 GiB-hours replaces the group's 30;
 * - toString: 1 GPU from 12:00, still running at 23:00: 11 GPU-hours of its 20;
 * - constructor: 1 core from 12:00 to 12:30: 0.5 CPU-hours; groups from the user database
 *   (hasOwnProperty, which no policy names): the default 1 CPU-hour;
 * - hasOwnProperty: group constructor, no usage; valueOf: exempt.
 */
const PROTO_QUOTA = `stale_after: 2h
failure: closed
groups:
  constructor: [__proto__, hasOwnProperty]
  toString: [toString]
policies:
  - name: constructor-memory
    resource: memory
    limit: 30 GiB-hours
    window: 1d
    scope: groups
    groups: [constructor]
  - name: tostring-gpu
    resource: gpu
    limit: 20 GPU-hours
    window: 1d
    scope: users
    users: [toString]
default:
  - { resource: cpu, limit: 1 CPU-hours, window: 1d }
overrides:
  __proto__:
    - { resource: memory, limit: 10 GiB-hours, window: 1d }
exempt: [valueOf]
`;

function protoFolder(): string {
  const cwd = tempDir();
  mkdirSync(join(cwd, 'snapshots'));
  const alloc = (id: string, user: string, status: string, end: string | null, cores: number, gpu: number, memGiB: number) => ({
    id, namespace: 'hub', job_id: `job-${id}`, job_name: `nb-${id}`, user, group: null, component: 'jupyter', node: 'n1', status,
    created: null, start: '2024-10-01T12:00:00.000000Z', end, modified: null, resources: { cpu_cores: cores, cpu_mhz: 0, memory_mib: memGiB * 1024, disk_mib: 0, gpu },
  });
  const files: [string, unknown[]][] = [
    ['2024-10-01T00:00:00Z', []],
    ['2024-10-01T12:00:00Z', [alloc('p1', '__proto__', 'running', null, 0, 0, 4), alloc('t1', 'toString', 'running', null, 0, 1, 0), alloc('c1', 'constructor', 'running', null, 1, 0, 0)]],
    ['2024-10-01T23:00:00Z', [alloc('p1', '__proto__', 'complete', '2024-10-01T18:00:00Z', 0, 0, 4), alloc('t1', 'toString', 'running', null, 0, 1, 0), alloc('c1', 'constructor', 'complete', '2024-10-01T12:30:00Z', 1, 0, 0)]],
  ];
  for (const [at, allocations] of files) writeFileSync(join(cwd, 'snapshots', `${at}.json`), JSON.stringify(hubSnapshot(at, allocations)));
  writeFileSync(join(cwd, 'quota.yaml'), PROTO_QUOTA);
  mkdirSync(join(cwd, 'userdb'));
  const user = (groups: string[]) => ({ name: null, email: null, first_seen: null, last_seen: null, groups });
  // Written as text: an object literal's "__proto__" key would set a prototype, not a user.
  writeFileSync(
    join(cwd, 'userdb', 'users.json'),
    `{"__proto__": ${JSON.stringify(user(['ignored']))}, "constructor": ${JSON.stringify(user(['hasOwnProperty']))}, "valueOf": ${JSON.stringify(user([]))}}`,
  );
  return cwd;
}

describe('user and group names that plain objects already have', () => {
  it('groups, overrides, exemptions and the user database take __proto__, constructor, toString as names', () => {
    const cwd = protoFolder();
    for (const index of [[], ['--no-index']]) {
      expect(quota(cwd, ['report', '-o', 'csv', ...index]).stdout).toBe(
        'user,groups,resource,window,unit,used,limit,remaining,percent,source,policies\n' +
          '__proto__,constructor,memory,1d,GiB-hours,24.00,10.00,0.00,240.00,override,override __proto__ memory/1d\n' +
          'toString,toString,gpu,1d,GPU-hours,11.00,20.00,9.00,55.00,policies,tostring-gpu\n' +
          'constructor,hasOwnProperty,cpu,1d,CPU-hours,0.50,1.00,0.50,50.00,default,default cpu/1d\n' +
          'hasOwnProperty,constructor,memory,1d,GiB-hours,0.00,30.00,30.00,0.00,policies,constructor-memory\n',
      );
    }
    expect(JSON.parse(quota(cwd, ['report', '-o', 'json']).stdout)).toMatchObject({ exempt: ['valueOf'] });
    const check = (args: string[]) => {
      const r = quota(cwd, ['check', ...args, '-o', 'json']);
      return { code: r.code, ...(JSON.parse(r.stdout) as Record<string, unknown>) };
    };
    expect(check(['--user', '__proto__', '--request', 'memory=1GiB'])).toMatchObject({
      code: 1, user: '__proto__', reason_code: 'over_limit', groups: ['constructor'], groups_from: 'file', policies: [{ resource: 'memory', source: 'override', used: 24, limit: 10 }],
    });
    expect(check(['--user', 'constructor'])).toMatchObject({ code: 0, groups: ['hasOwnProperty'], groups_from: 'userdb', policies: [{ resource: 'cpu', source: 'default', used: 0.5, limit: 1 }] });
    expect(check(['--user', 'toString', '--request', 'gpu=1', '--hours', '9'])).toMatchObject({ code: 0, groups: ['toString'], policies: [{ resource: 'gpu', used: 11, requested: 9, limit: 20, allowed: true }] });
    expect(check(['--user', 'hasOwnProperty'])).toMatchObject({ code: 0, groups: ['constructor'], groups_from: 'file', policies: [{ resource: 'memory', used: 0, limit: 30 }] });
    expect(check(['--user', 'valueOf', '--request', 'gpu=8', '--hours', '100'])).toMatchObject({ code: 0, reason_code: 'exempt', exempt: true });
    // A name no one has, that every plain object answers to.
    expect(check(['--user', 'isPrototypeOf'])).toMatchObject({ code: 0, groups: [], groups_from: 'none', policies: [{ resource: 'cpu', used: 0, limit: 1 }] });
  });

  it('a token for __proto__ or constructor works with serve, for that user only', async () => {
    const cwd = protoFolder();
    const proto = quota(cwd, ['token', '--user', '__proto__']).stdout.trim();
    const ctor = quota(cwd, ['token', '--user', 'constructor']).stdout.trim();
    expect(Object.keys(JSON.parse(readFileSync(join(cwd, 'userdb', 'quota-tokens.json'), 'utf8')) as object)).toEqual(['__proto__', 'constructor']);
    const url = await serve(cwd);
    const own = await fetch(`${url}/quota/__proto__`, { headers: bearer(proto) });
    expect(own.status).toBe(200);
    expect(await own.json()).toMatchObject({ user: '__proto__', groups: ['constructor'], policies: [{ source: 'override', used: 24, limit: 10 }] });
    expect(await post(url, ctor, { user: 'constructor', request: 'cpu=1' })).toMatchObject({ user: 'constructor', decision: 'allowed', policies: [{ used: 0.5, limit: 1 }] });
    expect((await fetch(`${url}/quota/constructor`, { headers: bearer(proto) })).status).toBe(403);
    expect((await fetch(`${url}/quota/toString`, { headers: bearer(ctor) })).status).toBe(403);
  });

  it('userdb import keeps users named __proto__ and constructor', () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, 'user-db.json'), '{"__proto__": {"name": "Proto Type", "email": "p@example.org"}, "constructor": {"name": "Con Struct", "email": "c@example.org"}}');
    const r = run(['userdb', 'import', 'user-db.json'], { cwd });
    expect(r.code).toBe(0);
    const db = JSON.parse(run(['userdb', 'export', '-o', 'json'], { cwd }).stdout) as Record<string, unknown>;
    expect(Object.entries(db)).toEqual([
      ['__proto__', { name: 'Proto Type', email: 'p@example.org', first_seen: null, last_seen: null, groups: [] }],
      ['constructor', { name: 'Con Struct', email: 'c@example.org', first_seen: null, last_seen: null, groups: [] }],
    ]);
  });
});
