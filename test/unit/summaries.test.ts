import { describe, expect, it } from 'vitest';
import { parseCsv, toCsv } from '../../src/reports/csv.js';
import { escapeHtml, namespacePageHtml } from '../../src/reports/html.js';
import { mergeUsers } from '../../src/reports/merge-users.js';
import { namespaceFileBase, namespaceOfFile, roundHalfEven } from '../../src/reports/summaries.js';
import { ImportError, importUsers, parseAi4osUserDb } from '../../src/userdb/import.js';

describe('CSV cells that try formula injection', () => {
  const nasty = ['=1+1', '+1', '-1', '@SUM(A1)', '\t=1', '\r=1', '=HYPERLINK("x")\nsecond line', 'plain', "'quoted", ' =1'];
  it('are neutralised with a leading quote, also across line breaks, and read back intact', () => {
    const text = toCsv(['v'], nasty.map((v) => ({ v })), ';');
    const cells = parseCsv(text, ';').rows.map((r) => r.v);
    expect(cells).toEqual(nasty);
    // What a spreadsheet sees: papaparse's own parse, without undoing anything.
    const raw = text.split('\n');
    expect(raw[1]).toBe(`"'=1+1"`);
    expect(raw[3]).toBe(`"'-1"`);
    expect(text).toContain(`"'=HYPERLINK(""x"")\nsecond line"`);
    expect(text).toContain(`"'\t=1"`);
    expect(raw).toContain('plain');
  });
  it('leaves numbers alone, negative ones included', () => {
    expect(toCsv(['a', 'b'], [{ a: -1.5, b: 0 }], ',')).toBe('a,b\n-1.5,0\n');
  });
  it('reports a malformed file with the record', () => {
    expect(() => parseCsv('a;b\n1;2;3\n', ';')).toThrow(/record 2 has 3 fields, the header 2/);
    expect(() => parseCsv('', ';')).toThrow(/no header row/);
  });
});

describe('namespaces as file names', () => {
  it('cannot leave the folder nor hide, and decode back', () => {
    for (const ns of ['ai4eosc', 'a/b', '../up', '.hidden', 'spaces and ü', "it's*"]) {
      const base = namespaceFileBase(ns);
      expect(base).not.toMatch(/[/\\]/);
      expect(base.startsWith('.')).toBe(false);
      expect(namespaceOfFile(`${base}-timeseries.csv`, '-timeseries.csv')).toBe(ns);
    }
    expect(namespaceFileBase('ai4eosc')).toBe('ai4eosc');
    expect(namespaceOfFile('-timeseries.csv', '-timeseries.csv')).toBeNull();
    expect(namespaceOfFile('x-users-agg.csv', '-timeseries.csv')).toBeNull();
  });
});

describe('rounding as pandas does', () => {
  it('sends halves to the even neighbour', () => {
    expect([0.5, 1.5, 2.5, 3.49, 3.5, 4.51].map(roundHalfEven)).toEqual([0, 2, 2, 3, 4, 5]);
  });
});

describe('AI4OS user database import', () => {
  it('reads ids with names and e-mails, either missing', () => {
    const m = parseAi4osUserDb('{"a@egi.eu": {"name": "Ana", "email": "ana@x.org"}, "b": {}, "c": {"name": "", "email": null, "extra": 1}}');
    expect([...m]).toEqual([
      ['a@egi.eu', { name: 'Ana', email: 'ana@x.org' }],
      ['b', { name: null, email: null }],
      ['c', { name: null, email: null }],
    ]);
  });
  it('says what is wrong, and where', () => {
    const bad: [string, RegExp][] = [
      ['not json', /^not valid JSON \(/],
      ['[]', /expected an object of user id → \{"name", "email"\}, got an array/],
      ['"x"', /got "x"/],
      ['{"": {}}', /a user id is empty/],
      ['{"u": "Ana"}', /user "u": expected an object with "name" and "email", got "Ana"/],
      ['{"u": {"email": 5}}', /user "u": "email" must be a string, got 5/],
    ];
    for (const [text, message] of bad) expect(() => parseAi4osUserDb(text)).toThrow(message);
    expect(() => parseAi4osUserDb('[]')).toThrow(ImportError);
  });
  it('adds and completes, keeps what the database knows unless told, and drops nothing', () => {
    const db = {
      known: { name: 'Kept', email: null, first_seen: '2024-01-01T00:00:00Z', last_seen: '2024-01-02T00:00:00Z', groups: ['g'] },
      other: { name: 'Untouched', email: 'o@x', first_seen: null, last_seen: null, groups: [] },
    };
    const users = new Map([
      ['known', { name: 'Different', email: 'k@x' }],
      ['new', { name: 'New', email: null }],
    ]);
    const r = importUsers(db, users, false);
    expect(r).toMatchObject({ added: 1, completed: 1, conflicts: 1 });
    expect(r.db).toEqual({
      known: { name: 'Kept', email: 'k@x', first_seen: '2024-01-01T00:00:00Z', last_seen: '2024-01-02T00:00:00Z', groups: ['g'] },
      other: db.other,
      new: { name: 'New', email: null, first_seen: null, last_seen: null, groups: [] },
    });
    expect(importUsers(db, users, true).db.known!.name).toBe('Different');
    // the input is not changed
    expect(db.known.email).toBeNull();
  });
});

describe('merge-users', () => {
  const db = { u1: { name: 'Ana', email: 'ana@x', first_seen: null, last_seen: null, groups: [] } };
  it('puts id, name and e-mail first and keeps users the database lacks', () => {
    const agg = parseCsv('user;cpu_hours;jobs\nu1;1.5;2\nu2;3;1\n(unattributed);4;1\n', ';');
    const m = mergeUsers(agg, db);
    expect(m.columns).toEqual(['user', 'name', 'email', 'cpu_hours', 'jobs']);
    expect(m.rows).toEqual([
      { user: 'u1', name: 'Ana', email: 'ana@x', cpu_hours: '1.5', jobs: '2' },
      { user: 'u2', name: '', email: '', cpu_hours: '3', jobs: '1' },
      { user: '(unattributed)', name: '', email: '', cpu_hours: '4', jobs: '1' },
    ]);
    // the unattributed row is not a user the database could know
    expect(m.missing).toEqual(['u2']);
  });
  it('gives AI4OS files the original merged columns', () => {
    const m = mergeUsers(parseCsv('owner;cpu_num;gpu_num\nu1;3;1\n', ';'), db);
    expect(m.columns).toEqual(['user id', 'name', 'email', 'cpu_num / day', 'gpu_num / day']);
    expect(m.rows[0]).toEqual({ 'user id': 'u1', name: 'Ana', email: 'ana@x', 'cpu_num / day': '3', 'gpu_num / day': '1' });
  });
  it('refuses a file that is not a users-agg file', () => {
    expect(() => mergeUsers(parseCsv('date;cpu_hours\n2024-01-01;1\n', ';'), db)).toThrow(/not "user" or "owner"/);
    expect(() => mergeUsers(parseCsv('user;name;email\nu1;A;a\n', ';'), db)).toThrow(/is it a merged file/);
  });
});

describe('HTML pages', () => {
  it('escape names and cannot be closed early by data or by the library', () => {
    const html = namespacePageHtml(
      {
        namespace: '<img src=x onerror=alert(1)>',
        from: '2024-01-01',
        to: '2024-01-01',
        days: 1,
        charts: [{ id: 'c1', title: '</script><script>alert(1)</script>', kind: 'ranks', x: [0], labels: ['</script>'], unit: '', series: [{ label: 'x', values: [1], bars: true }] }],
        tables: [{ title: 'Top', columns: ['CPU-hours'], rows: [{ rank: 1, user: '<b>u</b>', name: '"Ana" & co', values: [1] }] }],
      },
      { js: 'var s = "</script>"; var uPlot = function () {};', css: '.x{}' },
    );
    expect(html).not.toContain('<img src=x');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain('&quot;Ana&quot; &amp; co');
    // exactly the three scripts the page has: data, library, drawing
    expect(html.match(/<script/g)).toHaveLength(3);
    expect(html.match(/<\/script>/g)).toHaveLength(3);
    expect(html).toContain('Content-Security-Policy');
    expect(html).not.toMatch(/(src|href)="https?:/);
    expect(escapeHtml(`<&>"'`)).toBe('&lt;&amp;&gt;&quot;&#39;');
  });
});
