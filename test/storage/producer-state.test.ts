// Idempotent-producer state (producer-state.ts) and its snapshot files (producer-state-snapshot.ts):
// Kafka's sequence, duplicate and epoch rules, expiration, snapshot round trips, corrupt and torn
// snapshots skipped for an older one, and a seeded property test that rebuilding after a
// truncation (snapshot + replay) gives exactly the state of a log that never held the truncated
// batches. STORAGE_TEST_SEED=<seed> replays a failing seed.
import { readFile, truncate as truncateFile, writeFile, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeRecordBatch, readBatchHeader } from '../../src/codec/record-batch.js';
import { FaultInjectingFs } from '../../src/storage/fault-injecting-fs.js';
import {
  decodeProducerStateSnapshot,
  deleteAllProducerSnapshots,
  deleteProducerSnapshotsAbove,
  deleteProducerSnapshotsBelow,
  encodeProducerStateSnapshot,
  listProducerSnapshots,
  loadProducerState,
  parseProducerSnapshotFileName,
  producerSnapshotFileName,
  readLatestProducerSnapshot,
  retainLatestProducerSnapshots,
  writeProducerSnapshot,
} from '../../src/storage/producer-state-snapshot.js';
import {
  DEFAULT_PRODUCER_ID_EXPIRATION_MS,
  incrementSequence,
  inSequence,
  lastSequenceOf,
  MAX_BATCHES_PER_PRODUCER,
  producerBatchMetaOf,
  ProducerStateManager,
  replayBatchOf,
  type AppendCheck,
  type ProducerBatchMeta,
  type ProducerStateEntrySnapshot,
  type ProducerStateSnapshot,
  type ReplayBatch,
  type UnknownProducerPolicy,
} from '../../src/storage/producer-state.js';
import { INT32_MAX } from '../../src/util/config-values.js';
import { KavkaError, type ErrorName } from '../../src/util/errors.js';
import { makeTempDir, removeTempDir, START_MS } from './helpers/fixtures.js';
import { randomInt, testSeed, withSeed, type Random } from './helpers/prng.js';

const PID = 4242n;

function meta(baseSequence: number, records = 1, producerEpoch = 0, producerId = PID): ProducerBatchMeta {
  return { producerId, producerEpoch, baseSequence, lastOffsetDelta: records - 1, isTransactional: false };
}

function thrown(fn: () => unknown): KavkaError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(KavkaError);
    return error as KavkaError;
  }
  throw new Error('expected a KavkaError, but nothing was thrown');
}

function expectCode(fn: () => unknown, code: ErrorName): KavkaError {
  const error = thrown(fn);
  expect(error.code, error.message).toBe(code);
  return error;
}

/** The leader's path: check, and on 'append' assign offsets from the end and record it. */
function produce(state: ProducerStateManager, batch: ProducerBatchMeta, timestampMs = START_MS): AppendCheck & { offsets?: [bigint, bigint] } {
  const check = state.checkAppend(batch);
  if (check.kind === 'duplicate') return check;
  const first = state.endOffset;
  const last = first + BigInt(batch.lastOffsetDelta);
  state.onAppended(batch, first, last, timestampMs);
  return { kind: 'append', offsets: [first, last] };
}

function appended(state: ProducerStateManager, batch: ProducerBatchMeta, timestampMs = START_MS): [bigint, bigint] {
  const result = produce(state, batch, timestampMs);
  expect(result.kind).toBe('append');
  return result.offsets as [bigint, bigint];
}

describe('sequence numbers', () => {
  it('accepts in-order batches and remembers the last five', () => {
    const state = new ProducerStateManager();
    expect(appended(state, meta(0, 3))).toEqual([0n, 2n]);
    expect(appended(state, meta(3, 2))).toEqual([3n, 4n]);
    appended(state, meta(0, 1, 0, -1n)); // a non-idempotent batch in between
    expect(appended(state, meta(5, 1))).toEqual([6n, 6n]);
    for (let seq = 6; seq < 10; seq++) appended(state, meta(seq));
    const entry = state.entry(PID) as ProducerStateEntrySnapshot;
    expect(entry.producerEpoch).toBe(0);
    expect(entry.batches).toHaveLength(MAX_BATCHES_PER_PRODUCER);
    expect(entry.batches.map((b) => b.firstSeq)).toEqual([5, 6, 7, 8, 9]);
    expect(state.endOffset).toBe(11n);
  });

  it('answers a retry of each of the last five batches with its original offsets and changes nothing', () => {
    const state = new ProducerStateManager();
    const written: { batch: ProducerBatchMeta; offsets: [bigint, bigint] }[] = [];
    let seq = 0;
    for (let i = 0; i < 8; i++) {
      const batch = meta(seq, 1 + (i % 3));
      written.push({ batch, offsets: appended(state, batch) });
      seq = incrementSequence(lastSequenceOf(batch), 1);
      appended(state, meta(0, 2, 0, -1n)); // other traffic between them
    }
    const before = state.snapshot();
    for (const { batch, offsets } of written.slice(-MAX_BATCHES_PER_PRODUCER)) {
      expect(state.checkAppend(batch)).toEqual({ kind: 'duplicate', firstOffset: offsets[0], lastOffset: offsets[1] });
    }
    expect(state.snapshot()).toEqual(before);
  });

  it('rejects a retry older than the last five batches as out of order (Kafka keeps only five)', () => {
    const state = new ProducerStateManager();
    for (let seq = 0; seq < 6; seq++) appended(state, meta(seq));
    const error = expectCode(() => state.checkAppend(meta(0)), 'OUT_OF_ORDER_SEQUENCE_NUMBER');
    expect(error.message).toContain('expected first sequence 6, received 0');
    expect(state.checkAppend(meta(1))).toEqual({ kind: 'duplicate', firstOffset: 1n, lastOffset: 1n });
  });

  it('rejects gaps and partial overlaps, naming the expected and the received sequence', () => {
    const state = new ProducerStateManager(0n, { partitionName: 'orders-0' });
    appended(state, meta(0, 3));
    const gap = expectCode(() => state.checkAppend(meta(5, 2)), 'OUT_OF_ORDER_SEQUENCE_NUMBER');
    expect(gap.message).toContain('expected first sequence 3, received 5');
    expect(gap.message).toContain('orders-0');
    expect(gap.message).toContain(`producer ${PID}`);
    // Same first sequence as the batch written, but a different last one: not a duplicate.
    expectCode(() => state.checkAppend(meta(0, 2)), 'OUT_OF_ORDER_SEQUENCE_NUMBER');
    expectCode(() => state.checkAppend(meta(2, 2)), 'OUT_OF_ORDER_SEQUENCE_NUMBER');
    expect(state.checkAppend(meta(3, 9))).toEqual({ kind: 'append' });
  });

  it('wraps from INT32_MAX to 0', () => {
    expect(incrementSequence(INT32_MAX, 1)).toBe(0);
    expect(incrementSequence(INT32_MAX - 1, 4)).toBe(2);
    expect(incrementSequence(5, 0)).toBe(5);
    expect(inSequence(INT32_MAX, 0)).toBe(true);
    expect(inSequence(INT32_MAX, 1)).toBe(false);
    expect(inSequence(-1, 0)).toBe(true);

    const state = new ProducerStateManager();
    // State a follower copied from its leader: a batch ending exactly at INT32_MAX.
    state.onAppended(meta(INT32_MAX - 2, 3), 0n, 2n, START_MS);
    expect(state.entry(PID)?.batches[0].lastSeq).toBe(INT32_MAX);
    expectCode(() => state.checkAppend(meta(1)), 'OUT_OF_ORDER_SEQUENCE_NUMBER');
    // A batch that crosses the wrap: sequences INT32_MAX+1 = 0 .. 3.
    expect(appended(state, meta(0, 4))).toEqual([3n, 6n]);
    expect(appended(state, meta(4))).toEqual([7n, 7n]);

    const across = new ProducerStateManager();
    across.onAppended(meta(INT32_MAX - 1, 4), 0n, 3n, START_MS); // INT32_MAX-1, INT32_MAX, 0, 1
    expect(across.entry(PID)?.batches[0]).toMatchObject({ firstSeq: INT32_MAX - 1, lastSeq: 1 });
    expect(across.checkAppend(meta(INT32_MAX - 1, 4))).toEqual({ kind: 'duplicate', firstOffset: 0n, lastOffset: 3n });
    const error = expectCode(() => across.checkAppend(meta(3)), 'OUT_OF_ORDER_SEQUENCE_NUMBER');
    expect(error.message).toContain('expected first sequence 2, received 3');
    expect(appended(across, meta(2))).toEqual([4n, 4n]);
  });
});

describe('epochs', () => {
  it('starts a higher epoch at sequence 0 and forgets the old epoch', () => {
    const state = new ProducerStateManager();
    appended(state, meta(0, 2, 3));
    appended(state, meta(2, 2, 3));
    const error = expectCode(() => state.checkAppend(meta(4, 1, 4)), 'OUT_OF_ORDER_SEQUENCE_NUMBER');
    expect(error.message).toContain('a new epoch must start at sequence 0');
    expect(appended(state, meta(0, 1, 4))).toEqual([4n, 4n]);
    const entry = state.entry(PID) as ProducerStateEntrySnapshot;
    expect(entry.producerEpoch).toBe(4);
    expect(entry.batches).toEqual([{ firstSeq: 0, lastSeq: 0, firstOffset: 4n, lastOffset: 4n, timestampMs: START_MS }]);
    expect(state.checkAppend(meta(1, 1, 4))).toEqual({ kind: 'append' });
  });

  it('fences a lower epoch, even a retry of a batch it wrote', () => {
    const state = new ProducerStateManager();
    appended(state, meta(0, 1, 1));
    appended(state, meta(0, 1, 2));
    const error = expectCode(() => state.checkAppend(meta(0, 1, 1)), 'INVALID_PRODUCER_EPOCH');
    expect(error.message).toContain('epoch 1');
    expect(error.message).toContain('epoch 2');
    expectCode(() => state.checkAppend(meta(1, 1, 0)), 'INVALID_PRODUCER_EPOCH');
  });
});

describe('unknown producers', () => {
  it('rejects a first batch with a sequence other than 0 (DESIGN.md, Kafka 2.x) and accepts sequence 0', () => {
    const state = new ProducerStateManager();
    const error = expectCode(() => state.checkAppend(meta(7, 2, 1)), 'UNKNOWN_PRODUCER_ID');
    expect(error.message).toContain('sequences 7..8');
    expect(state.checkAppend(meta(0, 2, 1))).toEqual({ kind: 'append' });
  });

  it("accepts any first sequence under the 'accept' policy (Kafka 3, KIP-360)", () => {
    const state = new ProducerStateManager(0n, { unknownProducerPolicy: 'accept' });
    expect(appended(state, meta(7, 2, 1))).toEqual([0n, 1n]);
    expectCode(() => state.checkAppend(meta(10, 1, 1)), 'OUT_OF_ORDER_SEQUENCE_NUMBER');
  });

  it('expires a producer idle for producer.id.expiration.ms; its next batch is then UNKNOWN_PRODUCER_ID', () => {
    const state = new ProducerStateManager();
    const other = 77n;
    appended(state, meta(0, 1), START_MS);
    appended(state, meta(1, 1), START_MS + 1000);
    appended(state, meta(0, 1, 0, other), START_MS + 5000);
    expect(state.lastTimestampMs(PID)).toBe(START_MS + 1000);
    const expiry = DEFAULT_PRODUCER_ID_EXPIRATION_MS;
    expect(state.removeExpired(START_MS + 1000 + expiry - 1, expiry)).toEqual([]);
    expect(state.removeExpired(START_MS + 1000 + expiry)).toEqual([PID]);
    expect(state.entry(PID)).toBeUndefined();
    expect(state.entry(other)).toBeDefined();
    expectCode(() => state.checkAppend(meta(2)), 'UNKNOWN_PRODUCER_ID');
    expect(appended(state, meta(0, 1, 1))).toEqual([3n, 3n]);
  });
});

describe('batches the manager does not track', () => {
  it('passes non-idempotent batches whatever their fields, records nothing, and advances the end offset', () => {
    const state = new ProducerStateManager(10n);
    const plain = { producerId: -1n, producerEpoch: -1, baseSequence: -1, lastOffsetDelta: 4, isTransactional: false };
    expect(state.checkAppend(plain)).toEqual({ kind: 'append' });
    state.onAppended(plain, 10n, 14n, START_MS);
    expect(state.producerCount).toBe(0);
    expect(state.snapshot()).toEqual({ endOffset: 15n, producers: [] });
  });

  it('rejects transactional batches and impossible fields as INVALID_RECORD', () => {
    const state = new ProducerStateManager();
    expectCode(() => state.checkAppend({ ...meta(0), isTransactional: true }), 'INVALID_RECORD');
    expectCode(() => state.checkAppend(meta(-1)), 'INVALID_RECORD');
    expectCode(() => state.checkAppend(meta(0, 1, -1)), 'INVALID_RECORD');
  });
});

describe('appends of several batches', () => {
  it('checks each batch against the ones before it in the same append', () => {
    const state = new ProducerStateManager();
    appended(state, meta(0, 2));
    expect(state.checkAppends([meta(2, 2), meta(0, 1, 0, 9n), meta(4, 1), meta(1, 1, 0, 9n)])).toEqual({ kind: 'append' });
    expectCode(() => state.checkAppends([meta(2, 2), meta(5, 1)]), 'OUT_OF_ORDER_SEQUENCE_NUMBER');
    expectCode(() => state.checkAppends([meta(2, 2), meta(2, 2)]), 'OUT_OF_ORDER_SEQUENCE_NUMBER');
    // A retry inside a larger append cannot be answered with one offset range.
    expectCode(() => state.checkAppends([meta(0, 2), meta(2, 1)]), 'DUPLICATE_SEQUENCE_NUMBER');
    expect(state.snapshot().endOffset).toBe(2n);
  });
});

describe('batch headers', () => {
  it('reads the producer fields of a RecordBatch v2 header, and its max timestamp for replay', () => {
    const bytes = encodeRecordBatch({
      records: [0, 1, 2].map((i) => ({ key: null, value: Buffer.from([i]), timestamp: BigInt(START_MS + i) })),
      producerId: 12n,
      producerEpoch: 3,
      baseSequence: INT32_MAX - 1,
      baseOffset: 40n,
    });
    const header = readBatchHeader(bytes);
    const batchMeta = producerBatchMetaOf(header);
    expect(batchMeta).toEqual({ producerId: 12n, producerEpoch: 3, baseSequence: INT32_MAX - 1, lastOffsetDelta: 2, isTransactional: false });
    expect(lastSequenceOf(batchMeta)).toBe(0);
    expect(replayBatchOf(header, 1)).toMatchObject({ baseOffset: 40n, timestampMs: START_MS + 2, isControl: false });
    expect(replayBatchOf({ ...header, maxTimestamp: -1n }, 99).timestampMs).toBe(99);
    const plain = producerBatchMetaOf(readBatchHeader(encodeRecordBatch({ records: [{ key: null, value: null, timestamp: 0n }] })));
    expect(plain.producerId).toBe(-1n);
  });
});

// ---------------------------------------------------------------- snapshot files

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir();
});
afterEach(async () => {
  await removeTempDir(dir);
});

function sampleState(): ProducerStateManager {
  const state = new ProducerStateManager();
  let ts = START_MS;
  for (let i = 0; i < 7; i++) appended(state, meta(2 * i, 2), ts++);
  appended(state, meta(0, 3, 0, 1n), ts++);
  appended(state, meta(0, 1, 0, -1n), ts++);
  state.onAppended(meta(INT32_MAX, 2, 32_767, 99n), state.endOffset, state.endOffset + 1n, ts++);
  return state;
}

async function writeAt(fs: FaultInjectingFs, endOffset: bigint): Promise<ProducerStateSnapshot> {
  const state = new ProducerStateManager();
  while (state.endOffset < endOffset) {
    const seq = Number(state.endOffset);
    state.onAppended(meta(seq), state.endOffset, state.endOffset, START_MS + seq);
  }
  const snapshot = state.snapshot();
  await writeProducerSnapshot(fs, dir, snapshot);
  return snapshot;
}

describe('snapshot files', () => {
  it('round-trips the whole state through bytes and through a file', async () => {
    const state = sampleState();
    const snapshot = state.snapshot();
    expect(snapshot.producers.map((p) => p.producerId)).toEqual([1n, PID, 99n].sort((a, b) => (a < b ? -1 : 1)));
    const decoded = decodeProducerStateSnapshot(encodeProducerStateSnapshot(snapshot), snapshot.endOffset);
    expect(decoded).toEqual({ ok: true, snapshot });

    const fs = new FaultInjectingFs(undefined, { skipSync: true });
    const path = await writeProducerSnapshot(fs, dir, snapshot);
    expect(path).toBe(join(dir, producerSnapshotFileName(snapshot.endOffset)));
    expect(producerSnapshotFileName(12n)).toBe('00000000000000000012.snapshot');
    expect(parseProducerSnapshotFileName('00000000000000000012.snapshot')).toBe(12n);
    expect(parseProducerSnapshotFileName('00000000000000000012.snapshot.tmp')).toBeUndefined();
    const loaded = await readLatestProducerSnapshot(fs, dir, snapshot.endOffset);
    expect(loaded).toEqual({ snapshot, skipped: [] });
    const restored = ProducerStateManager.fromSnapshot(loaded.snapshot as ProducerStateSnapshot);
    expect(restored.snapshot()).toEqual(snapshot);
    // The restored manager behaves like the original.
    expect(restored.checkAppend(meta(12, 2))).toEqual(state.checkAppend(meta(12, 2)));
    expect(restored.checkAppend(meta(14, 1))).toEqual({ kind: 'append' });
    expect(restored.checkAppend(meta(1, 1, 32_767, 99n))).toEqual({ kind: 'append' });

    const empty = new ProducerStateManager(5n).snapshot();
    expect(decodeProducerStateSnapshot(encodeProducerStateSnapshot(empty))).toEqual({ ok: true, snapshot: empty });
  });

  it('skips corrupt, torn, empty and misnamed snapshots and falls back to an older one', async () => {
    const fs = new FaultInjectingFs(undefined, { skipSync: true });
    const s10 = await writeAt(fs, 10n);
    await writeAt(fs, 20n);
    await writeAt(fs, 30n);
    await writeAt(fs, 40n);
    // 40: a flipped bit; 30: torn in the middle; 20: empty. A misnamed copy of 10 at 35.
    const p = (o: bigint) => join(dir, producerSnapshotFileName(o));
    const bytes40 = await readFile(p(40n));
    bytes40[bytes40.length - 3] ^= 0x10;
    await writeFile(p(40n), bytes40);
    await truncateFile(p(30n), 40);
    await truncateFile(p(20n), 0);
    await copyFile(p(10n), p(35n));
    await writeFile(p(50n) + '.tmp', Buffer.from('leftover'));

    expect(await listProducerSnapshots(fs, dir)).toEqual([10n, 20n, 30n, 35n, 40n]);
    const latest = await readLatestProducerSnapshot(fs, dir, 1000n);
    expect(latest.snapshot).toEqual(s10);
    expect(latest.skipped.map((s) => s.endOffset)).toEqual([40n, 35n, 30n, 20n]);
    expect(latest.skipped[0].problem).toContain('CRC-32C mismatch');
    expect(latest.skipped[1].problem).toContain('named for 35');
    expect(latest.skipped[2].problem).toMatch(/past the end|CRC/);
    expect(latest.skipped[3].problem).toContain('torn or empty');
    expect((await readLatestProducerSnapshot(fs, dir, 15n)).snapshot).toEqual(s10);
    expect(await readLatestProducerSnapshot(fs, dir, 9n)).toEqual({ snapshot: undefined, skipped: [] });

    const bad = Buffer.from(encodeProducerStateSnapshot(s10));
    bad.writeInt16BE(2, 4);
    expect(decodeProducerStateSnapshot(bad)).toMatchObject({ ok: false, problem: expect.stringContaining('version 2') });
    const trailing = Buffer.concat([encodeProducerStateSnapshot(s10), Buffer.alloc(1)]);
    expect(decodeProducerStateSnapshot(trailing).ok).toBe(false);
  });

  it('a failed write leaves the previous snapshots as they were (fault injection)', async () => {
    const fs = new FaultInjectingFs(undefined, { skipSync: true });
    const s10 = await writeAt(fs, 10n);
    const isSnapshot = (path: string) => path.includes('.snapshot');
    fs.failNext('rename', 'EIO', isSnapshot);
    await expect(writeAt(fs, 20n)).rejects.toMatchObject({ code: 'EIO' });
    fs.failNext('write', 'ENOSPC', isSnapshot);
    await expect(writeAt(fs, 30n)).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(await listProducerSnapshots(fs, dir)).toEqual([10n]);
    expect((await readLatestProducerSnapshot(fs, dir, 100n)).snapshot).toEqual(s10);
    fs.failNext('readFile', 'EIO', isSnapshot);
    await expect(readLatestProducerSnapshot(fs, dir, 100n)).rejects.toMatchObject({ code: 'EIO' });
  });

  it('deletes snapshots above an offset durably, below an offset, and all but the newest few', async () => {
    const fs = new FaultInjectingFs(undefined, { skipSync: true });
    for (const o of [0n, 10n, 20n, 30n, 40n, 50n]) await writeAt(fs, o);
    fs.clearCalls();
    expect(await deleteProducerSnapshotsAbove(fs, dir, 40n)).toEqual([50n]);
    expect(fs.count('syncDirectory')).toBe(1);
    expect(await deleteProducerSnapshotsAbove(fs, dir, 40n)).toEqual([]);
    expect(fs.count('syncDirectory')).toBe(1);
    expect(await deleteProducerSnapshotsBelow(fs, dir, 10n)).toEqual([0n]);
    expect(await listProducerSnapshots(fs, dir)).toEqual([10n, 20n, 30n, 40n]);
    expect(await retainLatestProducerSnapshots(fs, dir, 2)).toEqual([10n, 20n]);
    expect(await listProducerSnapshots(fs, dir)).toEqual([30n, 40n]);
    expect(await retainLatestProducerSnapshots(fs, dir, 5)).toEqual([]);
    fs.clearCalls();
    expect(await deleteAllProducerSnapshots(fs, dir)).toEqual([30n, 40n]);
    expect(await listProducerSnapshots(fs, dir)).toEqual([]);
    expect(fs.count('syncDirectory')).toBe(1);
  });
});

// ---------------------------------------------------------------- rebuilding

interface LogBatch extends ReplayBatch {
  lastOffset: bigint;
}

function logBatch(batch: ProducerBatchMeta, baseOffset: bigint, timestampMs: number): LogBatch {
  return { ...batch, baseOffset, lastOffset: baseOffset + BigInt(batch.lastOffsetDelta), timestampMs, isControl: false };
}

function readFrom(log: readonly LogBatch[], calls: bigint[] = []) {
  return (from: bigint): AsyncIterable<ReplayBatch> => {
    calls.push(from);
    // Like a segment read: starts at the batch holding `from`, or a little before it.
    const start = Math.max(0, log.findIndex((b) => b.lastOffset >= from) - 1);
    const slice = log.slice(start);
    return (async function* () {
      for (const b of slice) yield b;
    })();
  };
}

/**
 * The state a log holds, computed from the log alone (independent of onAppended): per producer,
 * the epoch of its newest batch and the newest (up to 5) of its batches in that epoch.
 */
function oracle(log: readonly LogBatch[], endOffset: bigint): ProducerStateSnapshot {
  const byProducer = new Map<bigint, LogBatch[]>();
  for (const b of log) {
    if (b.producerId < 0n || b.isControl) continue;
    byProducer.set(b.producerId, [...(byProducer.get(b.producerId) ?? []), b]);
  }
  const producers = [...byProducer.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([producerId, batches]) => {
      const epoch = batches[batches.length - 1].producerEpoch;
      let i = batches.length;
      while (i > 0 && batches[i - 1].producerEpoch === epoch) i--;
      const kept = batches.slice(Math.max(i, batches.length - MAX_BATCHES_PER_PRODUCER));
      return {
        producerId,
        producerEpoch: epoch,
        batches: kept.map((b) => ({ firstSeq: b.baseSequence, lastSeq: lastSequenceOf(b), firstOffset: b.baseOffset, lastOffset: b.lastOffset, timestampMs: b.timestampMs })),
      };
    });
  return { endOffset, producers };
}

/** What checkAppend must answer for `batch`, from the oracle state. */
function predict(state: ProducerStateSnapshot, batch: ProducerBatchMeta, policy: UnknownProducerPolicy): AppendCheck | ErrorName {
  if (batch.producerId < 0n) return { kind: 'append' };
  const entry = state.producers.find((p) => p.producerId === batch.producerId);
  const lastSeq = lastSequenceOf(batch);
  if (entry === undefined) return batch.baseSequence === 0 || policy === 'accept' ? { kind: 'append' } : 'UNKNOWN_PRODUCER_ID';
  if (entry.producerEpoch === batch.producerEpoch) {
    const original = entry.batches.find((b) => b.firstSeq === batch.baseSequence && b.lastSeq === lastSeq);
    if (original !== undefined) return { kind: 'duplicate', firstOffset: original.firstOffset, lastOffset: original.lastOffset };
  }
  if (batch.producerEpoch < entry.producerEpoch) return 'INVALID_PRODUCER_EPOCH';
  if (batch.producerEpoch > entry.producerEpoch) return batch.baseSequence === 0 ? { kind: 'append' } : 'OUT_OF_ORDER_SEQUENCE_NUMBER';
  return inSequence(entry.batches[entry.batches.length - 1].lastSeq, batch.baseSequence) ? { kind: 'append' } : 'OUT_OF_ORDER_SEQUENCE_NUMBER';
}

describe('rebuilding from snapshots and the log', () => {
  it('loads the newest snapshot at or below the log end, replays only what follows it, and deletes stale ones', async () => {
    const fs = new FaultInjectingFs(undefined, { skipSync: true });
    const live = new ProducerStateManager();
    const log: LogBatch[] = [];
    for (let i = 0; i < 12; i++) {
      const batch = meta(2 * i, 2);
      const [first] = appended(live, batch, START_MS + i);
      log.push(logBatch(batch, first, START_MS + i));
      if (i === 4 || i === 8 || i === 11) await writeProducerSnapshot(fs, dir, live.snapshot());
    }
    // Snapshots at 10, 18, 24 (after batches 4, 8 and 11). Truncate to 16: 18 and 24 go.
    const kept = log.filter((b) => b.baseOffset < 16n);
    const calls: bigint[] = [];
    const loaded = await loadProducerState({ fs, directory: dir, logStartOffset: 0n, logEndOffset: 16n, readBatches: readFrom(log, calls) });
    expect(loaded.deletedAbove).toEqual([18n, 24n]);
    expect(loaded.snapshotOffset).toBe(10n);
    expect(calls).toEqual([10n]);
    expect(loaded.replayed).toBe(3);
    expect(loaded.manager.snapshot()).toEqual(oracle(kept, 16n));

    // A snapshot exactly at the log end: nothing to replay.
    await writeProducerSnapshot(fs, dir, loaded.manager.snapshot());
    const calls2: bigint[] = [];
    const again = await loadProducerState({ fs, directory: dir, logStartOffset: 0n, logEndOffset: 16n, readBatches: readFrom(kept, calls2) });
    expect(calls2).toEqual([]);
    expect(again.manager.snapshot()).toEqual(loaded.manager.snapshot());
  });

  it('keeps producers whose batches are below the log start when a snapshot holds them', async () => {
    const fs = new FaultInjectingFs(undefined, { skipSync: true });
    const live = new ProducerStateManager();
    const log: LogBatch[] = [];
    for (let seq = 0; seq < 3; seq++) log.push(logBatch(meta(seq), appended(live, meta(seq))[0], START_MS));
    await writeProducerSnapshot(fs, dir, live.snapshot()); // at 3
    for (let seq = 0; seq < 3; seq++) log.push(logBatch(meta(seq, 1, 0, 8n), appended(live, meta(seq, 1, 0, 8n))[0], START_MS));
    // Retention moved the log start to 4: the snapshot at 3 is below it, batch 3 is gone.
    const retained = log.filter((b) => b.baseOffset >= 4n);
    const loaded = await loadProducerState({ fs, directory: dir, logStartOffset: 4n, logEndOffset: 6n, readBatches: readFrom(retained) });
    expect(loaded.manager.entry(PID)?.batches.map((b) => b.firstSeq)).toEqual([0, 1, 2]);
    expect(loaded.manager.entry(8n)?.batches.map((b) => b.firstSeq)).toEqual([1, 2]);
    expect(loaded.manager.checkAppend(meta(3))).toEqual({ kind: 'append' });
    // Without the snapshot, the log alone no longer knows producer 4242.
    const bare = await ProducerStateManager.loadFromSnapshotAndReplay(undefined, retained, { logStartOffset: 4n, logEndOffset: 6n });
    expect(bare.manager.entry(PID)).toBeUndefined();
    expect(bare.manager.endOffset).toBe(6n);
  });

  it('property: after random appends, snapshots, corruptions, truncations and restarts the state equals that of a log that never held the truncated batches', async () => {
    const baseSeed = testSeed(0x5eed);
    const seeds = process.env.STORAGE_TEST_SEED ? [baseSeed] : Array.from({ length: 30 }, (_, i) => baseSeed + i);
    const seen = newCoverage();
    for (const seed of seeds) {
      await withSeed(seed, (random) => runScenario(random, join(dir, `s${seed}`), seen));
    }
    // The scenarios reach every case they are meant to (a guard against a generator that drifted;
    // not checked when replaying one seed).
    if (seeds.length > 1) for (const [what, count] of Object.entries(seen)) expect(count, what).toBeGreaterThan(0);
  });
});

function newCoverage() {
  return {
    append: 0,
    duplicate: 0,
    OUT_OF_ORDER_SEQUENCE_NUMBER: 0,
    INVALID_PRODUCER_EPOCH: 0,
    UNKNOWN_PRODUCER_ID: 0,
    wrapped: 0,
    truncationFromSnapshot: 0,
    truncationFromLogStart: 0,
    corruptSnapshotSkipped: 0,
    restart: 0,
  };
}
type Coverage = ReturnType<typeof newCoverage>;

interface Client {
  producerId: bigint;
  epoch: number;
  nextSeq: number;
}

async function runScenario(random: Random, directory: string, seen: Coverage): Promise<void> {
  const fs = new FaultInjectingFs(undefined, { skipSync: true });
  await fs.mkdir(directory);
  const policy: UnknownProducerPolicy = random() < 0.5 ? 'reject' : 'accept';
  const options = { unknownProducerPolicy: policy, partitionName: 'orders-0' };
  let live = new ProducerStateManager(0n, options);
  let log: LogBatch[] = [];
  let nowMs = START_MS;
  const clients: Client[] = [1n, 2n, 3n].map((producerId) => ({ producerId, epoch: 0, nextSeq: 0 }));
  const steps = 150;
  for (let step = 0; step < steps; step++) {
    nowMs += randomInt(random, 0, 1000);
    const end = log.length === 0 ? 0n : log[log.length - 1].lastOffset + 1n;
    const r = random();
    if (r < 0.62) {
      const batch = nextBatch(random, clients, log, policy);
      const expected = predict(oracle(log, end), batch, policy);
      let actual: AppendCheck | ErrorName;
      try {
        actual = live.checkAppend(batch);
      } catch (error) {
        if (!(error instanceof KavkaError)) throw error;
        actual = error.code;
      }
      expect(actual, `step ${step}: ${JSON.stringify(batch, (_, v) => (typeof v === 'bigint' ? `${v}n` : v))}`).toEqual(expected);
      if (typeof actual === 'string') {
        if (actual in seen) seen[actual as keyof Coverage] += 1;
      } else {
        seen[actual.kind] += 1;
        if (actual.kind === 'append' && batch.producerId >= 0n && lastSequenceOf(batch) < batch.baseSequence) seen.wrapped += 1;
      }
      const client = clients.find((c) => c.producerId === batch.producerId);
      if (typeof actual !== 'string' && actual.kind === 'append') {
        const added = logBatch(batch, end, nowMs);
        live.onAppended(batch, added.baseOffset, added.lastOffset, nowMs);
        log.push(added);
        if (client !== undefined) {
          client.epoch = batch.producerEpoch;
          client.nextSeq = incrementSequence(lastSequenceOf(batch), 1);
        }
      } else if (typeof actual !== 'string') {
        const original = log.find((b) => b.baseOffset === actual.firstOffset);
        expect(original).toMatchObject({ producerId: batch.producerId, producerEpoch: batch.producerEpoch, baseSequence: batch.baseSequence, lastOffset: actual.lastOffset });
      } else if (client !== undefined && random() < 0.7) {
        // The producer gives up on its sequence and bumps its epoch (what KIP-360 clients do).
        client.epoch = Math.max(client.epoch, live.entry(client.producerId)?.producerEpoch ?? 0) + 1;
        client.nextSeq = 0;
      }
    } else if (r < 0.75) {
      await writeProducerSnapshot(fs, directory, live.snapshot());
    } else if (r < 0.8) {
      const offsets = await listProducerSnapshots(fs, directory);
      if (offsets.length > 0) {
        const path = join(directory, producerSnapshotFileName(offsets[randomInt(random, 0, offsets.length)]));
        const bytes = await readFile(path);
        if (random() < 0.5) await truncateFile(path, randomInt(random, 0, bytes.length));
        else {
          bytes[randomInt(random, 0, bytes.length)] ^= 1 << randomInt(random, 0, 8);
          await writeFile(path, bytes);
        }
      }
    } else if (r < 0.93) {
      // Truncation to a batch boundary (what the log does for replication or recovery).
      const cut = log.length === 0 ? 0 : randomInt(random, Math.max(0, log.length - 6), log.length + 1);
      const offset = cut < log.length ? log[cut].baseOffset : end;
      log = log.slice(0, cut);
      const loaded = await loadProducerState({ fs, directory, logStartOffset: 0n, logEndOffset: offset, readBatches: readFrom(log), producerState: options });
      live = loaded.manager;
      if (loaded.snapshotOffset === undefined) seen.truncationFromLogStart += 1;
      else seen.truncationFromSnapshot += 1;
      if (loaded.skipped.length > 0) seen.corruptSnapshotSkipped += 1;
      expect(live.snapshot(), `after truncation to ${offset} at step ${step}`).toEqual(oracle(log, offset));
      expect((await listProducerSnapshots(fs, directory)).every((o) => o <= offset)).toBe(true);
    } else {
      // Restart: rebuild at the same log end.
      const before = live.snapshot();
      seen.restart += 1;
      live = (await loadProducerState({ fs, directory, logStartOffset: 0n, logEndOffset: end, readBatches: readFrom(log), producerState: options })).manager;
      expect(live.snapshot(), `after restart at step ${step}`).toEqual(before);
    }
    expect(live.snapshot(), `after step ${step}`).toEqual(oracle(log, log.length === 0 ? 0n : log[log.length - 1].lastOffset + 1n));
  }
}

function nextBatch(random: Random, clients: Client[], log: readonly LogBatch[], policy: UnknownProducerPolicy): ProducerBatchMeta {
  const r = random();
  if (r < 0.1) return { producerId: -1n, producerEpoch: -1, baseSequence: -1, lastOffsetDelta: randomInt(random, 0, 3), isTransactional: false };
  const client = clients[randomInt(random, 0, clients.length)];
  const records = randomInt(random, 1, 4);
  const own = log.filter((b) => b.producerId === client.producerId);
  if (r < 0.25 && own.length > 0) {
    // A retry of one of its recent batches (sometimes older than the last five, or of an older epoch).
    const original = own[Math.max(0, own.length - randomInt(random, 1, 9))];
    return { producerId: original.producerId, producerEpoch: original.producerEpoch, baseSequence: original.baseSequence, lastOffsetDelta: original.lastOffsetDelta, isTransactional: false };
  }
  if (r < 0.32) return meta(incrementSequence(client.nextSeq, randomInt(random, 1, 4)), records, client.epoch, client.producerId);
  if (r < 0.36) return meta(randomInt(random, 0, 3), records, client.epoch + 1, client.producerId);
  if (r < 0.39 && client.epoch > 0) return meta(client.nextSeq, records, client.epoch - 1, client.producerId);
  if (r < 0.5 && policy === 'accept' && own.length === 0) {
    // A producer Kafka 3 would accept mid-stream, close to the wrap.
    client.nextSeq = INT32_MAX - randomInt(random, 0, 6);
  }
  return meta(client.nextSeq, records, client.epoch, client.producerId);
}
