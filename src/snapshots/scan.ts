/**
 * A JSON scanner that extracts a few fields from a large document without building it.
 * Snapshot records are mostly long strings hourmeter never reads (endpoints, descriptions,
 * raw task states); skipping them with the engine's native `indexOf` is several times
 * faster than JSON.parse. Any surprise throws ScanError, and the caller falls back to
 * JSON.parse, which also produces the precise message for a corrupt file.
 */

export class ScanError extends Error {}

const QUOTE = 34;
const BACKSLASH = 92;
const OPEN_OBJECT = 123;
const CLOSE_OBJECT = 125;
const OPEN_ARRAY = 91;
const CLOSE_ARRAY = 93;
const COMMA = 44;
const COLON = 58;

export class Scanner {
  i = 0;
  constructor(readonly s: string) {}

  fail(what: string): never {
    throw new ScanError(`${what} at offset ${this.i}`);
  }

  ws(): void {
    const s = this.s;
    let i = this.i;
    for (;;) {
      const c = s.charCodeAt(i);
      if (c === 32 || c === 10 || c === 13 || c === 9) i++;
      else break;
    }
    this.i = i;
  }

  peek(): number {
    this.ws();
    return this.s.charCodeAt(this.i);
  }

  expect(code: number): void {
    if (this.peek() !== code) this.fail(`expected ${String.fromCharCode(code)}`);
    this.i++;
  }

  /** Skips a string token starting at the current quote; returns its end (after the closing quote). */
  private stringEnd(): number {
    const s = this.s;
    let j = this.i + 1;
    for (;;) {
      const q = s.indexOf('"', j);
      if (q < 0) this.fail('unterminated string');
      let k = q - 1;
      while (s.charCodeAt(k) === BACKSLASH) k--;
      if ((q - 1 - k) % 2 === 0) return q + 1;
      j = q + 1;
    }
  }

  /** Reads an object key (or any string) and decodes it. */
  readString(): string {
    if (this.peek() !== QUOTE) this.fail('expected a string');
    const start = this.i;
    const end = this.stringEnd();
    this.i = end;
    const raw = this.s.slice(start + 1, end - 1);
    return raw.includes('\\') ? (JSON.parse(this.s.slice(start, end)) as string) : raw;
  }

  /** Skips one value and returns its exact JSON text span [start, end). */
  skipValue(): [number, number] {
    const c = this.peek();
    const start = this.i;
    const s = this.s;
    if (c === QUOTE) {
      this.i = this.stringEnd();
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      // Walk nested structure; strings are skipped whole so their brackets do not count.
      let depth = 0;
      let i = this.i;
      for (;;) {
        const d = s.charCodeAt(i);
        if (d === QUOTE) {
          this.i = i;
          i = this.stringEnd();
          continue;
        }
        if (d === OPEN_OBJECT || d === OPEN_ARRAY) depth++;
        else if (d === CLOSE_OBJECT || d === CLOSE_ARRAY) {
          depth--;
          if (depth === 0) {
            i++;
            break;
          }
        } else if (Number.isNaN(d)) {
          this.i = i;
          this.fail('unexpected end');
        }
        i++;
      }
      this.i = i;
    } else if ((c >= 48 && c <= 57) || c === 45) {
      let i = this.i + 1;
      for (;;) {
        const d = s.charCodeAt(i);
        if ((d >= 48 && d <= 57) || d === 46 || d === 101 || d === 69 || d === 43 || d === 45) i++;
        else break;
      }
      this.i = i;
    } else if (s.startsWith('null', this.i) || s.startsWith('true', this.i)) {
      this.i += 4;
    } else if (s.startsWith('false', this.i)) {
      this.i += 5;
    } else {
      this.fail('unexpected character');
    }
    return [start, this.i];
  }

  /** The JSON text of the next value, unparsed. */
  rawValue(): string {
    const [a, b] = this.skipValue();
    return this.s.slice(a, b);
  }

  /** Iterates `"key": value` pairs of an object; the callback must consume the value. */
  object(onKey: (key: string) => void): void {
    this.expect(OPEN_OBJECT);
    if (this.peek() === CLOSE_OBJECT) {
      this.i++;
      return;
    }
    for (;;) {
      const key = this.readString();
      this.expect(COLON);
      onKey(key);
      const c = this.peek();
      this.i++;
      if (c === COMMA) continue;
      if (c === CLOSE_OBJECT) return;
      this.i--;
      this.fail('expected , or }');
    }
  }

  /** Iterates the elements of an array; the callback must consume each element. */
  array(onItem: () => void): void {
    this.expect(OPEN_ARRAY);
    if (this.peek() === CLOSE_ARRAY) {
      this.i++;
      return;
    }
    for (;;) {
      onItem();
      const c = this.peek();
      this.i++;
      if (c === COMMA) continue;
      if (c === CLOSE_ARRAY) return;
      this.i--;
      this.fail('expected , or ]');
    }
  }

  end(): void {
    this.ws();
    if (this.i !== this.s.length) this.fail('trailing characters');
  }
}
