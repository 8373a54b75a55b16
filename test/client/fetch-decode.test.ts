import { describe, expect, it } from 'vitest';
import { decodeFetchedBatches } from '../../src/client/fetch-decode.js';
import { encodeRecordBatch, setBaseOffset } from '../../src/codec/record-batch.js';
import { groupHeaders } from '../../src/client/convert.js';

function batchAt(baseOffset: bigint, values: string[]): Buffer {
  const batch = encodeRecordBatch({ records: values.map((v, i) => ({ key: null, value: Buffer.from(v), headers: [], timestamp: 1000n + BigInt(i) })) });
  setBaseOffset(batch, baseOffset);
  return batch;
}

describe('decodeFetchedBatches', () => {
  it('skips records below the fetch position in a batch that starts before it', () => {
    const bytes = Buffer.concat([batchAt(10n, ['a', 'b', 'c']), batchAt(13n, ['d'])]);
    const { messages, endOffset } = decodeFetchedBatches(bytes, 12n, 't-0');
    expect(messages.map((m) => [m.offset, m.value?.toString()])).toEqual([
      ['12', 'c'],
      ['13', 'd'],
    ]);
    expect(endOffset).toBe(14n);
  });

  it('ignores a torn trailing batch and stops before it', () => {
    const whole = batchAt(0n, ['a']);
    const torn = batchAt(1n, ['b']).subarray(0, 30);
    const { messages, endOffset } = decodeFetchedBatches(Buffer.concat([whole, torn]), 0n, 't-0');
    expect(messages.map((m) => m.offset)).toEqual(['0']);
    expect(endOffset).toBe(1n);
  });

  it('reports a corrupt batch as CORRUPT_MESSAGE', () => {
    const bytes = batchAt(0n, ['hello']);
    bytes[bytes.length - 2] ^= 0xff;
    expect(() => decodeFetchedBatches(bytes, 0n, 't-0')).toThrow(expect.objectContaining({ code: 'CORRUPT_MESSAGE' }));
  });

  it('returns nothing and keeps the position for an empty answer', () => {
    expect(decodeFetchedBatches(Buffer.alloc(0), 5n, 't-0')).toEqual({ messages: [], endOffset: 5n });
  });

  it('groups repeated header keys into arrays, as kafkajs does', () => {
    expect(groupHeaders([{ key: 'a', value: Buffer.from('1') }, { key: 'b', value: null }, { key: 'a', value: Buffer.from('2') }])).toEqual({
      a: [Buffer.from('1'), Buffer.from('2')],
      b: null,
    });
  });
});
