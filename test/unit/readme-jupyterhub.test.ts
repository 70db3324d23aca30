import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseQuotaFile } from '../../src/quota/policy.js';
import { ROOT } from '../helpers/cli.js';

/**
 * The README's JupyterHub service section: the roles it tells operators to grant are exactly
 * those the tests run the real hub with (test/helpers/jupyterhub.ts), and nothing broader;
 * its quota file example, with `admins:`, is one hourmeter reads.
 */

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

function blockAfter(heading: string, lang: string): string {
  const at = README.indexOf(heading);
  expect(at, heading).toBeGreaterThan(-1);
  const m = new RegExp('^```' + lang + '\\n([\\s\\S]*?)^```$', 'm').exec(README.slice(at));
  expect(m).not.toBeNull();
  return m![1]!;
}

describe('README, the JupyterHub service', () => {
  it('grants the service read:users and list:users, and users access to this service only', () => {
    const config = blockAfter('#### The JupyterHub service', 'python');
    const roles = [...config.matchAll(/\{"name": "([^"]+)",[^}]*?"scopes": \[([^\]]*)\]\}/g)].map((m) => [m[1], m[2]!.split(',').map((x) => x.trim().replace(/"/g, ''))]);
    expect(roles).toEqual([
      ['quota-service', ['read:users', 'list:users']],
      ['user', ['self', 'access:services!service=quota']],
    ]);
    expect(config).toContain('"oauth_no_confirm": True');
    expect(config).toContain('"name": "quota"');
    // The same grants the hub of the tests is given.
    const harness = readFileSync(join(ROOT, 'test/helpers/jupyterhub.ts'), 'utf8');
    expect(harness).toMatch(/userScopes = \['self', `access:services!service=\$\{name\}`\]/);
    expect(harness).toContain("scopes: ['read:users', 'list:users']");
  });

  it("shows a quota file with admins: that hourmeter reads", () => {
    const yaml = blockAfter('### hourmeter quota', 'yaml');
    expect(parseQuotaFile(yaml, 'README.md').admins).toEqual(['hub-staff']);
  });
});
