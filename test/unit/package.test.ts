import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';

/**
 * What `npm publish` would ship, as `npm pack --dry-run` lists it: the CLI and its docs, no
 * fake servers, no bench code, and no source map pointing at a source left out.
 */

const pack = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
const files: string[] = pack.status === 0 ? (JSON.parse(pack.stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path) : [];

describe('the published package', () => {
  it('is listed by npm pack', () => {
    expect(pack.status, pack.stderr).toBe(0);
    expect(files).toContain('bin/hourmeter.js');
    expect(files).toContain('dist/cli/main.js');
    // What bin/hourmeter.js loads first; workers still run the modules beside it.
    expect(files).toContain('dist/bundle/main.cjs');
    expect(files).toContain('dist/snapshots/read-worker.js');
    expect(files).toContain('LICENSE');
    expect(files).toContain('docs/accounting.md');
  });

  it('holds no fake servers and no bench code, though both are built', () => {
    // Built beside the package (npm test, npm run demo and npm run bench use them), never in it.
    expect(existsSync(join(ROOT, 'dist-tools/fake/nomad-server.js'))).toBe(true);
    expect(existsSync(join(ROOT, 'dist-tools/bench/run.js'))).toBe(true);
    expect(files.filter((f) => /(^|\/)(fake|bench|dist-tools)\//.test(f))).toEqual([]);
  });

  it('holds no source map whose sources it leaves out', () => {
    const shipped = new Set(files);
    const orphans = files
      .filter((f) => f.endsWith('.map'))
      .flatMap((map) => {
        const { sources } = JSON.parse(readFileSync(join(ROOT, map), 'utf8')) as { sources: string[] };
        return sources.map((s) => normalize(join(dirname(map), s))).filter((s) => !shipped.has(s));
      });
    expect(orphans).toEqual([]);
  });

  it('names its licence, repository and home page', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(pkg.license).toBe('Apache-2.0');
    expect(readFileSync(join(ROOT, 'LICENSE'), 'utf8')).toMatch(/^\s+Apache License\n\s+Version 2\.0, January 2004\n/);
    expect(pkg.repository).toMatchObject({ type: 'git' });
    expect(typeof pkg.homepage).toBe('string');
  });
});
