import { parentPort, workerData } from 'node:worker_threads';
import { openIndexStore } from '../history/sqlite.js';
import { Queries, type ApiRequest } from './queries.js';

/** A query worker: its own read connection to the index (WAL: readers never wait for each other). */

// Long-lived: segments stay decoded between questions until an ingest changes the index.
const store = openIndexStore((workerData as { dbPath: string }).dbPath, { create: false, keepSegments: true });
const queries = new Queries(store);

parentPort!.on('message', (m: { id: number; req: ApiRequest }) => {
  try {
    parentPort!.postMessage({ id: m.id, res: queries.answer(m.req) });
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: (e as Error).message ?? String(e) });
  }
});
