// An error the CLI reports to the user and exits 1 on. KavkaErrors from the client are reported
// with their Kafka error name; anything else is a bug and shows its stack.
import { KavkaError } from '../util/errors.js';

export class CliError extends Error {
  readonly usage: boolean;
  readonly exitCode: number;

  constructor(message: string, options: { usage?: boolean; exitCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CliError';
    this.usage = options.usage ?? false;
    this.exitCode = options.exitCode ?? 1;
  }
}

/** One line naming the Kafka error: "TOPIC_ALREADY_EXISTS: topic x already exists". */
export function describeError(error: unknown): string {
  if (error instanceof CliError) return error.message;
  if (error instanceof KavkaError) {
    return error.message.startsWith(`${error.code}`) ? error.message : `${error.code}: ${error.message}`;
  }
  if (error instanceof Error) return error.stack ?? error.message;
  return String(error);
}
