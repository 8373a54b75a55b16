// Zig-zag varints as Kafka's RecordBatch v2 records use them (protobuf's sint32/sint64 encoding).
// 32-bit values use number arithmetic; 64-bit values (timestamp and offset deltas can be large
// in principle) use bigint only when they do not fit in 32 bits.

export interface Cursor {
  buffer: Buffer;
  offset: number;
}

export class VarintError extends Error {}

export function zigZagEncode32(value: number): number {
  return ((value << 1) ^ (value >> 31)) >>> 0;
}

export function zigZagDecode32(value: number): number {
  return (value >>> 1) ^ -(value & 1);
}

/** Number of bytes the zig-zag varint of a 32-bit signed value takes. */
export function sizeOfVarint(value: number): number {
  let v = zigZagEncode32(value);
  let bytes = 1;
  while (v >= 0x80) {
    v >>>= 7;
    bytes += 1;
  }
  return bytes;
}

export function writeVarint(buffer: Buffer, offset: number, value: number): number {
  let v = zigZagEncode32(value);
  while (v >= 0x80) {
    buffer[offset++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buffer[offset++] = v;
  return offset;
}

export function readVarint(cursor: Cursor): number {
  let result = 0;
  let shift = 0;
  for (let i = 0; i < 5; i++) {
    if (cursor.offset >= cursor.buffer.length) throw new VarintError('varint runs past the end of the buffer');
    const byte = cursor.buffer[cursor.offset++];
    result |= (byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return zigZagDecode32(result >>> 0);
    shift += 7;
  }
  throw new VarintError('varint longer than 5 bytes');
}

export function sizeOfVarlong(value: bigint): number {
  let v = (value << 1n) ^ (value >> 63n);
  v = BigInt.asUintN(64, v);
  let bytes = 1;
  while (v >= 0x80n) {
    v >>= 7n;
    bytes += 1;
  }
  return bytes;
}

export function writeVarlong(buffer: Buffer, offset: number, value: bigint): number {
  let v = BigInt.asUintN(64, (value << 1n) ^ (value >> 63n));
  while (v >= 0x80n) {
    buffer[offset++] = Number(v & 0x7fn) | 0x80;
    v >>= 7n;
  }
  buffer[offset++] = Number(v);
  return offset;
}

export function readVarlong(cursor: Cursor): bigint {
  let result = 0n;
  let shift = 0n;
  for (let i = 0; i < 10; i++) {
    if (cursor.offset >= cursor.buffer.length) throw new VarintError('varlong runs past the end of the buffer');
    const byte = cursor.buffer[cursor.offset++];
    result |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) {
      const unsigned = BigInt.asUintN(64, result);
      return BigInt.asIntN(64, (unsigned >> 1n) ^ -(unsigned & 1n));
    }
    shift += 7n;
  }
  throw new VarintError('varlong longer than 10 bytes');
}

/** Varlongs of up to this many bytes hold at most 49 bits, so they decode exactly as numbers. */
const SMALL_VARLONG_BYTES = 7;

/**
 * Reads a varlong as a number when it is at most 7 bytes long (|value| < 2^48, exact), without
 * bigint arithmetic; otherwise leaves the cursor where it was and returns undefined, so the caller
 * reads it with readVarlong. For hot loops over records (timestamp deltas are small).
 */
export function readSmallVarlong(cursor: Cursor): number | undefined {
  const start = cursor.offset;
  let unsigned = 0;
  let multiplier = 1;
  for (let i = 0; i < SMALL_VARLONG_BYTES; i++) {
    if (cursor.offset >= cursor.buffer.length) throw new VarintError('varlong runs past the end of the buffer');
    const byte = cursor.buffer[cursor.offset++];
    unsigned += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) return unsigned % 2 === 0 ? unsigned / 2 : -(unsigned + 1) / 2;
    multiplier *= 128;
  }
  cursor.offset = start;
  return undefined;
}
