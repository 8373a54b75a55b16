// Assertions guard invariants: a failure is a bug, and the node must stop rather than serve from
// a state it does not understand. Bad input from the world is a KavkaError, never an assertion.

export class AssertionError extends Error {
  constructor(message: string) {
    super(`assertion failed: ${message}`);
    this.name = 'AssertionError';
  }
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}

export function assertNever(value: never, context: string): never {
  throw new AssertionError(`unexpected ${context}: ${JSON.stringify(value)}`);
}
