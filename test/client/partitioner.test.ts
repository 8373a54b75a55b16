// Kafka's default partitioner (DESIGN.md section 7). The murmur2 vectors are Kafka's own
// (clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java, testMurmur2); the
// partitions for n = 3 were computed independently as (hash & 0x7fffffff) % 3.
import { describe, expect, it } from 'vitest';
import { murmur2, partitionForKey } from '../../src/util/murmur2.js';
import { StickyPartitioner } from '../../src/client/partitioner.js';

const KAFKA_VECTORS: [string, number][] = [
  ['21', -973932308],
  ['foobar', -790332482],
  ['a-little-bit-long-string', -985981536],
  ['a-little-bit-longer-string', -1486304829],
  ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
  ['abc', 479470107],
];

/** key, murmur2, partition of 3 */
const PARTITIONS_OF_THREE: [string, number, number][] = [
  ['21', -973932308, 0],
  ['foobar', -790332482, 0],
  ['a-little-bit-long-string', -985981536, 2],
  ['a-little-bit-longer-string', -1486304829, 2],
  ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971, 2],
  ['abc', 479470107, 0],
  ['a', -1563381124, 1],
  ['c', -1877468854, 1],
  ['', 275646681, 0],
];

const choiceOf = (n: number) => ({ partitions: [...Array(n).keys()], available: [...Array(n).keys()] });

describe('murmur2', () => {
  it.each(KAFKA_VECTORS)('hashes %j as Kafka does', (key, hash) => {
    expect(murmur2(Buffer.from(key, 'utf8'))).toBe(hash);
  });
});

describe('keyed partitioning', () => {
  it.each(PARTITIONS_OF_THREE)('puts key %j (hash %i) on partition %i of 3', (key, hash, partition) => {
    expect(murmur2(Buffer.from(key))).toBe(hash);
    expect(partitionForKey(Buffer.from(key), 3)).toBe(partition);
    expect(new StickyPartitioner(() => 0.99).partition('t', Buffer.from(key), choiceOf(3))).toBe(partition);
  });

  it('clears the sign bit of a negative hash instead of taking its absolute value', () => {
    // |-973932308| % 3 = 2, but Kafka's toPositive gives 1173551340 % 3 = 0.
    expect(Math.abs(-973932308) % 3).toBe(2);
    expect(partitionForKey(Buffer.from('21'), 3)).toBe(0);
  });

  it('hashes an empty key rather than treating it as keyless', () => {
    const sticky = new StickyPartitioner(() => 0.99); // a keyless record would go to partition 2
    expect(sticky.partition('t', Buffer.alloc(0), choiceOf(3))).toBe(0);
    expect(sticky.partition('t', Buffer.from(''), choiceOf(3))).toBe(0);
  });
});

describe('sticky partitioning of null keys (KIP-480)', () => {
  it('keeps null-key records on one partition until a batch for it is sent', () => {
    const draws = [0.5, 0.0];
    const sticky = new StickyPartitioner(() => draws.shift() ?? 0);
    const first = sticky.partition('t', null, choiceOf(3));
    expect(first).toBe(1);
    for (let i = 0; i < 10; i++) expect(sticky.partition('t', null, choiceOf(3))).toBe(1);
    sticky.onBatchSent('t', 1, choiceOf(3));
    // The next draw (0.0) picks among the other partitions [0, 2].
    expect(sticky.partition('t', null, choiceOf(3))).toBe(0);
  });

  it('does not move when a batch of another partition is sent', () => {
    const sticky = new StickyPartitioner(() => 0.5);
    expect(sticky.partition('t', null, choiceOf(3))).toBe(1);
    sticky.onBatchSent('t', 2, choiceOf(3));
    expect(sticky.partition('t', null, choiceOf(3))).toBe(1);
  });

  it('keeps a sticky partition per topic', () => {
    const draws = [0.0, 0.9];
    const sticky = new StickyPartitioner(() => draws.shift() ?? 0);
    expect(sticky.partition('a', null, choiceOf(3))).toBe(0);
    expect(sticky.partition('b', null, choiceOf(3))).toBe(2);
    expect(sticky.partition('a', null, choiceOf(3))).toBe(0);
  });

  it('prefers partitions that have a leader', () => {
    const sticky = new StickyPartitioner(() => 0.0);
    expect(sticky.partition('t', null, { partitions: [0, 1, 2], available: [2] })).toBe(2);
  });

  it('stays put on a one-partition topic', () => {
    const sticky = new StickyPartitioner(() => 0.7);
    expect(sticky.partition('t', null, choiceOf(1))).toBe(0);
    sticky.onBatchSent('t', 0, choiceOf(1));
    expect(sticky.partition('t', null, choiceOf(1))).toBe(0);
  });
});
