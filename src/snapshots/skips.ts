import { DataError } from '../util/errors.js';
import type { PoolOptions } from './read-pool.js';

/** How a read treats a corrupt file or a bad record, and where it says so. */
export interface ReadPolicy extends PoolOptions {
  /** Fail on the first corrupt file or bad record instead of skipping it. */
  strict: boolean;
  /** Receives one line per problem (for stderr). */
  warn: (line: string) => void;
}

/** One line for the records skipped in a file: the first one's reason, and how many more. */
export function describeRecordSkips(file: string, skips: readonly { reason: string; detail?: string }[]): string {
  const first = skips[0]!;
  const more = skips.length > 1 ? ` and ${skips.length - 1} more` : '';
  return `skipped ${skips.length} record${skips.length > 1 ? 's' : ''} in ${file}: ${first.detail ?? first.reason}${more}`;
}

/** Reports each skipped file or record, or fails under --strict. */
export class SkipLedger {
  constructor(private readonly policy: ReadPolicy) {}

  file(file: string, reason: string, message: string): void {
    if (this.policy.strict) throw new DataError(`${file}: ${reason} (${message}); fix or move the file, or run without --strict to skip it`);
    this.policy.warn(`skipped ${file}: ${reason} (${message}); use --strict to fail instead`);
  }

  records(file: string, skips: { reason: string; detail?: string }[]): void {
    if (skips.length === 0) return;
    const first = skips[0]!;
    if (this.policy.strict) throw new DataError(`${file}: ${first.reason}${first.detail ? `: ${first.detail}` : ''}; fix the file, or run without --strict to skip such records`);
    this.policy.warn(`${describeRecordSkips(file, skips)}; use --strict to fail instead`);
  }

  unnamed(names: readonly string[]): void {
    for (const name of names) {
      this.policy.warn(`ignored ${name}: its name is not a capture time (YYYY-MM-DDTHH:MM:SSZ.json or the AI4OS YYYY-MM-DDTHH:MM:SS.json)`);
    }
  }
}
