// The read path of a partition log: fetches (one segment per fetch, as Kafka reads), the offset
// for a timestamp and the offset of the largest timestamp. Each reads below a snapshot its caller
// took synchronously (DESIGN.md section 2: reads never block writes; a reader holds the segment
// list it started with). Every batch served is checked against its CRC-32C as it is read
// (LogSegment.read); a mismatch throws CorruptBatchError, and corrupt bytes are never served.
//
// Called by FilePartitionLog (partition-log.ts) through a LogReader, which counts each read in
// flight (read-tracker.ts) and turns what it throws into an offline log dir. Safe across `await`:
// the snapshot and the segment files are all a read looks at.
import { decodeRecordBatch, effectiveTimestamp, lastOffsetOf } from '../codec/record-batch.js';
import { KavkaError } from '../util/errors.js';
import type { ReadOptions, ReadResult, TimestampOffset } from './api.js';
import { asStorageError, type LogDirHealth } from './log-dir-health.js';
import type { ReadTracker } from './read-tracker.js';
import { CorruptBatchError, segmentIndexFor, type LogSegment } from './segment.js';

const EMPTY: Buffer = Buffer.alloc(0);

/** What a read sees of the log, taken synchronously when it starts. */
export interface ReadSnapshot {
  /** Never empty; the last one is the active segment. */
  segments: readonly LogSegment[];
  /** The active segment's size when the snapshot was taken: bytes after it may be in flight. */
  activeEnd: number;
  logStartOffset: bigint;
  logEndOffset: bigint;
}

/** Where the largest timestamp of the log is, found synchronously from the segments' bookkeeping. */
interface MaxTimestampTarget {
  segment: LogSegment;
  timestamp: bigint;
  /** The last offset of the batch that holds it. */
  batchLastOffset: bigint;
  /** The segment's end in the snapshot. */
  end: number;
}

export interface LogReaderOptions {
  /** The partition's name, for errors. */
  name: string;
  /** The partition's directory, named when a read fails. */
  directory: string;
  health: LogDirHealth;
  /** The log's reads in flight, shared with its truncations and deletions. */
  reads: ReadTracker;
}

/** The reads of one partition log, each below the snapshot its caller took synchronously before calling. */
export class LogReader {
  constructor(private readonly options: LogReaderOptions) {}

  /** See PartitionLog.read: OFFSET_OUT_OF_RANGE outside [logStartOffset, logEndOffset]. */
  async read(snapshot: ReadSnapshot, fetchOffset: bigint, maxBytes: number, options: ReadOptions): Promise<ReadResult> {
    checkFetchOffset(this.options.name, fetchOffset, snapshot);
    const maxOffset = options.maxOffset < snapshot.logEndOffset ? options.maxOffset : snapshot.logEndOffset;
    if (fetchOffset >= maxOffset) return emptyRead(snapshot, fetchOffset);
    return this.withRead('read', () => readBatches(snapshot, fetchOffset, maxBytes, maxOffset, options.minOneBatch));
  }

  async offsetForTimestamp(snapshot: ReadSnapshot, timestampMs: bigint): Promise<TimestampOffset | undefined> {
    return this.withRead('offsetForTimestamp', () => findOffsetForTimestamp(snapshot, timestampMs));
  }

  async maxTimestampOffset(snapshot: ReadSnapshot): Promise<TimestampOffset | undefined> {
    const target = maxTimestampTarget(snapshot);
    if (target === undefined) return undefined;
    return this.withRead('maxTimestampOffset', () => findMaxTimestampOffset(target));
  }

  /**
   * Counts the read in flight (so deleted segments stay open under it, and a truncation waits for
   * it before cutting a file it may read) and turns I/O errors into an offline dir. Called
   * synchronously right after the caller took its snapshot.
   */
  private async withRead<T>(operation: string, body: () => Promise<T>): Promise<T> {
    const { reads, health } = this.options;
    const generation = reads.start();
    try {
      return await body();
    } catch (error) {
      // Corrupt bytes are never served: this replica stops serving until recovery repairs them.
      if (error instanceof CorruptBatchError) throw health.corrupt(error.file, error.position, error.offset, error.detail);
      throw asStorageError(health, operation, this.options.directory, error);
    } finally {
      reads.finish(generation);
    }
  }
}

/** Throws OFFSET_OUT_OF_RANGE unless logStartOffset <= fetchOffset <= logEndOffset. */
function checkFetchOffset(name: string, fetchOffset: bigint, snapshot: ReadSnapshot): void {
  const { logStartOffset, logEndOffset } = snapshot;
  if (fetchOffset < logStartOffset || fetchOffset > logEndOffset) {
    throw new KavkaError('OFFSET_OUT_OF_RANGE', `${name}: fetch offset ${fetchOffset} is outside the log [${logStartOffset}, ${logEndOffset}]`);
  }
}

/** The answer to a fetch that finds nothing to return at `fetchOffset`. */
function emptyRead(snapshot: ReadSnapshot, fetchOffset: bigint): ReadResult {
  return { batches: EMPTY, nextOffset: fetchOffset, logStartOffset: snapshot.logStartOffset, logEndOffset: snapshot.logEndOffset };
}

/**
 * The batches from the one holding fetchOffset on, whose last offsets are below maxOffset, up to
 * maxBytes, from the first segment (from the one that should hold fetchOffset) that has a batch
 * ending at or after it.
 */
async function readBatches(snapshot: ReadSnapshot, fetchOffset: bigint, maxBytes: number, maxOffset: bigint, minOneBatch: boolean): Promise<ReadResult> {
  const { segments, logStartOffset, logEndOffset } = snapshot;
  // Kafka reads from one segment per fetch; the next fetch continues in the next segment.
  for (let i = segmentIndexFor(segments, fetchOffset); i < segments.length; i++) {
    const segment = segments[i];
    const found = await segment.read(fetchOffset, maxBytes, maxOffset, minOneBatch, endOf(snapshot, segment));
    if (found !== undefined) return { batches: found.batches, nextOffset: found.nextOffset, logStartOffset, logEndOffset };
  }
  return emptyRead(snapshot, fetchOffset);
}

/** The first record at or after the log start whose timestamp is >= timestampMs, or undefined when none is. */
async function findOffsetForTimestamp(snapshot: ReadSnapshot, timestampMs: bigint): Promise<TimestampOffset | undefined> {
  for (const segment of snapshot.segments) {
    if (segment.maxTimestampSoFar < timestampMs) continue;
    const found = await findTimestampIn(segment, timestampMs, snapshot.logStartOffset, endOf(snapshot, segment));
    if (found !== undefined) return found;
  }
  return undefined;
}

/** The segment with the largest timestamp (the oldest one on a tie), or undefined when no batch has a timestamp. */
function maxTimestampTarget(snapshot: ReadSnapshot): MaxTimestampTarget | undefined {
  let best: LogSegment | undefined;
  for (const segment of snapshot.segments) {
    if (segment.maxTimestampSoFar >= 0n && (best === undefined || segment.maxTimestampSoFar > best.maxTimestampSoFar)) best = segment;
  }
  if (best === undefined) return undefined;
  return { segment: best, timestamp: best.maxTimestampSoFar, batchLastOffset: best.offsetOfMaxTimestampSoFar, end: endOf(snapshot, best) };
}

/** The offset of the record with the target's timestamp (its batch's last offset if no record has it exactly). */
async function findMaxTimestampOffset(target: MaxTimestampTarget): Promise<TimestampOffset | undefined> {
  const { segment, timestamp, batchLastOffset, end } = target;
  const start = segment.offsetIndex.lookup(batchLastOffset).position;
  const batch = await segment.findBatch(start, end, (header) => lastOffsetOf(header) >= batchLastOffset);
  if (batch === undefined) return undefined;
  const { header, records } = decodeRecordBatch(await segment.readExact(batch.position, batch.size));
  const record = records.find((r) => effectiveTimestamp(header, r) === timestamp);
  return { offset: record?.offset ?? lastOffsetOf(header), timestamp };
}

/**
 * The first record at or after startOffset whose timestamp is >= target. The time index gives a
 * batch before which every batch's max timestamp is below the target; the offset index turns
 * it into a position; headers are scanned from there; the batch found is decoded.
 */
async function findTimestampIn(segment: LogSegment, target: bigint, startOffset: bigint, end: number): Promise<TimestampOffset | undefined> {
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

/** Where a read of `segment` stops: the snapshot's size for the active segment, the segment's size for a sealed one. */
function endOf(snapshot: ReadSnapshot, segment: LogSegment): number {
  return segment === snapshot.segments[snapshot.segments.length - 1] ? snapshot.activeEnd : segment.size;
}
