import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { TestCertificates } from '../../fake/certs.js';
import type { Pod, PodList } from '../../src/sources/kubernetes/types.js';
import { FIXTURES } from './cli.js';

/** The five pods of the shared Kubernetes fixtures (both pages of the list). */
export function fixturePods(): Pod[] {
  const list = (f: string) => (JSON.parse(readFileSync(join(FIXTURES, 'kubernetes', f), 'utf8')) as PodList).items;
  return [...list('k8s-pods-list.json'), ...list('k8s-pods-list-page2.json')];
}

export const b64 = (text: string) => Buffer.from(text).toString('base64');

export interface KubeconfigUser {
  name: string;
  user: Record<string, unknown>;
}

/** Writes a kubeconfig with one cluster per entry of `clusters`, and the given users and contexts. */
export function writeKubeconfig(
  path: string,
  doc: {
    current?: string;
    clusters: { name: string; server: string; certs?: TestCertificates }[];
    users: KubeconfigUser[];
    contexts: { name: string; cluster: string; user: string }[];
  },
): string {
  writeFileSync(
    path,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      ...(doc.current ? { 'current-context': doc.current } : {}),
      clusters: doc.clusters.map((c) => ({
        name: c.name,
        cluster: { server: c.server, ...(c.certs ? { 'certificate-authority-data': b64(c.certs.caCert) } : {}) },
      })),
      users: doc.users,
      contexts: doc.contexts.map((c) => ({ name: c.name, context: { cluster: c.cluster, user: c.user } })),
    }),
  );
  return path;
}
