/**
 * Clusters (docs/accounting.md#clusters). One history may hold several clusters; two of them
 * may both have a `default` namespace, or even reuse an allocation id. Inside hourmeter a
 * cluster's namespaces and allocation keys are therefore qualified by its name,
 * `<cluster>/<namespace>`, so that coverage, identity and job counts are per (cluster,
 * namespace) everywhere without a second key beside each name. Captures without a cluster
 * name (AI4OS legacy files, native files written before clusters) are the unnamed cluster,
 * and their names stay bare: a one-cluster history reads exactly as it always did.
 *
 * The split is unambiguous because neither part can hide the separator: cluster names are
 * checked here, and a namespace holding `/` (which neither Nomad nor Kubernetes allows) is
 * refused where records are read.
 */

export const CLUSTER_SEPARATOR = '/';

/** How reports name the cluster of captures that carry no cluster name. */
export const UNNAMED_CLUSTER = '(unnamed)';

/** What a cluster name may hold: it names folders and splits from the namespace at its first `/`. */
const CLUSTER_NAME = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}$/;

/** A namespace or allocation key of `cluster` as hourmeter keeps it ('' : the unnamed cluster). */
export function qualify(cluster: string, name: string): string {
  return cluster === '' ? name : `${cluster}${CLUSTER_SEPARATOR}${name}`;
}

/** The cluster of a qualified name, '' for the unnamed cluster. */
export function clusterOf(qualified: string): string {
  const at = qualified.indexOf(CLUSTER_SEPARATOR);
  return at < 0 ? '' : qualified.slice(0, at);
}

/** The name within its cluster (the namespace as the scheduler spells it). */
export function bareName(qualified: string): string {
  const at = qualified.indexOf(CLUSTER_SEPARATOR);
  return at < 0 ? qualified : qualified.slice(at + 1);
}

/** The cluster as reports show it. */
export function clusterLabel(cluster: string): string {
  return cluster === '' ? UNNAMED_CLUSTER : cluster;
}

/** Why `name` cannot be a cluster name, or null when it can. */
export function clusterNameProblem(name: string): string | null {
  if (CLUSTER_NAME.test(name)) return null;
  return 'a cluster name is 1 to 100 letters, digits and . _ : @ -, starting with a letter or digit';
}

/** A cluster name made from what a source says of itself (a region, an address, a context): characters a name may not hold become `-`. */
export function clusterNameFrom(parts: readonly (string | null | undefined)[]): string {
  const raw = parts.filter((p): p is string => typeof p === 'string' && p !== '').join('@');
  const name = raw.replace(/[^A-Za-z0-9._:@-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 100);
  return name === '' ? 'cluster' : name;
}

/** The host and port of an API address, as a default cluster name uses it (`https://nomad.example.org` → `nomad.example.org:443`). */
export function hostPort(address: string | null | undefined): string | null {
  if (!address) return null;
  try {
    const url = new URL(address.includes('://') ? address : `http://${address}`);
    const port = url.port !== '' ? url.port : url.protocol === 'https:' ? '443' : '80';
    return `${url.hostname}:${port}`;
  } catch {
    return address;
  }
}
