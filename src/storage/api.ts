// The storage layer's contract with the layers above (server adapters today, the replica
// manager later). Storage knows nothing of gRPC, topics' metadata or replication: it keeps
// partition logs of RecordBatch v2 bytes on disk, durably, and answers reads.
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { StorageFs } from './storage-fs.js';

export interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
}

/** `<topic>-<partition>`, the partition's directory name and its log binding. */
export function topicPartitionName(tp: TopicPartition): string {
  return `${tp.topic}-${tp.partition}`;
}

export type FlushPolicy = 'batch' | 'os';
export type MessageTimestampType = 'CreateTime' | 'LogAppendTime';

/** A partition log's effective configuration (topic overrides already merged over broker defaults). */
export interface LogConfig {
  /** Roll the active segment when it would grow past this (log.segment.bytes / segment.bytes). */
  segmentBytes: number;
  /** Roll the active segment when its first batch is this old (log.roll.ms / segment.ms). */
  segmentMs: number;
  /** Delete sealed segments whose newest record is older than this; -1 = keep forever. */
  retentionMs: number;
  /** Delete oldest sealed segments while the log is larger than this; -1 = no limit. */
  retentionBytes: number;
  /** Delete oldest sealed segments while the log holds more records than this; -1 = no limit. */
  retentionMessages: number;
  /** Largest batch accepted (max.message.bytes); larger gives MESSAGE_TOO_LARGE. */
  maxMessageBytes: number;
  /** Bytes between sparse index entries (index.interval.bytes). */
  indexIntervalBytes: number;
  /** batch: fsync (group commit) before an append resolves; os: leave it to the page cache. */
  flushPolicy: FlushPolicy;
  messageTimestampType: MessageTimestampType;
  /**
   * Drop an idempotent producer's state when its newest batch is this old (producer.id.expiration.ms,
   * a broker-wide key; Kafka's default 86400000, one day); its next batch then gets UNKNOWN_PRODUCER_ID
   * unless it starts over at sequence 0. Applied by removeExpiredProducers and when the state is loaded.
   */
  producerIdExpirationMs: number;
}

export interface AppendResult {
  baseOffset: bigint;
  lastOffset: bigint;
  /** The broker's append time when the topic uses LogAppendTime, else -1n. */
  logAppendTimeMs: bigint;
  logStartOffset: bigint;
  /** Records and bytes this call wrote: 0 for a duplicate. */
  recordCount: number;
  sizeBytes: number;
  /**
   * True when appendAsLeader recognized the batch as a retry of one of its producer's last 5
   * batches: nothing was written, and baseOffset/lastOffset are the ORIGINAL batch's offsets
   * (logAppendTimeMs, for a LogAppendTime topic, the time this replica recorded the original).
   * Always false for appendAsFollower.
   */
  duplicate: boolean;
}

export interface ReadResult {
  /** Whole batches back to back; may be empty. The first batch may start below the fetch offset. */
  batches: Buffer;
  /** The offset to fetch next: one past the last offset of the last batch returned, or the fetch offset when empty. */
  nextOffset: bigint;
  logStartOffset: bigint;
  logEndOffset: bigint;
}

export interface ReadOptions {
  /** Only batches whose last offset is below this (the high watermark for consumers). */
  maxOffset: bigint;
  /** Return the first batch even if it is larger than maxBytes (KIP-74). */
  minOneBatch: boolean;
}

export interface TimestampOffset {
  offset: bigint;
  timestamp: bigint;
}

/** Kafka's OffsetsForLeaderEpochResponse.UNDEFINED_EPOCH: no epoch known (or none asked for). */
export const UNDEFINED_EPOCH = -1;
/** Kafka's OffsetsForLeaderEpochResponse.UNDEFINED_EPOCH_OFFSET: no end offset known. */
export const UNDEFINED_EPOCH_OFFSET = -1n;

/** An answer of endOffsetForEpoch: {UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET} when there is none. */
export interface EpochEndOffset {
  epoch: number;
  endOffset: bigint;
}

/**
 * One partition's log. Appends are serialized inside (callers may overlap calls); reads run
 * concurrently with appends and never block them.
 * Invariant: logStartOffset <= durableEndOffset <= logEndOffset.
 */
export interface PartitionLog {
  readonly topicPartition: TopicPartition;
  readonly directory: string;
  /** First offset still readable. Moves up only (retention, deleteRecords), except that truncateFullyAndStartAt sets it anywhere. */
  readonly logStartOffset: bigint;
  /** The next offset to assign. Moves up on append; down only by truncation (recovery, truncateTo) and may jump either way by truncateFullyAndStartAt. */
  readonly logEndOffset: bigint;
  /** Every offset below this has been fsynced (equals logEndOffset once the OS policy has written it). */
  readonly durableEndOffset: bigint;
  readonly sizeBytes: number;
  readonly segmentCount: number;
  readonly config: LogConfig;
  /**
   * Set when recovery repaired a corrupt batch of fsynced data by truncating the log (to this
   * offset; log-loader.ts): the log may lack records its leader acknowledged, so this replica
   * must not lead until it has re-fetched them. Kept on disk (refetch-marker.ts) until
   * clearRefetchRequired().
   */
  readonly refetchRequired: bigint | undefined;

  /** The replica caught up from a leader after a repair: removes the marker, durably. */
  clearRefetchRequired(): Promise<void>;

  updateConfig(config: LogConfig): void;

  /**
   * Validates the batches (framing, magic, CRC-32C, size against maxMessageBytes, record count,
   * and each record against its header: framing, count == recordsCount, offset deltas 0..n-1,
   * timestamps -1 or int64 >= 0; gzip bodies decompressed for the check), assigns offsets from
   * logEndOffset, stamps partitionLeaderEpoch, appends. One bad batch rejects the whole call and
   * nothing is written. Resolves once the flush policy is met (batch: after an fsync covering
   * these bytes; group commit shares one fsync among appends that overlap). Rejects with
   * KavkaError: CORRUPT_MESSAGE, MESSAGE_TOO_LARGE, INVALID_RECORD, INVALID_TIMESTAMP,
   * RECORD_LIST_TOO_LARGE, UNSUPPORTED_COMPRESSION_TYPE, KAFKA_STORAGE_ERROR (the log dir went offline).
   *
   * Idempotent producers (producer-state.ts; DESIGN.md section 4): after validation and before
   * offsets are assigned, the producer fields of the batches (producerId >= 0) are checked against
   * the partition's producer state; a failure rejects the call with nothing written:
   * OUT_OF_ORDER_SEQUENCE_NUMBER (a gap, or a retry older than the producer's last 5 batches),
   * INVALID_PRODUCER_EPOCH (a fenced epoch), UNKNOWN_PRODUCER_ID (no state for the producer, i.e.
   * it expired, and a first sequence other than 0), DUPLICATE_SEQUENCE_NUMBER (a retry inside an
   * append of several batches), INVALID_RECORD (a transactional batch). A call of one batch that
   * repeats one of its producer's last 5 batches exactly writes nothing and resolves with the
   * original offsets and `duplicate: true`, once those offsets are durable under the flush policy.
   */
  appendAsLeader(batches: Buffer, leaderEpoch: number): Promise<AppendResult>;
  // appendAsLeader also keeps the leader epoch cache: the first append of an epoch above the
  // latest one records (leaderEpoch, its base offset). A leaderEpoch below latestEpoch() (a
  // deposed leader's append) rejects with FENCED_LEADER_EPOCH and writes nothing; -1 is accepted
  // only while the cache is empty and is never recorded.

  /**
   * Appends batches a follower fetched from its leader, byte for byte: offsets and
   * partitionLeaderEpoch are the leader's, nothing is stamped (LogAppendTime batches keep the
   * leader's timestamp; logAppendTimeMs is -1n). Checks framing, magic and the CRC-32C like
   * appendAsLeader (same errors: CORRUPT_MESSAGE, INVALID_RECORD for an empty call,
   * RECORD_LIST_TOO_LARGE past an int32), but not the producer-only rules (max.message.bytes,
   * record offset deltas 0..n-1, control batches): the leader already accepted these bytes.
   * Then, with nothing written when one fails:
   * - OFFSET_OUT_OF_RANGE (naming both offsets) unless the first batch's baseOffset equals
   *   logEndOffset. A larger baseOffset (a gap) is allowed only while the log is empty
   *   (logStartOffset == logEndOffset, e.g. just after truncateFullyAndStartAt); the gap then
   *   reads like a compaction gap. A smaller one (an overlap) is never allowed: truncate first.
   * - INVALID_RECORD when the batches of the call overlap or go backwards in offsets.
   * - FENCED_LEADER_EPOCH when a batch's partitionLeaderEpoch is below the previous batch's or
   *   below latestEpoch(): this replica holds records of a later epoch than the leader is
   *   sending, so it has not truncated to the divergence point yet.
   * Each batch whose epoch is above the latest records (epoch, its baseOffset) in the epoch cache.
   * Every batch is recorded in the producer state without checks (the leader checked it), so this
   * replica can answer retries and detect gaps as soon as it becomes leader.
   * Rolls segments and resolves like appendAsLeader (flush policy batch: after an fsync covering
   * the bytes, shared by group commit; onAppend listeners fire when they are durable).
   * The caller must not change `batches` until the promise settles.
   */
  appendAsFollower(batches: Buffer): Promise<AppendResult>;

  /** The epoch of the last entry of the leader epoch cache; undefined when it is empty. */
  latestEpoch(): number | undefined;

  /**
   * Kafka's OffsetsForLeaderEpoch answer from this replica's epoch cache (LeaderEpochFileCache
   * .endOffsetFor, KIP-101 with KIP-279): the largest epoch <= `epoch` this log knows, and the
   * offset where it ended here, i.e. the start offset of the first epoch above `epoch`.
   * - epoch == latestEpoch(): {epoch, logEndOffset} (the current epoch ends at the log end).
   * - epoch == UNDEFINED_EPOCH (-1), epoch above every known epoch, or an empty cache:
   *   {UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET}, i.e. {-1, -1n}.
   * - epoch below the first entry (that history was deleted): {epoch, first entry's start}.
   *   This is Kafka's behaviour since KIP-279 (its LeaderEpochFileCacheTest
   *   shouldReturnFirstEpochIfRequestedEpochLessThanFirstEpoch); the older KIP-101 answer was
   *   {-1, -1}, and Kafka's Javadoc still says so.
   * - otherwise: {largest known epoch <= epoch, start offset of the smallest epoch > epoch}.
   *
   * Example: entries (epoch 1 @ 0), (2 @ 10), (4 @ 25), logEndOffset 40:
   *
   *   requested | answer       | why
   *   ----------+--------------+------------------------------------------------
   *          -1 | {-1, -1}     | UNDEFINED_EPOCH asked
   *           0 | {0, 0}       | below the first entry: ends where epoch 1 starts
   *           1 | {1, 10}      | epoch 2 starts at 10
   *           2 | {2, 25}      | epoch 4 starts at 25
   *           3 | {2, 25}      | no epoch 3 here: largest <= 3 is 2, it ended at 25
   *           4 | {4, 40}      | the latest epoch ends at the log end
   *           5 | {-1, -1}     | above every epoch this log knows
   *
   * A follower that asked its leader about its latest epoch E and got {L, end}: if L == E it
   * truncates to min(end, its own log end); if L < E it truncates to its own
   * endOffsetForEpoch(L).endOffset (KIP-279) and may ask again.
   */
  endOffsetForEpoch(epoch: number): EpochEndOffset;

  /**
   * The leader epoch of the batch holding `offset`, from the epoch cache (no I/O): the epoch of
   * the last entry starting at or below offset; undefined below the first entry. For offsets at
   * or past the log end it is the latest epoch. (Fetch responses carry each batch's epoch in its
   * header bytes 12-15 already.)
   */
  epochForOffset(offset: bigint): number | undefined;

  /**
   * Records (leaderEpoch, logEndOffset) in the epoch cache when leaderEpoch is above the latest
   * epoch, durably; a no-op when equal; FENCED_LEADER_EPOCH when below. Call it when this replica
   * becomes leader of `leaderEpoch` (Kafka's Partition.makeLeader), so its OffsetsForLeaderEpoch
   * answers are right before it writes in the new epoch (back-to-back elections, KAFKA-7415).
   * Such an entry covers no record until an append: truncateTo (any offset) drops it again.
   */
  assignEpochStartOffset(leaderEpoch: number): Promise<void>;

  /**
   * Removes every record at or above `offset` (a follower truncating to the divergence point).
   * Batches are removed whole: when offset falls inside a batch (or in a gap before one), the log
   * end becomes the end of the last batch kept below it (or the base offset of the segment left
   * empty), so the new log end is <= offset. Resolves with the new log end offset. Segments above
   * are deleted, the one holding the new end is cut with its indexes, durableEndOffset moves down
   * with logEndOffset, epoch cache entries starting at or after the new end are dropped, and the
   * producer state is rebuilt as of the new end (snapshots above it deleted, the newest one at or
   * below it loaded, the batches after it replayed), so a retry of a removed batch is appended
   * again rather than answered as a duplicate; all of it is durable (fsynced) before the promise resolves. Serialized with appends. Reads that
   * started before see the log as it was (the cut waits for them); reads after see it truncated.
   * Appends still waiting for durability of offsets removed reject with NOT_LEADER_OR_FOLLOWER.
   * offset >= logEndOffset removes nothing (only epoch entries starting at or after the log end).
   * offset < logStartOffset is a caller bug (assertion): use truncateFullyAndStartAt.
   * KAFKA_STORAGE_ERROR (the dir goes offline) on an I/O error.
   */
  truncateTo(offset: bigint): Promise<bigint>;

  /**
   * Deletes every segment and restarts the log empty at `offset`: logStartOffset = logEndOffset =
   * durableEndOffset = offset, epoch cache cleared, producer state emptied (its snapshots
   * deleted), the log-start checkpoint written, all durable
   * before it resolves. For a follower whose log lies wholly below the leader's log start (its
   * fetch got OFFSET_OUT_OF_RANGE). Appends waiting for durability reject with
   * NOT_LEADER_OR_FOLLOWER. Reads in flight finish on the old segments.
   */
  truncateFullyAndStartAt(offset: bigint): Promise<void>;

  /**
   * Reads whole batches from fetchOffset. Throws OFFSET_OUT_OF_RANGE when fetchOffset is below
   * logStartOffset or above logEndOffset; fetchOffset == logEndOffset gives an empty result.
   * An offset inside a gap (compaction) returns the next batch.
   */
  read(fetchOffset: bigint, maxBytes: number, options: ReadOptions): Promise<ReadResult>;

  /** First offset whose timestamp is >= timestampMs, or undefined when none is. */
  offsetForTimestamp(timestampMs: bigint): Promise<TimestampOffset | undefined>;

  /** The offset and timestamp of the record with the largest timestamp (ListOffsets -3). */
  maxTimestampOffset(): Promise<TimestampOffset | undefined>;

  /** Calls the listener after each append becomes durable. Returns the unsubscribe function. */
  onAppend(listener: () => void): () => void;

  /**
   * Applies retention (time, size, count) and rolls by segmentMs. Returns segments deleted. When
   * the log start moves up, epoch cache entries wholly below it are dropped; the last one starting
   * at or below it stays, moved up to start at the new log start (Kafka's truncateFromStart).
   */
  applyRetention(nowMs: number): Promise<number>;

  /**
   * Drops the state of idempotent producers whose newest batch is config.producerIdExpirationMs
   * or more before nowMs (serialized with appends); their next batch gets UNKNOWN_PRODUCER_ID
   * unless it starts at sequence 0. Returns how many were dropped. The broker calls it with
   * retention. Snapshots are not rewritten: a reload drops expired producers again.
   */
  removeExpiredProducers(nowMs: number): Promise<number>;

  flush(): Promise<void>;
  close(): Promise<void>;
}

export interface LogManagerOptions {
  /** log.dirs (one directory in this version). */
  logDir: string;
  nodeId: number;
  /** Written to meta.properties on first start; a different value later stops start-up. */
  clusterId: string;
  clock: Clock;
  logger: Logger;
  fs?: StorageFs;
  /** log.recovery.verify.sealed.segments; default `unclean`. */
  verifySealedSegments?: SealedSegmentVerification;
}

/**
 * Why a log dir went offline: `io`, a write, fsync or other I/O error; `corruption`, a batch whose
 * CRC-32C no longer matches was found while serving it (a bit flip in data already written).
 * Either way the dir comes back only through recovery (LogManager.reopen); after `corruption` that
 * recovery verifies every sealed segment whatever log.recovery.verify.sealed.segments says.
 */
export type LogDirFailureCause = 'io' | 'corruption';

export type LogDirState = { kind: 'online' } | { kind: 'offline'; reason: string; sinceMs: number; cause: LogDirFailureCause };

/**
 * When recovery (opening a partition) checks the CRC-32C of every batch of the sealed segments,
 * not only their index files (log.recovery.verify.sealed.segments): `always`; `unclean` (default)
 * when the partition has no clean-shutdown marker (a crash, or the dir went offline); `never`.
 * A corrupt batch found there is repaired (log-loader.ts): the segment is copied aside, the log is
 * truncated to the batch and the replica re-fetches the rest from its leader. Whatever the
 * policy, reads check each batch's CRC before serving it.
 */
export type SealedSegmentVerification = 'always' | 'unclean' | 'never';

/**
 * Owns a log dir: meta.properties, the partition directories in it, recovery on open.
 * A write or fsync error anywhere takes the whole dir offline (never retried): every log's
 * appends and reads then fail with KAFKA_STORAGE_ERROR until the node reopens the dir.
 */
export interface LogManager {
  readonly logDir: string;
  readonly state: LogDirState;
  getLog(tp: TopicPartition): PartitionLog | undefined;
  /**
   * Creates (or opens, recovering, if its directory already exists) the log of partition `tp` of
   * the topic whose id is `topicId` (from the metadata image). A new directory gets
   * `partition.metadata` (Kafka's format: `version: 0`, `topic_id: <id>`), written atomically
   * before the log is returned; an existing directory without it gets it. An existing directory
   * whose partition.metadata names another topic id is a stray of an earlier topic with the same
   * name (deleted before the node could remove it): it is logged (warn, both ids, the path),
   * removed unread, and a fresh empty log is created in its place.
   * A partition already open (or opening) under a different topic id is a caller bug (assertion):
   * deleteLog the old one first.
   */
  createLog(tp: TopicPartition, config: LogConfig, topicId: string): Promise<PartitionLog>;
  /**
   * Closes the log if it is open and removes its directory. Works for a directory that is not
   * open (a stray found by partitionDirectories at start-up) without opening or recovering it, so
   * a corrupt directory can be deleted too. A partition with no directory is a no-op.
   */
  deleteLog(tp: TopicPartition): Promise<void>;
  logs(): PartitionLog[];
  /** Partitions that have a directory in the log dir (open or not), for start-up discovery. */
  partitionDirectories(): TopicPartition[];
  /** Called when the dir goes offline, with the reason. */
  onOffline(listener: (reason: string) => void): () => void;
  /** Times the dir went offline since start-up (for metrics). */
  readonly failures: number;
  /** Partitions opened with a corrupt batch repaired (log-loader.ts), since start-up (for metrics). */
  readonly corruptionRepairs: number;
  /**
   * Whether the disk takes writes again: writes, fdatasyncs and deletes `<logDir>/.kavka_probe`
   * and fsyncs the dir. Rejects with the I/O error. Changes no state; safe while offline.
   */
  probe(): Promise<void>;
  /**
   * Brings an offline dir back (the caller's probe succeeded): closes every log without a sync,
   * checks that meta.properties is still there, lists the partition directories again and goes
   * online. Opens no partition: createLog opens each through recovery as after a crash, fsyncs
   * what recovery kept, and CRC-checks the sealed segments whatever the policy when the dir went
   * offline for corruption. Calling it while online is a bug (assertion).
   */
  reopen(): Promise<void>;
  close(): Promise<void>;
}

// Implemented in log-manager.ts:
//   export function openLogManager(options: LogManagerOptions): Promise<LogManager>
// It creates or checks meta.properties (a cluster.id or node.id mismatch throws a KavkaError
// naming the file) and opens no partition: the broker opens each known partition with createLog,
// which recovers it (rebuilds bad or missing indexes, truncates a torn tail), and deletes with
// deleteLog the directories the metadata no longer has.
