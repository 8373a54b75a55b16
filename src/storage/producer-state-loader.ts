// Rebuilding a partition's producer state (open and truncateTo): the newest valid snapshot at or
// below the log end, then the batch headers of the log after it.
import type { Logger } from '../util/logger.js';
import { replayBatchOf, type ProducerStateManager, type ProducerStateOptions, type ReplayBatch } from './producer-state.js';
import { loadProducerState } from './producer-state-snapshot.js';
import { segmentIndexFor, type LogSegment } from './segment.js';
import type { StorageFs } from './storage-fs.js';

export interface LoadProducersOptions {
  fs: StorageFs;
  directory: string;
  /** The log's segments as they are now (after recovery, or after a truncation's cut). */
  segments: readonly LogSegment[];
  logStartOffset: bigint;
  logEndOffset: bigint;
  nowMs: number;
  expirationMs: number;
  options: ProducerStateOptions;
  logger: Logger;
}

export interface LoadedProducers {
  manager: ProducerStateManager;
  /** Log fields: where the state came from. */
  report: { producers: number; producerSnapshotOffset: string | null; producerBatchesReplayed: number; producersExpired: number };
}

/**
 * The producer state of [logStartOffset, logEndOffset), for open and truncateTo: the newest valid
 * snapshot at or below the log end plus the batch headers after it (loadProducerState, which also
 * deletes snapshots above the log end, durably), then producers already expired dropped (as
 * Kafka drops them when it loads a snapshot). Unreadable snapshots are logged and skipped.
 */
export async function loadProducers(options: LoadProducersOptions): Promise<LoadedProducers> {
  const { logger, nowMs } = options;
  const loaded = await loadProducerState({
    fs: options.fs,
    directory: options.directory,
    logStartOffset: options.logStartOffset,
    logEndOffset: options.logEndOffset,
    readBatches: (fromOffset) => replayBatches(options.segments, fromOffset, nowMs),
    producerState: options.options,
  });
  for (const skipped of loaded.skipped) {
    logger.warn({ file: skipped.path, snapshotOffset: skipped.endOffset.toString(), reason: skipped.problem }, 'skipping an unreadable producer-state snapshot; using an older one or the log');
  }
  if (loaded.deletedAbove.length > 0) {
    logger.info({ snapshotOffsets: loaded.deletedAbove.map(String), logEndOffset: options.logEndOffset.toString() }, 'deleted producer-state snapshots above the log end');
  }
  const expired = loaded.manager.removeExpired(nowMs, options.expirationMs);
  return {
    manager: loaded.manager,
    report: {
      producers: loaded.manager.producerCount,
      producerSnapshotOffset: loaded.snapshotOffset?.toString() ?? null,
      producerBatchesReplayed: loaded.replayed,
      producersExpired: expired.length,
    },
  };
}

/** The log's batches from the one holding `fromOffset` on, as replay items (headers only). */
async function* replayBatches(segments: readonly LogSegment[], fromOffset: bigint, nowMs: number): AsyncGenerator<ReplayBatch> {
  const first = segmentIndexFor(segments, fromOffset);
  for (let i = first; i < segments.length; i++) {
    const segment = segments[i];
    const start = i === first ? segment.offsetIndex.lookup(fromOffset).position : 0;
    for await (const batch of segment.batchHeaders(start, segment.size)) yield replayBatchOf(batch.header, nowMs);
  }
}
