// Where a follower's append may go and which leader epochs it starts, decided in the log's queue
// before its one write (the batch-level checks ran before: validateBatchesForFollowerAppend). The
// first batch starts at the log end, or past it only while the log is empty; its leader epoch is
// not below the log's latest; each batch carrying a newer epoch than the one before starts that
// epoch at its base offset. A follower whose log diverged from its leader's is never mended here:
// it truncates to the divergence point first (PartitionLog.truncateTo, at the end offset the
// leader's endOffsetForEpoch gives), and a refused append says so.
//
// Pure: FilePartitionLog.appendAsFollower (partition-log.ts) plans with it in its queue.
import { lastOffsetOf, type BatchHeader } from '../codec/record-batch.js';
import { KavkaError } from '../util/errors.js';
import type { EpochEntry } from './leader-epoch-cache.js';
import { INT32_MAX } from './log-config.js';
import type { BatchLocation } from './segment.js';

/** The log a follower's append is placed against, in the queue. */
export interface FollowerAppendTarget {
  logStartOffset: bigint;
  logEndOffset: bigint;
  /** The active segment's base offset. */
  activeBaseOffset: bigint;
  latestEpoch: number | undefined;
}

/** What a follower's append writes: its batches' offsets and timestamps as they are, and the epochs they start. */
export interface FollowerAppendPlan {
  baseOffset: bigint;
  lastOffsets: bigint[];
  maxTimestamps: bigint[];
  epochStarts: EpochEntry[];
}

/** Checks where the batches go and their first epoch (see below); throws the KavkaError the follower gets. */
export function planFollowerAppend(name: string, located: readonly BatchLocation[], target: FollowerAppendTarget): FollowerAppendPlan {
  const first = located[0].header;
  const lastOffsets = located.map((batch) => lastOffsetOf(batch.header));
  checkFollowerPosition(name, first.baseOffset, lastOffsets[lastOffsets.length - 1], target);
  checkFollowerEpoch(name, first, target.latestEpoch);
  const maxTimestamps = located.map((batch) => batch.header.maxTimestamp);
  return { baseOffset: first.baseOffset, lastOffsets, maxTimestamps, epochStarts: followerEpochStarts(located, target.latestEpoch) };
}

/**
 * Throws OFFSET_OUT_OF_RANGE unless a follower's first batch starts at the log end, or past it
 * while the log is empty (see PartitionLog.appendAsFollower) and the batches up to `lastOffset`
 * fit the empty active segment's offset range.
 */
function checkFollowerPosition(name: string, baseOffset: bigint, lastOffset: bigint, target: FollowerAppendTarget): void {
  const { logEndOffset: logEnd, activeBaseOffset } = target;
  if (baseOffset === logEnd) return;
  const empty = target.logStartOffset === logEnd;
  // An empty log never rolls, so the batches must fit its active segment's offset range.
  if (baseOffset > logEnd && empty && lastOffset - activeBaseOffset <= BigInt(INT32_MAX)) return;
  let why: string;
  if (baseOffset < logEnd) why = 'it overlaps records this log holds: truncate to the divergence point first';
  else if (!empty) why = `that leaves a gap after the log end (only an empty log, e.g. after truncateFullyAndStartAt, may start later)`;
  else why = `that is too far past the empty active segment's base offset ${activeBaseOffset}: use truncateFullyAndStartAt(${baseOffset})`;
  throw new KavkaError('OFFSET_OUT_OF_RANGE', `${name}: the follower append starts at offset ${baseOffset} but the log end offset is ${logEnd}; ${why}`);
}

/** Throws FENCED_LEADER_EPOCH when the first batch's leader epoch is below the log's latest. */
function checkFollowerEpoch(name: string, first: BatchHeader, latestEpoch: number | undefined): void {
  if (latestEpoch !== undefined && first.partitionLeaderEpoch < latestEpoch) {
    throw new KavkaError(
      'FENCED_LEADER_EPOCH',
      `${name}: the follower append at offset ${first.baseOffset} carries leader epoch ${first.partitionLeaderEpoch}, below this log's latest epoch ${latestEpoch}; truncate to the divergence point first`,
    );
  }
}

/** The leader epochs the batches start, in order: each batch whose epoch (>= 0) is above the latest so far. */
function followerEpochStarts(located: readonly BatchLocation[], latestEpoch: number | undefined): EpochEntry[] {
  const starts: EpochEntry[] = [];
  let latest = latestEpoch;
  for (const { header } of located) {
    if (header.partitionLeaderEpoch >= 0 && (latest === undefined || header.partitionLeaderEpoch > latest)) {
      starts.push({ epoch: header.partitionLeaderEpoch, startOffset: header.baseOffset });
      latest = header.partitionLeaderEpoch;
    }
  }
  return starts;
}
