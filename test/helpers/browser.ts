import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * The headless browser of the browser tests: Debian's chromium (installed by .ci/run), or
 * the binary HOURMETER_CHROMIUM names; null when there is none (a workstation without it).
 */
export function findChromium(): string | null {
  const given = process.env.HOURMETER_CHROMIUM;
  if (given) return given;
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      const path = execFileSync('which', [name], { encoding: 'utf8' }).trim();
      if (path) return path;
    } catch {
      /* not on PATH */
    }
  }
  return existsSync('/usr/bin/chromium') ? '/usr/bin/chromium' : null;
}
