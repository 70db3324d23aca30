/**
 * What the core throws when it cannot go on: it says what is wrong, in words an operator can act
 * on, and leaves exit codes and HTTP statuses to the edges (exitCodeOf in util/errors.ts).
 */

/** A date, month, time zone or period the core cannot read, named as the caller gave it. */
export class BadInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Stored data (the index's columns) in a layout this version cannot read. */
export class UnreadableDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}
