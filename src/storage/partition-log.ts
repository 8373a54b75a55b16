// A partition's log on disk (Kafka's UnifiedLog + LocalLog): an ordered list of segments, the
// last one active. Implements PartitionLog (api.ts).
//
// Concurrency: callers may overlap any calls. Appends, rolls, retention, flush and close run one
// at a time through `queue`, in arrival order. Waiting for durability happens outside the queue,
// so the next append writes while the previous one's fdatasync runs (group commit). Reads never
// enter the queue: a read takes a snapshot (segment list, active segment size, log start and end)
// synchronously and reads below it; segments deleted meanwhile keep their descriptor open until
// no read is in flight.
//
// Invariants:
// - logStartOffset <= durableEndOffset <= logEndOffset; logStartOffset only moves up.
// - segments is never empty, ascending by base offset; only the last (active) one is written.
// - A sealed segment's .log and indexes were fsynced before the next segment was created, so
//   recovery after a crash scans only the active segment (log-loader.ts).
// - The active segment's `size` and `logEndOffset` move together, synchronously after a write
//   completed: every byte a reader may see is written.
// - Once the log dir is offline nothing is written or synced again; close() then only releases
//   descriptors (no flush, no marker), so the next open recovers.
import { dirname } from 'node:path';
import { decodeRecordBatch, effectiveTimestamp, lastOffsetOf } from '../codec/record-batch.js';
import { assert, AssertionError } from '../util/assert.js';
import type { Clock } from '../util/clock.js';
import { KavkaError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import {
  topicPartitionName,
  type AppendResult,
  type LogConfig,
  type PartitionLog,
  type ReadOptions,
  type ReadResult,
  type TimestampOffset,
  type TopicPartition,
} from './api.js';
import { stampLeaderFields, stampLogAppendTime, validateBatchesForAppend } from './append-validation.js';
import { writeCleanShutdown } from './clean-shutdown-marker.js';
import { GroupCommit } from './group-commit.js';
import { INT32_MAX, validateLogConfig } from './log-config.js';
import { LogDirHealth } from './log-dir-health.js';
import { loadLog, type LogRecoveryReport } from './log-loader.js';
import { writeLogStartOffset } from './log-start-offset-checkpoint.js';
import { LogSegment, type BatchLocation } from './segment.js';
import { isNotFound, nodeStorageFs, type StorageFs } from './storage-fs.js';
import { SerialQueue } from './serial-queue.js';

const EMPTY: Buffer = Buffer.alloc(0);

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
}

/** Opens (recovering) or creates a partition log. Rejects with KAFKA_STORAGE_ERROR on corruption or I/O errors. */
export async function openPartitionLog(options: PartitionLogOptions): Promise<FilePartitionLog> {
  validateLogConfig(options.config);
  const fs = options.fs ?? nodeStorageFs;
  const name = topicPartitionName(options.topicPartition);
  const logger = options.logger.child({ topicPartition: name });
  const health = options.health ?? new LogDirHealth(dirname(options.directory), options.clock, options.logger);
  health.checkOnline(`opening ${name}`);
  try {
    if ((await fs.stat(options.directory)) === undefined) {
      await fs.mkdir(options.directory);
      await fs.syncDirectory(dirname(options.directory));
    }
    const loaded = await loadLog({ fs, directory: options.directory, topicPartition: options.topicPartition, config: options.config, clock: options.clock, logger });
    logger.info(
      { ...loaded.report, logStartOffset: loaded.logStartOffset.toString(), logEndOffset: loaded.logEndOffset.toString() },
      openedLogMessage(loaded.report),
    );
    return new FilePartitionLog(options, fs, logger, health, loaded.segments, loaded.logStartOffset, loaded.logEndOffset, loaded.report);
  } catch (error) {
    throw asStorageError(health, 'open', options.directory, error);
  }
}

function openedLogMessage(report: LogRecoveryReport): string {
  if (report.created) return 'log created (new and empty)';
  return report.cleanShutdown ? 'log loaded after a clean shutdown' : 'log recovered';
}

/** I/O errors take the dir offline; KavkaErrors (corruption, validation) and assertion failures pass unchanged. */
function asStorageError(health: LogDirHealth, operation: string, path: string, error: unknown): Error {
  if (error instanceof KavkaError || error instanceof AssertionError) return error;
  const errorPath = (error as { path?: unknown }).path;
  return health.fail(operation, typeof errorPath === 'string' ? errorPath : path, error);
}

type LogState = 'open' | 'closing' | 'closed';

interface Appended {
  result: AppendResult;
  waitForSync: boolean;
}

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
  private readsInFlight = 0;
  /** Deleted segments whose descriptors wait for the reads in flight. */
  private retired: LogSegment[] = [];
  private readsDrainedWaiters: (() => void)[] = [];
  private readonly unsubscribeHealth: () => void;

  constructor(
    private readonly options: PartitionLogOptions,
    private readonly fs: StorageFs,
    private readonly logger: Logger,
    private readonly health: LogDirHealth,
    segments: LogSegment[],
    logStartOffset: bigint,
    logEndOffset: bigint,
    recovery: LogRecoveryReport,
  ) {
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
    this.recovery = recovery;
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

  /** fdatasyncs group commit has started (for metrics and tests). */
  get groupCommitSyncs(): number {
    return this.groupCommit.syncCount;
  }

  private get activeSegment(): LogSegment {
    return this.segments[this.segments.length - 1];
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
    this.groupCommit.appendQueued();
    const appended = await this.queue.run(async () => {
      try {
        return await this.appendLocked(batches, located, leaderEpoch);
      } finally {
        this.groupCommit.appendDone();
      }
    });
    if (appended.waitForSync) await this.groupCommit.waitDurable(appended.result.lastOffset + 1n);
    return appended.result;
  }

  /** In the queue: roll if needed, stamp, one write, bookkeeping. */
  private async appendLocked(batches: Buffer, located: BatchLocation[], leaderEpoch: number): Promise<Appended> {
    this.checkUsable('append to', true);
    const config = this.configValue;
    const nowMs = this.clock.nowMs();
    let offsetCount = 0n;
    for (const batch of located) offsetCount += BigInt(batch.header.lastOffsetDelta) + 1n;
    const baseOffset = this.logEnd;
    if (this.shouldRoll(batches.length, baseOffset + offsetCount - 1n, nowMs, config)) await this.roll(nowMs);

    const active = this.activeSegment;
    const appendTimeMs = config.messageTimestampType === 'LogAppendTime' ? BigInt(nowMs) : -1n;
    const lastOffsets: bigint[] = [];
    const maxTimestamps: bigint[] = [];
    let nextOffset = baseOffset;
    for (const batch of located) {
      const bytes = batches.subarray(batch.position, batch.position + batch.size);
      stampLeaderFields(bytes, nextOffset, leaderEpoch);
      if (appendTimeMs >= 0n) stampLogAppendTime(bytes, appendTimeMs);
      const lastOffset = nextOffset + BigInt(batch.header.lastOffsetDelta);
      lastOffsets.push(lastOffset);
      maxTimestamps.push(appendTimeMs >= 0n ? appendTimeMs : batch.header.maxTimestamp);
      nextOffset = lastOffset + 1n;
    }

    const position = active.size;
    try {
      await active.file.write(batches, position);
    } catch (error) {
      throw asStorageError(this.health, 'write', active.logPath, error);
    }
    // Synchronously from here: the bytes are written, so readers may see them.
    if (active.size === 0) active.rollBaseMs = nowMs;
    for (let i = 0; i < located.length; i++) {
      active.recordBatch(position + located[i].position, located[i].size, lastOffsets[i], maxTimestamps[i], config.indexIntervalBytes);
    }
    active.lastModifiedMs = nowMs;
    this.logEnd = nextOffset;
    this.totalBytes += batches.length;
    this.groupCommit.noteWritten(nextOffset);
    if (config.flushPolicy === 'os') this.groupCommit.markDurable(nextOffset);
    let recordCount = 0;
    for (const batch of located) recordCount += batch.header.recordsCount;
    return {
      result: { baseOffset, lastOffset: nextOffset - 1n, logAppendTimeMs: appendTimeMs, logStartOffset: this.logStart, recordCount, sizeBytes: batches.length },
      waitForSync: config.flushPolicy === 'batch',
    };
  }

  private shouldRoll(appendBytes: number, lastOffset: bigint, nowMs: number, config: LogConfig): boolean {
    const active = this.activeSegment;
    if (active.size === 0) return false; // never roll an empty segment
    if (active.size > config.segmentBytes - appendBytes) return true;
    if (active.rollBaseMs !== undefined && nowMs - active.rollBaseMs > config.segmentMs) return true;
    if (lastOffset - active.baseOffset > BigInt(INT32_MAX)) return true;
    return active.size > INT32_MAX - appendBytes;
  }

  /**
   * In the queue: seals the active segment (fdatasync of its .log, final time-index entry, index
   * files written and synced) and only then creates the next one at the log end offset, so a
   * sealed segment is always durable.
   */
  private async roll(nowMs: number): Promise<void> {
    const old = this.activeSegment;
    assert(old.size > 0, 'only a non-empty segment rolls');
    const baseOffset = this.logEnd;
    let next: LogSegment;
    try {
      await old.file.datasync();
      this.groupCommit.markDurable(this.logEnd);
      old.sealTimeIndex();
      await old.writeIndexFiles(this.fs);
      next = await LogSegment.create(this.fs, this.directory, baseOffset, nowMs);
    } catch (error) {
      throw asStorageError(this.health, 'roll', old.logPath, error);
    }
    this.segments = [...this.segments, next];
    try {
      await this.fs.syncDirectory(this.directory);
    } catch (error) {
      throw asStorageError(this.health, 'fsync directory', this.directory, error);
    }
    this.logger.info({ baseOffset: baseOffset.toString(), previousSegmentBytes: old.size }, 'rolled a new segment');
  }

  // ------------------------------------------------------------------------------ reads

  async read(fetchOffset: bigint, maxBytes: number, options: ReadOptions): Promise<ReadResult> {
    this.checkUsable('read from', false);
    const segments = this.segments;
    const active = segments[segments.length - 1];
    const activeEnd = active.size;
    const logStartOffset = this.logStart;
    const logEndOffset = this.logEnd;
    if (fetchOffset < logStartOffset || fetchOffset > logEndOffset) {
      throw new KavkaError('OFFSET_OUT_OF_RANGE', `${this.name}: fetch offset ${fetchOffset} is outside the log [${logStartOffset}, ${logEndOffset}]`);
    }
    const empty: ReadResult = { batches: EMPTY, nextOffset: fetchOffset, logStartOffset, logEndOffset };
    const maxOffset = options.maxOffset < logEndOffset ? options.maxOffset : logEndOffset;
    if (fetchOffset >= maxOffset) return empty;
    return this.withRead('read', async () => {
      // Kafka reads from one segment per fetch; the next fetch continues in the next segment.
      for (let i = segmentIndexFor(segments, fetchOffset); i < segments.length; i++) {
        const segment = segments[i];
        const end = segment === active ? activeEnd : segment.size;
        const found = await segment.read(fetchOffset, maxBytes, maxOffset, options.minOneBatch, end);
        if (found !== undefined) return { batches: found.batches, nextOffset: found.nextOffset, logStartOffset, logEndOffset };
      }
      return empty;
    });
  }

  async offsetForTimestamp(timestampMs: bigint): Promise<TimestampOffset | undefined> {
    this.checkUsable('search', false);
    const segments = this.segments;
    const active = segments[segments.length - 1];
    const activeEnd = active.size;
    const logStartOffset = this.logStart;
    return this.withRead('offsetForTimestamp', async () => {
      for (const segment of segments) {
        if (segment.maxTimestampSoFar < timestampMs) continue;
        const end = segment === active ? activeEnd : segment.size;
        const found = await this.findTimestampIn(segment, timestampMs, logStartOffset, end);
        if (found !== undefined) return found;
      }
      return undefined;
    });
  }

  /**
   * The first record at or after startOffset whose timestamp is >= target. The time index gives a
   * batch before which every batch's max timestamp is below the target; the offset index turns
   * it into a position; headers are scanned from there; the batch found is decoded.
   */
  private async findTimestampIn(segment: LogSegment, target: bigint, startOffset: bigint, end: number): Promise<TimestampOffset | undefined> {
    const entry = segment.timeIndex.lookup(target);
    const fromOffset = entry !== undefined && entry.offset > startOffset ? entry.offset : startOffset;
    let position = segment.offsetIndex.lookup(fromOffset).position;
    while (position < end) {
      const batch = await segment.findBatch(position, end, (header) => header.maxTimestamp >= target && lastOffsetOf(header) >= startOffset);
      if (batch === undefined) return undefined;
      const { header, records } = decodeRecordBatch(await segment.readExact(batch.position, batch.size));
      for (const record of records) {
        const timestamp = effectiveTimestamp(header, record);
        if (timestamp >= target && record.offset >= startOffset) return { offset: record.offset, timestamp };
      }
      // A header whose max timestamp no record reaches (a producer's mistake): keep looking.
      position = batch.position + batch.size;
    }
    return undefined;
  }

  async maxTimestampOffset(): Promise<TimestampOffset | undefined> {
    this.checkUsable('search', false);
    const segments = this.segments;
    const active = segments[segments.length - 1];
    const activeEnd = active.size;
    let best: LogSegment | undefined;
    for (const segment of segments) {
      if (segment.maxTimestampSoFar >= 0n && (best === undefined || segment.maxTimestampSoFar > best.maxTimestampSoFar)) best = segment;
    }
    if (best === undefined) return undefined;
    const segment = best;
    const timestamp = segment.maxTimestampSoFar;
    const batchLastOffset = segment.offsetOfMaxTimestampSoFar;
    const end = segment === active ? activeEnd : segment.size;
    return this.withRead('maxTimestampOffset', async () => {
      const start = segment.offsetIndex.lookup(batchLastOffset).position;
      const batch = await segment.findBatch(start, end, (header) => lastOffsetOf(header) >= batchLastOffset);
      if (batch === undefined) return undefined;
      const { header, records } = decodeRecordBatch(await segment.readExact(batch.position, batch.size));
      const record = records.find((r) => effectiveTimestamp(header, r) === timestamp);
      return { offset: record?.offset ?? lastOffsetOf(header), timestamp };
    });
  }

  /** Counts the read in flight (so deleted segments stay open under it) and turns I/O errors into an offline dir. */
  private async withRead<T>(operation: string, body: () => Promise<T>): Promise<T> {
    this.readsInFlight += 1;
    try {
      return await body();
    } catch (error) {
      throw asStorageError(this.health, operation, this.directory, error);
    } finally {
      this.readsInFlight -= 1;
      if (this.readsInFlight === 0) this.onReadsDrained();
    }
  }

  private onReadsDrained(): void {
    for (const segment of this.retired.splice(0)) {
      segment.close().catch((error: unknown) => this.logger.warn({ err: error, file: segment.logPath }, 'closing a deleted segment failed'));
    }
    for (const waiter of this.readsDrainedWaiters.splice(0)) waiter();
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
    this.checkUsable('apply retention to', false);
    return this.queue.run(async () => {
      this.checkUsable('apply retention to', true);
      const config = this.configValue;
      const active = this.activeSegment;
      if (active.size > 0 && active.rollBaseMs !== undefined && nowMs - active.rollBaseMs > config.segmentMs) await this.roll(nowMs);
      const segments = this.segments;
      const count = this.deletableSegmentCount(segments, nowMs, config);
      if (count === 0) return 0;
      const newLogStart = segments[count].baseOffset > this.logStart ? segments[count].baseOffset : this.logStart;
      try {
        // The checkpoint goes first: a crash before the deletion leaves segments the loader drops.
        await writeLogStartOffset(this.fs, this.directory, this.topicPartition, newLogStart);
      } catch (error) {
        throw asStorageError(this.health, 'write checkpoint', this.directory, error);
      }
      const deleted = segments.slice(0, count);
      this.segments = segments.slice(count);
      this.logStart = newLogStart;
      for (const segment of deleted) this.totalBytes -= segment.size;
      try {
        for (const segment of deleted) await this.deleteSegmentFiles(segment);
        await this.fs.syncDirectory(this.directory);
      } catch (error) {
        throw asStorageError(this.health, 'delete segment', this.directory, error);
      }
      this.logger.info({ segmentsDeleted: count, logStartOffset: newLogStart.toString(), sizeBytes: this.totalBytes }, 'retention deleted segments');
      return count;
    });
  }

  /** The length of the oldest-first prefix of sealed segments that retention allows deleting. */
  private deletableSegmentCount(segments: readonly LogSegment[], nowMs: number, config: LogConfig): number {
    const sealed = segments.length - 1;
    let byTime = 0;
    if (config.retentionMs >= 0) {
      while (byTime < sealed && nowMs - segments[byTime].largestTimestampMs() > config.retentionMs) byTime++;
    }
    let bySize = 0;
    if (config.retentionBytes >= 0) {
      let excess = this.totalBytes - config.retentionBytes;
      while (bySize < sealed && excess - segments[bySize].size >= 0) {
        excess -= segments[bySize].size;
        bySize++;
      }
    }
    let byCount = 0;
    if (config.retentionMessages >= 0) {
      const limit = BigInt(config.retentionMessages);
      while (byCount < sealed && this.logEnd - segments[byCount + 1].baseOffset >= limit) byCount++;
    }
    let belowStart = 0;
    while (belowStart < sealed && segments[belowStart + 1].baseOffset <= this.logStart) belowStart++;
    return Math.max(byTime, bySize, byCount, belowStart);
  }

  /** Unlinks a deleted segment's files; its descriptor closes now, or after the reads in flight. */
  private async deleteSegmentFiles(segment: LogSegment): Promise<void> {
    for (const path of [segment.logPath, segment.indexPath, segment.timeIndexPath]) {
      try {
        await this.fs.unlink(path);
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
    }
    // A group-commit sync may still run on the descriptor of a segment that was active a moment ago.
    await this.groupCommit.idle();
    if (this.readsInFlight === 0) await segment.close();
    else this.retired.push(segment);
  }

  // ------------------------------------------------------------------------------ flush and close

  /** fdatasyncs everything appended so far (under either flush policy). */
  async flush(): Promise<void> {
    this.checkUsable('flush', false);
    return this.queue.run(async () => {
      this.checkUsable('flush', true);
      const end = this.logEnd;
      try {
        await this.activeSegment.file.datasync();
      } catch (error) {
        throw asStorageError(this.health, 'fdatasync', this.activeSegment.logPath, error);
      }
      this.groupCommit.markDurable(end);
    });
  }

  /**
   * Waits for queued appends, then (if the dir is online) fsyncs the active segment, writes its
   * indexes and the clean-shutdown marker, and releases every descriptor once reads drain. Appends
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
        await active.file.datasync();
        this.groupCommit.markDurable(this.logEnd);
        active.sealTimeIndex();
        await active.writeIndexFiles(this.fs);
        await writeCleanShutdown(this.fs, this.directory, { logEndOffset: this.logEnd, activeSegmentBaseOffset: active.baseOffset, activeSegmentBytes: active.size });
      } catch (error) {
        failure = asStorageError(this.health, 'close', active.logPath, error);
      }
    });
    await this.groupCommit.idle();
    this.groupCommit.fail(new KavkaError('KAFKA_STORAGE_ERROR', `${this.name}: the log is closed`));
    if (this.readsInFlight > 0) await new Promise<void>((resolve) => this.readsDrainedWaiters.push(resolve));
    for (const segment of [...this.segments, ...this.retired.splice(0)]) {
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

/** The index of the last segment whose base offset is <= offset (0 when none is). */
function segmentIndexFor(segments: readonly LogSegment[], offset: bigint): number {
  let low = 0;
  let high = segments.length - 1;
  let found = 0;
  while (low <= high) {
    const middle = (low + high) >>> 1;
    if (segments[middle].baseOffset <= offset) {
      found = middle;
      low = middle + 1;
    } else {
      high = middle - 1;
    }
  }
  return found;
}
