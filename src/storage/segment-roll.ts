// When a partition log rolls its active segment (DESIGN.md section 2): at segment.bytes or
// segment.ms, and before a segment's relative offsets or positions would leave the int32 range
// its indexes store. An empty segment never rolls. And how a segment is sealed, before the next
// one is created and at a clean close: once sealed it is durable, .log and indexes.
//
// Called by FilePartitionLog (partition-log.ts) in its queue, before an append's write and when
// it applies retention; it creates the next segment itself. The policy is pure; sealSegment's
// I/O errors pass unchanged (the caller takes the log dir offline).
import type { LogConfig } from './api.js';
import { INT32_MAX } from './log-config.js';
import type { LogSegment } from './segment.js';
import type { StorageFs } from './storage-fs.js';

/** Whether an append of `appendBytes` bytes ending at `lastOffset` goes to a new segment. */
export function shouldRoll(active: LogSegment, appendBytes: number, lastOffset: bigint, nowMs: number, config: LogConfig): boolean {
  if (active.size === 0) return false; // never roll an empty segment
  if (active.size > config.segmentBytes - appendBytes) return true;
  if (segmentMsElapsed(active, nowMs, config)) return true;
  if (lastOffset - active.baseOffset > BigInt(INT32_MAX)) return true;
  return active.size > INT32_MAX - appendBytes;
}

/** Whether retention rolls the active segment first: it holds data and segment.ms has passed since its rollBaseMs. */
export function shouldRollForTime(active: LogSegment, nowMs: number, config: LogConfig): boolean {
  return active.size > 0 && segmentMsElapsed(active, nowMs, config);
}

function segmentMsElapsed(active: LogSegment, nowMs: number, config: LogConfig): boolean {
  return active.rollBaseMs !== undefined && nowMs - active.rollBaseMs > config.segmentMs;
}

/**
 * Seals `segment`: fdatasync of its .log (then `onSynced`: every byte written so far is durable),
 * its final time-index entry, and its index files written and synced.
 */
export async function sealSegment(fs: StorageFs, segment: LogSegment, onSynced: () => void): Promise<void> {
  await segment.file.datasync();
  onSynced();
  segment.sealTimeIndex();
  await segment.writeIndexFiles(fs);
}
