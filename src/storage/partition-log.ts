// A partition's log on disk (Kafka's UnifiedLog + LocalLog): an ordered list of segments, the
// last one active. Implements PartitionLog (api.ts).
//
// Concurrency: callers may overlap any calls. Appends (as leader and as follower), rolls,
// retention, truncation, epoch assignment, flush and close run one at a time through `queue`, in
// arrival order. Waiting for durability happens outside the queue, so the next append writes
// while the previous one's fdatasync runs (group commit). Reads never enter the queue: a read
// takes a snapshot (segment list, active segment size, log start and end) synchronously and reads
// below it (log-reads.ts); segments deleted meanwhile keep their descriptor open until no read is
// in flight, and a truncation that cuts a segment file in place first waits for the reads that
// started before it (`reads`, read-tracker.ts).
//
// Leader epochs: `epochs` (log-leader-epochs.ts) is changed only in the queue and written to
// `leader-epoch-checkpoint` after each change: before the batch that starts a new epoch is
// written, and after the bytes a truncation removes are gone. So the file never lacks an entry
// for a batch on disk; entries past the log end after a crash are dropped by the loader.
//
// Idempotent producers: `producers` (log-producer-state.ts) is changed only in the queue. A
// leader's append checks its batches against it before offsets are assigned (a retry of one of the
// producer's last 5 batches is answered with the original offsets, nothing written); every batch
// written, as leader or follower, is recorded synchronously when logEndOffset passes it. Each roll
// writes a snapshot as of the new segment's base offset (producer-state-snapshot.ts; the newest 2
// are kept), and a clean close one at the log end before the marker. Open and truncateTo load the
// newest snapshot at or below the log end and replay the batch headers after it;
// truncateFullyAndStartAt deletes every snapshot and starts empty.
//
// Invariants:
// - logStartOffset <= durableEndOffset <= logEndOffset; logStartOffset only moves up, except
//   that truncateFullyAndStartAt restarts the log anywhere.
// - segments is never empty, ascending by base offset; only the last (active) one is written.
// - A sealed segment's .log and indexes were fsynced before the next segment was created, so
//   recovery after a crash scans only the active segment (log-loader.ts).
// - The active segment's `size` and `logEndOffset` move together, synchronously after a write
//   completed: every byte a reader may see is written.
// - Once the log dir is offline nothing is written or synced again; close() then only releases
//   descriptors (no flush, no marker), so the next open recovers.
// - Outside a queued task, producers.endOffset == logEndOffset: the state holds exactly the
//   batches of this log (with retention's deleted ones, until their producers expire).
// - No leader epoch entry starts past logEndOffset. One may start at it and cover no record yet:
//   added by assignEpochStartOffset, or moved up to the start of a log left empty by retention.
import { assert } from '../util/assert.js';
import type { Clock } from '../util/clock.js';
import { KavkaError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import {
  topicPartitionName,
  type AppendResult,
  type EpochEndOffset,
  type LogConfig,
  type PartitionLog,
  type ReadOptions,
  type ReadResult,
  type SealedSegmentVerification,
  type TimestampOffset,
  type TopicPartition,
} from './api.js';
import { removeRefetchMarker } from './refetch-marker.js';
import { stampLeaderBatches, validateBatchesForAppend, validateBatchesForFollowerAppend } from './append-validation.js';
import { writeCleanShutdown } from './clean-shutdown-marker.js';
import { planFollowerAppend } from './follower-append.js';
import { GroupCommit } from './group-commit.js';
import type { EpochEntry } from './leader-epoch-cache.js';
import { duplicateAppend, leaderLastOffset, recordWrittenBatches, writtenAppend, type Appended, type PreparedWrite } from './log-append.js';
import { INT32_MAX, validateLogConfig } from './log-config.js';
import { asStorageError, type LogDirHealth } from './log-dir-health.js';
import { LogLeaderEpochs } from './log-leader-epochs.js';
import type { LoadedLog, LogRecoveryReport } from './log-loader.js';
import { LogProducerState } from './log-producer-state.js';
import { LogReader, type ReadSnapshot } from './log-reads.js';
import { writeLogStartOffset } from './log-start-offset-checkpoint.js';
import { deleteSegmentsNewestFirst, restartLogDirectory, truncatedError } from './log-truncation.js';
import type { ProducerStateManager, ProducerStateSnapshot } from './producer-state.js';
import { ReadTracker } from './read-tracker.js';
import { planRetention } from './retention.js';
import { sealSegment, shouldRoll, shouldRollForTime } from './segment-roll.js';
import { LogSegment, segmentIndexFor, type BatchLocation } from './segment.js';
import type { StorageFs } from './storage-fs.js';
import { SerialQueue } from './serial-queue.js';

export interface PartitionLogOptions {
  /** The partition's directory, `<log dir>/<topic>-<partition>`; created when missing. */
  directory: string;
  topicPartition: TopicPartition;
  config: LogConfig;
  clock: Clock;
  logger: Logger;
  fs?: StorageFs;
  /** The log dir's health, shared by its logs. A log opened alone gets its own. */
  health?: LogDirHealth;
  /** Called once when the log has closed (the LogManager forgets it then). */
  onClosed?: () => void;
  /** When recovery CRC-checks every batch of the sealed segments; default `unclean`. */
  verifySealedSegments?: SealedSegmentVerification;
  /** Check them whatever the policy (the dir went offline because of corruption). */
  forceVerification?: boolean;
}

type LogState = 'open' | 'closing' | 'closed';

export class FilePartitionLog implements PartitionLog {
  readonly topicPartition: TopicPartition;
  readonly directory: string;
  /** What the loader found and did when this log opened. */
  readonly recovery: LogRecoveryReport;
  private readonly name: string;
  private readonly clock: Clock;
  private configValue: LogConfig;
  private segments: readonly LogSegment[];
  private logStart: bigint;
  private logEnd: bigint;
  private totalBytes: number;
  private readonly queue = new SerialQueue();
  private readonly groupCommit: GroupCommit;
  private readonly appendListeners = new Set<() => void>();
  private state: LogState = 'open';
  private closing: Promise<void> | undefined;
  /** Reads in flight, the segments deleted under them, and the truncation generation. */
  private readonly reads: ReadTracker;
  private readonly reader: LogReader;
  private readonly epochs: LogLeaderEpochs;
  /** Idempotent producers' state as of logEndOffset; rebuilt by truncation. */
  private readonly producers: LogProducerState;
  private readonly unsubscribeHealth: () => void;

  constructor(
    private readonly options: PartitionLogOptions,
    private readonly fs: StorageFs,
    private readonly logger: Logger,
    private readonly health: LogDirHealth,
    loaded: LoadedLog,
    producers: ProducerStateManager,
    private refetchFrom: bigint | undefined,
  ) {
    const { segments, logStartOffset, logEndOffset } = loaded;
    assert(segments.length > 0, 'a log has an active segment');
    assert(logStartOffset <= logEndOffset, `log start ${logStartOffset} <= log end ${logEndOffset}`);
    this.topicPartition = options.topicPartition;
    this.directory = options.directory;
    this.name = topicPartitionName(options.topicPartition);
    this.clock = options.clock;
    this.configValue = { ...options.config };
    this.segments = segments;
    this.logStart = logStartOffset;
    this.logEnd = logEndOffset;
    this.totalBytes = segments.reduce((sum, segment) => sum + segment.size, 0);
    this.recovery = loaded.report;
    this.reads = new ReadTracker(logger);
    this.reader = new LogReader({ name: this.name, directory: options.directory, health, reads: this.reads });
    this.epochs = new LogLeaderEpochs(loaded.leaderEpochs, { fs, directory: options.directory, name: this.name, logger });
    assert(producers.endOffset === logEndOffset, `producer state ends at ${producers.endOffset}, the log at ${logEndOffset}`);
    this.producers = new LogProducerState(producers, { fs, directory: options.directory, name: this.name, logger });
    // Everything on disk at open is durable: recovery fsynced what it truncated, and the rest was
    // fsynced before the crash or close (or counts as written by the OS policy, which it was).
    this.groupCommit = new GroupCommit(logEndOffset, {
      sync: () => this.activeSegment.file.datasync(),
      onDurable: () => this.notifyAppendListeners(),
      onSyncError: (error) => asStorageError(this.health, 'fdatasync', this.activeSegment.logPath, error) as KavkaError,
    });
    this.unsubscribeHealth = health.onOffline(() => this.groupCommit.fail(this.health.offlineError(this.name)));
  }

  get logStartOffset(): bigint {
    return this.logStart;
  }

  get logEndOffset(): bigint {
    return this.logEnd;
  }

  get durableEndOffset(): bigint {
    return this.groupCommit.durableEnd;
  }

  get sizeBytes(): number {
    return this.totalBytes;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  get config(): LogConfig {
    return this.configValue;
  }

  /** The base offsets of the segments, oldest first (for tests and tools). */
  get segmentBaseOffsets(): bigint[] {
    return this.segments.map((segment) => segment.baseOffset);
  }

  /** A copy of the idempotent-producer state (for tests and tools). */
  get producerState(): ProducerStateSnapshot {
    return this.producers.snapshot();
  }

  /** fdatasyncs group commit has started (for metrics and tests). */
  get groupCommitSyncs(): number {
    return this.groupCommit.syncCount;
  }

  private get activeSegment(): LogSegment {
    return this.segments[this.segments.length - 1];
  }

  get refetchRequired(): bigint | undefined {
    return this.refetchFrom;
  }

  /** See PartitionLog.clearRefetchRequired. In the queue, so it is ordered with truncations. */
  async clearRefetchRequired(): Promise<void> {
    if (this.refetchFrom === undefined) return;
    return this.runQueued('clear the refetch marker of', async () => {
      await this.withIoErrors('remove refetch marker', this.directory, () => removeRefetchMarker(this.fs, this.directory));
      this.logger.info({ truncatedToOffset: this.refetchFrom?.toString() ?? null, logEndOffset: this.logEnd.toString() }, 'the replica re-fetched what its corruption repair dropped; it may lead again');
      this.refetchFrom = undefined;
    });
  }

  /** Takes effect for the next append; validation fails with INVALID_CONFIG naming the key. */
  updateConfig(config: LogConfig): void {
    validateLogConfig(config);
    this.configValue = { ...config };
  }

  // ------------------------------------------------------------------------------ appends

  /**
   * See PartitionLog.appendAsLeader. The log takes `batches` over: it stamps base offsets, the
   * leader epoch (and for LogAppendTime the timestamp) in place and writes that memory as is, so
   * the caller must not change or reuse the buffer until the returned promise settles.
   */
  async appendAsLeader(batches: Buffer, leaderEpoch: number): Promise<AppendResult> {
    assert(Number.isInteger(leaderEpoch) && leaderEpoch >= -1 && leaderEpoch <= INT32_MAX, `leader epoch ${leaderEpoch} is an int32`);
    this.checkUsable('append to', false);
    const located = validateBatchesForAppend(batches, this.configValue);
    // The buffer is the caller's and is stamped in place (offsets, epoch): no copy on the hot path.
    return this.appendQueued(() => this.appendAsLeaderLocked(batches, located, leaderEpoch));
  }

  /** See PartitionLog.appendAsFollower. The bytes are written as they are, never stamped. */
  async appendAsFollower(batches: Buffer): Promise<AppendResult> {
    this.checkUsable('append to', false);
    const located = validateBatchesForFollowerAppend(batches);
    return this.appendQueued(() => this.appendAsFollowerLocked(batches, located));
  }

  /** Runs an append's write step in the queue, then waits (outside it) for the flush policy. */
  private async appendQueued(write: () => Promise<Appended>): Promise<AppendResult> {
    this.groupCommit.appendQueued();
    const appended = await this.queue.run(async () => {
      try {
        return await write();
      } finally {
        this.groupCommit.appendDone();
      }
    });
    if (appended.waitForSync) await this.groupCommit.waitDurable(appended.result.lastOffset + 1n);
    return appended.result;
  }

  /**
   * In the queue: check the epoch and the producers' sequences (a duplicate returns here), roll if
   * needed, stamp, record a new epoch, one write, bookkeeping.
   */
  private async appendAsLeaderLocked(batches: Buffer, located: BatchLocation[], leaderEpoch: number): Promise<Appended> {
    this.checkUsable('append to', true);
    const latestEpoch = this.epochs.checkLeaderAppend(leaderEpoch);
    assert(this.producers.endOffset === this.logEnd, `${this.name}: producer state ends at ${this.producers.endOffset}, the log at ${this.logEnd}`);
    // Before anything is written or assigned: a rejected batch leaves no trace.
    const check = this.producers.checkAppends(located);
    if (check.kind === 'duplicate') return this.answerDuplicate(check.firstOffset, check.lastOffset, located[0].header.producerId);
    const config = this.configValue;
    const nowMs = this.clock.nowMs();
    const baseOffset = this.logEnd;
    if (shouldRoll(this.activeSegment, batches.length, leaderLastOffset(located, baseOffset), nowMs, config)) await this.roll(nowMs);

    const logAppendTimeMs = config.messageTimestampType === 'LogAppendTime' ? BigInt(nowMs) : -1n;
    const { lastOffsets, maxTimestamps } = stampLeaderBatches(batches, located, baseOffset, leaderEpoch, logAppendTimeMs);
    if (leaderEpoch >= 0 && leaderEpoch !== latestEpoch) await this.recordEpochStarts([{ epoch: leaderEpoch, startOffset: baseOffset }]);
    return this.writeBatches({ batches, baseOffset, located, lastOffsets, maxTimestamps, nowMs, logAppendTimeMs });
  }

  /** In the queue: check where the batches go and their epochs, roll if needed, record new epochs, one write. */
  private async appendAsFollowerLocked(batches: Buffer, located: BatchLocation[]): Promise<Appended> {
    this.checkUsable('append to', true);
    const target = { logStartOffset: this.logStart, logEndOffset: this.logEnd, activeBaseOffset: this.activeSegment.baseOffset, latestEpoch: this.epochs.latestEpoch() };
    const { baseOffset, lastOffsets, maxTimestamps, epochStarts } = planFollowerAppend(this.name, located, target);
    const nowMs = this.clock.nowMs();
    if (shouldRoll(this.activeSegment, batches.length, lastOffsets[lastOffsets.length - 1], nowMs, this.configValue)) await this.roll(nowMs);
    if (epochStarts.length > 0) await this.recordEpochStarts(epochStarts);
    return this.writeBatches({ batches, baseOffset, located, lastOffsets, maxTimestamps, nowMs, logAppendTimeMs: -1n });
  }

  /** A retry of a batch the log holds at [firstOffset, lastOffset] (log-append.ts: duplicateAppend); LogAppendTime as first recorded. */
  private answerDuplicate(firstOffset: bigint, lastOffset: bigint, producerId: bigint): Appended {
    const config = this.configValue;
    const recordedMs = this.producers.recordedTimestampMs(producerId, firstOffset);
    const logAppendTimeMs = config.messageTimestampType === 'LogAppendTime' && recordedMs !== undefined ? BigInt(recordedMs) : -1n;
    this.logger.debug({ producerId: producerId.toString(), baseOffset: firstOffset.toString(), lastOffset: lastOffset.toString() }, 'duplicate batch from an idempotent producer; answering with its original offsets');
    return duplicateAppend(firstOffset, lastOffset, logAppendTimeMs, this.logStart, config.flushPolicy);
  }

  /** In the queue, before the batches starting them are written: adds epoch entries and writes the checkpoint. */
  private async recordEpochStarts(starts: readonly EpochEntry[]): Promise<void> {
    await this.withIoErrors('write leader epoch checkpoint', this.directory, () => this.epochs.recordStarts(starts));
  }

  private async persistEpochs(): Promise<void> {
    await this.withIoErrors('write leader epoch checkpoint', this.directory, () => this.epochs.persist());
  }

  /** In the queue, offsets final: one write to the active segment, then (synchronously) the bookkeeping readers rely on. */
  private async writeBatches(write: PreparedWrite): Promise<Appended> {
    const { batches, lastOffsets } = write;
    const config = this.configValue;
    const active = this.activeSegment;
    const position = active.size;
    try {
      await active.file.write(batches, position);
    } catch (error) {
      throw asStorageError(this.health, 'write', active.logPath, error);
    }
    // Synchronously from here: the bytes are written, so readers may see them.
    recordWrittenBatches(active, position, write, config.indexIntervalBytes);
    const nextOffset = lastOffsets[lastOffsets.length - 1] + 1n;
    this.logEnd = nextOffset;
    this.producers.recordAppended(write.located, lastOffsets, write.nowMs);
    this.totalBytes += batches.length;
    this.groupCommit.noteWritten(nextOffset);
    if (config.flushPolicy === 'os') this.groupCommit.markDurable(nextOffset);
    return writtenAppend(write, this.logStart, config.flushPolicy);
  }

  /**
   * In the queue: seals the active segment (fdatasync of its .log, final time-index entry, index
   * files written and synced) and only then creates the next one at the log end offset, so a
   * sealed segment is always durable. Then a producer-state snapshot as of the new segment's base
   * offset (older ones beyond the newest 2 deleted), so a restart replays at most the active segment.
   */
  private async roll(nowMs: number): Promise<void> {
    const old = this.activeSegment;
    assert(old.size > 0, 'only a non-empty segment rolls');
    const baseOffset = this.logEnd;
    const next = await this.withIoErrors('roll', old.logPath, async () => {
      await this.sealActiveSegment();
      return LogSegment.create(this.fs, this.directory, baseOffset, nowMs);
    });
    this.segments = [...this.segments, next];
    // The directory fsync below also makes the snapshot's name durable (it need not be: see producer-state-snapshot.ts).
    await this.snapshotProducers();
    await this.withIoErrors('fsync directory', this.directory, () => this.fs.syncDirectory(this.directory));
    this.logger.info({ baseOffset: baseOffset.toString(), previousSegmentBytes: old.size }, 'rolled a new segment');
  }

  /** In the queue, before a roll creates the next segment and at a clean close (segment-roll.ts). */
  private async sealActiveSegment(): Promise<void> {
    await sealSegment(this.fs, this.activeSegment, () => this.groupCommit.markDurable(this.logEnd));
  }

  /** In the queue: writes `<logEnd>.snapshot` of the producer state (log-producer-state.ts keeps the newest ones). */
  private async snapshotProducers(): Promise<void> {
    await this.withIoErrors('write producer-state snapshot', this.directory, () => this.producers.writeSnapshot(this.logEnd));
  }

  // ------------------------------------------------------------------------------ reads

  async read(fetchOffset: bigint, maxBytes: number, options: ReadOptions): Promise<ReadResult> {
    this.checkUsable('read from', false);
    return this.reader.read(this.readSnapshot(), fetchOffset, maxBytes, options);
  }

  async offsetForTimestamp(timestampMs: bigint): Promise<TimestampOffset | undefined> {
    this.checkUsable('search', false);
    return this.reader.offsetForTimestamp(this.readSnapshot(), timestampMs);
  }

  async maxTimestampOffset(): Promise<TimestampOffset | undefined> {
    this.checkUsable('search', false);
    return this.reader.maxTimestampOffset(this.readSnapshot());
  }

  /** What a read starting now sees: taken synchronously, read below (the log may move on meanwhile). */
  private readSnapshot(): ReadSnapshot {
    const segments = this.segments;
    return { segments, activeEnd: segments[segments.length - 1].size, logStartOffset: this.logStart, logEndOffset: this.logEnd };
  }

  // ------------------------------------------------------------------------------ listeners

  onAppend(listener: () => void): () => void {
    this.appendListeners.add(listener);
    return () => {
      this.appendListeners.delete(listener);
    };
  }

  /** Called when durableEndOffset moves up: once per group commit, not once per append. */
  private notifyAppendListeners(): void {
    for (const listener of [...this.appendListeners]) {
      try {
        listener();
      } catch (error) {
        this.logger.error({ err: error }, 'an append listener threw');
      }
    }
  }

  // ------------------------------------------------------------------------------ retention

  /**
   * Deletes the oldest sealed segments that retention.ms, retention.bytes or retention.messages
   * (or the log start offset) allow, never the active one; first rolls the active segment when
   * segment.ms has passed and it holds data. retention.messages counts offsets
   * (logEnd - logStart, gaps included) and never deletes below the limit: a segment goes only if
   * the log still holds at least retention.messages offsets without it.
   */
  async applyRetention(nowMs: number): Promise<number> {
    return this.runQueued('apply retention to', async () => {
      const config = this.configValue;
      if (shouldRollForTime(this.activeSegment, nowMs, config)) await this.roll(nowMs);
      const segments = this.segments;
      const plan = planRetention({ segments, totalBytes: this.totalBytes, logStartOffset: this.logStart, logEndOffset: this.logEnd, nowMs, config });
      if (plan === undefined) return 0;
      const { count, logStartOffset: newLogStart } = plan;
      // The checkpoint goes first: a crash before the deletion leaves segments the loader drops.
      await this.withIoErrors('write checkpoint', this.directory, () => writeLogStartOffset(this.fs, this.directory, this.topicPartition, newLogStart));
      const deleted = segments.slice(0, count);
      this.segments = segments.slice(count);
      this.logStart = newLogStart;
      const epochsMoved = this.epochs.truncateFromStart(newLogStart);
      for (const segment of deleted) this.totalBytes -= segment.size;
      await this.withIoErrors('delete segment', this.directory, async () => {
        for (const segment of deleted) await this.deleteSegmentFiles(segment);
        await this.fs.syncDirectory(this.directory);
      });
      // After the deletion: a crash before this leaves entries below the start, which the loader trims the same way.
      if (epochsMoved) await this.persistEpochs();
      this.logger.info({ segmentsDeleted: count, logStartOffset: newLogStart.toString(), sizeBytes: this.totalBytes }, 'retention deleted segments');
      return count;
    });
  }

  /** See PartitionLog.removeExpiredProducers. In the queue, so it never falls between a check and its append. */
  async removeExpiredProducers(nowMs: number): Promise<number> {
    return this.runQueued('expire producers of', async () => this.producers.removeExpired(nowMs, this.configValue.producerIdExpirationMs));
  }

  /** Unlinks a deleted segment's files; its descriptor closes now, or after the reads in flight. */
  private async deleteSegmentFiles(segment: LogSegment): Promise<void> {
    await segment.unlinkFiles(this.fs);
    await this.releaseSegment(segment);
  }

  /** Closes the descriptor of a segment no longer in the log now, or after the reads in flight. */
  private async releaseSegment(segment: LogSegment): Promise<void> {
    // A group-commit sync may still run on the descriptor of a segment that was active a moment ago.
    await this.groupCommit.idle();
    await this.reads.release(segment);
  }

  // ------------------------------------------------------------------------------ leader epochs

  latestEpoch(): number | undefined {
    return this.epochs.latestEpoch();
  }

  /** See PartitionLog.endOffsetForEpoch. KAFKA_STORAGE_ERROR when the log cannot serve (offline, closed). */
  endOffsetForEpoch(epoch: number): EpochEndOffset {
    this.checkUsable('answer OffsetsForLeaderEpoch from', false);
    return this.epochs.endOffsetFor(epoch, this.logEnd);
  }

  epochForOffset(offset: bigint): number | undefined {
    return this.epochs.epochForOffset(offset);
  }

  /** The leader epoch cache, oldest first (for tests and tools). */
  get leaderEpochEntries(): EpochEntry[] {
    return this.epochs.entries();
  }

  async assignEpochStartOffset(leaderEpoch: number): Promise<void> {
    assert(Number.isInteger(leaderEpoch) && leaderEpoch >= 0 && leaderEpoch <= INT32_MAX, `leader epoch ${leaderEpoch} is an int32 >= 0`);
    return this.runQueued('assign a leader epoch to', async () => {
      if (this.epochs.startsNewEpoch(leaderEpoch)) await this.recordEpochStarts([{ epoch: leaderEpoch, startOffset: this.logEnd }]);
    });
  }

  // ------------------------------------------------------------------------------ truncation

  /**
   * See PartitionLog.truncateTo. In the queue: plan the cut (reads headers), then switch the
   * in-memory state at once (new reads see the truncated log), delete the segments above from the
   * newest down with a directory fsync after each (a crash leaves a prefix of the log, never a
   * hole), wait for the reads that started before, cut and fdatasync the segment file, and last
   * write the epoch checkpoint (a crash before leaves entries past the log end: the loader drops them).
   */
  async truncateTo(offset: bigint): Promise<bigint> {
    return this.runQueued('truncate', async () => {
      assert(offset >= this.logStart, `${this.name}: truncation to ${offset} stays at or above the log start ${this.logStart} (below it, use truncateFullyAndStartAt)`);
      if (offset >= this.logEnd) {
        const dropped = this.epochs.truncateFromEnd(this.logEnd);
        if (dropped.length > 0) await this.persistEpochs();
        return this.logEnd;
      }
      const segments = this.segments;
      const index = segmentIndexFor(segments, offset);
      const segment = segments[index];
      const cut = await this.withIoErrors('truncate', segment.logPath, () => segment.planCut(offset, segment.size));
      assert(cut.endOffset >= this.logStart, `${this.name}: truncation to ${offset} ends the log at ${cut.endOffset}, at or above its start ${this.logStart}`);
      const oldEnd = this.logEnd;
      const removed = segments.slice(index + 1);
      const bytesRemoved = segment.size - cut.position + removed.reduce((sum, s) => sum + s.size, 0);
      // Synchronously: every read from here on sees the truncated log.
      this.segments = segments.slice(0, index + 1);
      segment.applyCut(offset, cut, this.clock.nowMs());
      this.logEnd = cut.endOffset;
      this.totalBytes -= bytesRemoved;
      this.groupCommit.truncate(cut.endOffset, truncatedError(this.name, cut.endOffset));
      const epochsDropped = this.epochs.truncateFromEnd(cut.endOffset);
      const generation = this.reads.nextGeneration();
      await this.withIoErrors('truncate', segment.logPath, async () => {
        await deleteSegmentsNewestFirst(this.fs, this.directory, removed);
        for (const doomed of removed) await this.releaseSegment(doomed);
        await this.reads.readsStartedBefore(generation);
        await segment.file.truncate(cut.position);
        await segment.file.datasync();
      });
      this.groupCommit.markDurable(cut.endOffset);
      if (epochsDropped.length > 0) await this.persistEpochs();
      const reload = { segments: this.segments, logStartOffset: this.logStart, logEndOffset: cut.endOffset, nowMs: this.clock.nowMs(), expirationMs: this.configValue.producerIdExpirationMs };
      const producers = await this.withIoErrors('rebuild producer state', this.directory, () => this.producers.reload(reload));
      this.logger.info(
        {
          requestedOffset: offset.toString(),
          previousLogEndOffset: oldEnd.toString(),
          logEndOffset: cut.endOffset.toString(),
          segmentsDeleted: removed.length,
          bytesRemoved,
          leaderEpochsDropped: epochsDropped.map((entry) => entry.epoch),
          ...producers,
        },
        cut.endOffset === offset ? 'truncated the log' : `truncated the log to ${cut.endOffset}, the batch boundary at or below ${offset}`,
      );
      return cut.endOffset;
    });
  }

  /**
   * See PartitionLog.truncateFullyAndStartAt. In the queue: clear the epoch checkpoint and the
   * producer-state snapshots, delete
   * every segment from the newest down (a crash leaves a prefix of the old log), write the log
   * start checkpoint, create the new segment, then switch the in-memory state. Reads that started
   * before finish on the old segments' open descriptors.
   */
  async truncateFullyAndStartAt(offset: bigint): Promise<void> {
    assert(offset >= 0n, `${this.name}: a log cannot start at ${offset}`);
    return this.runQueued('truncate', async () => {
      const old = this.segments;
      const oldStart = this.logStart;
      const oldEnd = this.logEnd;
      const restart = { fs: this.fs, directory: this.directory, topicPartition: this.topicPartition, segments: old, offset, clock: this.clock };
      const next = await this.withIoErrors('truncate fully', this.directory, () => restartLogDirectory(restart));
      this.segments = [next];
      this.logStart = offset;
      this.logEnd = offset;
      this.totalBytes = 0;
      this.epochs.clear();
      this.producers.restart(offset);
      this.groupCommit.restart(offset, truncatedError(this.name, offset));
      this.reads.nextGeneration();
      await this.withIoErrors('close a deleted segment', this.directory, async () => {
        for (const doomed of old) await this.releaseSegment(doomed);
      });
      this.logger.info(
        { logStartOffset: offset.toString(), previousLogStartOffset: oldStart.toString(), previousLogEndOffset: oldEnd.toString(), segmentsDeleted: old.length },
        'truncated the log fully; it restarts empty',
      );
    });
  }

  // ------------------------------------------------------------------------------ flush and close

  /** fdatasyncs everything appended so far (under either flush policy). */
  async flush(): Promise<void> {
    return this.runQueued('flush', async () => {
      const end = this.logEnd;
      await this.withIoErrors('fdatasync', this.activeSegment.logPath, () => this.activeSegment.file.datasync());
      this.groupCommit.markDurable(end);
    });
  }

  /**
   * Waits for queued appends, then (if the dir is online) fsyncs the active segment, writes its
   * indexes, a producer-state snapshot at the log end (so the next open replays nothing) and the
   * clean-shutdown marker, and releases every descriptor once reads drain. Appends
   * and reads after close() starts fail with KAFKA_STORAGE_ERROR.
   */
  close(): Promise<void> {
    if (this.closing === undefined) {
      this.state = 'closing';
      this.closing = this.closeNow();
    }
    return this.closing;
  }

  private async closeNow(): Promise<void> {
    let failure: Error | undefined;
    await this.queue.run(async () => {
      if (this.health.isOffline) return; // never sync again after a failure: the next open recovers
      const active = this.activeSegment;
      try {
        await this.sealActiveSegment();
        await this.snapshotProducers();
        await writeCleanShutdown(this.fs, this.directory, { logEndOffset: this.logEnd, activeSegmentBaseOffset: active.baseOffset, activeSegmentBytes: active.size });
      } catch (error) {
        failure = asStorageError(this.health, 'close', active.logPath, error);
      }
    });
    await this.groupCommit.idle();
    this.groupCommit.fail(new KavkaError('KAFKA_STORAGE_ERROR', `${this.name}: the log is closed`));
    if (this.reads.readsInFlight > 0) await this.reads.drained();
    for (const segment of [...this.segments, ...this.reads.takeRetired()]) {
      await segment.close().catch((error: unknown) => this.logger.warn({ err: error, file: segment.logPath }, 'closing a segment file failed'));
    }
    this.state = 'closed';
    this.unsubscribeHealth();
    this.appendListeners.clear();
    this.logger.info({ logEndOffset: this.logEnd.toString(), clean: failure === undefined && !this.health.isOffline }, 'log closed');
    this.options.onClosed?.();
    if (failure !== undefined) throw failure;
  }

  /**
   * Runs `task` in the queue, after queued work accepted before it: throws (before and again in
   * the queue) when the log cannot `action` (checkUsable).
   */
  private runQueued<T>(action: string, task: () => Promise<T>): Promise<T> {
    this.checkUsable(action, false);
    return this.queue.run(() => {
      this.checkUsable(action, true);
      return task();
    });
  }

  /** Runs an I/O step; an I/O error takes the log dir offline (asStorageError), naming `operation` and `path`. */
  private async withIoErrors<T>(operation: string, path: string, body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (error) {
      throw asStorageError(this.health, operation, path, error);
    }
  }

  /**
   * Throws when the log cannot serve `action`: KAFKA_STORAGE_ERROR when the dir is offline or the
   * log is closed. `queued` work (accepted before close() was called) may still run while closing.
   */
  private checkUsable(action: string, queued: boolean): void {
    if (this.state === 'closed' || (this.state === 'closing' && !queued)) {
      throw new KavkaError('KAFKA_STORAGE_ERROR', `cannot ${action} ${this.name}: the log is closed`);
    }
    this.health.checkOnline(`cannot ${action} ${this.name}`);
  }
}
