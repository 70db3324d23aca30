import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { VERSION } from '../version.js';

/**
 * Metrics of the serve process itself: which build answers, and Node's standard `process_*`
 * and `nodejs_*` families. Collected on the main thread, which answers every request; a query
 * worker's CPU, heap and event loop would describe only that worker.
 */
export class ProcessMetrics {
  private readonly registry = new Registry();

  constructor() {
    const build = new Gauge({ name: 'hourmeter_build_info', help: 'Always 1; the labels say which hourmeter version runs on which Node.js.', labelNames: ['version', 'node'], registers: [this.registry] });
    build.set({ version: VERSION, node: process.version }, 1);
    collectDefaultMetrics({ register: this.registry });
    // Gauges named *_total read as counters (promtool refuses them); each is the sum of the
    // family of the same name without the suffix, which stays.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name);
    // The event loop lag is measured from one collection to the next: start one now, so that
    // the first scrape reports a measured lag rather than 0.
    void this.registry.getSingleMetric('nodejs_eventloop_lag_seconds')?.get();
  }

  /** Prometheus text format, to follow the index's metrics in the same answer. */
  async text(): Promise<string> {
    // No blank lines between families, as in the index's part of the answer.
    return (await this.registry.metrics()).replace(/\n{2,}/g, '\n');
  }
}
