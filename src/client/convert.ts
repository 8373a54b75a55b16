// Conversions between the kafkajs-shaped public values and the codec's records. Pure functions.
import { KavkaError } from '../util/errors.js';
import type { DecodedRecord, RecordHeader, TimestampType } from '../codec/record-batch.js';
import type { ConsumedHeaders, KafkaMessage, MessageBytes, MessageHeaders } from './types.js';

export function toBytes(value: MessageBytes | undefined): Buffer | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (Buffer.isBuffer(value)) return value;
  if ((value as unknown) instanceof Uint8Array) return Buffer.from(value as Uint8Array);
  throw new KavkaError('INVALID_RECORD', `keys and values must be a string, a Buffer or null, got ${typeof value}`, { retriable: false });
}

export function toRecordHeaders(headers: MessageHeaders | undefined): RecordHeader[] {
  if (headers === undefined) return [];
  const out: RecordHeader[] = [];
  for (const [key, raw] of Object.entries(headers)) {
    if (raw === undefined) continue;
    const values = Array.isArray(raw) ? raw : [raw];
    for (const value of values) out.push({ key, value: toBytes(value) });
  }
  return out;
}

/** Parses a timestamp given as a decimal string or number of ms; absent = `nowMs`. */
export function toTimestamp(value: string | number | undefined, nowMs: number): bigint {
  if (value === undefined) return BigInt(nowMs);
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new KavkaError('INVALID_TIMESTAMP', `timestamp ${value} is not an integer`, { retriable: false });
    return BigInt(value);
  }
  if (!/^-?\d+$/.test(value)) throw new KavkaError('INVALID_TIMESTAMP', `timestamp "${value}" is not a decimal integer`, { retriable: false });
  return BigInt(value);
}

/** Parses an offset (kafkajs passes decimal strings); throws for negative or malformed values. */
export function toOffset(value: string | number | bigint): bigint {
  let offset: bigint;
  if (typeof value === 'bigint') offset = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) offset = BigInt(value);
  else if (typeof value === 'string' && /^\d+$/.test(value)) offset = BigInt(value);
  else throw new KavkaError('OFFSET_OUT_OF_RANGE', `offset ${String(value)} is not a non-negative integer`, { retriable: false });
  if (offset < 0n) throw new KavkaError('OFFSET_OUT_OF_RANGE', `offset ${offset} is negative`, { retriable: false });
  return offset;
}

export function groupHeaders(list: RecordHeader[]): ConsumedHeaders {
  const out: ConsumedHeaders = {};
  for (const { key, value } of list) {
    const existing = out[key];
    if (existing === undefined) out[key] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else out[key] = [existing, value];
  }
  return out;
}

export function toKafkaMessage(record: DecodedRecord, timestamp: bigint, timestampType: TimestampType): KafkaMessage {
  return {
    offset: record.offset.toString(),
    timestamp: timestamp.toString(),
    timestampType,
    key: record.key,
    value: record.value,
    headers: groupHeaders(record.headers),
    headerList: record.headers,
    size: (record.key?.length ?? 0) + (record.value?.length ?? 0),
  };
}

/** Upper bound on the bytes one record takes inside a batch (Kafka's DefaultRecord.sizeInBytes). */
export function estimateRecordSize(key: Buffer | null, value: Buffer | null, headers: RecordHeader[]): number {
  // length (5) + attributes (1) + timestampDelta (10) + offsetDelta (5) + key/value lengths (5+5)
  // + header count (5), each varint at its maximum.
  let size = 36 + (key?.length ?? 0) + (value?.length ?? 0);
  for (const h of headers) size += 10 + Buffer.byteLength(h.key, 'utf8') + (h.value?.length ?? 0);
  return size;
}
