/**
 * What the watchers of both schedulers share (`hourmeter watch`; Nomad's event stream in
 * nomad/watch.ts, Kubernetes watches in kubernetes/watch.ts): the refusal that ends a
 * watch, its counts, the server's clock, the backoff between attempts and the reading of a
 * stream of JSON lines.
 */

/** The credentials were refused: the watcher stops instead of trying again. */
export class WatchRefused extends Error {}

/** What a watch did, for its final line and /metrics. */
export interface WatchCounts {
  events: number;
  connections: number;
  resyncs: number;
  /** Streams that ended other than by a stop or the server's own timeout. */
  drops: number;
}

export const emptyCounts = (): WatchCounts => ({ events: 0, connections: 0, resyncs: 0, drops: 0 });

/** The message of an error or abort reason. */
export const reason = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** The wait before attempt `failures` + 1: doubling from `firstMs` up to `maxMs`, with ±25 % jitter. */
export function backoffMs(failures: number, firstMs: number, maxMs: number): number {
  return Math.min(maxMs, firstMs * 2 ** Math.min(Math.max(failures - 1, 0), 20)) * (0.75 + Math.random() * 0.5);
}

/** Waits `ms`, or until the signal aborts (then rejects with its reason). */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** The lines of a stream as they arrive, trimmed, empty ones left out; a last line without its newline is dropped (torn). */
export async function* streamLines(body: AsyncIterable<Uint8Array>, onChunk: () => void = () => {}): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let rest = '';
  for await (const chunk of body) {
    onChunk();
    rest += decoder.decode(chunk, { stream: true });
    for (let nl = rest.indexOf('\n'); nl >= 0; nl = rest.indexOf('\n')) {
      const text = rest.slice(0, nl).trim();
      rest = rest.slice(nl + 1);
      if (text) yield text;
    }
  }
}

/**
 * The server's clock, as the watcher learns it: the latest time the server showed (a reply's
 * Date, a payload's time) plus the time elapsed here since. Journal markers and list times
 * then agree with payload times even when this host's clock does not agree with the
 * server's. Before the server showed any time, this host's clock.
 */
export class ServerClock {
  private baseUs = -Infinity;
  private wallAtBaseMs = 0;

  constructor(private readonly wallMs: () => number = Date.now) {}

  /** A time the server showed, in µs; once it showed one, an earlier one than the clock reads changes nothing. */
  saw(us: number): void {
    const wall = this.wallMs();
    if (this.baseUs === -Infinity || us > this.nowUs(wall)) {
      this.baseUs = us;
      this.wallAtBaseMs = wall;
    }
  }

  nowUs(wall = this.wallMs()): number {
    return this.baseUs === -Infinity ? wall * 1000 : this.baseUs + (wall - this.wallAtBaseMs) * 1000;
  }
}
