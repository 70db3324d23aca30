/**
 * Fault injection shared by the fake API servers: queued faults that hit the next requests
 * whose path matches, and the helpers every fake needs (bounded delays, token comparison).
 */

import { timingSafeEqual } from 'node:crypto';

const MAX_FAULTS = 1000;
const MAX_FAULT_TIMES = 1_000_000;
/** Longest delay any option or fault may add, so a test can never hang on the server. */
export const MAX_DELAY_MS = 120_000;

export type FaultSpec =
  | {
      kind: 'status';
      status: number;
      /** Response text. Default: a short description of the fault. */
      body?: string;
      /** Adds Retry-After (seconds), as rate limiters do on 429. */
      retryAfterSeconds?: number;
      /** Adds Retry-After as given (an HTTP date, say); wins over retryAfterSeconds. */
      retryAfter?: string;
      /**
       * Adds Retry-After as the HTTP date this many seconds after the answer, taken when the
       * fault is answered (a date made earlier may have come closer, or passed, by then).
       */
      retryAfterDateSeconds?: number;
      times?: number;
      match?: string;
    }
  /** Destroy the connection without a response. */
  | { kind: 'reset'; times?: number; match?: string }
  /** Delay the normal response by `ms` (on top of latencyMs). */
  | { kind: 'slow'; ms: number; times?: number; match?: string }
  /** Send the status and the full Content-Length, then only half the body, then destroy. */
  | { kind: 'truncate'; times?: number; match?: string }
  /** Answer 200 with this body instead of the real one (junk: an HTML page, a string, records without IDs). */
  | { kind: 'body'; body: string; contentType?: string; headers?: Record<string, string>; times?: number; match?: string }
  /** Answer normally, but hand back the page token the request carried as the next one: a listing that never ends. */
  | { kind: 'repeat-token'; times?: number; match?: string }
  /** Never answer: the request stays open until the client gives up or the server closes. */
  | { kind: 'hang'; times?: number; match?: string };

/** What a `status` fault sends as Retry-After, if anything. */
export function retryAfterHeader(fault: FaultSpec & { kind: 'status' }): Record<string, string> {
  if (fault.retryAfter !== undefined) return { 'Retry-After': fault.retryAfter };
  if (fault.retryAfterDateSeconds !== undefined) return { 'Retry-After': new Date(Date.now() + fault.retryAfterDateSeconds * 1000).toUTCString() };
  return fault.retryAfterSeconds === undefined ? {} : { 'Retry-After': String(fault.retryAfterSeconds) };
}

export interface FaultControl {
  /** Queue a fault for the next `times` (default 1) requests whose path starts with `match` (default any). */
  enqueue(fault: FaultSpec): void;
  clear(): void;
  /** Queued faults with their remaining counts. */
  pending(): FaultSpec[];
}

export function clampDelay(ms: number | undefined, what: string): number {
  const v = ms ?? 0;
  if (!(v >= 0) || !Number.isFinite(v)) throw new RangeError(`${what} must be a non-negative number of ms, got ${v}`);
  return Math.min(v, MAX_DELAY_MS);
}

export function sameToken(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export class Faults implements FaultControl {
  private queue: { fault: FaultSpec; left: number }[] = [];

  enqueue(fault: FaultSpec): void {
    if (this.queue.length >= MAX_FAULTS) throw new RangeError(`at most ${MAX_FAULTS} faults may be queued`);
    const times = fault.times ?? 1;
    if (!Number.isInteger(times) || times < 1 || times > MAX_FAULT_TIMES) {
      throw new RangeError(`fault times must be an integer from 1 to ${MAX_FAULT_TIMES}, got ${times}`);
    }
    if (fault.kind === 'status' && !(Number.isInteger(fault.status) && fault.status >= 100 && fault.status <= 599)) {
      throw new RangeError(`fault status must be an HTTP status code, got ${fault.status}`);
    }
    if (fault.kind === 'slow') clampDelay(fault.ms, 'slow fault ms');
    this.queue.push({ fault: { ...fault }, left: times });
  }

  clear(): void {
    this.queue = [];
  }

  pending(): FaultSpec[] {
    return this.queue.map((q) => ({ ...q.fault, times: q.left }));
  }

  /** The first queued fault matching the path, consuming one of its uses. */
  take(path: string): FaultSpec | null {
    const i = this.queue.findIndex((q) => q.fault.match === undefined || path.startsWith(q.fault.match));
    const entry = this.queue[i];
    if (!entry) return null;
    entry.left--;
    if (entry.left <= 0) this.queue.splice(i, 1);
    return entry.fault;
  }
}
