// Checks a producer's batches before the leader appends them (Kafka's LogValidator): framing and
// magic, size against max.message.bytes (and segment.bytes), the CRC-32C, a record count that
// matches the offset range, a compression codec storage can read, and then the records themselves
// against the header (record-validation.ts: one varint walk, gzip decompressed first). Any failure
// rejects the whole append before anything is written.
// Then stamps what the leader owns in place: base offset, partition leader epoch, and for
// LogAppendTime topics the timestamp type and max timestamp (which the CRC covers, so the CRC is
// recomputed). Records are never re-encoded.
// A follower's append (batches fetched from the leader) gets the batch-level checks only, and
// nothing is stamped: validateBatchesForFollowerAppend.
import {
  computeBatchCrc,
  isBatchCrcValid,
  isControl,
  scanBatches,
  setBaseOffset,
  setPartitionLeaderEpoch,
} from '../codec/record-batch.js';
import { KavkaError } from '../util/errors.js';
import type { LogConfig } from './api.js';
import { INT32_MAX } from './log-config.js';
import { checkRecordsForAppend } from './record-validation.js';
import type { BatchLocation } from './segment.js';

const COMPRESSION_MASK = 0x07;
const TIMESTAMP_TYPE_BIT = 0x08;
const ATTRIBUTES_POSITION = 21;
const MAX_TIMESTAMP_POSITION = 35;
const CRC_POSITION = 17;
/** Compression codecs whose records storage can decode (offsetForTimestamp): none and gzip. */
const READABLE_COMPRESSION = new Set([0, 1]);
const KNOWN_COMPRESSION_LIMIT = 4;

/** Returns the batches of a valid produce payload; throws the KavkaError a producer should see. */
export function validateBatchesForAppend(batches: Buffer, config: LogConfig): BatchLocation[] {
  if (batches.length === 0) throw new KavkaError('INVALID_RECORD', 'the append holds no record batch');
  if (batches.length > INT32_MAX) throw new KavkaError('RECORD_LIST_TOO_LARGE', `an append of ${batches.length} bytes does not fit a segment`);
  const scan = scanBatches(batches, { verifyCrc: false });
  if (scan.stop.kind !== 'end') {
    throw new KavkaError('CORRUPT_MESSAGE', `the batch at byte ${scan.stop.position} of the append is not a whole RecordBatch v2: ${scan.stop.reason}`);
  }
  for (const batch of scan.batches) {
    const { header } = batch;
    const where = `the batch at byte ${batch.position} of the append`;
    if (batch.size > config.maxMessageBytes) {
      throw new KavkaError('MESSAGE_TOO_LARGE', `${where} has ${batch.size} bytes, more than max.message.bytes=${config.maxMessageBytes}`);
    }
    if (batch.size > config.segmentBytes) {
      throw new KavkaError('RECORD_LIST_TOO_LARGE', `${where} has ${batch.size} bytes, more than segment.bytes=${config.segmentBytes}`);
    }
    if (!isBatchCrcValid(batches.subarray(batch.position, batch.position + batch.size))) {
      throw new KavkaError('CORRUPT_MESSAGE', `${where} fails its CRC-32C check`);
    }
    if (header.recordsCount < 1 || header.lastOffsetDelta !== header.recordsCount - 1) {
      throw new KavkaError('INVALID_RECORD', `${where} has ${header.recordsCount} records but last offset delta ${header.lastOffsetDelta}; a producer's batch holds consecutive offset deltas from 0`);
    }
    if (isControl(header.attributes)) throw new KavkaError('INVALID_RECORD', `${where} is a control batch; only the broker writes those`);
    const compression = header.attributes & COMPRESSION_MASK;
    if (compression > KNOWN_COMPRESSION_LIMIT) throw new KavkaError('CORRUPT_MESSAGE', `${where} has unknown compression bits ${compression}`);
    if (!READABLE_COMPRESSION.has(compression)) throw new KavkaError('UNSUPPORTED_COMPRESSION_TYPE', `${where} uses compression codec ${compression}; this broker accepts none (0) and gzip (1)`);
    checkRecordsForAppend(batches.subarray(batch.position, batch.position + batch.size), header, where);
  }
  return scan.batches;
}

/**
 * Checks batches a follower fetched from its leader: framing and magic, the CRC-32C and known
 * compression bits (the same errors a producer gets), then that the batches go up in offsets
 * without overlapping (INVALID_RECORD) and never down in partitionLeaderEpoch
 * (FENCED_LEADER_EPOCH). Not the producer-only rules: the leader stored these bytes already, and
 * a follower that refused them (a smaller max.message.bytes since, compaction's offset gaps,
 * control batches) could never catch up. Where they go in the log is checked in the log's queue.
 */
export function validateBatchesForFollowerAppend(batches: Buffer): BatchLocation[] {
  if (batches.length === 0) throw new KavkaError('INVALID_RECORD', 'the follower append holds no record batch');
  if (batches.length > INT32_MAX) throw new KavkaError('RECORD_LIST_TOO_LARGE', `a follower append of ${batches.length} bytes does not fit a segment`);
  const scan = scanBatches(batches, { verifyCrc: true });
  if (scan.stop.kind !== 'end') {
    throw new KavkaError('CORRUPT_MESSAGE', `the batch at byte ${scan.stop.position} of the follower append is not a whole, valid RecordBatch v2: ${scan.stop.reason}`);
  }
  let previous: BatchLocation | undefined;
  for (const batch of scan.batches) {
    const { header } = batch;
    const where = `the batch at byte ${batch.position} of the follower append`;
    const compression = header.attributes & COMPRESSION_MASK;
    if (compression > KNOWN_COMPRESSION_LIMIT) throw new KavkaError('CORRUPT_MESSAGE', `${where} has unknown compression bits ${compression}`);
    if (previous !== undefined) {
      const previousLast = previous.header.baseOffset + BigInt(previous.header.lastOffsetDelta);
      if (header.baseOffset <= previousLast) {
        throw new KavkaError('INVALID_RECORD', `${where} has base offset ${header.baseOffset}, not above the previous batch's last offset ${previousLast}: a leader's batches go up in offsets`);
      }
      if (header.partitionLeaderEpoch < previous.header.partitionLeaderEpoch) {
        throw new KavkaError('FENCED_LEADER_EPOCH', `${where} has partition leader epoch ${header.partitionLeaderEpoch}, below the previous batch's ${previous.header.partitionLeaderEpoch}`);
      }
    }
    previous = batch;
  }
  const first = scan.batches[0].header;
  const last = scan.batches[scan.batches.length - 1].header;
  const span = last.baseOffset + BigInt(last.lastOffsetDelta) - first.baseOffset;
  if (span > BigInt(INT32_MAX)) throw new KavkaError('INVALID_RECORD', `the follower append spans ${span} offsets from ${first.baseOffset}, more than one segment can index`);
  return scan.batches;
}

/** Stamps the leader's base offset and epoch into one batch (bytes outside the CRC). */
export function stampLeaderFields(batch: Buffer, baseOffset: bigint, leaderEpoch: number): void {
  setBaseOffset(batch, baseOffset);
  setPartitionLeaderEpoch(batch, leaderEpoch);
}

/** Marks one batch as LogAppendTime with max timestamp `appendTimeMs`, and recomputes its CRC. */
export function stampLogAppendTime(batch: Buffer, appendTimeMs: bigint): void {
  const attributes = batch.readInt16BE(ATTRIBUTES_POSITION);
  batch.writeInt16BE(attributes | TIMESTAMP_TYPE_BIT, ATTRIBUTES_POSITION);
  batch.writeBigInt64BE(appendTimeMs, MAX_TIMESTAMP_POSITION);
  batch.writeUInt32BE(computeBatchCrc(batch), CRC_POSITION);
}

/** Each batch's last offset and max timestamp once a leader stamped them, as the indexes record them. */
export interface LeaderStamps {
  lastOffsets: bigint[];
  maxTimestamps: bigint[];
}

/**
 * Stamps a leader's batches in place with offsets from `baseOffset` on (in the log's queue, once
 * the log end is known): each batch's base offset and leader epoch, and when `logAppendTimeMs`
 * is >= 0 (a LogAppendTime topic) its timestamp.
 */
export function stampLeaderBatches(batches: Buffer, located: readonly BatchLocation[], baseOffset: bigint, leaderEpoch: number, logAppendTimeMs: bigint): LeaderStamps {
  const lastOffsets: bigint[] = [];
  const maxTimestamps: bigint[] = [];
  let nextOffset = baseOffset;
  for (const batch of located) {
    const bytes = batches.subarray(batch.position, batch.position + batch.size);
    stampLeaderFields(bytes, nextOffset, leaderEpoch);
    if (logAppendTimeMs >= 0n) stampLogAppendTime(bytes, logAppendTimeMs);
    const lastOffset = nextOffset + BigInt(batch.header.lastOffsetDelta);
    lastOffsets.push(lastOffset);
    maxTimestamps.push(logAppendTimeMs >= 0n ? logAppendTimeMs : batch.header.maxTimestamp);
    nextOffset = lastOffset + 1n;
  }
  return { lastOffsets, maxTimestamps };
}
