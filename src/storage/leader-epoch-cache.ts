// A partition's leader epoch cache (Kafka's LeaderEpochFileCache, KIP-101 / KIP-279): for each
// leader epoch that wrote to this log, the offset of the first batch it wrote. A replica that
// may have diverged asks the leader for the end offset of its latest epoch and truncates there.
//
// Invariants (asserted):
// - Epochs strictly increase from entry to entry, and so do start offsets. An epoch whose
//   successor would start at the same offset wrote no record; the successor replaces it (Kafka
//   drops it the same way in assign()).
// - Every epoch is >= 0: batches carrying NO_PARTITION_LEADER_EPOCH (-1) are never recorded.
//
// Pure and synchronous: the PartitionLog owns one, changes it inside its append queue and writes
// `leader-epoch-checkpoint` (leader-epoch-checkpoint.ts) after each change; reads (latestEpoch,
// endOffsetFor, epochForOffset) may run at any time.
import { assert } from '../util/assert.js';
import { UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET, type EpochEndOffset } from './api.js';
import { INT32_MAX } from './log-config.js';

export interface EpochEntry {
  readonly epoch: number;
  readonly startOffset: bigint;
}

/** Why `entries` cannot form a cache (order, range), or undefined when they can. */
export function epochEntriesProblem(entries: readonly EpochEntry[]): string | undefined {
  for (let i = 0; i < entries.length; i++) {
    const { epoch, startOffset } = entries[i];
    if (!Number.isInteger(epoch) || epoch < 0 || epoch > INT32_MAX) return `entry ${i} has epoch ${epoch}, not an int32 >= 0`;
    if (startOffset < 0n) return `entry ${i} has start offset ${startOffset} < 0`;
    if (i === 0) continue;
    const previous = entries[i - 1];
    if (epoch <= previous.epoch) return `entry ${i} has epoch ${epoch} after epoch ${previous.epoch}`;
    if (startOffset <= previous.startOffset) return `entry ${i} (epoch ${epoch}) starts at ${startOffset}, not after ${previous.startOffset}`;
  }
  return undefined;
}

export class LeaderEpochCache {
  private list: EpochEntry[];

  constructor(entries: readonly EpochEntry[] = []) {
    const problem = epochEntriesProblem(entries);
    assert(problem === undefined, `leader epoch entries are ordered: ${problem}`);
    this.list = entries.map((entry) => ({ epoch: entry.epoch, startOffset: entry.startOffset }));
  }

  /** A copy of the entries, oldest first. */
  entries(): EpochEntry[] {
    return this.list.map((entry) => ({ ...entry }));
  }

  get size(): number {
    return this.list.length;
  }

  latestEntry(): EpochEntry | undefined {
    return this.list[this.list.length - 1];
  }

  latestEpoch(): number | undefined {
    return this.latestEntry()?.epoch;
  }

  /**
   * Records that `epoch` starts at `startOffset`. The caller checks first that epoch is above the
   * latest epoch and startOffset not below the latest start (a follower batch with an older epoch
   * is bad input, rejected before this). An entry whose start equals startOffset is replaced:
   * it wrote nothing. Returns the replaced entry, if any.
   */
  assign(epoch: number, startOffset: bigint): EpochEntry | undefined {
    assert(Number.isInteger(epoch) && epoch >= 0 && epoch <= INT32_MAX, `leader epoch ${epoch} is an int32 >= 0`);
    assert(startOffset >= 0n, `epoch start offset ${startOffset} >= 0`);
    const latest = this.latestEntry();
    let replaced: EpochEntry | undefined;
    if (latest !== undefined) {
      assert(epoch > latest.epoch, `epoch ${epoch} is above the latest epoch ${latest.epoch}`);
      assert(startOffset >= latest.startOffset, `epoch ${epoch} starts at ${startOffset}, not below epoch ${latest.epoch}'s start ${latest.startOffset}`);
      if (startOffset === latest.startOffset) replaced = this.list.pop();
    }
    this.list.push({ epoch, startOffset });
    return replaced;
  }

  /**
   * Kafka's endOffsetFor (OffsetsForLeaderEpoch); see PartitionLog.endOffsetForEpoch for the
   * rules and a worked table.
   */
  endOffsetFor(requestedEpoch: number, logEndOffset: bigint): EpochEndOffset {
    const undefinedAnswer: EpochEndOffset = { epoch: UNDEFINED_EPOCH, endOffset: UNDEFINED_EPOCH_OFFSET };
    if (requestedEpoch === UNDEFINED_EPOCH) return undefinedAnswer;
    const latest = this.latestEntry();
    if (latest !== undefined && latest.epoch === requestedEpoch) return { epoch: requestedEpoch, endOffset: logEndOffset };
    const higher = this.list.findIndex((entry) => entry.epoch > requestedEpoch);
    if (higher < 0) return undefinedAnswer; // above every epoch (or no entry at all)
    const endOffset = this.list[higher].startOffset;
    // Below the first entry (its history was deleted): the requested epoch, ending where the first known epoch starts.
    if (higher === 0) return { epoch: requestedEpoch, endOffset };
    return { epoch: this.list[higher - 1].epoch, endOffset };
  }

  /** The epoch of the last entry starting at or below `offset` (Kafka's epochForOffset); undefined when none does. */
  epochForOffset(offset: bigint): number | undefined {
    let found: number | undefined;
    for (const entry of this.list) {
      if (entry.startOffset > offset) break;
      found = entry.epoch;
    }
    return found;
  }

  /**
   * Drops the entries starting at or after `endOffset` (truncation of the log end, or entries of a
   * checkpoint written before a write the crash lost). Returns the entries dropped.
   */
  truncateFromEnd(endOffset: bigint): EpochEntry[] {
    let keep = this.list.length;
    while (keep > 0 && this.list[keep - 1].startOffset >= endOffset) keep--;
    return this.list.splice(keep);
  }

  /**
   * The log start moved up to `startOffset` (retention): entries starting at or below it are
   * dropped, except that the last of them stays, moved up to start at `startOffset`, because it
   * covers the records from there (Kafka's truncateFromStart). Returns whether anything changed.
   */
  truncateFromStart(startOffset: bigint): boolean {
    let removed = 0;
    while (removed < this.list.length && this.list[removed].startOffset <= startOffset) removed++;
    if (removed === 0) return false;
    const covering = this.list[removed - 1];
    if (removed === 1 && covering.startOffset === startOffset) return false;
    this.list.splice(0, removed, { epoch: covering.epoch, startOffset });
    return true;
  }

  clear(): void {
    this.list = [];
  }
}
