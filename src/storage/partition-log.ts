// A partition's log on disk (Kafka's UnifiedLog + LocalLog): an ordered list of segments, the
// last one active. Implements PartitionLog (api.ts).
//
// Concurrency: callers may overlap any calls. Appends (as leader and as follower), rolls,
// retention, truncation, epoch assignment, flush and close run one at a time through `queue`, in
// arrival order. Waiting for durability happens outside the queue, so the next append writes
// while the previous one's fdatasync runs (group commit). Reads never enter the queue: a read
// takes a snapshot (segment list, active segment size, log start and end) synchronously and reads
// below it; segments deleted meanwhile keep their descriptor open until no read is in flight, and
// a truncation that cuts a segment file in place first waits for the reads that started before it
// (`truncations` counts generations; each read is counted under the one it started in).
//
// Leader epochs: `epochs` (leader-epoch-cache.ts) is changed only in the queue and written to
// `leader-epoch-checkpoint` after each change: before the batch that starts a new epoch is
// written, and after the bytes a truncation removes are gone. So the file never lacks an entry
// for a batch on disk; entries past the log end after a crash are dropped by the loader.
//
// Idempotent producers: `producers` (producer-state.ts) is changed only in the queue. A leader's
// append checks its batches against it before offsets are assigned (a retry of one of the
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
import { dirname } from 'node:path';
import { decodeRecordBatch, effectiveTimestamp, isControl, lastOffsetOf } from '../codec/record-batch.js';
import { assert, AssertionError } from '../util/assert.js';
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
import { readRefetchMarker, removeRefetchMarker } from './refetch-marker.js';
import { stampLeaderFields, stampLogAppendTime, validateBatchesForAppend, validateBatchesForFollowerAppend } from './append-validation.js';
import { writeCleanShutdown } from './clean-shutdown-marker.js';
import { GroupCommit } from './group-commit.js';
import type { EpochEntry, LeaderEpochCache } from './leader-epoch-cache.js';
import { writeLeaderEpochCheckpoint } from './leader-epoch-checkpoint.js';
import { INT32_MAX, validateLogConfig } from './log-config.js';
import { LogDirHealth } from './log-dir-health.js';
import { loadLog, type LoadedLog, type LogRecoveryReport } from './log-loader.js';
import { writeLogStartOffset } from './log-start-offset-checkpoint.js';
import { producerBatchMetaOf, ProducerStateManager, type ProducerStateSnapshot } from './producer-state.js';
import { loadProducers, type LoadedProducers } from './producer-state-loader.js';
import { deleteAllProducerSnapshots, retainLatestProducerSnapshots, writeProducerSnapshot } from './producer-state-snapshot.js';
import { CorruptBatchError, LogSegment, segmentIndexFor, type BatchLocation, type SegmentCut } from './segment.js';
import { isNotFound, nodeStorageFs, type StorageFs } from './storage-fs.js';
import { SerialQueue } from './serial-queue.js';

const EMPTY: Buffer = Buffer.alloc(0);
/** Producer-state snapshots kept after each roll and clean close (the newest is kept even below the log start). */
const PRODUCER_SNAPSHOTS_KEPT = 2;

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
    const loaded = await loadLog({
      fs,
      directory: options.directory,
      topicPartition: options.topicPartition,
      config: options.config,
      clock: options.clock,
      logger,
      verifySealedSegments: options.verifySealedSegments ?? 'unclean',
      forceVerification: options.forceVerification,
    });
    let refetchRequired: bigint | undefined;
    let producers: LoadedProducers;
    try {
      producers = await loadProducers({
        fs,
        directory: options.directory,
        segments: loaded.segments,
        logStartOffset: loaded.logStartOffset,
        logEndOffset: loaded.logEndOffset,
        nowMs: options.clock.nowMs(),
        expirationMs: options.config.producerIdExpirationMs,
        options: { unknownProducerPolicy: 'reject', partitionName: name },
        logger,
      });
      refetchRequired = await readRefetchMarker(fs, options.directory);
    } catch (error) {
      for (const segment of loaded.segments) await segment.close().catch(() => undefined);
      throw error;
    }
    const { corruptionRepaired, ...report } = loaded.report;
    logger.info(
      {
        ...report,
        ...producers.report,
        corruptionRepairedAt: corruptionRepaired?.truncatedToOffset.toString() ?? null,
        refetchRequiredFrom: refetchRequired?.toString() ?? null,
        logStartOffset: loaded.logStartOffset.toString(),
        logEndOffset: loaded.logEndOffset.toString(),
      },
      openedLogMessage(loaded.report),
    );
    return new FilePartitionLog(options, fs, logger, health, loaded, producers.manager, refetchRequired);
  } catch (error) {
    throw asStorageError(health, 'open', options.directory, error);
  }
}

function openedLogMessage(report: LogRecoveryReport): string {
  if (report.created) return 'log created (new and empty)';
  if (report.corruptionRepaired !== undefined) return 'log recovered after repairing a corrupt batch; it must re-fetch from its leader before it may lead';
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

/** What the write step of an append needs, once offsets (and for a leader, stamps) are final. */
interface PreparedWrite {
  batches: Buffer;
  /** The first batch's base offset (headers in `located` were read before a leader stamped offsets). */
  baseOffset: bigint;
  located: BatchLocation[];
  lastOffsets: bigint[];
  maxTimestamps: bigint[];
  nowMs: number;
  logAppendTimeMs: bigint;
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
  /** Truncations so far: the generation a read starting now belongs to. */
  private truncations = 0;
  /** Reads in flight by the generation they started in (entries with a count of 0 are removed). */
  private readonly readsByGeneration = new Map<number, number>();
  private generationWaiters: { generation: number; resolve: () => void }[] = [];
  private readonly epochs: LeaderEpochCache;
  /** Idempotent producers' state as of logEndOffset; replaced by truncation. */
  private producers: ProducerStateManager;
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
    this.epochs = loaded.leaderEpochs;
    assert(producers.endOffset === logEndOffset, `producer state ends at ${producers.endOffset}, the log at ${logEndOffset}`);
    this.producers = producers;
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
    this.checkUsable('clear the refetch marker of', false);
    return this.queue.run(async () => {
      this.checkUsable('clear the refetch marker of', true);
      try {
        await removeRefetchMarker(this.fs, this.directory);
      } catch (error) {
        throw asStorageError(this.health, 'remove refetch marker', this.directory, error);
      }
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
    const latestEpoch = this.epochs.latestEpoch();
    if (latestEpoch !== undefined && leaderEpoch < latestEpoch) {
      throw new KavkaError('FENCED_LEADER_EPOCH', `${this.name}: an append as leader of epoch ${leaderEpoch}, but the log already holds epoch ${latestEpoch}`);
    }
    assert(this.producers.endOffset === this.logEnd, `${this.name}: producer state ends at ${this.producers.endOffset}, the log at ${this.logEnd}`);
    // Before anything is written or assigned: a rejected batch leaves no trace.
    const check = this.producers.checkAppends(located.map((batch) => producerBatchMetaOf(batch.header)));
    if (check.kind === 'duplicate') return this.duplicateAppend(check.firstOffset, check.lastOffset, located[0].header.producerId);
    const config = this.configValue;
    const nowMs = this.clock.nowMs();
    let offsetCount = 0n;
    for (const batch of located) offsetCount += BigInt(batch.header.lastOffsetDelta) + 1n;
    const baseOffset = this.logEnd;
    if (this.shouldRoll(batches.length, baseOffset + offsetCount - 1n, nowMs, config)) await this.roll(nowMs);

    const logAppendTimeMs = config.messageTimestampType === 'LogAppendTime' ? BigInt(nowMs) : -1n;
    const lastOffsets: bigint[] = [];
    const maxTimestamps: bigint[] = [];
    let nextOffset = baseOffset;
    for (const batch of located) {
      const bytes = batches.subarray(batch.position, batch.position + batch.size);
      stampLeaderFields(bytes, nextOffset, leaderEpoch);
      if (logAppendTimeMs >= 0n) stampLogAppendTime(bytes, logAppendTimeMs);
      const lastOffset = nextOffset + BigInt(batch.header.lastOffsetDelta);
      lastOffsets.push(lastOffset);
      maxTimestamps.push(logAppendTimeMs >= 0n ? logAppendTimeMs : batch.header.maxTimestamp);
      nextOffset = lastOffset + 1n;
    }
    if (leaderEpoch >= 0 && leaderEpoch !== latestEpoch) await this.recordEpochStarts([{ epoch: leaderEpoch, startOffset: baseOffset }]);
    return this.writeBatches({ batches, baseOffset, located, lastOffsets, maxTimestamps, nowMs, logAppendTimeMs });
  }

  /** In the queue: check where the batches go and their epochs, roll if needed, record new epochs, one write. */
  private async appendAsFollowerLocked(batches: Buffer, located: BatchLocation[]): Promise<Appended> {
    this.checkUsable('append to', true);
    const first = located[0].header;
    const lastOffsets = located.map((batch) => lastOffsetOf(batch.header));
    this.checkFollowerPosition(first.baseOffset, lastOffsets[lastOffsets.length - 1]);
    const latestEpoch = this.epochs.latestEpoch();
    if (latestEpoch !== undefined && first.partitionLeaderEpoch < latestEpoch) {
      throw new KavkaError(
        'FENCED_LEADER_EPOCH',
        `${this.name}: the follower append at offset ${first.baseOffset} carries leader epoch ${first.partitionLeaderEpoch}, below this log's latest epoch ${latestEpoch}; truncate to the divergence point first`,
      );
    }
    const config = this.configValue;
    const nowMs = this.clock.nowMs();
    if (this.shouldRoll(batches.length, lastOffsets[lastOffsets.length - 1], nowMs, config)) await this.roll(nowMs);
    const starts: { epoch: number; startOffset: bigint }[] = [];
    let latest = latestEpoch;
    for (const { header } of located) {
      if (header.partitionLeaderEpoch >= 0 && (latest === undefined || header.partitionLeaderEpoch > latest)) {
        starts.push({ epoch: header.partitionLeaderEpoch, startOffset: header.baseOffset });
        latest = header.partitionLeaderEpoch;
      }
    }
    if (starts.length > 0) await this.recordEpochStarts(starts);
    const maxTimestamps = located.map((batch) => batch.header.maxTimestamp);
    return this.writeBatches({ batches, baseOffset: first.baseOffset, located, lastOffsets, maxTimestamps, nowMs, logAppendTimeMs: -1n });
  }

  /**
   * The answer to a retry of a batch the log holds at [firstOffset, lastOffset]: nothing written;
   * appendQueued waits (under the batch policy) until those offsets are durable, since the
   * original append may still be waiting for its fdatasync.
   */
  private duplicateAppend(firstOffset: bigint, lastOffset: bigint, producerId: bigint): Appended {
    const config = this.configValue;
    const recordedMs = this.producers.entry(producerId)?.batches.find((b) => b.firstOffset === firstOffset)?.timestampMs;
    const logAppendTimeMs = config.messageTimestampType === 'LogAppendTime' && recordedMs !== undefined ? BigInt(recordedMs) : -1n;
    this.logger.debug({ producerId: producerId.toString(), baseOffset: firstOffset.toString(), lastOffset: lastOffset.toString() }, 'duplicate batch from an idempotent producer; answering with its original offsets');
    return {
      result: { baseOffset: firstOffset, lastOffset, logAppendTimeMs, logStartOffset: this.logStart, recordCount: 0, sizeBytes: 0, duplicate: true },
      waitForSync: config.flushPolicy === 'batch',
    };
  }

  /** A follower's first batch starts at the log end; past it only while the log is empty (see PartitionLog.appendAsFollower). */
  private checkFollowerPosition(baseOffset: bigint, lastOffset: bigint): void {
    const logEnd = this.logEnd;
    if (baseOffset === logEnd) return;
    const empty = this.logStart === logEnd;
    // An empty log never rolls, so the batches must fit its active segment's offset range.
    if (baseOffset > logEnd && empty && lastOffset - this.activeSegment.baseOffset <= BigInt(INT32_MAX)) return;
    let why: string;
    if (baseOffset < logEnd) why = 'it overlaps records this log holds: truncate to the divergence point first';
    else if (!empty) why = `that leaves a gap after the log end (only an empty log, e.g. after truncateFullyAndStartAt, may start later)`;
    else why = `that is too far past the empty active segment's base offset ${this.activeSegment.baseOffset}: use truncateFullyAndStartAt(${baseOffset})`;
    throw new KavkaError('OFFSET_OUT_OF_RANGE', `${this.name}: the follower append starts at offset ${baseOffset} but the log end offset is ${logEnd}; ${why}`);
  }

  /** In the queue, before the batches starting them are written: adds epoch entries and writes the checkpoint. */
  private async recordEpochStarts(starts: readonly { epoch: number; startOffset: bigint }[]): Promise<void> {
    for (const { epoch, startOffset } of starts) {
      const replaced = this.epochs.assign(epoch, startOffset);
      const fields = { epoch, startOffset: startOffset.toString(), replacedEpoch: replaced?.epoch ?? null };
      this.logger.info(fields, replaced === undefined ? 'new leader epoch' : 'new leader epoch, replacing one that wrote no record');
    }
    await this.persistEpochs();
  }

  private async persistEpochs(): Promise<void> {
    try {
      await writeLeaderEpochCheckpoint(this.fs, this.directory, this.epochs.entries());
    } catch (error) {
      throw asStorageError(this.health, 'write leader epoch checkpoint', this.directory, error);
    }
  }

  /** In the queue, offsets final: one write to the active segment, then (synchronously) the bookkeeping readers rely on. */
  private async writeBatches(write: PreparedWrite): Promise<Appended> {
    const { batches, baseOffset, located, lastOffsets, maxTimestamps, nowMs } = write;
    const config = this.configValue;
    const active = this.activeSegment;
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
    const nextOffset = lastOffsets[lastOffsets.length - 1] + 1n;
    this.logEnd = nextOffset;
    this.recordProducerBatches(located, lastOffsets, nowMs);
    this.totalBytes += batches.length;
    this.groupCommit.noteWritten(nextOffset);
    if (config.flushPolicy === 'os') this.groupCommit.markDurable(nextOffset);
    let recordCount = 0;
    for (const batch of located) recordCount += batch.header.recordsCount;
    return {
      result: { baseOffset, lastOffset: nextOffset - 1n, logAppendTimeMs: write.logAppendTimeMs, logStartOffset: this.logStart, recordCount, sizeBytes: batches.length, duplicate: false },
      waitForSync: config.flushPolicy === 'batch',
    };
  }

  /**
   * Synchronously with logEndOffset moving past them: records every batch written (idempotent or
   * not, as leader or follower; the broker's clock is the producer's last timestamp). Control
   * batches only move the state's end offset, as in a replay.
   */
  private recordProducerBatches(located: readonly BatchLocation[], lastOffsets: readonly bigint[], nowMs: number): void {
    for (let i = 0; i < located.length; i++) {
      const { header } = located[i];
      const meta = producerBatchMetaOf(header);
      const recorded = isControl(header.attributes) ? { ...meta, producerId: -1n } : meta;
      this.producers.onAppended(recorded, lastOffsets[i] - BigInt(header.lastOffsetDelta), lastOffsets[i], nowMs);
    }
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
   * sealed segment is always durable. Then a producer-state snapshot as of the new segment's base
   * offset (older ones beyond the newest 2 deleted), so a restart replays at most the active segment.
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
    // The directory fsync below also makes the snapshot's name durable (it need not be: see producer-state-snapshot.ts).
    await this.snapshotProducers();
    try {
      await this.fs.syncDirectory(this.directory);
    } catch (error) {
      throw asStorageError(this.health, 'fsync directory', this.directory, error);
    }
    this.logger.info({ baseOffset: baseOffset.toString(), previousSegmentBytes: old.size }, 'rolled a new segment');
  }

  /** In the queue: writes `<logEnd>.snapshot` of the producer state and keeps the newest PRODUCER_SNAPSHOTS_KEPT. */
  private async snapshotProducers(): Promise<void> {
    const snapshot = this.producers.snapshot();
    assert(snapshot.endOffset === this.logEnd, `${this.name}: producer state ends at ${snapshot.endOffset}, the log at ${this.logEnd}`);
    try {
      await writeProducerSnapshot(this.fs, this.directory, snapshot);
      await retainLatestProducerSnapshots(this.fs, this.directory, PRODUCER_SNAPSHOTS_KEPT);
    } catch (error) {
      throw asStorageError(this.health, 'write producer-state snapshot', this.directory, error);
    }
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

  /**
   * Counts the read in flight (so deleted segments stay open under it, and a truncation waits for
   * it before cutting a file it may read) and turns I/O errors into an offline dir. Called
   * synchronously right after the caller took its snapshot.
   */
  private async withRead<T>(operation: string, body: () => Promise<T>): Promise<T> {
    const generation = this.truncations;
    this.readsInFlight += 1;
    this.readsByGeneration.set(generation, (this.readsByGeneration.get(generation) ?? 0) + 1);
    try {
      return await body();
    } catch (error) {
      // Corrupt bytes are never served: this replica stops serving until recovery repairs them.
      if (error instanceof CorruptBatchError) throw this.health.corrupt(error.file, error.position, error.offset, error.detail);
      throw asStorageError(this.health, operation, this.directory, error);
    } finally {
      this.readsInFlight -= 1;
      const left = (this.readsByGeneration.get(generation) ?? 0) - 1;
      if (left > 0) {
        this.readsByGeneration.set(generation, left);
      } else {
        this.readsByGeneration.delete(generation);
        this.wakeGenerationWaiters();
      }
      if (this.readsInFlight === 0) this.onReadsDrained();
    }
  }

  /** Resolves once no read that started in a generation below `generation` is in flight. */
  private readsStartedBefore(generation: number): Promise<void> {
    if (!this.hasReadsBefore(generation)) return Promise.resolve();
    return new Promise<void>((resolve) => this.generationWaiters.push({ generation, resolve }));
  }

  private hasReadsBefore(generation: number): boolean {
    for (const started of this.readsByGeneration.keys()) if (started < generation) return true;
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
      const epochsMoved = this.epochs.truncateFromStart(newLogStart);
      for (const segment of deleted) this.totalBytes -= segment.size;
      try {
        for (const segment of deleted) await this.deleteSegmentFiles(segment);
        await this.fs.syncDirectory(this.directory);
      } catch (error) {
        throw asStorageError(this.health, 'delete segment', this.directory, error);
      }
      // After the deletion: a crash before this leaves entries below the start, which the loader trims the same way.
      if (epochsMoved) await this.persistEpochs();
      this.logger.info({ segmentsDeleted: count, logStartOffset: newLogStart.toString(), sizeBytes: this.totalBytes }, 'retention deleted segments');
      return count;
    });
  }

  /** See PartitionLog.removeExpiredProducers. In the queue, so it never falls between a check and its append. */
  async removeExpiredProducers(nowMs: number): Promise<number> {
    this.checkUsable('expire producers of', false);
    return this.queue.run(async () => {
      this.checkUsable('expire producers of', true);
      const expirationMs = this.configValue.producerIdExpirationMs;
      const removed = this.producers.removeExpired(nowMs, expirationMs);
      if (removed.length > 0) {
        this.logger.info({ producerIds: removed.map(String), producerIdExpirationMs: expirationMs, producers: this.producers.producerCount }, 'expired idle producers');
      }
      return removed.length;
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
    await this.unlinkSegmentFiles(segment);
    await this.releaseSegment(segment);
  }

  /** The .log first: once it is gone the loader deletes orphan indexes. */
  private async unlinkSegmentFiles(segment: LogSegment): Promise<void> {
    for (const path of [segment.logPath, segment.indexPath, segment.timeIndexPath]) {
      try {
        await this.fs.unlink(path);
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
    }
  }

  /** Closes the descriptor of a segment no longer in the log now, or after the reads in flight. */
  private async releaseSegment(segment: LogSegment): Promise<void> {
    // A group-commit sync may still run on the descriptor of a segment that was active a moment ago.
    await this.groupCommit.idle();
    if (this.readsInFlight === 0) await segment.close();
    else this.retired.push(segment);
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
    this.checkUsable('assign a leader epoch to', false);
    return this.queue.run(async () => {
      this.checkUsable('assign a leader epoch to', true);
      const latest = this.epochs.latestEpoch();
      if (latest === leaderEpoch) return;
      if (latest !== undefined && leaderEpoch < latest) {
        throw new KavkaError('FENCED_LEADER_EPOCH', `${this.name}: cannot start leader epoch ${leaderEpoch}, the log already holds epoch ${latest}`);
      }
      await this.recordEpochStarts([{ epoch: leaderEpoch, startOffset: this.logEnd }]);
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
    this.checkUsable('truncate', false);
    return this.queue.run(async () => {
      this.checkUsable('truncate', true);
      assert(offset >= this.logStart, `${this.name}: truncation to ${offset} stays at or above the log start ${this.logStart} (below it, use truncateFullyAndStartAt)`);
      if (offset >= this.logEnd) {
        const dropped = this.epochs.truncateFromEnd(this.logEnd);
        if (dropped.length > 0) await this.persistEpochs();
        return this.logEnd;
      }
      const segments = this.segments;
      const index = segmentIndexFor(segments, offset);
      const segment = segments[index];
      let cut: SegmentCut;
      try {
        cut = await segment.planCut(offset, segment.size);
      } catch (error) {
        throw asStorageError(this.health, 'truncate', segment.logPath, error);
      }
      assert(cut.endOffset >= this.logStart, `${this.name}: truncation to ${offset} ends the log at ${cut.endOffset}, at or above its start ${this.logStart}`);
      const oldEnd = this.logEnd;
      const removed = segments.slice(index + 1);
      const bytesRemoved = segment.size - cut.position + removed.reduce((sum, s) => sum + s.size, 0);
      // Synchronously: every read from here on sees the truncated log.
      this.segments = segments.slice(0, index + 1);
      segment.applyCut(offset, cut, this.clock.nowMs());
      this.logEnd = cut.endOffset;
      this.totalBytes -= bytesRemoved;
      this.groupCommit.truncate(cut.endOffset, this.truncatedError(cut.endOffset));
      const epochsDropped = this.epochs.truncateFromEnd(cut.endOffset);
      this.truncations += 1;
      try {
        for (const doomed of [...removed].reverse()) {
          await this.unlinkSegmentFiles(doomed);
          await this.fs.syncDirectory(this.directory);
        }
        for (const doomed of removed) await this.releaseSegment(doomed);
        await this.readsStartedBefore(this.truncations);
        await segment.file.truncate(cut.position);
        await segment.file.datasync();
      } catch (error) {
        throw asStorageError(this.health, 'truncate', segment.logPath, error);
      }
      this.groupCommit.markDurable(cut.endOffset);
      if (epochsDropped.length > 0) await this.persistEpochs();
      const producers = await this.reloadProducers(cut.endOffset);
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
   * In a truncation's task, once the cut is durable: the producer state of the log as it is now
   * (snapshots above the new end deleted durably before any append reuses those offsets).
   */
  private async reloadProducers(logEndOffset: bigint): Promise<LoadedProducers['report']> {
    let loaded: LoadedProducers;
    try {
      loaded = await loadProducers({
        fs: this.fs,
        directory: this.directory,
        segments: this.segments,
        logStartOffset: this.logStart,
        logEndOffset,
        nowMs: this.clock.nowMs(),
        expirationMs: this.configValue.producerIdExpirationMs,
        options: { unknownProducerPolicy: 'reject', partitionName: this.name },
        logger: this.logger,
      });
    } catch (error) {
      throw asStorageError(this.health, 'rebuild producer state', this.directory, error);
    }
    this.producers = loaded.manager;
    return loaded.report;
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
    this.checkUsable('truncate', false);
    return this.queue.run(async () => {
      this.checkUsable('truncate', true);
      const old = this.segments;
      const oldStart = this.logStart;
      const oldEnd = this.logEnd;
      let next: LogSegment;
      try {
        await writeLeaderEpochCheckpoint(this.fs, this.directory, []);
        // Before the segments: a crash in between leaves a prefix of the old log and no snapshot, which replays.
        await deleteAllProducerSnapshots(this.fs, this.directory);
        for (const doomed of [...old].reverse()) {
          await this.unlinkSegmentFiles(doomed);
          await this.fs.syncDirectory(this.directory);
        }
        await writeLogStartOffset(this.fs, this.directory, this.topicPartition, offset);
        next = await LogSegment.create(this.fs, this.directory, offset, this.clock.nowMs());
        await this.fs.syncDirectory(this.directory);
      } catch (error) {
        throw asStorageError(this.health, 'truncate fully', this.directory, error);
      }
      this.segments = [next];
      this.logStart = offset;
      this.logEnd = offset;
      this.totalBytes = 0;
      this.epochs.clear();
      this.producers = new ProducerStateManager(offset, { unknownProducerPolicy: 'reject', partitionName: this.name });
      this.groupCommit.restart(offset, this.truncatedError(offset));
      this.truncations += 1;
      try {
        for (const doomed of old) await this.releaseSegment(doomed);
      } catch (error) {
        throw asStorageError(this.health, 'close a deleted segment', this.directory, error);
      }
      this.logger.info(
        { logStartOffset: offset.toString(), previousLogStartOffset: oldStart.toString(), previousLogEndOffset: oldEnd.toString(), segmentsDeleted: old.length },
        'truncated the log fully; it restarts empty',
      );
    });
  }

  /** What an append waiting for durability gets when a truncation removed its records first. */
  private truncatedError(end: bigint): KavkaError {
    return new KavkaError('NOT_LEADER_OR_FOLLOWER', `${this.name}: the log was truncated to ${end} before these records became durable`);
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
        await active.file.datasync();
        this.groupCommit.markDurable(this.logEnd);
        active.sealTimeIndex();
        await active.writeIndexFiles(this.fs);
        await this.snapshotProducers();
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
