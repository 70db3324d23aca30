import type { ApiResponse } from './queries.js';

/**
 * Answers kept until the next ingest, oldest out first, bounded by count and by the size
 * of their bodies: a report by user over a year is about a megabyte of JSON, and a few
 * hundred of those would hold the server's memory for no one.
 */
export class AnswerCache {
  private readonly answers = new Map<string, ApiResponse>();
  private bytes = 0;

  constructor(
    private readonly maxEntries = 256,
    private readonly maxBytes = 32 * 1024 * 1024,
  ) {}

  get(key: string): ApiResponse | undefined {
    return this.answers.get(key);
  }

  /** Keeps an answer, unless it alone is over the size bound. */
  set(key: string, answer: ApiResponse): void {
    const size = sizeOf(answer);
    if (size > this.maxBytes) return;
    this.delete(key);
    while (this.answers.size > 0 && (this.answers.size >= this.maxEntries || this.bytes + size > this.maxBytes)) {
      this.delete(this.answers.keys().next().value!);
    }
    this.answers.set(key, answer);
    this.bytes += size;
  }

  clear(): void {
    this.answers.clear();
    this.bytes = 0;
  }

  /** Entries and the bytes their bodies take, as counted. */
  get size(): { entries: number; bytes: number } {
    return { entries: this.answers.size, bytes: this.bytes };
  }

  private delete(key: string): void {
    const old = this.answers.get(key);
    if (old === undefined) return;
    this.answers.delete(key);
    this.bytes -= sizeOf(old);
  }
}

/** A body's size in memory, as UTF-16 (what a JavaScript string may take). */
const sizeOf = (a: ApiResponse) => 2 * a.body.length;
