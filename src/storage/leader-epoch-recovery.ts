// Loads a partition's leader epoch cache when its log opens, after the segments are recovered
// (log-loader.ts), and makes it agree with the log:
// - The checkpoint may hold entries at or past the log end: the log writes it before the batch
//   that starts an epoch, and a crash (or a torn tail cut by recovery) can lose that batch. They
//   are dropped (Kafka's truncateFromEnd on load), and so are entries wholly below the log start
//   (truncateFromStart: the last one below stays, moved up to the log start).
// - A missing checkpoint (a log written before Kavka kept epochs, or a deleted file), a damaged
//   one, or one that disagrees with the last batch of the log (its epoch is above the latest
//   entry, or the latest entry starts inside it) is rebuilt by walking every batch header: each
//   batch whose epoch is above the latest so far starts an entry (Kafka's segment recovery rule;
//   batches without an epoch, -1, are skipped).
// Whatever changed is written back before the log opens, and logged.
import { lastOffsetOf, type BatchHeader } from '../codec/record-batch.js';
import type { Logger } from '../util/logger.js';
import { LeaderEpochCache, type EpochEntry } from './leader-epoch-cache.js';
import { readLeaderEpochCheckpoint, writeLeaderEpochCheckpoint } from './leader-epoch-checkpoint.js';
import type { LogSegment } from './segment.js';
import type { StorageFs } from './storage-fs.js';

export interface RecoverLeaderEpochsOptions {
  fs: StorageFs;
  directory: string;
  /** Recovered, ascending; the last is the active segment. */
  segments: readonly LogSegment[];
  logStartOffset: bigint;
  logEndOffset: bigint;
  /** The header of the log's last batch when the loader has just read it (saves reading it again). */
  lastBatch: BatchHeader | undefined;
  logger: Logger;
}

export interface RecoveredLeaderEpochs {
  cache: LeaderEpochCache;
  /** The checkpoint was missing, damaged or inconsistent, and was rebuilt from batch headers. */
  rebuilt: boolean;
  /** Entries of a usable checkpoint dropped because they start at or past the log end. */
  entriesDropped: number;
}

export async function recoverLeaderEpochs(options: RecoverLeaderEpochsOptions): Promise<RecoveredLeaderEpochs> {
  const { fs, directory, logger, logStartOffset, logEndOffset } = options;
  const read = await readLeaderEpochCheckpoint(fs, directory);
  let reason: string;
  if (read.kind === 'read') {
    const cache = new LeaderEpochCache(read.entries);
    const dropped = cache.truncateFromEnd(logEndOffset);
    const movedStart = cache.truncateFromStart(logStartOffset);
    const problem = await inconsistency(cache, options);
    if (problem === undefined) {
      if (dropped.length > 0 || movedStart) {
        logger.info(
          { droppedEntries: dropped.map(describe), entries: cache.entries().map(describe), logStartOffset: logStartOffset.toString(), logEndOffset: logEndOffset.toString() },
          `leader epoch checkpoint: dropped ${dropped.length} entries at or past the log end${movedStart ? ' and moved the first entry up to the log start' : ''}`,
        );
        await writeLeaderEpochCheckpoint(fs, directory, cache.entries());
      }
      return { cache, rebuilt: false, entriesDropped: dropped.length };
    }
    reason = `it disagrees with the log: ${problem}`;
  } else if (read.kind === 'damaged') {
    reason = `it is damaged: ${read.reason}`;
  } else {
    if (logEndOffset === logStartOffset && options.segments.every((segment) => segment.size === 0)) return { cache: new LeaderEpochCache(), rebuilt: false, entriesDropped: 0 };
    reason = 'it is missing';
  }
  const { cache, batches } = await rebuild(options);
  logger.warn(
    { reason, batchesScanned: batches, entries: cache.entries().map(describe) },
    `leader epoch checkpoint rebuilt from ${batches} batch headers because ${reason}`,
  );
  await writeLeaderEpochCheckpoint(fs, directory, cache.entries());
  return { cache, rebuilt: true, entriesDropped: 0 };
}

function describe(entry: EpochEntry): string {
  return `${entry.epoch}@${entry.startOffset}`;
}

/** Why the trimmed cache cannot describe the log's last batch, or undefined when it can. */
async function inconsistency(cache: LeaderEpochCache, options: RecoverLeaderEpochsOptions): Promise<string | undefined> {
  if (options.logEndOffset === options.logStartOffset) return undefined;
  const last = options.lastBatch ?? (await lastBatchHeader(options.segments));
  if (last === undefined) return undefined;
  const latest = cache.latestEntry();
  const epoch = last.partitionLeaderEpoch;
  if (epoch >= 0 && (latest === undefined || latest.epoch < epoch)) {
    return `the last batch (offsets ${last.baseOffset}-${lastOffsetOf(last)}) has epoch ${epoch}, above the latest entry's ${latest === undefined ? 'none' : latest.epoch}`;
  }
  if (latest !== undefined && latest.startOffset > last.baseOffset) {
    return `the latest entry (epoch ${latest.epoch}) starts at ${latest.startOffset}, inside the last batch (offsets ${last.baseOffset}-${lastOffsetOf(last)})`;
  }
  return undefined;
}

/** The header of the log's last batch, walking from the last offset-index entry of the last non-empty segment. */
async function lastBatchHeader(segments: readonly LogSegment[]): Promise<BatchHeader | undefined> {
  for (let i = segments.length - 1; i >= 0; i--) {
    const segment = segments[i];
    if (segment.size === 0) continue;
    let last: BatchHeader | undefined;
    await segment.findBatch(segment.offsetIndex.lastEntry()?.position ?? 0, segment.size, (header) => {
      last = header;
      return false;
    });
    return last;
  }
  return undefined;
}

async function rebuild(options: RecoverLeaderEpochsOptions): Promise<{ cache: LeaderEpochCache; batches: number }> {
  const cache = new LeaderEpochCache();
  let batches = 0;
  for (const segment of options.segments) {
    await segment.findBatch(0, segment.size, (header) => {
      batches += 1;
      const latest = cache.latestEpoch();
      if (header.partitionLeaderEpoch >= 0 && (latest === undefined || header.partitionLeaderEpoch > latest)) cache.assign(header.partitionLeaderEpoch, header.baseOffset);
      return false;
    });
  }
  cache.truncateFromStart(options.logStartOffset);
  return { cache, batches };
}
