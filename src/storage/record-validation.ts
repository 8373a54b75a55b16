// The per-record half of Kafka's LogValidator, for a producer's batch on the leader: one walk over
// the records region (gzip is decompressed first) that reads the varints in place and builds no
// record objects, so an uncompressed batch is checked without a copy. It makes sure that what the
// header promises is what the bytes hold, because a batch that lies is stored and replicated as
// is, and later reads, ListOffsets and consumers fail on it with CORRUPT_MESSAGE.
//
// Record layout (record-batch.ts): length varint, attributes int8, timestampDelta varlong,
// offsetDelta varint, key (varint length, -1 = null), value (same), headerCount varint, then per
// header: key (varint length, never null), value (varint length, -1 = null).
//
// Checks, each naming the batch and record:
// - CORRUPT_MESSAGE: a gzip body that does not decompress; a record length that is too small or
//   runs past the records region; fields that do not fill the record's length exactly; a negative
//   or impossible header count; a null header key; more or fewer records than recordsCount.
// - INVALID_RECORD: offset deltas other than 0, 1, ..., recordsCount - 1 (a leader requires them
//   of a producer's magic v2 batch, as Kafka does; the header check already ties lastOffsetDelta
//   to recordsCount - 1).
// - INVALID_TIMESTAMP: baseTimestamp + timestampDelta outside int64, or below 0 and not -1.
import { batchRecordsBody, INT64_MAX, NO_TIMESTAMP, type BatchHeader } from '../codec/record-batch.js';
import { KavkaError, toKavkaError } from '../util/errors.js';
import { readSmallVarlong, readVarint, readVarlong, VarintError, type Cursor } from '../util/varint.js';

/** attributes + timestampDelta + offsetDelta + key length + value length + header count, one byte each at least. */
const MIN_RECORD_BYTES = 6;
/** A header holds at least a key length and a value length. */
const MIN_HEADER_BYTES = 2;
/** A base timestamp this small in magnitude plus a small varlong (< 2^48) is exact as a number. */
const EXACT_BASE_TIMESTAMP = 2n ** 52n;

/**
 * Checks the records of one batch (the whole batch's bytes, header included) against its header.
 * `where` names the batch in error messages. Throws the KavkaError a producer should see.
 * The compression must already be known to be none or gzip.
 */
export function checkRecordsForAppend(batch: Buffer, header: BatchHeader, where: string): void {
  const body = recordsBody(batch, header, where);
  const cursor: Cursor = { buffer: body, offset: 0 };
  const baseTimestampMs = header.baseTimestamp >= -EXACT_BASE_TIMESTAMP && header.baseTimestamp <= EXACT_BASE_TIMESTAMP ? Number(header.baseTimestamp) : undefined;
  let count = 0;
  try {
    while (cursor.offset < body.length) {
      if (count === header.recordsCount) {
        throw corrupt(`${where} holds more records than its recordsCount ${header.recordsCount} (${body.length - cursor.offset} bytes remain)`);
      }
      checkRecord(cursor, header, baseTimestampMs, count, where);
      count += 1;
    }
  } catch (error) {
    if (error instanceof VarintError) throw corrupt(`${where}: record ${count} is cut short: ${error.message}`);
    throw error;
  }
  if (count !== header.recordsCount) throw corrupt(`${where} holds ${count} records but its recordsCount says ${header.recordsCount}`);
}

/** The records region, decompressed. */
function recordsBody(batch: Buffer, header: BatchHeader, where: string): Buffer {
  try {
    return batchRecordsBody(batch, header);
  } catch (error) {
    throw new KavkaError(toKavkaError(error).code, `${where}: ${(error as Error).message}`, { cause: error });
  }
}

/** Walks record `index` at the cursor and leaves the cursor at the next record. */
function checkRecord(cursor: Cursor, header: BatchHeader, baseTimestampMs: number | undefined, index: number, where: string): void {
  const position = cursor.offset;
  const length = readVarint(cursor);
  const start = cursor.offset;
  const end = start + length;
  if (length < MIN_RECORD_BYTES || end > cursor.buffer.length) {
    throw corrupt(`${where}: record ${index} at byte ${position} of the records has length ${length}, outside [${MIN_RECORD_BYTES}, ${cursor.buffer.length - start}]`);
  }
  cursor.offset += 1; // attributes: unused in v2
  checkTimestamp(cursor, header.baseTimestamp, baseTimestampMs, index, where);
  const offsetDelta = readVarint(cursor);
  if (offsetDelta !== index) {
    throw new KavkaError(
      'INVALID_RECORD',
      `${where}: record ${index} has offset delta ${offsetDelta}; a producer's batch numbers its records 0..${header.recordsCount - 1} (last offset delta ${header.lastOffsetDelta})`,
    );
  }
  skipBytesField(cursor, end, index, 'key', where);
  skipBytesField(cursor, end, index, 'value', where);
  const headerCount = readVarint(cursor);
  if (headerCount < 0 || headerCount > (end - cursor.offset) / MIN_HEADER_BYTES) {
    throw corrupt(`${where}: record ${index} has header count ${headerCount}, impossible in its ${length} bytes`);
  }
  for (let h = 0; h < headerCount; h++) {
    if (skipBytesField(cursor, end, index, 'header key', where) < 0) throw corrupt(`${where}: record ${index} has a null header key`);
    skipBytesField(cursor, end, index, 'header value', where);
  }
  if (cursor.offset !== end) throw corrupt(`${where}: record ${index}'s fields take ${cursor.offset - start} bytes but its length says ${length}`);
}

/** baseTimestamp + delta must be -1 or an int64 >= 0. Number arithmetic when exact, bigint otherwise. */
function checkTimestamp(cursor: Cursor, baseTimestamp: bigint, baseTimestampMs: number | undefined, index: number, where: string): void {
  const delta = readSmallVarlong(cursor);
  if (delta !== undefined && baseTimestampMs !== undefined) {
    const timestamp = baseTimestampMs + delta;
    if (timestamp >= 0 || timestamp === -1) return;
  }
  const timestamp = baseTimestamp + (delta !== undefined ? BigInt(delta) : readVarlong(cursor));
  if ((timestamp >= 0n && timestamp <= INT64_MAX) || timestamp === NO_TIMESTAMP) return;
  throw new KavkaError('INVALID_TIMESTAMP', `${where}: record ${index} has timestamp ${timestamp} (base ${baseTimestamp} + delta); a timestamp is -1 (none) or an int64 >= 0`);
}

/** Skips a length-prefixed field that must end inside the record; returns its length (-1 = null). */
function skipBytesField(cursor: Cursor, end: number, index: number, field: string, where: string): number {
  const length = readVarint(cursor);
  if (length < -1 || length > end - cursor.offset) throw corrupt(`${where}: record ${index} has ${field} length ${length}, past the end of the record`);
  if (length > 0) cursor.offset += length;
  return length;
}

function corrupt(message: string): KavkaError {
  return new KavkaError('CORRUPT_MESSAGE', message);
}
