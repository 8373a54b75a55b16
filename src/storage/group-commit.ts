// Group commit for one partition log (DESIGN.md section 2, flush policy `batch`): at most one
// fdatasync is in flight, and it covers every write that completed before it started. Appends
// whose writes land while a sync runs wait for the next one, so many producers share one sync.
// A sync about to start first lets the appends already queued at that moment finish their
// writes (a barrier fixed then, so later arrivals never postpone it): concurrent producers then
// share one sync instead of the first paying for its own.
//
// Invariants: durableEnd <= writtenEnd, and both only move up. A waiter for offsets below E
// resolves only after (a) an fdatasync that started after the write of E completed has succeeded,
// or (b) the caller marked E durable (a roll fsynced the segment holding it).
// After fail() no sync ever runs again: a failed fsync is never retried, because the kernel may
// have dropped the dirty pages and a retry could report success over lost data.
// truncate() and restart() move both ends down (or, for a restart, anywhere): bytes at the offsets
// above are gone, so their waiters reject, and a sync started before covers none of the bytes
// written after: its completion moves nothing (`generation`).
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
  /** The fdatasync in flight, if any. */
  private inFlight: Promise<void> | undefined;
  /** Sorted by end (appends arrive in offset order; a duplicate's wait for older offsets is inserted). */
  private waiters: Waiter[] = [];
  private failure: KavkaError | undefined;
  private syncs = 0;
  /** Appends queued and finished (written or failed) so far, and the count a pending sync waits for. */
  private appendsQueued = 0;
  private appendsDone = 0;
  private barrier: number | undefined;
  /** Bumped by truncate() and restart(); a sync only advances within the generation it started in. */
  private generation = 0;

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

  /** An append entered the log's queue. Every call is followed by one appendDone(), whatever happens. */
  appendQueued(): void {
    this.appendsQueued += 1;
  }

  /** An append left the queue (written or failed); a sync waiting for it may start. */
  appendDone(): void {
    this.appendsDone += 1;
    assert(this.appendsDone <= this.appendsQueued, 'every finished append was queued');
    this.maybeStartSync();
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

  /**
   * Resolves once every offset below `end` is durable; rejects if the log dir fails first, or
   * when a truncation removes offsets below `end`. Appends wait in offset order; a wait for
   * offsets written earlier (an idempotent producer's retry answered with its original offsets)
   * may come later and goes in its place.
   */
  waitDurable(end: bigint): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    assert(end <= this.written, `waiting for ${end}, which is not written (written end ${this.written})`);
    if (end <= this.durable) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      let at = this.waiters.length;
      while (at > 0 && this.waiters[at - 1].end > end) at--;
      this.waiters.splice(at, 0, { end, resolve, reject });
      this.maybeStartSync();
    });
  }

  /**
   * The log was truncated to `end` (<= writtenEnd): both ends move down to at most `end`; waiters
   * for offsets above it reject with `error`. The caller marks `end` durable once it has synced.
   */
  truncate(end: bigint, error: KavkaError): void {
    assert(end <= this.written, `truncation to ${end} is not above the written end ${this.written}`);
    this.generation += 1;
    this.written = end;
    if (this.durable > end) this.durable = end;
    let kept = this.waiters.length;
    while (kept > 0 && this.waiters[kept - 1].end > end) kept--;
    for (const waiter of this.waiters.splice(kept)) waiter.reject(error);
  }

  /** The log restarted empty at `start` (truncateFullyAndStartAt): every waiter rejects; both ends are `start`. */
  restart(start: bigint, error: KavkaError): void {
    this.generation += 1;
    this.written = start;
    this.durable = start;
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
  }

  /** The log dir failed: reject every waiter now and never sync again. */
  fail(error: KavkaError): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
  }

  /**
   * Resolves when no fdatasync is in flight (never rejects). Before a segment's descriptor is
   * closed: a sync queued on a closed descriptor would fail with EBADF and take the dir offline.
   */
  async idle(): Promise<void> {
    while (this.inFlight !== undefined) await this.inFlight;
  }

  private maybeStartSync(): void {
    if (this.inFlight !== undefined || this.failure !== undefined || this.waiters.length === 0) return;
    // Appends queued before now will write soon; appendDone() brings us back here.
    if (this.barrier === undefined) this.barrier = this.appendsQueued;
    if (this.appendsDone < this.barrier) return;
    this.barrier = undefined;
    const target = this.written;
    const generation = this.generation;
    this.syncs += 1;
    this.inFlight = this.hooks.sync().then(
      () => {
        this.inFlight = undefined;
        if (this.failure !== undefined) return;
        if (generation === this.generation) this.advance(target);
        this.maybeStartSync();
      },
      (error: unknown) => {
        this.inFlight = undefined;
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
