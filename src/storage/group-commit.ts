// Group commit for one partition log (DESIGN.md section 2, flush policy `batch`): at most one
// fdatasync is in flight, and it covers every write that completed before it started. Appends
// whose writes land while a sync runs wait for the next one, so many producers share one sync.
//
// Invariants: durableEnd <= writtenEnd, and both only move up. A waiter for offsets below E
// resolves only after (a) an fdatasync that started after the write of E completed has succeeded,
// or (b) the caller marked E durable (a roll fsynced the segment holding it).
// After fail() no sync ever runs again: a failed fsync is never retried, because the kernel may
// have dropped the dirty pages and a retry could report success over lost data.
//
// Called by PartitionLog on the event loop; every method is synchronous except the sync it starts.
import { assert } from '../util/assert.js';
import type { KavkaError } from '../util/errors.js';

export interface GroupCommitHooks {
  /** fdatasync of the file that holds the newest writes (the active segment). */
  sync(): Promise<void>;
  /** Called each time durableEnd moves up. */
  onDurable(durableEnd: bigint): void;
  /** Turns a sync failure into the error every waiter gets (and takes the log dir offline). */
  onSyncError(error: unknown): KavkaError;
}

interface Waiter {
  end: bigint;
  resolve: () => void;
  reject: (error: KavkaError) => void;
}

export class GroupCommit {
  private written: bigint;
  private durable: bigint;
  private syncing = false;
  /** Sorted by end: appends complete their writes in offset order. */
  private waiters: Waiter[] = [];
  private failure: KavkaError | undefined;
  private syncs = 0;

  constructor(
    start: bigint,
    private readonly hooks: GroupCommitHooks,
  ) {
    this.written = start;
    this.durable = start;
  }

  get writtenEnd(): bigint {
    return this.written;
  }

  get durableEnd(): bigint {
    return this.durable;
  }

  /** fdatasyncs started so far (for metrics and tests). */
  get syncCount(): number {
    return this.syncs;
  }

  /** A write of every offset below `end` has completed. */
  noteWritten(end: bigint): void {
    assert(end >= this.written, `written end moves up (${end} after ${this.written})`);
    this.written = end;
  }

  /** Offsets below `end` are durable without a sync from here (a roll's fsync, or the os policy). */
  markDurable(end: bigint): void {
    assert(end <= this.written, `durable end ${end} is not past the written end ${this.written}`);
    this.advance(end);
  }

  /** Resolves once every offset below `end` is durable; rejects if the log dir fails first. */
  waitDurable(end: bigint): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    assert(end <= this.written, `waiting for ${end}, which is not written (written end ${this.written})`);
    if (end <= this.durable) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const last = this.waiters[this.waiters.length - 1];
      assert(last === undefined || last.end <= end, 'durability waiters arrive in offset order');
      this.waiters.push({ end, resolve, reject });
      this.maybeStartSync();
    });
  }

  /** The log dir failed: reject every waiter now and never sync again. */
  fail(error: KavkaError): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
  }

  private maybeStartSync(): void {
    if (this.syncing || this.failure !== undefined || this.waiters.length === 0) return;
    const target = this.written;
    this.syncing = true;
    this.syncs += 1;
    this.hooks.sync().then(
      () => {
        this.syncing = false;
        if (this.failure !== undefined) return;
        this.advance(target);
        this.maybeStartSync();
      },
      (error: unknown) => {
        this.syncing = false;
        this.fail(this.hooks.onSyncError(error));
      },
    );
  }

  private advance(end: bigint): void {
    if (end <= this.durable) return;
    this.durable = end;
    let resolved = 0;
    while (resolved < this.waiters.length && this.waiters[resolved].end <= end) resolved++;
    for (const waiter of this.waiters.splice(0, resolved)) waiter.resolve();
    this.hooks.onDurable(end);
  }
}
