// Whether a log dir may still be used. A write, fsync or other I/O error from any log in the dir
// takes the whole dir offline (DESIGN.md section 2), once: listeners hear the first reason, every
// later append and read fails with KAFKA_STORAGE_ERROR, and nothing is retried. The dir comes
// back only when the node reopens it through recovery.
//
// A batch whose CRC no longer matches, found while serving it, takes the dir offline the same way
// (cause `corruption`), so the node stops serving every partition on the dir and the recovery that
// brings it back verifies the sealed segments.
//
// Shared by the LogManager and its PartitionLogs; a PartitionLog opened alone gets its own.
// Transitions: online -> offline (never back). LogManager.reopen replaces the whole object.
import { AssertionError } from '../util/assert.js';
import type { Clock } from '../util/clock.js';
import { KavkaError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { LogDirFailureCause, LogDirState } from './api.js';
import { errorCodeOf } from './storage-fs.js';

export class LogDirHealth {
  private current: LogDirState = { kind: 'online' };
  private readonly listeners = new Set<(reason: string) => void>();

  constructor(
    readonly logDir: string,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  get state(): LogDirState {
    return this.current;
  }

  get isOffline(): boolean {
    return this.current.kind === 'offline';
  }

  /** Called once, when the dir goes offline. Returns the unsubscribe function. */
  onOffline(listener: (reason: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Throws KAFKA_STORAGE_ERROR when the dir is offline. */
  checkOnline(context: string): void {
    if (this.current.kind === 'offline') throw this.offlineError(context);
  }

  offlineError(context: string): KavkaError {
    const reason = this.current.kind === 'offline' ? this.current.reason : 'unknown';
    return new KavkaError('KAFKA_STORAGE_ERROR', `${context}: log dir ${this.logDir} is offline (${reason})`);
  }

  /**
   * An I/O operation failed: the dir goes offline (the first failure gives the reason) and the
   * caller gets the error to throw. The failed operation must not be retried.
   */
  fail(operation: string, path: string, cause: unknown): KavkaError {
    const code = errorCodeOf(cause) ?? 'error';
    const message = cause instanceof Error ? cause.message : String(cause);
    if (this.current.kind === 'online') {
      const reason = `${operation} ${path} failed: ${message.startsWith(code) ? message : `${code}: ${message}`}`;
      this.logger.error({ logDir: this.logDir, operation, path, code, err: cause }, 'I/O error; log dir is now offline');
      this.goOffline(reason, 'io');
    }
    return new KavkaError('KAFKA_STORAGE_ERROR', `${operation} ${path} failed (${code}); log dir ${this.logDir} is offline`, { cause });
  }

  /**
   * A batch read back from `path` at byte `position` (offset `offset`) does not match its CRC:
   * the bytes are never served, the dir goes offline (cause `corruption`), and the caller gets the
   * error to throw. Recovery repairs the segment (log-loader.ts).
   */
  corrupt(path: string, position: number, offset: bigint | undefined, detail: string): KavkaError {
    const where = `${path} is corrupt at position ${position}${offset === undefined ? '' : ` (offset ${offset})`}`;
    if (this.current.kind === 'online') {
      this.logger.error({ logDir: this.logDir, file: path, position, offset: offset?.toString() ?? null, detail }, 'corrupt batch found while serving it; log dir is now offline until recovery repairs it');
      this.goOffline(`${where}: ${detail}`, 'corruption');
    }
    return new KavkaError('KAFKA_STORAGE_ERROR', `${where}; log dir ${this.logDir} is offline until recovery repairs it; clients retry on another replica`);
  }

  private goOffline(reason: string, cause: LogDirFailureCause): void {
    this.current = { kind: 'offline', reason, sinceMs: this.clock.nowMs(), cause };
    for (const listener of [...this.listeners]) {
      try {
        listener(reason);
      } catch (error) {
        this.logger.error({ err: error }, 'log dir offline listener threw');
      }
    }
  }
}

/** I/O errors take the dir offline; KavkaErrors (corruption, validation) and assertion failures pass unchanged. */
export function asStorageError(health: LogDirHealth, operation: string, path: string, error: unknown): Error {
  if (error instanceof KavkaError || error instanceof AssertionError) return error;
  const errorPath = (error as { path?: unknown }).path;
  return health.fail(operation, typeof errorPath === 'string' ? errorPath : path, error);
}
