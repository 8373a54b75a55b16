// An append's write step, in the log's queue once its offsets are final: what it writes
// (PreparedWrite), the active segment's bookkeeping once the bytes are written, and what the
// caller is answered (Appended), for a leader's or a follower's batches and for an idempotent
// producer's retry that writes nothing.
//
// Pure: FilePartitionLog (partition-log.ts) writes the bytes, then calls these synchronously,
// together with moving its log end (readers may see the bytes from then on).
import type { AppendResult, FlushPolicy } from './api.js';
import type { BatchLocation, LogSegment } from './segment.js';

/** What the write step of an append needs, once offsets (and for a leader, stamps) are final. */
export interface PreparedWrite {
  batches: Buffer;
  /** The first batch's base offset (headers in `located` were read before a leader stamped offsets). */
  baseOffset: bigint;
  located: BatchLocation[];
  lastOffsets: bigint[];
  maxTimestamps: bigint[];
  nowMs: number;
  logAppendTimeMs: bigint;
}

/** An append's answer, and whether it waits (outside the queue) for its offsets to be durable. */
export interface Appended {
  result: AppendResult;
  waitForSync: boolean;
}

/** The last offset of a leader's batches given offsets from baseOffset on (each batch's offsets are consecutive). */
export function leaderLastOffset(located: readonly BatchLocation[], baseOffset: bigint): bigint {
  let offsetCount = 0n;
  for (const batch of located) offsetCount += BigInt(batch.header.lastOffsetDelta) + 1n;
  return baseOffset + offsetCount - 1n;
}

/**
 * Synchronously once `write.batches` is written at `position` of the active segment: its index
 * entries, the roll base of a segment that was empty, and its modification time.
 */
export function recordWrittenBatches(active: LogSegment, position: number, write: PreparedWrite, indexIntervalBytes: number): void {
  const { located, lastOffsets, maxTimestamps, nowMs } = write;
  if (active.size === 0) active.rollBaseMs = nowMs;
  for (let i = 0; i < located.length; i++) {
    active.recordBatch(position + located[i].position, located[i].size, lastOffsets[i], maxTimestamps[i], indexIntervalBytes);
  }
  active.lastModifiedMs = nowMs;
}

/** The answer to an append whose batches are written. */
export function writtenAppend(write: PreparedWrite, logStartOffset: bigint, flushPolicy: FlushPolicy): Appended {
  const lastOffset = write.lastOffsets[write.lastOffsets.length - 1];
  let recordCount = 0;
  for (const batch of write.located) recordCount += batch.header.recordsCount;
  return {
    result: { baseOffset: write.baseOffset, lastOffset, logAppendTimeMs: write.logAppendTimeMs, logStartOffset, recordCount, sizeBytes: write.batches.length, duplicate: false },
    waitForSync: flushPolicy === 'batch',
  };
}

/**
 * The answer to a retry of a batch the log holds at [firstOffset, lastOffset]: nothing written;
 * the append waits (under the batch policy) until those offsets are durable, since the original
 * append may still be waiting for its fdatasync.
 */
export function duplicateAppend(firstOffset: bigint, lastOffset: bigint, logAppendTimeMs: bigint, logStartOffset: bigint, flushPolicy: FlushPolicy): Appended {
  return {
    result: { baseOffset: firstOffset, lastOffset, logAppendTimeMs, logStartOffset, recordCount: 0, sizeBytes: 0, duplicate: true },
    waitForSync: flushPolicy === 'batch',
  };
}
