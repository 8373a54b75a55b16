// RecordBatch v2 against checked-in golden bytes. The hex below was built once with
// encodeRecordBatch and checked by hand against the layout in src/codec/record-batch.ts; the CRC
// was recomputed with an independent bit-by-bit CRC-32C (Castagnoli, reflected 0x82F63B78).
//
//   0000000000000000  baseOffset 0
//   00000049          batchLength 73 (85 bytes - 12)
//   ffffffff          partitionLeaderEpoch -1
//   02                magic 2
//   97f4442a          CRC-32C of bytes [21, 85)
//   0000              attributes: no compression, CreateTime
//   00000001          lastOffsetDelta 1
//   0000018bcfe56800  baseTimestamp 1700000000000
//   0000018bcfe56805  maxTimestamp 1700000000005
//   ffffffffffffffff  producerId -1
//   ffff              producerEpoch -1
//   ffffffff          baseSequence -1
//   00000002          recordsCount 2
//   record 0: 1c (length 14) 00 (attributes) 00 (timestampDelta 0) 00 (offsetDelta 0)
//             04 6b31 (key "k1") 04 7631 (value "v1") 02 (1 header) 02 68 ("h") 02 78 ("x")
//   record 1: 10 (length 8) 00 0a (timestampDelta 5) 02 (offsetDelta 1) 01 (key null)
//             04 7632 (value "v2") 00 (no headers)
import { describe, expect, it } from 'vitest';
import { decodeRecordBatch, encodeRecordBatch, isBatchCrcValid, readBatchHeader, setBaseOffset } from '../../src/codec/record-batch.js';
import { KavkaError } from '../../src/util/errors.js';
import { readSmallVarlong, readVarlong, writeVarlong } from '../../src/util/varint.js';

const GOLDEN_HEX =
  '000000000000000000000049ffffffff0297f4442a0000000000010000018bcfe568000000018bcfe56805' +
  'ffffffffffffffffffffffffffff000000021c000000046b31047631020268027810000a020104763200';

const RECORDS = [
  { key: Buffer.from('k1'), value: Buffer.from('v1'), headers: [{ key: 'h', value: Buffer.from('x') }], timestamp: 1700000000000n },
  { key: null, value: Buffer.from('v2'), timestamp: 1700000000005n },
];

describe('RecordBatch v2 golden bytes', () => {
  it('encodes two records to the checked-in bytes', () => {
    expect(encodeRecordBatch({ records: RECORDS }).toString('hex')).toBe(GOLDEN_HEX);
  });

  it('decodes the checked-in bytes to the same records', () => {
    const { header, records } = decodeRecordBatch(Buffer.from(GOLDEN_HEX, 'hex'));
    expect(header).toMatchObject({ baseOffset: 0n, batchLength: 73, partitionLeaderEpoch: -1, magic: 2, crc: 0x97f4442a, attributes: 0, lastOffsetDelta: 1, recordsCount: 2 });
    expect(header.baseTimestamp).toBe(1700000000000n);
    expect(header.maxTimestamp).toBe(1700000000005n);
    expect(records).toEqual([
      { offset: 0n, timestamp: 1700000000000n, key: Buffer.from('k1'), value: Buffer.from('v1'), headers: [{ key: 'h', value: Buffer.from('x') }] },
      { offset: 1n, timestamp: 1700000000005n, key: null, value: Buffer.from('v2'), headers: [] },
    ]);
  });

  it('keeps the CRC valid when the broker stamps the base offset', () => {
    const batch = Buffer.from(GOLDEN_HEX, 'hex');
    setBaseOffset(batch, 42n);
    expect(isBatchCrcValid(batch)).toBe(true);
    expect(readBatchHeader(batch).baseOffset).toBe(42n);
    expect(decodeRecordBatch(batch).records.map((r) => r.offset)).toEqual([42n, 43n]);
  });

  it('detects a flipped bit in the records by CRC', () => {
    const batch = Buffer.from(GOLDEN_HEX, 'hex');
    batch[80] ^= 0x01;
    expect(isBatchCrcValid(batch)).toBe(false);
  });

  it('round-trips a gzip batch with an empty key and a null header value', () => {
    const records = [
      { key: Buffer.alloc(0), value: Buffer.from('x'.repeat(1000)), headers: [{ key: 'n', value: null }], timestamp: 1n },
      { key: Buffer.from('k'), value: null, timestamp: 2n },
    ];
    const batch = encodeRecordBatch({ records, compression: 'gzip' });
    expect(batch.length).toBeLessThan(200);
    const decoded = decodeRecordBatch(batch);
    expect(decoded.records.map((r) => [r.key, r.value, r.headers, r.timestamp])).toEqual([
      [Buffer.alloc(0), Buffer.from('x'.repeat(1000)), [{ key: 'n', value: null }], 1n],
      [Buffer.from('k'), null, [], 2n],
    ]);
  });
});

describe('encodeRecordBatch timestamps', () => {
  const INT64_MAX = (1n << 63n) - 1n;
  const encodeError = (timestamps: bigint[]): unknown => {
    try {
      encodeRecordBatch({ records: timestamps.map((timestamp) => ({ key: null, value: Buffer.from('v'), timestamp })) });
      return undefined;
    } catch (error) {
      return error;
    }
  };

  it('throws INVALID_TIMESTAMP for a delta outside int64 instead of wrapping it', () => {
    const error = encodeError([-1n, INT64_MAX]);
    expect(error).toBeInstanceOf(KavkaError);
    expect((error as KavkaError).code).toBe('INVALID_TIMESTAMP');
    expect((error as KavkaError).message).toMatch(/does not fit an int64/);
  });

  it('throws INVALID_TIMESTAMP for a timestamp below -1 or above int64', () => {
    for (const timestamps of [[-2n], [5n, -3n], [INT64_MAX + 1n]]) {
      const error = encodeError(timestamps);
      expect(error, `timestamps ${timestamps.join(', ')}`).toBeInstanceOf(KavkaError);
      expect((error as KavkaError).code).toBe('INVALID_TIMESTAMP');
    }
  });

  it('accepts -1 (no timestamp), 0 and int64 max, each in its own batch, and the widest legal delta', () => {
    for (const timestamps of [[-1n], [0n], [INT64_MAX], [0n, INT64_MAX]]) {
      const decoded = decodeRecordBatch(encodeRecordBatch({ records: timestamps.map((timestamp) => ({ key: null, value: null, timestamp })) }));
      expect(decoded.records.map((r) => r.timestamp)).toEqual(timestamps);
    }
  });
});

describe('readSmallVarlong', () => {
  it('reads varlongs of up to 7 bytes as exact numbers and leaves longer ones for readVarlong', () => {
    const values = [0n, 1n, -1n, 63n, -64n, 64n, 1_700_000_000_000n, -(2n ** 47n), 2n ** 47n, 2n ** 48n - 1n, -(2n ** 48n), 2n ** 48n, -(2n ** 48n) - 1n, 2n ** 62n, -(2n ** 63n)];
    for (const value of values) {
      const buffer = Buffer.alloc(10);
      const length = writeVarlong(buffer, 0, value);
      const cursor = { buffer, offset: 0 };
      const small = readSmallVarlong(cursor);
      if (length <= 7) {
        expect(small, `value ${value}`).toBe(Number(value));
        expect(cursor.offset).toBe(length);
      } else {
        expect(small, `value ${value}`).toBeUndefined();
        expect(cursor.offset).toBe(0);
        expect(readVarlong(cursor)).toBe(value);
      }
    }
  });
});

describe('decompression bound', () => {
  it('refuses a gzip batch that inflates past MAX_DECOMPRESSED_BATCH_BYTES (a zip bomb) with CORRUPT_MESSAGE', async () => {
    const { gzipSync } = await import('node:zlib');
    const codec = await import('../../src/codec/record-batch.js');
    const bomb = gzipSync(Buffer.alloc(codec.MAX_DECOMPRESSED_BATCH_BYTES + 1024));
    const template = codec.encodeRecordBatch({ records: [{ key: null, value: Buffer.from('x'), timestamp: 1n }], compression: 'gzip' });
    const batch = Buffer.concat([template.subarray(0, codec.BATCH_HEADER_SIZE), bomb]);
    batch.writeInt32BE(batch.length - codec.LOG_OVERHEAD, 8);
    batch.writeUInt32BE(codec.computeBatchCrc(batch), 17);
    expect(bomb.length).toBeLessThan(1024 * 1024);
    expect(() => codec.batchRecordsBody(batch)).toThrow(expect.objectContaining({ code: 'CORRUPT_MESSAGE' }));
  });
});
