import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';

/** The accounting contract lives in docs/accounting.md; every citation of it must land on an anchor. */

const contract = readFileSync(join(ROOT, 'docs/accounting.md'), 'utf8');
const anchors = new Set([...contract.matchAll(/<a id="([a-z0-9-]+)"><\/a>/g)].map((m) => m[1]!));
const tracked = execFileSync('git', ['ls-files', 'src', 'docs', 'README.md', 'scripts'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean);

describe('the accounting contract', () => {
  it('has an anchor for each rule, the band and coverage', () => {
    for (const a of ['allocation', 'lifetime', 'reconstruction', 'period', 'resource-hours', 'resources', 'attribution', 'counts', 'ai4os-method', 'sure-band', 'coverage']) expect(anchors).toContain(a);
  });

  it('is what code and docs cite: every docs/accounting.md#anchor exists, and no file cites design.md', () => {
    const missing: string[] = [];
    const foreign: string[] = [];
    for (const file of tracked) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      // "docs/accounting.md#a, #b" cites several anchors at once.
      for (const m of text.matchAll(/accounting\.md#([a-z0-9-]+)((?:, #[a-z0-9-]+)*)/g)) {
        for (const a of [m[1]!, ...[...m[2]!.matchAll(/#([a-z0-9-]+)/g)].map((x) => x[1]!)]) if (!anchors.has(a)) missing.push(`${file}: #${a}`);
      }
      if (/design\.md/.test(text)) foreign.push(file);
    }
    expect(missing).toEqual([]);
    expect(foreign).toEqual([]);
  });
});
