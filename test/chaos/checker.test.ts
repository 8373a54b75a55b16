// The chaos history checker (src/chaos/history.ts) against hand-made histories: a sound one passes, and each property has a
// history that breaks only it and must be reported (with what, where and why).
import { describe, expect, it } from 'vitest';
import { encodeRecordBatch, lastOffsetOf, readBatchHeader } from '../../src/codec/record-batch.js';
import { checkHistory, classifyProduceError, compareReplicas, History, historyFromJson, historyToJson, type Property, type ReadRecord, type ReplicaSource } from '../../src/chaos/history.js';

const T = 't';

function history(): History {
  const h = new History();
  h.addProducer('a', { noDuplicates: true, ordered: true });
  h.addProducer('b', { noDuplicates: true, ordered: true });
  h.addProducer('loose', { noDuplicates: false, ordered: false });
  return h;
}

/** Records a completed acks=all produce of `values` acknowledged at `baseOffset`. */
function acked(h: History, producer: string, values: string[], baseOffset: bigint, partition = 0) {
  const op = h.invoke(producer, T, partition, values, -1);
  h.ok(op, baseOffset);
  return op;
}

function records(...values: (string | null)[]): ReadRecord[] {
  return values.map((value, i) => ({ offset: BigInt(i), value }));
}

function finalRead(h: History, recs: ReadRecord[], source = 'leader 1 (final read)', partition = 0, to = BigInt(recs.length)) {
  h.observe({ source, topic: T, partition, from: 0n, to, records: recs, final: true });
}

function properties(h: History): Property[] {
  return checkHistory(h).map((v) => v.property);
}

describe('a sound history', () => {
  it('passes: acknowledged records where acknowledged, failed ones absent, unknown ones either way', () => {
    const h = history();
    acked(h, 'a', ['a1', 'a2'], 0n);
    h.fail(h.invoke('a', T, 0, ['a3'], -1), 'NOT_ENOUGH_REPLICAS');
    h.unknown(h.invoke('b', T, 0, ['b1'], -1), 'REQUEST_TIMED_OUT');
    h.unknown(h.invoke('b', T, 0, ['b2'], -1), 'REQUEST_TIMED_OUT');
    acked(h, 'b', ['b3'], 3n);
    h.invoke('b', T, 0, ['b4'], -1); // never completed
    const one = h.invoke('a', T, 0, ['a4'], 1);
    h.ok(one, 4n); // acks=1: may be lost, and it was
    finalRead(h, records('a1', 'a2', 'b1', 'b3'));
    finalRead(h, records('a1', 'a2', 'b1'), 'node 2 log');
    expect(checkHistory(h)).toEqual([]);
  });
});

describe('each property, broken alone, is reported', () => {
  it('lost: an acknowledged record missing from a final read', () => {
    const h = history();
    acked(h, 'a', ['a1'], 0n);
    acked(h, 'a', ['a2'], 1n);
    finalRead(h, records('a1'));
    const [v] = checkHistory(h);
    expect(v).toMatchObject({ property: 'lost', topic: T, partition: 0, offset: 1n, value: 'a2' });
    expect(v.detail).toContain('no final read covers the offset');
  });

  it('lost: an acknowledged record at another offset than acknowledged', () => {
    const h = history();
    acked(h, 'a', ['a1'], 0n);
    h.unknown(h.invoke('b', T, 0, ['b1'], -1), 'timeout');
    acked(h, 'a', ['a2'], 1n);
    finalRead(h, records('a1', 'b1', 'a2'));
    const found = checkHistory(h);
    expect(found.map((v) => v.property).sort()).toEqual(['conflict', 'lost']);
    expect(found.find((v) => v.property === 'lost')?.detail).toContain('read at offset(s) 2');
  });

  it('lost: a record of a replica that was never read back at all', () => {
    const h = history();
    acked(h, 'a', ['a1'], 0n);
    expect(checkHistory(h)[0].detail).toContain('never read back');
  });

  it('conflict: two reads give one offset two different records (no acknowledgement involved)', () => {
    const h = history();
    h.unknown(h.invoke('a', T, 0, ['a1'], -1), 'timeout');
    h.unknown(h.invoke('b', T, 0, ['b1'], -1), 'timeout');
    h.observe({ source: 'node 1 log', topic: T, partition: 0, from: 0n, to: 1n, records: records('a1'), final: false });
    h.observe({ source: 'node 2 log', topic: T, partition: 0, from: 0n, to: 1n, records: records('b1'), final: false });
    const [v, ...rest] = checkHistory(h);
    expect(rest).toEqual([]);
    expect(v).toMatchObject({ property: 'conflict', offset: 0n });
    expect(v.detail).toContain('node 1 log');
    expect(v.detail).toContain('node 2 log');
  });

  it('order: a record acknowledged before another was invoked sits above it', () => {
    const h = history();
    // b1 is acknowledged at offset 1 before a1 is even sent; a1 lands at offset 0.
    const b1 = h.invoke('b', T, 0, ['b1'], -1);
    h.ok(b1, 1n);
    const a1 = h.invoke('a', T, 0, ['a1'], -1);
    h.ok(a1, 0n);
    finalRead(h, records('a1', 'b1'));
    const found = checkHistory(h);
    expect(found.map((v) => v.property)).toEqual(['order']);
    expect(found[0].detail).toMatch(/op 0 .* before op 1 .* was invoked/);
  });

  it('order: an ordered producer whose concurrent sends were acknowledged out of order', () => {
    const h = history();
    const first = h.invoke('a', T, 0, ['a1'], -1);
    const second = h.invoke('a', T, 0, ['a2'], -1);
    h.ok(second, 0n);
    h.ok(first, 1n);
    finalRead(h, records('a2', 'a1'));
    expect(properties(h)).toEqual(['order']);
    // The same for a producer that may reorder: no violation.
    const loose = new History();
    loose.addProducer('loose', { noDuplicates: false, ordered: false });
    const x = loose.invoke('loose', T, 0, ['x1'], -1);
    const y = loose.invoke('loose', T, 0, ['x2'], -1);
    loose.ok(y, 0n);
    loose.ok(x, 1n);
    finalRead(loose, records('x2', 'x1'));
    expect(checkHistory(loose)).toEqual([]);
  });

  it('duplicate: a value of an idempotent producer at two offsets, but not for a producer allowed to duplicate', () => {
    const h = history();
    h.unknown(h.invoke('a', T, 0, ['a1'], -1), 'retried');
    h.unknown(h.invoke('loose', T, 0, ['l1'], -1), 'retried');
    finalRead(h, records('a1', 'a1', 'l1', 'l1'));
    const found = checkHistory(h);
    expect(found.map((v) => v.property)).toEqual(['duplicate']);
    expect(found[0]).toMatchObject({ value: 'a1' });
    expect(found[0].detail).toContain('0,1');
  });

  it('phantom: a value nobody produced, a null value, and a value produced to another partition', () => {
    const h = history();
    h.unknown(h.invoke('a', T, 1, ['a1'], -1), 'timeout');
    finalRead(h, records('zzz', null, 'a1'));
    const found = checkHistory(h);
    expect(found.map((v) => v.property)).toEqual(['phantom', 'phantom', 'phantom']);
    expect(found.map((v) => v.detail).join('\n')).toContain(`produced to ${T}-1`);
  });

  it('failed-visible: a definitely failed produce is read', () => {
    const h = history();
    h.fail(h.invoke('a', T, 0, ['a1'], -1), 'NOT_ENOUGH_REPLICAS: refused before the append');
    finalRead(h, records('a1'));
    const found = checkHistory(h);
    expect(found.map((v) => v.property)).toEqual(['failed-visible']);
    expect(found[0].detail).toContain('NOT_ENOUGH_REPLICAS');
  });

  it('acked-while-unavailable: an acks=all produce invoked and acknowledged inside the window', () => {
    const h = history();
    acked(h, 'a', ['a1'], 0n); // before the window: fine
    const end = h.unavailable(T, 0, 'two of three replicas down');
    const inside = h.invoke('a', T, 0, ['a2'], -1);
    const across = h.invoke('b', T, 0, ['b1'], -1);
    h.ok(inside, 1n);
    end();
    h.ok(across, 2n); // acknowledged after the window: fine
    finalRead(h, records('a1', 'a2', 'b1'));
    const found = checkHistory(h);
    expect(found.map((v) => v.property)).toEqual(['acked-while-unavailable']);
    expect(found[0]).toMatchObject({ value: 'a2', offset: 1n });
  });

  it('keeps partitions apart: the same offsets in two partitions are not a conflict', () => {
    const h = history();
    acked(h, 'a', ['a1'], 0n, 0);
    acked(h, 'b', ['b1'], 0n, 1);
    finalRead(h, records('a1'), 'leader 1', 0);
    finalRead(h, records('b1'), 'leader 2', 1);
    expect(checkHistory(h)).toEqual([]);
  });
});

/** An in-memory replica log: one batch per value, offsets from 0, with the given leader epochs. */
function replica(node: number, values: string[], epochs: number[], highWatermark: bigint): ReplicaSource {
  const batches = values.map((value, i) => encodeRecordBatch({ records: [{ key: null, value: Buffer.from(value), timestamp: 1_000n }], baseOffset: BigInt(i), partitionLeaderEpoch: epochs[i] }));
  return {
    node,
    logStartOffset: 0n,
    highWatermark,
    read: async (from, to) =>
      Buffer.concat(
        batches.filter((b) => {
          const header = readBatchHeader(b);
          return lastOffsetOf(header) >= from && lastOffsetOf(header) < to;
        }),
      ),
  };
}

describe('consumers', () => {
  function withConsumer(): History {
    const h = history();
    h.addConsumer('c1', { topic: T, partitions: [0], from: 0n });
    acked(h, 'a', ['a1', 'a2'], 0n);
    acked(h, 'b', ['b1'], 2n);
    finalRead(h, records('a1', 'a2', 'b1'));
    return h;
  }

  it('passes a consumer handed every acknowledged record, some twice (at least once)', () => {
    const h = withConsumer();
    h.consumed('c1', T, 0, records('a1', 'a2'));
    h.consumed('c1', T, 0, [{ offset: 2n, value: 'b1' }]);
    expect(checkHistory(h)).toEqual([]);
  });

  it('not-consumed: an acknowledged record below the final end the consumer was never handed', () => {
    const h = withConsumer();
    h.consumed('c1', T, 0, records('a1', 'a2'));
    const [v, ...rest] = checkHistory(h);
    expect(rest).toEqual([]);
    expect(v).toMatchObject({ property: 'not-consumed', partition: 0, offset: 2n, value: 'b1' });
    expect(v.detail).toMatch(/c1 was never handed 1 acknowledged record/);
  });

  it('consumer-order: offsets handed out of order, and a consumed value that was never produced', () => {
    const h = withConsumer();
    h.consumed('c1', T, 0, [{ offset: 2n, value: 'b1' }]);
    h.consumed('c1', T, 0, records('a1', 'a2'));
    h.consumed('c1', T, 0, [{ offset: 3n, value: 'ghost' }]);
    expect(properties(h).sort()).toEqual(['consumer-order', 'phantom']);
  });

  it('conflict: a consumer handed a record another source puts at a different offset', () => {
    const h = withConsumer();
    h.consumed('c1', T, 0, [{ offset: 0n, value: 'a2' }]);
    expect(properties(h)).toContain('conflict');
  });
});

describe('saved histories', () => {
  it('round-trip through JSON and check the same', () => {
    const h = history();
    h.addConsumer('c1', { topic: T, partitions: [0], from: 0n });
    acked(h, 'a', ['a1', 'a2'], 0n);
    acked(h, 'a', ['a3'], 5n); // lost: the final read ends at 2
    h.unknown(h.invoke('b', T, 0, ['b1'], -1), 'REQUEST_TIMED_OUT');
    h.invoke('b', T, 0, ['b2'], 1);
    h.fault('SIGKILL node 2', [2]);
    h.consumed('c1', T, 0, records('a1'));
    finalRead(h, records('a1', 'a2'));
    const before = checkHistory(h);
    expect(before.map((v) => v.property).sort()).toEqual(['lost', 'not-consumed']);
    const loaded = historyFromJson(JSON.parse(JSON.stringify(historyToJson(h))) as Parameters<typeof historyFromJson>[0]);
    expect(checkHistory(loaded)).toEqual(before);
    expect(loaded.faults).toEqual(h.faults);
  });
});

describe('replica logs compared byte for byte', () => {
  it('passes identical logs, and ignores what lies above the smallest high watermark', async () => {
    const h = history();
    for (const v of ['a1', 'a2', 'a3']) h.unknown(h.invoke('a', T, 0, [v], -1), 'timeout');
    const found = await compareReplicas(h, T, 0, [replica(1, ['a1', 'a2', 'a3'], [0, 0, 1], 3n), replica(2, ['a1', 'a2', 'x'], [0, 0, 1], 2n)]);
    expect(found).toEqual([]);
    expect(h.observations.map((o) => [o.source, o.to])).toEqual([
      ['node 1 log (below its HW 3)', 3n],
      ['node 2 log (below its HW 2)', 2n],
    ]);
    expect(checkHistory(h)).toEqual([]);
  });

  it('reports replicas-differ for the same records under another leader epoch (bytes differ, values agree)', async () => {
    const h = history();
    for (const v of ['a1', 'a2']) h.unknown(h.invoke('a', T, 0, [v], -1), 'timeout');
    const found = await compareReplicas(h, T, 0, [replica(1, ['a1', 'a2'], [0, 1], 2n), replica(3, ['a1', 'a2'], [0, 2], 2n)]);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ property: 'replicas-differ', topic: T, partition: 0 });
    expect(found[0].detail).toContain('node 3 and node 1 differ: batch 1: offsets 1+0 epoch 1 vs offsets 1+0 epoch 2');
    expect(checkHistory(h)).toEqual([]);
  });

  it('reports replicas-differ and a conflict when replicas hold different records below their high watermarks', async () => {
    const h = history();
    for (const v of ['a1', 'a2', 'b2']) h.unknown(h.invoke('a', T, 0, [v], -1), 'timeout');
    const found = await compareReplicas(h, T, 0, [replica(1, ['a1', 'a2'], [0, 0], 2n), replica(2, ['a1', 'b2'], [0, 0], 2n)]);
    expect(found.map((v) => v.property)).toEqual(['replicas-differ']);
    expect(checkHistory(h).map((v) => v.property)).toEqual(['conflict']);
  });
});

describe('recording', () => {
  it('refuses a value used twice and an operation completed twice', () => {
    const h = history();
    const op = h.invoke('a', T, 0, ['a1'], -1);
    expect(() => h.invoke('b', T, 0, ['a1'], -1)).toThrow(/used twice/);
    h.ok(op, 0n);
    expect(() => h.fail(op, 'x')).toThrow(/completed twice/);
    expect(h.summary()).toMatchObject({ ops: 1, ok: 1, records: 1 });
  });

  it('classifies produce errors: refused before the append is definite, anything after is unknown', () => {
    expect(classifyProduceError('NOT_ENOUGH_REPLICAS', '')).toBe('failed');
    expect(classifyProduceError('NOT_LEADER_OR_FOLLOWER', 't-0 is led by node 2, not by node 1')).toBe('failed');
    expect(classifyProduceError('NOT_LEADER_OR_FOLLOWER', 't-0: leadership moved while acks=all waited; the record may or may not be kept, retry')).toBe('unknown');
    expect(classifyProduceError('NOT_ENOUGH_REPLICAS_AFTER_APPEND', '')).toBe('unknown');
    expect(classifyProduceError('REQUEST_TIMED_OUT', '')).toBe('unknown');
    expect(classifyProduceError('KAFKA_STORAGE_ERROR', '')).toBe('unknown');
  });
});
