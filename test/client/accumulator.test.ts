import { describe, expect, it } from 'vitest';
import { RecordAccumulator } from '../../src/client/accumulator.js';
import { KavkaError } from '../../src/util/errors.js';

const settings = { acks: -1 as const, compression: 'none' as const, timeoutMs: 30_000 };
const record = (value: string) => ({ key: null, value: Buffer.from(value), headers: [], timestamp: 0n });

describe('RecordAccumulator', () => {
  it('holds a batch until it has lingered for lingerMs', () => {
    const acc = new RecordAccumulator(16_384, 5);
    acc.append('t', 0, record('a'), 100, settings, 1_000);
    expect(acc.drainReady(1_004, false)).toEqual([]);
    expect(acc.nextDeadlineMs()).toBe(1_005);
    const ready = acc.drainReady(1_005, false);
    expect(ready).toHaveLength(1);
    expect(ready[0].recordCount).toBe(1);
    expect(acc.size).toBe(0);
    expect(acc.nextDeadlineMs()).toBeUndefined();
  });

  it('makes a batch ready at once when it reaches batchSizeBytes', () => {
    const acc = new RecordAccumulator(1_000, 60_000);
    for (let i = 0; i < 9; i++) acc.append('t', 0, record('x'), 100, settings, 0);
    expect(acc.hasFullBatch()).toBe(false);
    acc.append('t', 0, record('x'), 100, settings, 0);
    expect(acc.hasFullBatch()).toBe(true);
    expect(acc.drainReady(0, false).map((b) => b.recordCount)).toEqual([9]);
  });

  it('opens a new batch when a record would overflow the open one', () => {
    const acc = new RecordAccumulator(500, 60_000);
    const first = acc.append('t', 0, record('a'), 300, settings, 0);
    const second = acc.append('t', 0, record('b'), 300, settings, 0);
    expect(first.newBatch).toBe(true);
    expect(second.newBatch).toBe(true);
    expect(second.batch).not.toBe(first.batch);
    // The first is full (sealed by the overflow) and ready; the second still lingers.
    expect(acc.drainReady(0, false).map((b) => b.records[0].value?.toString())).toEqual(['a']);
  });

  it('gives a record larger than batchSizeBytes a batch of its own', () => {
    const acc = new RecordAccumulator(100, 60_000);
    const { batch } = acc.append('t', 0, record('big'), 5_000, settings, 0);
    expect(batch.full).toBe(true);
    expect(acc.drainReady(0, false)).toEqual([batch]);
  });

  it('keeps partitions apart and drains everything on flush', () => {
    const acc = new RecordAccumulator(16_384, 60_000);
    acc.append('t', 0, record('a'), 10, settings, 0);
    acc.append('t', 1, record('b'), 10, settings, 0);
    acc.append('u', 0, record('c'), 10, settings, 0);
    expect(acc.drainReady(0, false)).toEqual([]);
    const flushed = acc.drainReady(0, true);
    expect(flushed.map((b) => `${b.topic}-${b.partition}`).sort()).toEqual(['t-0', 't-1', 'u-0']);
  });

  it('does not mix records with different acks in one batch', () => {
    const acc = new RecordAccumulator(16_384, 60_000);
    const a = acc.append('t', 0, record('a'), 10, settings, 0);
    const b = acc.append('t', 0, record('b'), 10, { ...settings, acks: 0 }, 0);
    expect(b.batch).not.toBe(a.batch);
    expect(a.batch.full).toBe(true);
  });

  it('settles a batch once and ignores later outcomes', async () => {
    const acc = new RecordAccumulator(16_384, 0);
    const { batch } = acc.append('t', 0, record('a'), 10, settings, 0);
    batch.succeed({ baseOffset: 7n, logAppendTime: -1n, logStartOffset: 0n });
    batch.fail(new KavkaError('REQUEST_TIMED_OUT', 'late'));
    await expect(batch.done).resolves.toMatchObject({ baseOffset: 7n });
  });

  it('does not leave an unhandled rejection when nobody awaits a failed batch', async () => {
    const acc = new RecordAccumulator(16_384, 0);
    const { batch } = acc.append('t', 0, record('a'), 10, settings, 0);
    batch.fail(new KavkaError('MESSAGE_TOO_LARGE', 'too big'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(batch.isSettled).toBe(true);
  });
});
