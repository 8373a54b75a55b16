// Which segments retention deletes (DESIGN.md section 2): whole sealed segments, oldest first, by
// retention.ms, retention.bytes and retention.messages (beyond Kafka: a count limit), and those
// wholly below the log start offset. The log start offset then moves up to the first segment
// kept; it never moves down. The active segment is never deleted.
//
// Pure: FilePartitionLog.applyRetention (partition-log.ts) plans with it in its queue, then
// writes the log start checkpoint, deletes the segments' files and trims the leader epoch cache.
import type { LogConfig } from './api.js';
import type { LogSegment } from './segment.js';

/** The log as retention sees it, in the queue. */
export interface RetentionInputs {
  /** Never empty; the last one is the active segment. */
  segments: readonly LogSegment[];
  /** The bytes of all the segments. */
  totalBytes: number;
  logStartOffset: bigint;
  logEndOffset: bigint;
  nowMs: number;
  config: LogConfig;
}

export interface RetentionPlan {
  /** How many segments to delete, oldest first (always fewer than the segments). */
  count: number;
  /** The log start offset once they are gone: >= the current one. */
  logStartOffset: bigint;
}

/** What retention deletes now, or undefined when it deletes nothing. */
export function planRetention(inputs: RetentionInputs): RetentionPlan | undefined {
  const count = deletableSegmentCount(inputs);
  if (count === 0) return undefined;
  const firstKept = inputs.segments[count].baseOffset;
  return { count, logStartOffset: firstKept > inputs.logStartOffset ? firstKept : inputs.logStartOffset };
}

/**
 * The length of the oldest-first prefix of sealed segments that retention allows deleting: the
 * longest that any one limit allows. retention.messages counts offsets (logEnd - logStart, gaps
 * included) and never deletes below the limit: a segment goes only if the log still holds at
 * least retention.messages offsets without it.
 */
function deletableSegmentCount(inputs: RetentionInputs): number {
  const { segments, nowMs, config } = inputs;
  const sealed = segments.length - 1;
  let byTime = 0;
  if (config.retentionMs >= 0) {
    while (byTime < sealed && nowMs - segments[byTime].largestTimestampMs() > config.retentionMs) byTime++;
  }
  let bySize = 0;
  if (config.retentionBytes >= 0) {
    let excess = inputs.totalBytes - config.retentionBytes;
    while (bySize < sealed && excess - segments[bySize].size >= 0) {
      excess -= segments[bySize].size;
      bySize++;
    }
  }
  let byCount = 0;
  if (config.retentionMessages >= 0) {
    const limit = BigInt(config.retentionMessages);
    while (byCount < sealed && inputs.logEndOffset - segments[byCount + 1].baseOffset >= limit) byCount++;
  }
  let belowStart = 0;
  while (belowStart < sealed && segments[belowStart + 1].baseOffset <= inputs.logStartOffset) belowStart++;
  return Math.max(byTime, bySize, byCount, belowStart);
}
