// The reads in flight on one partition log, so that what a read snapshotted stays readable under
// it: segments deleted meanwhile keep their descriptor open until no read is in flight, and a
// truncation that cuts a segment file in place first waits for the reads that started before it.
// `generation` counts truncations; each read is counted under the one it started in.
//
// Invariants: readsInFlight is the sum of the counts in `byGeneration` (no entry has a count of
// 0); `retired` is empty whenever no read is in flight.
//
// Called by FilePartitionLog (partition-log.ts) on the event loop: a read calls start()
// synchronously right after it took its snapshot and finish() when it is done; truncations call
// nextGeneration() in the log's queue. Every method is synchronous except the waits it returns.
import type { Logger } from '../util/logger.js';
import type { LogSegment } from './segment.js';

export class ReadTracker {
  private inFlight = 0;
  /** Deleted segments whose descriptors wait for the reads in flight. */
  private retired: LogSegment[] = [];
  private drainedWaiters: (() => void)[] = [];
  /** Truncations so far: the generation a read starting now belongs to. */
  private generation = 0;
  /** Reads in flight by the generation they started in (entries with a count of 0 are removed). */
  private readonly byGeneration = new Map<number, number>();
  private generationWaiters: { generation: number; resolve: () => void }[] = [];

  constructor(private readonly logger: Logger) {}

  get readsInFlight(): number {
    return this.inFlight;
  }

  /** A read starts; returns the generation to hand back to finish(). */
  start(): number {
    const generation = this.generation;
    this.inFlight += 1;
    this.byGeneration.set(generation, (this.byGeneration.get(generation) ?? 0) + 1);
    return generation;
  }

  /** The read that start() returned `generation` to is done (whether it succeeded or not). */
  finish(generation: number): void {
    this.inFlight -= 1;
    const left = (this.byGeneration.get(generation) ?? 0) - 1;
    if (left > 0) {
      this.byGeneration.set(generation, left);
    } else {
      this.byGeneration.delete(generation);
      this.wakeGenerationWaiters();
    }
    if (this.inFlight === 0) this.onReadsDrained();
  }

  /** A truncation switched the in-memory log: reads starting from now belong to a new generation, which it returns. */
  nextGeneration(): number {
    this.generation += 1;
    return this.generation;
  }

  /** Resolves once no read that started in a generation below `generation` is in flight. */
  readsStartedBefore(generation: number): Promise<void> {
    if (!this.hasReadsBefore(generation)) return Promise.resolve();
    return new Promise<void>((resolve) => this.generationWaiters.push({ generation, resolve }));
  }

  /** Closes the descriptor of a segment no longer in the log now, or after the reads in flight. */
  async release(segment: LogSegment): Promise<void> {
    if (this.inFlight === 0) await segment.close();
    else this.retired.push(segment);
  }

  /** Resolves when no read is in flight (for close; the caller skips it when none is). */
  drained(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.drainedWaiters.push(resolve));
  }

  /** Takes the segments still waiting to be closed (for close, once reads drained). */
  takeRetired(): LogSegment[] {
    return this.retired.splice(0);
  }

  private hasReadsBefore(generation: number): boolean {
    for (const started of this.byGeneration.keys()) if (started < generation) return true;
    return false;
  }

  private wakeGenerationWaiters(): void {
    const waiting = this.generationWaiters;
    this.generationWaiters = [];
    for (const waiter of waiting) {
      if (this.hasReadsBefore(waiter.generation)) this.generationWaiters.push(waiter);
      else waiter.resolve();
    }
  }

  private onReadsDrained(): void {
    for (const segment of this.retired.splice(0)) {
      segment.close().catch((error: unknown) => this.logger.warn({ err: error, file: segment.logPath }, 'closing a deleted segment failed'));
    }
    for (const waiter of this.drainedWaiters.splice(0)) waiter();
  }
}
