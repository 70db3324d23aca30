import { Worker } from 'node:worker_threads';
import { workerFile } from '../util/program-files.js';
import type { ApiRequest, ApiResponse } from './queries.js';

/**
 * Query workers: requests are answered in parallel, each worker reading the index through
 * its own connection, so one long report does not hold up the others (or /health).
 */
export class QueryPool {
  private readonly idle: Worker[] = [];
  private readonly queue: { req: ApiRequest; resolve: (r: ApiResponse) => void; reject: (e: Error) => void }[] = [];
  private readonly pending = new Map<number, { worker: Worker; resolve: (r: ApiResponse) => void; reject: (e: Error) => void }>();
  private readonly workers: Worker[] = [];
  private nextId = 1;

  constructor(dbPath: string, size: number) {
    for (let i = 0; i < size; i++) {
      const w = new Worker(workerFile('server/worker.js'), { workerData: { dbPath } });
      w.on('message', (m: { id: number; res?: ApiResponse; error?: string }) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.res) p.resolve(m.res);
        else p.reject(new Error(m.error ?? 'query failed'));
        this.release(w);
      });
      w.on('error', (e) => {
        for (const [id, p] of this.pending) if (p.worker === w) (this.pending.delete(id), p.reject(e));
      });
      w.unref();
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  run(req: ApiRequest): Promise<ApiResponse> {
    return new Promise((resolve, reject) => {
      const w = this.idle.pop();
      if (w) this.send(w, req, resolve, reject);
      else this.queue.push({ req, resolve, reject });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private send(w: Worker, req: ApiRequest, resolve: (r: ApiResponse) => void, reject: (e: Error) => void): void {
    const id = this.nextId++;
    this.pending.set(id, { worker: w, resolve, reject });
    w.postMessage({ id, req });
  }

  private release(w: Worker): void {
    const next = this.queue.shift();
    if (next) this.send(w, next.req, next.resolve, next.reject);
    else this.idle.push(w);
  }
}
