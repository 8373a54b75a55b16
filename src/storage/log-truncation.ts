// The file work of truncating a partition log, in the order that keeps a crash safe: segments go
// from the newest down with a directory fsync after each, so a crash leaves a prefix of the log,
// never a hole. truncateTo cuts the log at a batch boundary (a follower's divergence point);
// truncateFullyAndStartAt empties it and restarts it at any offset (a follower that fell below
// its leader's log start).
//
// Called by FilePartitionLog (partition-log.ts) in its queue; errors pass unchanged (the caller
// takes the log dir offline). It owns no state: the caller switches its in-memory log.
import type { Clock } from '../util/clock.js';
import { KavkaError } from '../util/errors.js';
import type { TopicPartition } from './api.js';
import { writeLeaderEpochCheckpoint } from './leader-epoch-checkpoint.js';
import { writeLogStartOffset } from './log-start-offset-checkpoint.js';
import { deleteAllProducerSnapshots } from './producer-state-snapshot.js';
import { LogSegment } from './segment.js';
import type { StorageFs } from './storage-fs.js';

/** Unlinks the segments' files from the newest down, with a directory fsync after each: a crash leaves a prefix of the log. */
export async function deleteSegmentsNewestFirst(fs: StorageFs, directory: string, segments: readonly LogSegment[]): Promise<void> {
  for (const doomed of [...segments].reverse()) {
    await doomed.unlinkFiles(fs);
    await fs.syncDirectory(directory);
  }
}

export interface RestartLogDirectoryOptions {
  fs: StorageFs;
  directory: string;
  topicPartition: TopicPartition;
  /** The log's segments, all of which are deleted (their descriptors stay open for the caller to release). */
  segments: readonly LogSegment[];
  /** Where the log starts again. */
  offset: bigint;
  clock: Clock;
}

/**
 * The files of truncateFullyAndStartAt: clear the epoch checkpoint and the producer-state
 * snapshots, delete every segment from the newest down, write the log start checkpoint, create
 * the new segment at `offset` and fsync the directory. Returns the new, empty segment.
 */
export async function restartLogDirectory(options: RestartLogDirectoryOptions): Promise<LogSegment> {
  const { fs, directory, offset } = options;
  await writeLeaderEpochCheckpoint(fs, directory, []);
  // Before the segments: a crash in between leaves a prefix of the old log and no snapshot, which replays.
  await deleteAllProducerSnapshots(fs, directory);
  await deleteSegmentsNewestFirst(fs, directory, options.segments);
  await writeLogStartOffset(fs, directory, options.topicPartition, offset);
  const next = await LogSegment.create(fs, directory, offset, options.clock.nowMs());
  await fs.syncDirectory(directory);
  return next;
}

/** What an append waiting for durability gets when a truncation removed its records first. */
export function truncatedError(name: string, end: bigint): KavkaError {
  return new KavkaError('NOT_LEADER_OR_FOLLOWER', `${name}: the log was truncated to ${end} before these records became durable`);
}
