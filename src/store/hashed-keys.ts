/**
 * A set of strings kept as 64-bit hashes, each with a number (a row id, below 2^31): a bulk
 * load's memory of the keys it saved, at 12 bytes a slot (at most four slots for three keys)
 * where a Map of the strings takes about two hundred bytes a key. A hash names candidates only: the caller checks each against the row it
 * points to, so two keys that share a hash cost a read, never a wrong answer.
 */
export class HashedKeys {
  private low: Int32Array;
  private high: Int32Array;
  /** The number stored with each hash; 0 marks an empty slot, so numbers are kept plus one. */
  private values: Int32Array;
  private count = 0;

  /** `hash`: tests give one that collides, to see every candidate come back. */
  constructor(
    capacity = 65_536,
    private readonly hash: (key: string) => [number, number] = hash64,
  ) {
    const size = 2 ** Math.ceil(Math.log2(Math.max(16, (capacity * 4) / 3)));
    this.low = new Int32Array(size);
    this.high = new Int32Array(size);
    this.values = new Int32Array(size);
  }

  get size(): number {
    return this.count;
  }

  add(key: string, value: number): void {
    if (!Number.isInteger(value) || value < 0 || value >= 2 ** 31 - 1) throw new RangeError(`HashedKeys holds numbers from 0 to 2^31 - 2, not ${value}`);
    if (4 * (this.count + 1) > 3 * this.values.length) this.grow();
    const [lo, hi] = this.hash(key);
    this.place(lo, hi, value);
    this.count++;
  }

  /** The numbers stored under keys with the same hash as `key`, in no set order (growth moves them). */
  candidates(key: string): number[] {
    const [lo, hi] = this.hash(key);
    const mask = this.values.length - 1;
    const out: number[] = [];
    for (let i = lo & mask; this.values[i] !== 0; i = (i + 1) & mask) {
      if (this.low[i] === lo && this.high[i] === hi) out.push(this.values[i]! - 1);
    }
    return out;
  }

  private place(lo: number, hi: number, value: number): void {
    const mask = this.values.length - 1;
    let i = lo & mask;
    while (this.values[i] !== 0) i = (i + 1) & mask;
    this.low[i] = lo;
    this.high[i] = hi;
    this.values[i] = value + 1;
  }

  private grow(): void {
    const { low, high, values } = this;
    this.low = new Int32Array(2 * values.length);
    this.high = new Int32Array(2 * values.length);
    this.values = new Int32Array(2 * values.length);
    for (let i = 0; i < values.length; i++) if (values[i] !== 0) this.place(low[i]!, high[i]!, values[i]! - 1);
  }
}

/** Two independent 32-bit FNV-1a hashes of a string's UTF-16 code units, as one 64-bit hash. */
export function hash64(s: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
  }
  // A last mix, so that keys differing only at the end spread over the table's slots.
  a ^= a >>> 16;
  a = Math.imul(a, 0x85ebca6b);
  a ^= a >>> 13;
  return [a | 0, b | 0];
}
