// Kafka's RecordBatch v2 ("magic 2"), byte for byte. Storage keeps these bytes, replication
// ships them, and the TypeScript client builds them, so a Kafka-protocol listener can later serve
// the same files unchanged.
//
// Batch header (61 bytes, big-endian):
//   offset  size  field
//        0     8  baseOffset               int64   stamped by the leader on append
//        8     4  batchLength              int32   bytes after this field
//       12     4  partitionLeaderEpoch     int32   stamped by the leader on append
//       16     1  magic                    int8    = 2
//       17     4  crc                      uint32  CRC-32C of bytes [21, end)
//       21     2  attributes               int16   bits 0-2 compression (0 none, 1 gzip, 2 snappy,
//                                                  3 lz4, 4 zstd), bit 3 timestamp type (1 = log
//                                                  append time), bit 4 transactional, bit 5 control
//       23     4  lastOffsetDelta          int32
//       27     8  baseTimestamp            int64
//       35     8  maxTimestamp             int64
//       43     8  producerId               int64   -1 when not idempotent
//       51     2  producerEpoch            int16
//       53     4  baseSequence             int32
//       57     4  recordsCount             int32
//       61     …  records (compressed as a whole when the compression bits are set)
//
// Record (all varints zig-zag encoded):
//   length varint, attributes int8, timestampDelta varlong, offsetDelta varint,
//   keyLength varint (-1 = null), key, valueLength varint (-1 = null), value,
//   headerCount varint, then per header: keyLength varint, key (UTF-8), valueLength varint, value.
//
// baseOffset and partitionLeaderEpoch sit before the CRC'd range, so the broker stamps them in
// place without touching the records.
import { gunzipSync, gzipSync } from 'node:zlib';
import { crc32c } from '../util/crc32c.js';
import { KavkaError } from '../util/errors.js';
import {
  readVarint,
  readVarlong,
  sizeOfVarint,
  sizeOfVarlong,
  writeVarint,
  writeVarlong,
  type Cursor,
} from '../util/varint.js';

export const BATCH_HEADER_SIZE = 61;
/** baseOffset (8) + batchLength (4): the bytes not counted by batchLength. */
export const LOG_OVERHEAD = 12;
export const MAGIC_V2 = 2;
const CRC_START = 21;

export const Compression = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const;
export type CompressionName = keyof typeof Compression;
const COMPRESSION_MASK = 0x07;
const TIMESTAMP_TYPE_BIT = 0x08;
const TRANSACTIONAL_BIT = 0x10;
const CONTROL_BIT = 0x20;

export const NO_PRODUCER_ID = -1n;
export const NO_PRODUCER_EPOCH = -1;
export const NO_SEQUENCE = -1;
/** A record or batch timestamp of -1: none given (Kafka's RecordBatch.NO_TIMESTAMP). */
export const NO_TIMESTAMP = -1n;
export const INT64_MAX = (1n << 63n) - 1n;

export type TimestampType = 'CreateTime' | 'LogAppendTime';

export interface RecordHeader {
  key: string;
  value: Buffer | null;
}

export interface RecordInput {
  key: Buffer | null;
  value: Buffer | null;
  headers?: RecordHeader[];
  /** Milliseconds since the epoch. */
  timestamp: bigint;
}

export interface BatchInput {
  records: RecordInput[];
  baseOffset?: bigint;
  partitionLeaderEpoch?: number;
  compression?: CompressionName;
  timestampType?: TimestampType;
  producerId?: bigint;
  producerEpoch?: number;
  baseSequence?: number;
  transactional?: boolean;
  /** Offset deltas of the records; defaults to 0..n-1. Compaction leaves gaps here. */
  offsetDeltas?: number[];
}

export interface BatchHeader {
  baseOffset: bigint;
  batchLength: number;
  partitionLeaderEpoch: number;
  magic: number;
  crc: number;
  attributes: number;
  lastOffsetDelta: number;
  baseTimestamp: bigint;
  maxTimestamp: bigint;
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  recordsCount: number;
}

export interface DecodedRecord {
  offset: bigint;
  timestamp: bigint;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
}

// ---------------------------------------------------------------- header access

export function readBatchHeader(buffer: Buffer, position = 0): BatchHeader {
  return {
    baseOffset: buffer.readBigInt64BE(position),
    batchLength: buffer.readInt32BE(position + 8),
    partitionLeaderEpoch: buffer.readInt32BE(position + 12),
    magic: buffer.readInt8(position + 16),
    crc: buffer.readUInt32BE(position + 17),
    attributes: buffer.readInt16BE(position + 21),
    lastOffsetDelta: buffer.readInt32BE(position + 23),
    baseTimestamp: buffer.readBigInt64BE(position + 27),
    maxTimestamp: buffer.readBigInt64BE(position + 35),
    producerId: buffer.readBigInt64BE(position + 43),
    producerEpoch: buffer.readInt16BE(position + 51),
    baseSequence: buffer.readInt32BE(position + 53),
    recordsCount: buffer.readInt32BE(position + 57),
  };
}

export function lastOffsetOf(header: BatchHeader): bigint {
  return header.baseOffset + BigInt(header.lastOffsetDelta);
}

export function compressionOf(attributes: number): CompressionName {
  const bits = attributes & COMPRESSION_MASK;
  const name = (Object.keys(Compression) as CompressionName[]).find((k) => Compression[k] === bits);
  if (name === undefined) throw new KavkaError('CORRUPT_MESSAGE', `unknown compression bits ${bits} in batch attributes`);
  return name;
}

export function timestampTypeOf(attributes: number): TimestampType {
  return (attributes & TIMESTAMP_TYPE_BIT) !== 0 ? 'LogAppendTime' : 'CreateTime';
}

export function isTransactional(attributes: number): boolean {
  return (attributes & TRANSACTIONAL_BIT) !== 0;
}

export function isControl(attributes: number): boolean {
  return (attributes & CONTROL_BIT) !== 0;
}

/** Stamps the base offset in place; the CRC does not cover it. */
export function setBaseOffset(batch: Buffer, baseOffset: bigint): void {
  batch.writeBigInt64BE(baseOffset, 0);
}

/** Stamps the partition leader epoch in place; the CRC does not cover it. */
export function setPartitionLeaderEpoch(batch: Buffer, epoch: number): void {
  batch.writeInt32BE(epoch, 12);
}

export function computeBatchCrc(batch: Buffer): number {
  return crc32c(batch.subarray(CRC_START));
}

export function isBatchCrcValid(batch: Buffer): boolean {
  return batch.length >= BATCH_HEADER_SIZE && batch.readUInt32BE(17) === computeBatchCrc(batch);
}

// ---------------------------------------------------------------- splitting a byte run

export type BatchScanStop =
  | { kind: 'end' }
  | { kind: 'partial'; position: number; reason: string }
  | { kind: 'corrupt'; position: number; reason: string };

export interface BatchScan {
  batches: { position: number; size: number; header: BatchHeader }[];
  /** Bytes of whole, valid batches from the start of the buffer. */
  validBytes: number;
  stop: BatchScanStop;
}

/**
 * Walks batches laid back to back. Stops at the first incomplete or invalid batch and says why;
 * `validBytes` is the length of the longest prefix of whole, valid batches. With `verifyCrc`
 * every batch's CRC is checked (recovery and produce); without it only framing is checked.
 */
export function scanBatches(buffer: Buffer, options: { verifyCrc: boolean; maxBatchSize?: number }): BatchScan {
  const batches: BatchScan['batches'] = [];
  let position = 0;
  while (position < buffer.length) {
    const remaining = buffer.length - position;
    if (remaining < BATCH_HEADER_SIZE) {
      return { batches, validBytes: position, stop: { kind: 'partial', position, reason: `${remaining} bytes, less than a batch header` } };
    }
    const batchLength = buffer.readInt32BE(position + 8);
    const size = batchLength + LOG_OVERHEAD;
    if (batchLength < BATCH_HEADER_SIZE - LOG_OVERHEAD || (options.maxBatchSize !== undefined && size > options.maxBatchSize * 4 + BATCH_HEADER_SIZE)) {
      return { batches, validBytes: position, stop: { kind: 'corrupt', position, reason: `implausible batch length ${batchLength}` } };
    }
    const magic = buffer.readInt8(position + 16);
    if (magic !== MAGIC_V2) {
      return { batches, validBytes: position, stop: { kind: 'corrupt', position, reason: `magic ${magic}, expected ${MAGIC_V2}` } };
    }
    if (size > remaining) {
      return { batches, validBytes: position, stop: { kind: 'partial', position, reason: `batch of ${size} bytes, only ${remaining} present` } };
    }
    const slice = buffer.subarray(position, position + size);
    if (options.verifyCrc && !isBatchCrcValid(slice)) {
      return { batches, validBytes: position, stop: { kind: 'corrupt', position, reason: 'CRC-32C mismatch' } };
    }
    const header = readBatchHeader(buffer, position);
    if (header.lastOffsetDelta < 0 || header.recordsCount < 0) {
      return { batches, validBytes: position, stop: { kind: 'corrupt', position, reason: 'negative record count or offset delta' } };
    }
    batches.push({ position, size, header });
    position += size;
  }
  return { batches, validBytes: position, stop: { kind: 'end' } };
}

// ---------------------------------------------------------------- encoding

function utf8(value: string): Buffer {
  return Buffer.from(value, 'utf8');
}

function encodeRecords(records: RecordInput[], baseTimestamp: bigint, offsetDeltas: number[]): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < records.length; i++) {
    const record = records[i];
    const headers = (record.headers ?? []).map((h) => ({ key: utf8(h.key), value: h.value }));
    const timestampDelta = record.timestamp - baseTimestamp;
    const offsetDelta = offsetDeltas[i];
    let bodySize = 1 + sizeOfVarlong(timestampDelta) + sizeOfVarint(offsetDelta);
    bodySize += record.key === null ? sizeOfVarint(-1) : sizeOfVarint(record.key.length) + record.key.length;
    bodySize += record.value === null ? sizeOfVarint(-1) : sizeOfVarint(record.value.length) + record.value.length;
    bodySize += sizeOfVarint(headers.length);
    for (const h of headers) {
      bodySize += sizeOfVarint(h.key.length) + h.key.length;
      bodySize += h.value === null ? sizeOfVarint(-1) : sizeOfVarint(h.value.length) + h.value.length;
    }
    const out = Buffer.allocUnsafe(sizeOfVarint(bodySize) + bodySize);
    let p = writeVarint(out, 0, bodySize);
    out[p++] = 0; // record attributes: unused in v2
    p = writeVarlong(out, p, timestampDelta);
    p = writeVarint(out, p, offsetDelta);
    p = writeBytes(out, p, record.key);
    p = writeBytes(out, p, record.value);
    p = writeVarint(out, p, headers.length);
    for (const h of headers) {
      p = writeBytes(out, p, h.key);
      p = writeBytes(out, p, h.value);
    }
    parts.push(out);
  }
  return Buffer.concat(parts);
}

function writeBytes(out: Buffer, position: number, value: Buffer | null): number {
  if (value === null) return writeVarint(out, position, -1);
  const p = writeVarint(out, position, value.length);
  value.copy(out, p);
  return p + value.length;
}

/** A record timestamp is an int64 of milliseconds, >= 0, or -1 for "none" (Kafka's NO_TIMESTAMP). */
function checkRecordTimestamp(timestamp: bigint): void {
  if (timestamp < NO_TIMESTAMP || timestamp > INT64_MAX) {
    throw new KavkaError('INVALID_TIMESTAMP', `record timestamp ${timestamp} is neither -1 (none) nor an int64 >= 0`);
  }
}

/**
 * Builds one RecordBatch v2. Throws INVALID_RECORD for an empty record list, INVALID_TIMESTAMP for
 * a timestamp below -1 or above int64, or timestamps whose delta does not fit an int64.
 */
export function encodeRecordBatch(input: BatchInput): Buffer {
  const { records } = input;
  if (records.length === 0) throw new KavkaError('INVALID_RECORD', 'a record batch needs at least one record');
  const offsetDeltas = input.offsetDeltas ?? records.map((_, i) => i);
  let baseTimestamp = records[0].timestamp;
  let maxTimestamp = records[0].timestamp;
  for (const r of records) {
    checkRecordTimestamp(r.timestamp);
    if (r.timestamp < baseTimestamp) baseTimestamp = r.timestamp;
    if (r.timestamp > maxTimestamp) maxTimestamp = r.timestamp;
  }
  // Deltas are from the smallest timestamp, so the largest delta is max - base; a varlong holds an int64.
  if (maxTimestamp - baseTimestamp > INT64_MAX) {
    throw new KavkaError('INVALID_TIMESTAMP', `record timestamps ${baseTimestamp} and ${maxTimestamp} are too far apart: their delta does not fit an int64`);
  }
  const compression = input.compression ?? 'none';
  let body = encodeRecords(records, baseTimestamp, offsetDeltas);
  if (compression === 'gzip') body = gzipSync(body);
  else if (compression !== 'none') throw new KavkaError('UNSUPPORTED_COMPRESSION_TYPE', `compression ${compression} is not supported; use none or gzip`);

  let attributes = Compression[compression];
  if (input.timestampType === 'LogAppendTime') attributes |= TIMESTAMP_TYPE_BIT;
  if (input.transactional) attributes |= TRANSACTIONAL_BIT;

  const batch = Buffer.allocUnsafe(BATCH_HEADER_SIZE + body.length);
  batch.writeBigInt64BE(input.baseOffset ?? 0n, 0);
  batch.writeInt32BE(batch.length - LOG_OVERHEAD, 8);
  batch.writeInt32BE(input.partitionLeaderEpoch ?? -1, 12);
  batch.writeInt8(MAGIC_V2, 16);
  batch.writeInt16BE(attributes, 21);
  batch.writeInt32BE(offsetDeltas[offsetDeltas.length - 1], 23);
  batch.writeBigInt64BE(baseTimestamp, 27);
  batch.writeBigInt64BE(maxTimestamp, 35);
  batch.writeBigInt64BE(input.producerId ?? NO_PRODUCER_ID, 43);
  batch.writeInt16BE(input.producerEpoch ?? NO_PRODUCER_EPOCH, 51);
  batch.writeInt32BE(input.baseSequence ?? NO_SEQUENCE, 53);
  batch.writeInt32BE(records.length, 57);
  body.copy(batch, BATCH_HEADER_SIZE);
  batch.writeUInt32BE(computeBatchCrc(batch), 17);
  return batch;
}

// ---------------------------------------------------------------- decoding

function readBytes(cursor: Cursor): Buffer | null {
  const length = readVarint(cursor);
  if (length < 0) return null;
  if (cursor.offset + length > cursor.buffer.length) throw new KavkaError('CORRUPT_MESSAGE', 'record field runs past the end of the batch');
  const value = cursor.buffer.subarray(cursor.offset, cursor.offset + length);
  cursor.offset += length;
  return value;
}

/**
 * Largest records region a compressed batch may inflate to. Bounds the memory a small hostile
 * batch (a "zip bomb") can make the broker or a client allocate.
 */
export const MAX_DECOMPRESSED_BATCH_BYTES = 64 * 1024 * 1024;

/** The records region of a batch, decompressed (at most MAX_DECOMPRESSED_BATCH_BYTES). */
export function batchRecordsBody(batch: Buffer, header: BatchHeader = readBatchHeader(batch)): Buffer {
  const body = batch.subarray(BATCH_HEADER_SIZE, header.batchLength + LOG_OVERHEAD);
  const compression = compressionOf(header.attributes);
  if (compression === 'none') return body;
  if (compression === 'gzip') {
    try {
      return gunzipSync(body, { maxOutputLength: MAX_DECOMPRESSED_BATCH_BYTES });
    } catch (error) {
      throw new KavkaError('CORRUPT_MESSAGE', `gzip batch at offset ${header.baseOffset} does not decompress to at most ${MAX_DECOMPRESSED_BATCH_BYTES} bytes: ${(error as Error).message}`, { cause: error });
    }
  }
  throw new KavkaError('UNSUPPORTED_COMPRESSION_TYPE', `compression ${compression} is not supported; use none or gzip`);
}

/** Decodes every record of one batch. Throws CORRUPT_MESSAGE on malformed records. */
export function decodeRecordBatch(batch: Buffer): { header: BatchHeader; records: DecodedRecord[] } {
  const header = readBatchHeader(batch);
  const cursor: Cursor = { buffer: batchRecordsBody(batch, header), offset: 0 };
  const records: DecodedRecord[] = [];
  try {
    for (let i = 0; i < header.recordsCount; i++) {
      const length = readVarint(cursor);
      const end = cursor.offset + length;
      if (length < 0 || end > cursor.buffer.length) throw new KavkaError('CORRUPT_MESSAGE', `record ${i} has length ${length} past the end of the batch`);
      cursor.offset += 1; // attributes
      const timestampDelta = readVarlong(cursor);
      const offsetDelta = readVarint(cursor);
      const key = readBytes(cursor);
      const value = readBytes(cursor);
      const headerCount = readVarint(cursor);
      if (headerCount < 0) throw new KavkaError('CORRUPT_MESSAGE', `record ${i} has a negative header count`);
      const headers: RecordHeader[] = [];
      for (let h = 0; h < headerCount; h++) {
        const k = readBytes(cursor);
        if (k === null) throw new KavkaError('CORRUPT_MESSAGE', `record ${i} has a null header key`);
        headers.push({ key: k.toString('utf8'), value: readBytes(cursor) });
      }
      if (cursor.offset !== end) throw new KavkaError('CORRUPT_MESSAGE', `record ${i} length does not match its fields`);
      records.push({ offset: header.baseOffset + BigInt(offsetDelta), timestamp: header.baseTimestamp + timestampDelta, key, value, headers });
    }
  } catch (error) {
    if (error instanceof KavkaError) throw error;
    throw new KavkaError('CORRUPT_MESSAGE', `batch at offset ${header.baseOffset}: ${(error as Error).message}`, { cause: error });
  }
  if (cursor.offset !== cursor.buffer.length) throw new KavkaError('CORRUPT_MESSAGE', `batch at offset ${header.baseOffset} has ${cursor.buffer.length - cursor.offset} bytes after its last record`);
  return { header, records };
}

/** For log-append-time batches the record timestamps are the batch's maxTimestamp. */
export function effectiveTimestamp(header: BatchHeader, record: DecodedRecord): bigint {
  return timestampTypeOf(header.attributes) === 'LogAppendTime' ? header.maxTimestamp : record.timestamp;
}
