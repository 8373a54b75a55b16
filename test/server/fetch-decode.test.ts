import { describe, expect, it } from 'vitest';
import { gzipSync } from 'node:zlib';
import { encodeRecordBatch, computeBatchCrc, setBaseOffset, BATCH_HEADER_SIZE, LOG_OVERHEAD } from '../../src/codec/index.js';
import { decodeForClient } from '../../src/server/fetch-handler.js';

function batchAt(baseOffset: bigint, values: string[]): Buffer {
  const batch = encodeRecordBatch({ records: values.map((v) => ({ key: null, value: Buffer.from(v), timestamp: 1n })) });
  setBaseOffset(batch, baseOffset);
  return batch;
}

/** A gzip batch whose body decompresses to garbage but whose CRC is right. */
function garbageGzipBatch(baseOffset: bigint): Buffer {
  const body = gzipSync(Buffer.from('not records at all, just bytes'));
  const good = encodeRecordBatch({ records: [{ key: null, value: Buffer.from('x'), timestamp: 1n }], compression: 'gzip' });
  const batch = Buffer.concat([good.subarray(0, BATCH_HEADER_SIZE), body]);
  batch.writeInt32BE(batch.length - LOG_OVERHEAD, 8);
  setBaseOffset(batch, baseOffset);
  batch.writeUInt32BE(computeBatchCrc(batch), 17);
  return batch;
}

describe('decoding fetched batches for plain_records clients', () => {
  it('returns the records before an undecodable batch and stops there, never skipping it', () => {
    const batches = Buffer.concat([batchAt(0n, ['a', 'b']), garbageGzipBatch(2n), batchAt(3n, ['d'])]);
    const first = decodeForClient(batches, 0n, { remainingBytes: 1 << 20 });
    expect(first.records.map((r) => r.value?.toString())).toEqual(['a', 'b']);
    expect(first.nextFetchOffset).toBe(2n);
    const atBad = decodeForClient(batches.subarray(batchAt(0n, ['a', 'b']).length), 2n, { remainingBytes: 1 << 20 });
    expect(atBad.records).toEqual([]);
    expect(atBad.error?.code).toBe('CORRUPT_MESSAGE');
    expect(atBad.nextFetchOffset).toBe(2n);
  });

  it('keeps decoded records within the byte budget, but always returns at least one', () => {
    const batches = batchAt(10n, ['a'.repeat(100), 'b'.repeat(100), 'c'.repeat(100)]);
    const one = decodeForClient(batches, 10n, { remainingBytes: 1 });
    expect(one.records.map((r) => r.offset)).toEqual(['10']);
    expect(one.nextFetchOffset).toBe(11n);
    const two = decodeForClient(batches, 10n, { remainingBytes: 350 });
    expect(two.records.map((r) => r.offset)).toEqual(['10', '11']);
    expect(two.nextFetchOffset).toBe(12n);
    const all = decodeForClient(batches, 11n, { remainingBytes: 1 << 20 });
    expect(all.records.map((r) => r.offset)).toEqual(['11', '12']);
    expect(all.nextFetchOffset).toBeUndefined();
  });
});
