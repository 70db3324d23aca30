import { BadInputError, UnreadableDataError } from '../accounting/errors.js';

/**
 * Typed errors carry their exit code (README "Exit codes"); only src/cli/main.ts turns
 * them into a message and a process exit code.
 */
export class HourmeterError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad flag, date, zone or path: exit 2. */
export class UsageError extends HourmeterError {
  constructor(message: string) {
    super(message, 2);
  }
}

/** Unreadable data, runtime or I/O failure: exit 3. */
export class DataError extends HourmeterError {
  constructor(message: string) {
    super(message, 3);
  }
}

/** A check that failed on purpose (quota exceeded, stale snapshot): exit 1. */
export class CheckFailed extends HourmeterError {
  constructor(message: string) {
    super(message, 1);
  }
}

/**
 * The exit code of an error thrown on purpose, or null for a bug. The core's errors carry
 * none: bad input is a usage error (exit 2, HTTP 400), unreadable stored data a data error.
 */
export function exitCodeOf(e: unknown): number | null {
  if (e instanceof HourmeterError) return e.exitCode;
  if (e instanceof BadInputError) return 2;
  if (e instanceof UnreadableDataError) return 3;
  return null;
}
