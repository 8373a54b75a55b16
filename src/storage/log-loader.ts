// Opens a partition directory and recovers it (Kafka's LogLoader), before the log serves anything.
//
// What is trusted, and why:
// - Sealed segments (all but the last) were fsynced, with their indexes, before the next segment
//   was created (PartitionLog.roll). So the recovery point is the active segment's base offset:
//   sealed segments are loaded from their index files, which are checked (whole entries, entries
//   in order, positions inside the .log, offsets below the next segment). An index that fails the
//   check, or is missing, is rebuilt by scanning the .log with CRC checks. The CRC of every batch
//   of every sealed segment is checked too when `verifySealedSegments` says so (the policy
//   log.recovery.verify.sealed.segments: always, or only without a clean shutdown, or never; and
//   always after the dir went offline for corruption).
// - A bad batch in a sealed segment (or in an active segment the clean-shutdown marker says was
//   complete) is corruption of fsynced, maybe acknowledged, data. It is repaired, never served:
//   the segment file is copied aside to `<name>.log.corrupt` for the operator, the log is
//   truncated to the corrupt batch's base offset (segments after it deleted, the segment cut
//   there becomes the active one), the error is logged with file, offset and position, and the
//   refetch-required marker (refetch-marker.ts) is written: the replica re-fetches the rest from
//   its leader and does not lead until it has.
// - The active segment (the last) after a clean shutdown: the marker records its size and the log
//   end offset. If they match, its indexes are loaded and only its tail (from the last offset-index
//   entry to the end, at most about index.interval.bytes plus one batch) is CRC-checked.
// - The active segment after a crash, or when the marker does not match: scanned whole with CRC
//   checks and truncated at the first invalid or incomplete batch, as Kafka does for segments past
//   the recovery point. A torn write and a corrupt batch in the middle look the same here; both
//   cut the segment there. With flush.policy=batch anything cut was never acknowledged unless the
//   disk damaged fsynced data, and then replication refetches it from the leader.
//
// Also: stray temp files of atomic writes are deleted, orphan index files are deleted, segments
// wholly below the checkpointed log start offset are deleted (a crash between the checkpoint and
// the deletion leaves them), the leader epoch cache is loaded and made to agree with the log
// (leader-epoch-recovery.ts), and the clean-shutdown marker is removed (durably) before returning.
//
// Truncation (PartitionLog.truncateTo) may leave the last segment with index files written when
// it was sealed, describing bytes since cut. They are never read: the last segment's indexes are
// trusted only after a clean shutdown, whose close() wrote them again.
import { join } from 'node:path';
import { lastOffsetOf, readBatchHeader, BATCH_HEADER_SIZE, type BatchHeader } from '../codec/record-batch.js';
import type { Clock } from '../util/clock.js';
import { KavkaError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { type LogConfig, type SealedSegmentVerification, type TopicPartition } from './api.js';
import { TEMP_SUFFIX } from './atomic-file.js';
import { cleanShutdownPath, readCleanShutdown, type CleanShutdownState } from './clean-shutdown-marker.js';
import type { LeaderEpochCache } from './leader-epoch-cache.js';
import { recoverLeaderEpochs } from './leader-epoch-recovery.js';
import { readLogStartOffset } from './log-start-offset-checkpoint.js';
import {
  INDEX_FILE_SUFFIX,
  LogSegment,
  parseSegmentLogName,
  segmentFileName,
  TIME_INDEX_FILE_SUFFIX,
  type BatchLocation,
} from './segment.js';
import { isNotFound, readAt, type StorageFs } from './storage-fs.js';
import { writeRefetchMarker } from './refetch-marker.js';

/** Names tried for the copy of a corrupt segment: `<name>.log.corrupt`, then `.corrupt.1`, ... */
const CORRUPT_COPY_NAMES_MAX = 1000;
const COPY_CHUNK_BYTES = 1024 * 1024;

export interface LogRecoveryReport {
  /** The directory held no segment: this open created a new, empty log (nothing was recovered). */
  created: boolean;
  /** The log had closed cleanly and its active segment matched the marker. */
  cleanShutdown: boolean;
  segments: number;
  /** Segments whose indexes were rebuilt by scanning their .log. */
  indexesRebuilt: number;
  /** Bytes cut from the end of the active segment. */
  bytesTruncated: number;
  /** Segments deleted at open because they lay wholly below the log start offset. */
  segmentsBelowLogStartDeleted: number;
  /** The leader epoch checkpoint was missing, damaged or inconsistent with the log, and was rebuilt from batch headers. */
  leaderEpochCacheRebuilt: boolean;
  /** Leader epoch entries dropped because they started at or past the log end (a crash lost their batch). */
  leaderEpochEntriesDropped: number;
  /** Sealed segments whose every batch was CRC-checked at this open. */
  sealedSegmentsVerified: number;
  /** A corrupt batch of fsynced data was found and the log truncated to it (see the header). */
  corruptionRepaired: CorruptionRepair | undefined;
}

export interface CorruptionRepair {
  /** The segment that held the corrupt batch. */
  file: string;
  /** Where the whole segment file was copied before it was cut. */
  keptAs: string;
  /** Byte position of the corrupt batch in `file`. */
  position: number;
  /** The log was truncated here: the corrupt batch's base offset (one past the batch before it). */
  truncatedToOffset: bigint;
  reason: string;
  /** Segments after the corrupt one that were deleted. */
  segmentsDeleted: number;
}

export interface LoadedLog {
  /** Ascending by base offset; the last is the active segment. Never empty. */
  segments: LogSegment[];
  logStartOffset: bigint;
  logEndOffset: bigint;
  /** Agrees with the log: no entry starts at or past the log end. */
  leaderEpochs: LeaderEpochCache;
  report: LogRecoveryReport;
}

export interface LoadLogOptions {
  fs: StorageFs;
  directory: string;
  topicPartition: TopicPartition;
  config: LogConfig;
  clock: Clock;
  /** Already bound to the topic-partition. */
  logger: Logger;
  /** When to CRC-check every batch of the sealed segments (api.ts SealedSegmentVerification). */
  verifySealedSegments: SealedSegmentVerification;
  /** Check them whatever the policy says (the dir went offline because of corruption). */
  forceVerification?: boolean;
}

/** One bad batch found by a scan, in segment `index`. */
interface Damage {
  index: number;
  position: number;
  /** The last offset of the last valid batch before it, if any. */
  lastValidOffset: bigint | undefined;
  reason: string;
}

/** Loads and recovers the partition directory (which must exist). Closes every file it opened if it fails. */
export async function loadLog(options: LoadLogOptions): Promise<LoadedLog> {
  const loader = new LogLoader(options);
  try {
    return await loader.load();
  } catch (error) {
    await loader.closeAll();
    throw error;
  }
}

class LogLoader {
  private readonly fs: StorageFs;
  private readonly directory: string;
  private segments: LogSegment[] = [];
  private directoryChanged = false;
  /** The last valid batch the scan of the active segment visited (its tail after a clean shutdown, all of it after a crash). */
  private lastActiveBatch: { segment: LogSegment; header: BatchHeader } | undefined;
  private readonly report: LogRecoveryReport = {
    created: false,
    cleanShutdown: false,
    segments: 0,
    indexesRebuilt: 0,
    bytesTruncated: 0,
    segmentsBelowLogStartDeleted: 0,
    leaderEpochCacheRebuilt: false,
    leaderEpochEntriesDropped: 0,
    sealedSegmentsVerified: 0,
    corruptionRepaired: undefined,
  };

  constructor(private readonly options: LoadLogOptions) {
    this.fs = options.fs;
    this.directory = options.directory;
  }

  async load(): Promise<LoadedLog> {
    const bases = await this.cleanDirectory();
    const clean = await readCleanShutdown(this.fs, this.directory);
    const checkpointed = await readLogStartOffset(this.fs, this.directory, this.options.topicPartition);
    let logEndOffset: bigint;
    if (bases.length === 0) {
      const start = checkpointed ?? 0n;
      this.segments.push(await LogSegment.create(this.fs, this.directory, start, this.options.clock.nowMs()));
      this.directoryChanged = true;
      this.report.created = true;
      logEndOffset = start;
    } else {
      for (const base of bases) this.segments.push(await LogSegment.open(this.fs, this.directory, base));
      const verify = this.options.forceVerification === true || this.options.verifySealedSegments === 'always' || (this.options.verifySealedSegments === 'unclean' && clean === undefined);
      let damage: Damage | undefined;
      for (let i = 0; i < this.segments.length - 1 && damage === undefined; i++) damage = await this.loadSealed(i, verify);
      const active = damage ?? (await this.loadActive(this.segments[this.segments.length - 1], clean, verify));
      logEndOffset = typeof active === 'bigint' ? active : await this.repair(active);
    }
    let logStartOffset = checkpointed ?? this.segments[0].baseOffset;
    if (logStartOffset < this.segments[0].baseOffset) logStartOffset = this.segments[0].baseOffset;
    logEndOffset = await this.dropBelowLogStart(logStartOffset, logEndOffset);
    const active = this.segments[this.segments.length - 1];
    const lastBatch = this.lastActiveBatch?.segment === active && active.size > 0 ? this.lastActiveBatch.header : undefined;
    const epochs = await recoverLeaderEpochs({ fs: this.fs, directory: this.directory, segments: this.segments, logStartOffset, logEndOffset, lastBatch, logger: this.options.logger });
    this.report.leaderEpochCacheRebuilt = epochs.rebuilt;
    this.report.leaderEpochEntriesDropped = epochs.entriesDropped;
    if (clean !== undefined) {
      // From here on a crash must be recovered as one: the marker goes before any append.
      await this.fs.unlink(cleanShutdownPath(this.directory));
      this.directoryChanged = true;
    }
    if (this.directoryChanged) await this.fs.syncDirectory(this.directory);
    this.report.segments = this.segments.length;
    return { segments: this.segments, logStartOffset, logEndOffset, leaderEpochs: epochs.cache, report: this.report };
  }

  async closeAll(): Promise<void> {
    for (const segment of this.segments) await segment.close().catch(() => undefined);
    this.segments = [];
  }

  /** Deletes leftovers and returns the base offsets of the .log files, ascending. */
  private async cleanDirectory(): Promise<bigint[]> {
    const names = await this.fs.readdir(this.directory);
    const bases: bigint[] = [];
    for (const name of names) {
      const base = parseSegmentLogName(name);
      if (base !== undefined) bases.push(base);
    }
    bases.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const logNames = new Set(bases.map((base) => segmentFileName(base, '')));
    for (const name of names) {
      const orphanIndex = (name.endsWith(INDEX_FILE_SUFFIX) || name.endsWith(TIME_INDEX_FILE_SUFFIX)) && !logNames.has(name.slice(0, name.lastIndexOf('.')));
      if (name.endsWith(TEMP_SUFFIX) || orphanIndex) {
        this.options.logger.info({ file: name }, 'deleting a leftover file');
        await this.unlinkIfPresent(join(this.directory, name));
      }
    }
    return bases;
  }

  /** Loads sealed segment `index` (its indexes, checked; all its CRCs when `verify`); returns the bad batch found, if any. */
  private async loadSealed(index: number, verify: boolean): Promise<Damage | undefined> {
    const segment = this.segments[index];
    const nextBaseOffset = this.segments[index + 1].baseOffset;
    const problem = await segment.loadIndexFiles(this.fs, nextBaseOffset);
    if (problem === undefined && !verify) return undefined;
    const fileSize = segment.size;
    if (problem === undefined) {
      const outcome = await segment.scan({ from: 0, fileSize, expectedFirstOffset: segment.baseOffset, offsetLimit: nextBaseOffset, visit: () => undefined });
      this.report.sealedSegmentsVerified += 1;
      return outcome.invalid === undefined ? undefined : { index, position: outcome.invalid.position, lastValidOffset: outcome.lastOffset, reason: outcome.invalid.reason };
    }
    this.options.logger.warn({ file: segment.logPath, reason: problem }, 'rebuilding the indexes of a sealed segment');
    segment.resetForRebuild();
    const outcome = await segment.scan({ from: 0, fileSize, expectedFirstOffset: segment.baseOffset, offsetLimit: nextBaseOffset, visit: this.rebuildVisitor(segment) });
    this.report.sealedSegmentsVerified += 1;
    if (outcome.invalid !== undefined) return { index, position: outcome.invalid.position, lastValidOffset: outcome.lastOffset, reason: outcome.invalid.reason };
    segment.sealTimeIndex();
    await segment.writeIndexFiles(this.fs);
    this.directoryChanged = true;
    this.report.indexesRebuilt += 1;
    return undefined;
  }

  /**
   * Repairs the log at a bad batch of fsynced data (see the header): copy the segment aside,
   * delete the segments after it (newest first, a directory fsync after each, so a crash leaves a
   * prefix), rebuild the cut segment's indexes from its valid batches, cut and fdatasync it, write
   * the refetch-required marker. Returns the new log end offset.
   */
  private async repair(damage: Damage): Promise<bigint> {
    const segment = this.segments[damage.index];
    const truncatedToOffset = damage.lastValidOffset === undefined ? segment.baseOffset : damage.lastValidOffset + 1n;
    const keptAs = await this.copyAside(segment);
    const removed = this.segments.splice(damage.index + 1);
    for (const doomed of [...removed].reverse()) {
      await doomed.close();
      for (const path of [doomed.logPath, doomed.indexPath, doomed.timeIndexPath]) await this.unlinkIfPresent(path);
      await this.fs.syncDirectory(this.directory);
    }
    segment.resetForRebuild();
    const rebuild = this.rebuildVisitor(segment);
    this.lastActiveBatch = undefined;
    await segment.scan({
      from: 0,
      fileSize: damage.position,
      expectedFirstOffset: segment.baseOffset,
      offsetLimit: undefined,
      visit: (batch) => {
        rebuild(batch);
        this.lastActiveBatch = { segment, header: batch.header };
      },
    });
    await segment.file.truncate(damage.position);
    await segment.file.datasync();
    // Its index files describe the bytes cut; the active segment's are rewritten at a clean close.
    for (const path of [segment.indexPath, segment.timeIndexPath]) await this.unlinkIfPresent(path);
    await this.setRollBase(segment);
    await writeRefetchMarker(this.fs, this.directory, truncatedToOffset);
    this.directoryChanged = true;
    const repair: CorruptionRepair = { file: segment.logPath, keptAs, position: damage.position, truncatedToOffset, reason: damage.reason, segmentsDeleted: removed.length };
    this.report.corruptionRepaired = repair;
    this.report.cleanShutdown = false;
    this.options.logger.error(
      { file: repair.file, keptAs, position: repair.position, offset: truncatedToOffset.toString(), reason: repair.reason, segmentsDeleted: repair.segmentsDeleted },
      `corrupt batch in ${repair.file} at position ${repair.position} (offset ${truncatedToOffset}): the segment is kept as ${keptAs}, the log is truncated to offset ${truncatedToOffset}, and the replica re-fetches the rest from its leader`,
    );
    return truncatedToOffset;
  }

  /** Copies the whole segment file to the first free `<name>.log.corrupt[.n]`, fsynced; returns its path. */
  private async copyAside(segment: LogSegment): Promise<string> {
    const names = new Set(await this.fs.readdir(this.directory));
    const base = `${segment.logPath.slice(segment.logPath.lastIndexOf('/') + 1)}.corrupt`;
    let name = base;
    for (let n = 1; names.has(name); n++) {
      if (n > CORRUPT_COPY_NAMES_MAX) throw new KavkaError('KAFKA_STORAGE_ERROR', `${this.directory} already holds ${CORRUPT_COPY_NAMES_MAX} copies of ${base}; move them away and restart`);
      name = `${base}.${n}`;
    }
    const path = join(this.directory, name);
    const copy = await this.fs.open(path, 'createNew');
    try {
      const size = await segment.file.size();
      for (let position = 0; position < size; position += COPY_CHUNK_BYTES) {
        const chunk = await readAt(segment.file, position, Math.min(COPY_CHUNK_BYTES, size - position));
        if (chunk.length === 0) break;
        await copy.write(chunk, position);
      }
      await copy.datasync();
    } finally {
      await copy.close();
    }
    await this.fs.syncDirectory(this.directory);
    return path;
  }

  /**
   * Loads or recovers the active segment; returns the log end offset, or the bad batch when the
   * clean-shutdown marker says the segment was complete (so the bytes were fsynced: corruption,
   * not a torn write) and a full scan (`verify`) found one.
   */
  private async loadActive(segment: LogSegment, clean: CleanShutdownState | undefined, verify: boolean): Promise<bigint | Damage> {
    if (clean !== undefined) {
      const trusted = await this.loadActiveAfterCleanShutdown(segment, clean);
      if (trusted !== undefined && !verify) {
        this.report.cleanShutdown = true;
        return trusted;
      }
      if (trusted !== undefined) {
        this.report.cleanShutdown = true;
        const outcome = await segment.scan({ from: 0, fileSize: segment.size, expectedFirstOffset: segment.baseOffset, offsetLimit: undefined, visit: () => undefined });
        if (outcome.invalid === undefined) return trusted;
        return { index: this.segments.length - 1, position: outcome.invalid.position, lastValidOffset: outcome.lastOffset, reason: outcome.invalid.reason };
      }
    }
    return this.recoverActive(segment);
  }

  /** The log end offset when the marker, the index files and the tail all agree; undefined otherwise. */
  private async loadActiveAfterCleanShutdown(segment: LogSegment, clean: CleanShutdownState): Promise<bigint | undefined> {
    const logger = this.options.logger;
    if (clean.activeSegmentBaseOffset !== segment.baseOffset || clean.activeSegmentBytes !== segment.size) {
      logger.warn(
        { file: segment.logPath, bytes: segment.size, recordedBytes: clean.activeSegmentBytes, recordedBaseOffset: clean.activeSegmentBaseOffset.toString() },
        'the active segment does not match the clean-shutdown marker; recovering it',
      );
      return undefined;
    }
    const problem = await segment.loadIndexFiles(this.fs, undefined);
    if (problem !== undefined) {
      logger.warn({ file: segment.logPath, reason: problem }, 'the active segment has unusable indexes; recovering it');
      return undefined;
    }
    const entry = segment.offsetIndex.lastEntry();
    let tailProblem: string | undefined;
    let first = true;
    const outcome = await segment.scan({
      from: entry?.position ?? 0,
      fileSize: segment.size,
      expectedFirstOffset: segment.baseOffset,
      offsetLimit: undefined,
      visit: (batch) => {
        if (first && entry !== undefined && lastOffsetOf(batch.header) !== entry.offset) {
          tailProblem = `the last index entry says offset ${entry.offset} at position ${entry.position}, the batch there ends at ${lastOffsetOf(batch.header)}`;
        }
        first = false;
        this.lastActiveBatch = { segment, header: batch.header };
        if (batch.header.maxTimestamp > segment.maxTimestampSoFar) {
          segment.maxTimestampSoFar = batch.header.maxTimestamp;
          segment.offsetOfMaxTimestampSoFar = lastOffsetOf(batch.header);
        }
      },
    });
    if (outcome.invalid !== undefined) tailProblem = `${outcome.invalid.reason} at position ${outcome.invalid.position}`;
    const logEnd = outcome.lastOffset === undefined ? segment.baseOffset : outcome.lastOffset + 1n;
    const timeEntry = segment.timeIndex.lastEntry();
    if (tailProblem === undefined && timeEntry !== undefined && timeEntry.offset >= logEnd) tailProblem = `the time index points at offset ${timeEntry.offset}, past the log end ${logEnd}`;
    if (tailProblem === undefined && logEnd !== clean.logEndOffset) tailProblem = `the log ends at ${logEnd}, the marker says ${clean.logEndOffset}`;
    if (tailProblem !== undefined) {
      logger.warn({ file: segment.logPath, reason: tailProblem }, 'the active segment tail does not match its clean shutdown; recovering it');
      return undefined;
    }
    await this.setRollBase(segment);
    return logEnd;
  }

  /** Scans the whole active segment with CRC checks, rebuilds its indexes, truncates at the first bad batch. */
  private async recoverActive(segment: LogSegment): Promise<bigint> {
    const fileSize = segment.size;
    segment.resetForRebuild();
    const rebuild = this.rebuildVisitor(segment);
    const outcome = await segment.scan({
      from: 0,
      fileSize,
      expectedFirstOffset: segment.baseOffset,
      offsetLimit: undefined,
      visit: (batch) => {
        rebuild(batch);
        this.lastActiveBatch = { segment, header: batch.header };
      },
    });
    this.report.indexesRebuilt += 1;
    if (outcome.invalid !== undefined) {
      const bytesTruncated = fileSize - outcome.validEnd;
      this.options.logger.warn(
        {
          file: segment.logPath,
          position: outcome.invalid.position,
          bytesTruncated,
          lastValidOffset: outcome.lastOffset?.toString() ?? null,
          reason: outcome.invalid.reason,
        },
        `truncating the active segment at its last whole valid batch: ${bytesTruncated} bytes cut`,
      );
      await segment.file.truncate(outcome.validEnd);
      await segment.file.datasync();
      this.report.bytesTruncated += bytesTruncated;
    }
    await this.setRollBase(segment);
    return outcome.lastOffset === undefined ? segment.baseOffset : outcome.lastOffset + 1n;
  }

  private rebuildVisitor(segment: LogSegment): (batch: BatchLocation) => void {
    const interval = this.options.config.indexIntervalBytes;
    return (batch) => segment.recordBatch(batch.position, batch.size, lastOffsetOf(batch.header), batch.header.maxTimestamp, interval);
  }

  /** segment.ms counts from the first batch's max timestamp after a restart (Kafka's rule), capped at now. */
  private async setRollBase(segment: LogSegment): Promise<void> {
    if (segment.size < BATCH_HEADER_SIZE) return;
    const nowMs = this.options.clock.nowMs();
    const first = readBatchHeader(await segment.readExact(0, BATCH_HEADER_SIZE));
    const firstMs = Number(first.maxTimestamp);
    segment.rollBaseMs = first.maxTimestamp >= 0n && firstMs < nowMs ? firstMs : nowMs;
  }

  /** Deletes segments wholly below the log start; returns the (possibly new) log end offset. */
  private async dropBelowLogStart(logStartOffset: bigint, logEndOffset: bigint): Promise<bigint> {
    let drop = 0;
    while (drop < this.segments.length - 1 && this.segments[drop + 1].baseOffset <= logStartOffset) drop++;
    let logEnd = logEndOffset;
    if (logEnd < logStartOffset) {
      // Everything left lies below the log start (files were lost): start empty at the log start.
      this.options.logger.warn({ logStartOffset: logStartOffset.toString(), logEndOffset: logEnd.toString() }, 'the log ends below its start offset; starting an empty segment at the log start');
      drop = this.segments.length;
      logEnd = logStartOffset;
    }
    if (drop === 0) return logEnd;
    const dropped = this.segments.splice(0, drop);
    for (const segment of dropped) {
      await segment.close();
      for (const path of [segment.logPath, segment.indexPath, segment.timeIndexPath]) await this.unlinkIfPresent(path);
    }
    if (this.segments.length === 0) this.segments.push(await LogSegment.create(this.fs, this.directory, logStartOffset, this.options.clock.nowMs()));
    this.report.segmentsBelowLogStartDeleted += dropped.length;
    this.directoryChanged = true;
    return logEnd;
  }

  private async unlinkIfPresent(path: string): Promise<void> {
    try {
      await this.fs.unlink(path);
      this.directoryChanged = true;
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
}
