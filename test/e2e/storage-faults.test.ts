import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeNomad, type FakeNomad } from '../../fake/nomad-server.js';
import { createCluster } from '../../src/simulator/index.js';
import { FIXTURES, run, runAsync, tempDir } from '../helpers/cli.js';

/**
 * A full disk and a read-only file system, for real: small tmpfs mounts (root only, as in CI;
 * skipped where mounting is not allowed). The messages must say so plainly, naming the path
 * or the index, never "unexpected error".
 */

const mounted: string[] = [];
/** A tmpfs of `size` at a new folder, or null where this process may not mount. */
function tmpfs(size: string): string | null {
  const dir = join(tempDir(), 'mnt');
  mkdirSync(dir);
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  mounted.push(dir);
  return dir;
}
afterEach(() => {
  // Before tempDir's own clean-up removes the folders they sit in.
  while (mounted.length) spawnSync('umount', [mounted.pop()!]);
});
const canMount = process.getuid?.() === 0 && spawnSync('mount', ['--version']).status === 0;
const TOKEN = 'storage-test-token';
const cluster = createCluster({ seed: 11, days: 1, intervalMinutes: 60, targetConcurrent: 10 });
let nomad: FakeNomad;
beforeAll(async () => {
  nomad = await startFakeNomad({ cluster, token: TOKEN, now: cluster.snapshots[5]!.timeUs });
});
afterAll(async () => nomad.close());

describe.skipIf(!canMount)('a full disk and a read-only file system', () => {
  it('an index on a full disk: the run fails with exit 3 saying the disk under the index is full', () => {
    const cwd = tempDir();
    cpSync(join(FIXTURES, 'ai4os/snapshots'), join(cwd, 'snapshots'), { recursive: true });
    // 200 KiB: room for the index file to be made, not for the fixture's history.
    const disk = tmpfs('200k');
    if (disk === null) return;
    const r = run(['stats', '--from', '2024-09-03', '--to', '2024-09-04', '--db', join(disk, 'index.sqlite')], { cwd });
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('hourmeter: cannot write the index: the disk under it is full (SQLITE_FULL); free space there, or put the index elsewhere with --db\n');
  });

  it('a snapshot on a read-only file system: exit 3 naming the folder, and nothing written', async () => {
    const disk = tmpfs('1m');
    if (disk === null) return;
    mkdirSync(join(disk, 'snapshots'));
    mkdirSync(join(disk, 'userdb'));
    expect(spawnSync('mount', ['-o', 'remount,ro', disk]).status).toBe(0);
    const cwd = tempDir();
    writeFileSync(join(cwd, 'token'), TOKEN);
    const now = new Date(cluster.snapshots[5]!.timeUs / 1000).toISOString();
    const r = await runAsync(['snapshot', '--snapshots', join(disk, 'snapshots'), '--userdb', join(disk, 'userdb'), '--now', now, '--timeout', '20s'], {
      cwd,
      env: { NOMAD_ADDR: nomad.url, NOMAD_TOKEN: TOKEN },
    });
    expect(r.code).toBe(3);
    // Node's recursive mkdir says ENOENT here; the message gives the real cause.
    expect(r.stderr).toBe(`hourmeter: cannot write ${join(disk, 'snapshots', '.hourmeter')}: the file system is read-only (EROFS); mount it read-write, or point hourmeter at a writable folder\n`);
    expect(readdirSync(join(disk, 'snapshots'))).toEqual([]);
  });
});
