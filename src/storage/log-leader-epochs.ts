// A partition log's leader epochs as the log keeps them: the cache (leader-epoch-cache.ts) and its
// `leader-epoch-checkpoint` file (leader-epoch-checkpoint.ts), and the fences an append or a new
// epoch must pass. The log decides when the file is written (after each change: before the batch
// that starts a new epoch, after the bytes a truncation removes are gone); recordStarts writes it
// at once, the truncations leave it to the caller's persist().
//
// Called by FilePartitionLog (partition-log.ts): changes only inside its queue; the queries
// (latestEpoch, endOffsetFor, epochForOffset, entries) at any time. I/O errors pass unchanged:
// the caller takes the log dir offline.
import { KavkaError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { EpochEndOffset } from './api.js';
import type { EpochEntry, LeaderEpochCache } from './leader-epoch-cache.js';
import { writeLeaderEpochCheckpoint } from './leader-epoch-checkpoint.js';
import type { StorageFs } from './storage-fs.js';

export interface LogLeaderEpochsOptions {
  fs: StorageFs;
  /** The partition's directory, where the checkpoint is. */
  directory: string;
  /** The partition's name, for errors. */
  name: string;
  logger: Logger;
}

export class LogLeaderEpochs {
  constructor(
    private readonly cache: LeaderEpochCache,
    private readonly options: LogLeaderEpochsOptions,
  ) {}

  latestEpoch(): number | undefined {
    return this.cache.latestEpoch();
  }

  endOffsetFor(epoch: number, logEndOffset: bigint): EpochEndOffset {
    return this.cache.endOffsetFor(epoch, logEndOffset);
  }

  epochForOffset(offset: bigint): number | undefined {
    return this.cache.epochForOffset(offset);
  }

  /** A copy of the entries, oldest first. */
  entries(): EpochEntry[] {
    return this.cache.entries();
  }

  /** Throws FENCED_LEADER_EPOCH when a leader of `leaderEpoch` appends to a log that holds a later epoch; returns the latest epoch. */
  checkLeaderAppend(leaderEpoch: number): number | undefined {
    const latestEpoch = this.cache.latestEpoch();
    if (latestEpoch !== undefined && leaderEpoch < latestEpoch) {
      throw new KavkaError('FENCED_LEADER_EPOCH', `${this.options.name}: an append as leader of epoch ${leaderEpoch}, but the log already holds epoch ${latestEpoch}`);
    }
    return latestEpoch;
  }

  /** Whether assignEpochStartOffset(leaderEpoch) starts an epoch: not when it is the latest; FENCED_LEADER_EPOCH below it. */
  startsNewEpoch(leaderEpoch: number): boolean {
    const latest = this.cache.latestEpoch();
    if (latest === leaderEpoch) return false;
    if (latest !== undefined && leaderEpoch < latest) {
      throw new KavkaError('FENCED_LEADER_EPOCH', `${this.options.name}: cannot start leader epoch ${leaderEpoch}, the log already holds epoch ${latest}`);
    }
    return true;
  }

  /** Before the batches starting them are written: adds the entries (logging each) and writes the checkpoint. */
  async recordStarts(starts: readonly EpochEntry[]): Promise<void> {
    for (const { epoch, startOffset } of starts) {
      const replaced = this.cache.assign(epoch, startOffset);
      const fields = { epoch, startOffset: startOffset.toString(), replacedEpoch: replaced?.epoch ?? null };
      this.options.logger.info(fields, replaced === undefined ? 'new leader epoch' : 'new leader epoch, replacing one that wrote no record');
    }
    await this.persist();
  }

  /** Writes the checkpoint as the cache is now. */
  async persist(): Promise<void> {
    await writeLeaderEpochCheckpoint(this.options.fs, this.options.directory, this.cache.entries());
  }

  /** Drops the entries starting at or after endOffset (the caller persists them); returns them. */
  truncateFromEnd(endOffset: bigint): EpochEntry[] {
    return this.cache.truncateFromEnd(endOffset);
  }

  /** The log start moved up (retention); returns whether the entries changed (the caller persists them). */
  truncateFromStart(startOffset: bigint): boolean {
    return this.cache.truncateFromStart(startOffset);
  }

  /** The log restarted empty (truncateFullyAndStartAt, which cleared the checkpoint). */
  clear(): void {
    this.cache.clear();
  }
}
