// What the cat modes share: the client built from -b and -X, info lines on stderr in kcat's
// "% ..." form, and the standard streams (handed in, so tests can run a mode in-process).
import type { Readable, Writable } from 'node:stream';
import { Kavka } from '../client/index.js';
import type { CatOptions } from './cat-options.js';

export interface CatIo {
  stdin: Readable;
  stdout: Writable;
  stderr: NodeJS.WriteStream;
  stderrIsTTY: boolean;
  nowMs: () => number;
  /** Registers a handler for SIGINT/SIGTERM; returns a function that removes it. */
  onSignal: (handler: () => void) => () => void;
}

export function kavkaFor(options: CatOptions): Kavka {
  const s = options.settings;
  return new Kavka({
    clientId: s.clientId,
    brokers: options.brokers,
    requestTimeoutMs: s.requestTimeoutMs,
    retry: {
      ...(s.retries === undefined ? {} : { retries: s.retries }),
      ...(s.retryBackoffMs === undefined ? {} : { initialRetryTimeMs: s.retryBackoffMs }),
    },
  });
}

/** kcat's KC_INFO: "% text" on stderr when verbosity is at least `level`. */
export function info(io: CatIo, options: CatOptions, level: number, text: string): void {
  if (options.verbosity >= level) io.stderr.write(`% ${text}\n`);
}
