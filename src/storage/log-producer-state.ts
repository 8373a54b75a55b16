// A partition log's idempotent-producer state as the log keeps it: the ProducerStateManager
// (producer-state.ts) of its batches up to the log end, the snapshots written as of a roll or a
// clean close (producer-state-snapshot.ts; the newest PRODUCER_SNAPSHOTS_KEPT are kept), and the
// rebuild after a truncation (producer-state-loader.ts), which replaces the manager.
//
// Invariant (the caller's, asserted where it writes): outside a queued task endOffset equals the
// log's logEndOffset; every batch written is recorded synchronously when the log end passes it.
//
// Called by FilePartitionLog (partition-log.ts), only inside its queue (the copies for tests and
// tools excepted). I/O errors pass unchanged: the caller takes the log dir offline.
import { isControl } from '../codec/record-batch.js';
import { assert } from '../util/assert.js';
import type { Logger } from '../util/logger.js';
import { producerBatchMetaOf, ProducerStateManager, type AppendCheck, type ProducerStateSnapshot } from './producer-state.js';
import { loadProducers, type LoadedProducers } from './producer-state-loader.js';
import { retainLatestProducerSnapshots, writeProducerSnapshot } from './producer-state-snapshot.js';
import type { BatchLocation, LogSegment } from './segment.js';
import type { StorageFs } from './storage-fs.js';

/** Producer-state snapshots kept after each roll and clean close (the newest is kept even below the log start). */
const PRODUCER_SNAPSHOTS_KEPT = 2;

export interface LogProducerStateOptions {
  fs: StorageFs;
  /** The partition's directory, where the snapshots are. */
  directory: string;
  /** The partition's name, for errors and log lines. */
  name: string;
  logger: Logger;
}

/** The log as a rebuild of its producer state reads it, once a truncation's cut is durable. */
export interface ProducerReloadInputs {
  segments: readonly LogSegment[];
  logStartOffset: bigint;
  logEndOffset: bigint;
  nowMs: number;
  expirationMs: number;
}

export class LogProducerState {
  constructor(
    /** Idempotent producers' state as of the log end; replaced by reload() and restart(). */
    private manager: ProducerStateManager,
    private readonly options: LogProducerStateOptions,
  ) {}

  get endOffset(): bigint {
    return this.manager.endOffset;
  }

  /** A copy of the state. */
  snapshot(): ProducerStateSnapshot {
    return this.manager.snapshot();
  }

  /** A leader's check of its batches, before anything is written or assigned: a rejected batch leaves no trace. */
  checkAppends(located: readonly BatchLocation[]): AppendCheck {
    return this.manager.checkAppends(located.map((batch) => producerBatchMetaOf(batch.header)));
  }

  /** The broker time recorded for the producer's batch that starts at firstOffset, if the state still holds it. */
  recordedTimestampMs(producerId: bigint, firstOffset: bigint): number | undefined {
    return this.manager.entry(producerId)?.batches.find((b) => b.firstOffset === firstOffset)?.timestampMs;
  }

  /**
   * Synchronously with logEndOffset moving past them: records every batch written (idempotent or
   * not, as leader or follower; the broker's clock is the producer's last timestamp). Control
   * batches only move the state's end offset, as in a replay.
   */
  recordAppended(located: readonly BatchLocation[], lastOffsets: readonly bigint[], nowMs: number): void {
    for (let i = 0; i < located.length; i++) {
      const { header } = located[i];
      const meta = producerBatchMetaOf(header);
      const recorded = isControl(header.attributes) ? { ...meta, producerId: -1n } : meta;
      this.manager.onAppended(recorded, lastOffsets[i] - BigInt(header.lastOffsetDelta), lastOffsets[i], nowMs);
    }
  }

  /** Writes `<logEnd>.snapshot` of the state and keeps the newest PRODUCER_SNAPSHOTS_KEPT. */
  async writeSnapshot(logEndOffset: bigint): Promise<void> {
    const snapshot = this.manager.snapshot();
    assert(snapshot.endOffset === logEndOffset, `${this.options.name}: producer state ends at ${snapshot.endOffset}, the log at ${logEndOffset}`);
    await writeProducerSnapshot(this.options.fs, this.options.directory, snapshot);
    await retainLatestProducerSnapshots(this.options.fs, this.options.directory, PRODUCER_SNAPSHOTS_KEPT);
  }

  /**
   * In a truncation's task, once the cut is durable: the producer state of the log as it is now
   * (snapshots above the new end deleted durably before any append reuses those offsets).
   * Replaces the state only when the rebuild succeeds.
   */
  async reload(inputs: ProducerReloadInputs): Promise<LoadedProducers['report']> {
    const { fs, directory, name, logger } = this.options;
    const loaded = await loadProducers({
      fs,
      directory,
      segments: inputs.segments,
      logStartOffset: inputs.logStartOffset,
      logEndOffset: inputs.logEndOffset,
      nowMs: inputs.nowMs,
      expirationMs: inputs.expirationMs,
      options: { unknownProducerPolicy: 'reject', partitionName: name },
      logger,
    });
    this.manager = loaded.manager;
    return loaded.report;
  }

  /** The log restarted empty at `offset` (truncateFullyAndStartAt; its snapshots are already deleted). */
  restart(offset: bigint): void {
    this.manager = new ProducerStateManager(offset, { unknownProducerPolicy: 'reject', partitionName: this.options.name });
  }

  /** Drops (and logs) the producers idle for expirationMs; returns how many. */
  removeExpired(nowMs: number, expirationMs: number): number {
    const removed = this.manager.removeExpired(nowMs, expirationMs);
    if (removed.length > 0) {
      this.options.logger.info({ producerIds: removed.map(String), producerIdExpirationMs: expirationMs, producers: this.manager.producerCount }, 'expired idle producers');
    }
    return removed.length;
  }
}

