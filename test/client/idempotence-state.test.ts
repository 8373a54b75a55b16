// IdempotentState, the idempotent producer's per-partition bookkeeping, as pure data: the window
// of batches a retry must stay within, and epochs kept per partition across a bump.
import { describe, expect, it } from 'vitest';
import { ProducerBatch } from '../../src/client/accumulator.js';
import { IdempotentState, MAX_UNACKNOWLEDGED_BATCHES_PER_PARTITION, partitionKey } from '../../src/client/idempotence.js';

function batchOf(partition: number, records = 1): ProducerBatch {
  const batch = new ProducerBatch('t', partition, { acks: -1, compression: 'none', timeoutMs: 1_000 }, 0);
  for (let i = 0; i < records; i++) batch.records.push({ key: null, value: Buffer.from(`r${i}`), headers: [], timestamp: 0n });
  return batch;
}

function started(): IdempotentState {
  const state = new IdempotentState();
  expect(state.bumped(1000n, 0)).toEqual([]);
  return state;
}

describe('IdempotentState window (issue: idempotence faults seed 139)', () => {
  it('keeps a fresh batch back while 5 batches were assigned from the oldest unacknowledged one on, even if the later ones were acknowledged', () => {
    // Seed 139: the oldest batch's answer was lost at a deposed leader while the later ones were
    // acknowledged by the new one; new batches went out, and the retry of the oldest found it
    // pushed out of the broker's last 5 batches (OUT_OF_ORDER_SEQUENCE_NUMBER, a bump, duplicates).
    const state = started();
    const sent = Array.from({ length: MAX_UNACKNOWLEDGED_BATCHES_PER_PARTITION }, () => batchOf(0));
    expect(sent.map((b) => state.assign(b))).toEqual([0, 1, 2, 3, 4]);
    for (const later of sent.slice(1)) state.settle(later);
    const fresh = batchOf(0);
    expect(state.position(fresh)).toBe(1);
    expect(state.windowLength(fresh)).toBe(MAX_UNACKNOWLEDGED_BATCHES_PER_PARTITION);
    expect(state.windowLength(batchOf(1))).toBe(0);

    state.settle(sent[0]);
    expect(state.windowLength(fresh)).toBe(0);
    expect(state.assign(fresh)).toBe(5);
    expect(state.windowLength(fresh)).toBe(1);
  });

  it('slides the window to the oldest batch still unacknowledged', () => {
    const state = started();
    const sent = [batchOf(0, 2), batchOf(0), batchOf(0, 3)];
    expect(sent.map((b) => state.assign(b))).toEqual([0, 2, 3]);
    state.settle(sent[1]);
    expect(state.windowLength(sent[0])).toBe(3);
    state.settle(sent[0]);
    expect(state.windowLength(sent[0])).toBe(1);
    expect(state.hasEarlierUnacknowledged(sent[2])).toBe(false);
  });
});

describe('IdempotentState epochs per partition', () => {
  it('rewrites only the partitions that required the bump; another one finishes its old epoch before it starts the new one at 0', () => {
    const state = started();
    const p0 = [batchOf(0), batchOf(0)];
    const p1 = [batchOf(1)];
    for (const b of [...p0, ...p1]) state.assign(b);
    expect(state.requireEpochBump(partitionKey('t', 1))).toBe(true);
    expect(state.requireEpochBump(partitionKey('t', 1))).toBe(false);
    expect(state.bumpRequired).toBe(true);

    expect(state.bumped(1000n, 1)).toEqual(p1);
    expect(state.bumpRequired).toBe(false);
    expect(state.assign(p1[0])).toBe(0);
    // Partition 0 keeps its epoch-0 batches: a fresh one waits for them.
    const fresh = batchOf(0);
    expect(state.holds(p0[0])).toBe(true);
    expect(state.mayAssign(fresh)).toBe(false);
    state.settle(p0[0]);
    expect(state.mayAssign(fresh)).toBe(false);
    state.settle(p0[1]);
    expect(state.mayAssign(fresh)).toBe(true);
    expect(state.assign(fresh)).toBe(0);
  });
});
