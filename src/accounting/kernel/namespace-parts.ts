import { bareName, clusterLabel, clusterOf } from '../clusters.js';
import type { Names } from '../columns.js';

/**
 * The kernel's view of cluster-qualified namespaces (../clusters.ts): the stored column holds
 * `<cluster>/<namespace>` ids, while rows group by the bare namespace or by the cluster. Each
 * distinct namespace id is split once; a name the dictionary lacks (a bare namespace only
 * ever stored qualified, a cluster's label) gets an id past the dictionary's, so grouping
 * stays on dense ids. Filters on namespaces and clusters become one test per namespace id.
 */
export class NamespaceParts {
  private readonly base: number;
  private readonly extra: string[] = [];
  private readonly extraIds = new Map<string, number>();
  /** Per qualified id: bare id + 1, cluster id + 1 (0: not split yet). */
  private bareOf = new Int32Array(64);
  private clusterOf = new Int32Array(64);
  /** Per qualified id: 1 allowed, 2 filtered out (0: not judged yet). */
  private verdict = new Int8Array(64);
  private readonly allowNamespaces: ReadonlySet<string> | null;
  private readonly allowClusters: ReadonlySet<string> | null;
  private readonly mapped = { namespace: new Int32Array(0), cluster: new Int32Array(0) };

  constructor(
    private readonly names: Names,
    filters: { namespaces?: readonly string[]; clusters?: readonly string[] } = {},
  ) {
    this.base = names.size();
    this.allowNamespaces = filters.namespaces?.length ? new Set(filters.namespaces) : null;
    this.allowClusters = filters.clusters?.length ? new Set(filters.clusters) : null;
  }

  /** Whether a filter on namespaces or clusters is set. */
  get filtering(): boolean {
    return this.allowNamespaces !== null || this.allowClusters !== null;
  }

  /** The id of a string: the dictionary's, else one past it. */
  private idOf(value: string): number {
    const id = this.names.lookup(value);
    if (id !== undefined) return id;
    let extra = this.extraIds.get(value);
    if (extra === undefined) {
      extra = this.base + this.extra.length;
      this.extra.push(value);
      this.extraIds.set(value, extra);
    }
    return extra;
  }

  /** The string of an id given by this view or the dictionary. */
  name(id: number): string {
    return id >= this.base ? this.extra[id - this.base]! : this.names.name(id);
  }

  /** Ids the dictionary itself knows, for its prefetch. */
  isStored(id: number): boolean {
    return id < this.base;
  }

  private split(id: number): void {
    if (id >= this.bareOf.length) {
      const size = Math.max(id + 1, this.bareOf.length * 2);
      const grow = <T extends Int32Array | Int8Array>(a: T, make: (n: number) => T): T => {
        const b = make(size);
        b.set(a);
        return b;
      };
      this.bareOf = grow(this.bareOf, (n) => new Int32Array(n));
      this.clusterOf = grow(this.clusterOf, (n) => new Int32Array(n));
      this.verdict = grow(this.verdict, (n) => new Int8Array(n));
    }
    if (this.bareOf[id] !== 0) return;
    const qualified = this.names.name(id);
    const bare = bareName(qualified);
    const cluster = clusterLabel(clusterOf(qualified));
    this.bareOf[id] = (bare === qualified ? id : this.idOf(bare)) + 1;
    this.clusterOf[id] = this.idOf(cluster) + 1;
    const allowed = (!this.allowNamespaces || this.allowNamespaces.has(bare)) && (!this.allowClusters || this.allowClusters.has(cluster));
    this.verdict[id] = allowed ? 1 : 2;
  }

  /** Whether the filters keep rows of this namespace id. */
  allows(id: number): boolean {
    if (id >= this.verdict.length || this.verdict[id] === 0) this.split(id);
    return this.verdict[id] === 1;
  }

  /** A batch's namespace column as bare namespace ids or cluster ids (one buffer per part, reused by the next batch). */
  column(namespaces: Int32Array, length: number, part: 'namespace' | 'cluster'): Int32Array {
    if (this.mapped[part].length < length) this.mapped[part] = new Int32Array(Math.max(length, this.mapped[part].length * 2));
    const out = this.mapped[part];
    for (let i = 0; i < length; i++) {
      const id = namespaces[i]!;
      if (id >= this.bareOf.length || this.bareOf[id] === 0) this.split(id);
      out[i] = (part === 'namespace' ? this.bareOf[id]! : this.clusterOf[id]!) - 1;
    }
    return out;
  }
}
