// Idempotent producers in the partition log (DESIGN.md section 4; producer-state.ts wired into
// partition-log.ts): a leader's append checks each producer's sequence and epoch before offsets
// are assigned, answers a retry of one of the producer's last 5 batches with the original offsets
// and writes nothing, rejects gaps and fenced epochs with nothing written; followers record every
// batch so a promoted replica knows every producer; the state survives a clean close (snapshot at
// the log end) and a crash (snapshot + replay), is rebuilt by truncateTo and emptied by
// truncateFullyAndStartAt, and expires after producer.id.expiration.ms (then UNKNOWN_PRODUCER_ID).
// Real files, a manual clock, no randomness.
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeRecordBatch } from '../../src/codec/record-batch.js';
import { FaultInjectingFs, type AppendResult, type FilePartitionLog, type PartitionLog } from '../../src/storage/index.js';
import { producerSnapshotFileName } from '../../src/storage/producer-state-snapshot.js';
import { ManualClock } from '../../src/util/clock.js';
import { KavkaError } from '../../src/util/errors.js';
import { batch, capturingLogger, makeTempDir, openTestLog, readAllBatches, removeTempDir, settle, START_MS, testConfig, waitUntil } from './helpers/fixtures.js';

const PID = 7001n;
const OTHER_PID = 7002n;
const LEADER_EPOCH = 3;

let dir: string;
let partitionDir: string;
beforeEach(async () => {
  dir = await makeTempDir();
  partitionDir = join(dir, 'orders-0');
});
afterEach(async () => {
  await removeTempDir(dir);
});

interface ProducerBatchOptions {
  records?: number;
  producerEpoch?: number;
  producerId?: bigint;
  valueBytes?: number;
}

/** A producer's batch; the same arguments give the same bytes (what a retry resends). */
function producerBatch(baseSequence: number, options: ProducerBatchOptions = {}): Buffer {
  const producerId = options.producerId ?? PID;
  return encodeRecordBatch({
    records: Array.from({ length: options.records ?? 1 }, (_, i) => ({
      key: Buffer.from(`p${producerId}-s${baseSequence + i}`),
      value: Buffer.alloc(options.valueBytes ?? 20, (baseSequence + i) & 0xff),
      timestamp: BigInt(START_MS),
    })),
    producerId,
    producerEpoch: options.producerEpoch ?? 0,
    baseSequence,
  });
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    return error instanceof KavkaError ? error.code : `not a KavkaError: ${String(error)}`;
  }
}

/** What must not change when an append writes nothing. */
async function footprint(log: FilePartitionLog): Promise<{ logEndOffset: bigint; sizeBytes: number; segments: bigint[]; files: Record<string, number>; bytes: string }> {
  const files: Record<string, number> = {};
  for (const name of (await readdir(partitionDir)).sort()) {
    if (name.endsWith('.log')) files[name] = (await stat(join(partitionDir, name))).size;
  }
  const bytes = Buffer.concat((await readAllBatches(log)).map((b) => b.bytes)).toString('base64');
  return { logEndOffset: log.logEndOffset, sizeBytes: log.sizeBytes, segments: log.segmentBaseOffsets, files, bytes };
}

async function snapshotFiles(): Promise<string[]> {
  return (await readdir(partitionDir)).filter((name) => name.endsWith('.snapshot')).sort();
}

interface Sent {
  sequence: number;
  records: number;
  result: AppendResult;
}

/** Appends batches of 1..3 records for PID from sequence 0 on, with other traffic in between; returns PID's batches. */
async function appendHistory(log: PartitionLog, count: number): Promise<Sent[]> {
  const sent: Sent[] = [];
  let sequence = 0;
  let otherSequence = 0;
  for (let i = 0; i < count; i++) {
    const records = 1 + (i % 3);
    const result = await log.appendAsLeader(producerBatch(sequence, { records }), LEADER_EPOCH);
    expect(result.duplicate).toBe(false);
    sent.push({ sequence, records, result });
    sequence += records;
    if (i % 2 === 0) await log.appendAsLeader(batch({ tag: i }), LEADER_EPOCH); // not idempotent
    if (i % 3 === 0) await log.appendAsLeader(producerBatch(otherSequence++, { producerId: OTHER_PID }), LEADER_EPOCH);
  }
  return sent;
}

/** Each of PID's last five batches, retried, is answered with its original offsets. */
async function expectRetriesAnswered(log: FilePartitionLog, sent: Sent[]): Promise<void> {
  for (const original of sent.slice(-5)) {
    const before = await footprint(log);
    const retry = await log.appendAsLeader(producerBatch(original.sequence, { records: original.records }), LEADER_EPOCH);
    expect(retry).toMatchObject({ duplicate: true, baseOffset: original.result.baseOffset, lastOffset: original.result.lastOffset, recordCount: 0, sizeBytes: 0 });
    expect(await footprint(log)).toEqual(before);
  }
}

/** Takes the log dir offline (an fdatasync fails), so close() writes no snapshot and no clean-shutdown marker. */
async function crash(log: FilePartitionLog, fs: FaultInjectingFs): Promise<void> {
  fs.failNext('datasync');
  expect(await codeOf(log.flush())).toBe('KAFKA_STORAGE_ERROR');
  await log.close();
}

describe('appendAsLeader with idempotent producers', () => {
  it('answers a retry of each of the last 5 batches with the original offsets and writes nothing', async () => {
    const log = await openTestLog(partitionDir);
    const sent = await appendHistory(log, 8);
    await expectRetriesAnswered(log, sent);
    // Older than the last five: Kafka no longer knows it, so it is out of order.
    const sixthLast = sent[sent.length - 6];
    const before = await footprint(log);
    expect(await codeOf(log.appendAsLeader(producerBatch(sixthLast.sequence, { records: sixthLast.records }), LEADER_EPOCH))).toBe('OUT_OF_ORDER_SEQUENCE_NUMBER');
    // A retry inside an append of several batches cannot be answered with one offset range.
    const last = sent[sent.length - 1];
    const next = last.sequence + last.records;
    const two = Buffer.concat([producerBatch(last.sequence, { records: last.records }), producerBatch(next)]);
    expect(await codeOf(log.appendAsLeader(two, LEADER_EPOCH))).toBe('DUPLICATE_SEQUENCE_NUMBER');
    expect(await footprint(log)).toEqual(before);
    // The producer goes on where it was.
    const appended = await log.appendAsLeader(producerBatch(next), LEADER_EPOCH);
    expect(appended).toMatchObject({ duplicate: false, baseOffset: before.logEndOffset });
    await log.close();
  });

  it('answers a retry only once the original is durable, in offset order with later appends (group commit)', async () => {
    const fs = new FaultInjectingFs();
    const log = await openTestLog(partitionDir, { fs });
    const hold = fs.hold('datasync', (path) => path.endsWith('.log'));
    const original = log.appendAsLeader(producerBatch(0, { records: 2 }), LEADER_EPOCH);
    await hold.reached;
    const later = log.appendAsLeader(batch({ tag: 9 }), LEADER_EPOCH);
    let answered: AppendResult | undefined;
    const retry = log.appendAsLeader(producerBatch(0, { records: 2 }), LEADER_EPOCH).then((result) => (answered = result));
    await waitUntil(() => log.logEndOffset === 3n, 'the later append is written');
    await settle();
    expect(log.durableEndOffset).toBe(0n);
    expect(answered).toBeUndefined();
    hold.release();
    expect(await original).toMatchObject({ baseOffset: 0n, lastOffset: 1n, duplicate: false });
    await retry;
    expect(answered).toMatchObject({ baseOffset: 0n, lastOffset: 1n, duplicate: true });
    expect((await later).baseOffset).toBe(2n);
    expect(log.logEndOffset).toBe(3n);
    await log.close();
  });

  it('rejects a sequence gap (OUT_OF_ORDER_SEQUENCE_NUMBER) with nothing written, not even a roll', async () => {
    const one = producerBatch(0, { valueBytes: 200 }).length;
    const log = await openTestLog(partitionDir, { config: testConfig({ segmentBytes: one * 2 }) });
    await log.appendAsLeader(producerBatch(0, { valueBytes: 200 }), LEADER_EPOCH);
    await log.appendAsLeader(producerBatch(1, { valueBytes: 200 }), LEADER_EPOCH);
    const before = await footprint(log);
    expect(before.segments).toEqual([0n]); // the next append would roll
    const gap = log.appendAsLeader(producerBatch(3, { valueBytes: 200 }), LEADER_EPOCH);
    await expect(gap).rejects.toThrow(/expected first sequence 2, received 3/);
    expect(await codeOf(log.appendAsLeader(producerBatch(3, { valueBytes: 200 }), LEADER_EPOCH))).toBe('OUT_OF_ORDER_SEQUENCE_NUMBER');
    expect(await footprint(log)).toEqual(before);
    expect(await snapshotFiles()).toEqual([]);
    expect(await log.appendAsLeader(producerBatch(2, { valueBytes: 200 }), LEADER_EPOCH)).toMatchObject({ baseOffset: 2n, duplicate: false });
    expect(log.segmentBaseOffsets).toEqual([0n, 2n]);
    expect(await snapshotFiles()).toEqual([producerSnapshotFileName(2n)]);
    await log.close();
  });

  it('fences an older producer epoch (INVALID_PRODUCER_EPOCH), even for a retry; a new epoch starts at sequence 0', async () => {
    const log = await openTestLog(partitionDir);
    await log.appendAsLeader(producerBatch(0, { producerEpoch: 1 }), LEADER_EPOCH);
    await log.appendAsLeader(producerBatch(1, { producerEpoch: 1 }), LEADER_EPOCH);
    const before = await footprint(log);
    expect(await codeOf(log.appendAsLeader(producerBatch(2, { producerEpoch: 0 }), LEADER_EPOCH))).toBe('INVALID_PRODUCER_EPOCH');
    expect(await codeOf(log.appendAsLeader(producerBatch(5, { producerEpoch: 2 }), LEADER_EPOCH))).toBe('OUT_OF_ORDER_SEQUENCE_NUMBER');
    expect(await footprint(log)).toEqual(before);
    expect(await log.appendAsLeader(producerBatch(0, { producerEpoch: 2 }), LEADER_EPOCH)).toMatchObject({ baseOffset: 2n, duplicate: false });
    // The old epoch is fenced now: its retry is no duplicate.
    expect(await codeOf(log.appendAsLeader(producerBatch(1, { producerEpoch: 1 }), LEADER_EPOCH))).toBe('INVALID_PRODUCER_EPOCH');
    expect(log.logEndOffset).toBe(3n);
    expect(log.producerState.producers).toEqual([expect.objectContaining({ producerId: PID, producerEpoch: 2 })]);
    await log.close();
  });

  it('answers a LogAppendTime retry with the original append time', async () => {
    const clock = new ManualClock(START_MS + 5000);
    const log = await openTestLog(partitionDir, { clock, config: testConfig({ messageTimestampType: 'LogAppendTime' }) });
    const original = await log.appendAsLeader(producerBatch(0), LEADER_EPOCH);
    expect(original.logAppendTimeMs).toBe(BigInt(START_MS + 5000));
    clock.advance(1000);
    const retry = await log.appendAsLeader(producerBatch(0), LEADER_EPOCH);
    expect(retry).toMatchObject({ duplicate: true, baseOffset: 0n, logAppendTimeMs: BigInt(START_MS + 5000) });
    await log.close();
  });
});

describe('producer state across close, crash and reopen', () => {
  /** Small segments, so rolls write snapshots. */
  const config = testConfig({ segmentBytes: 800, indexIntervalBytes: 150 });

  it('writes a snapshot at each roll (keeping the newest 2) and one at the log end on a clean close, and reopens from it without replay', async () => {
    const log = await openTestLog(partitionDir, { config });
    const sent = await appendHistory(log, 12);
    const bases = log.segmentBaseOffsets;
    expect(bases.length).toBeGreaterThan(3);
    expect(await snapshotFiles()).toEqual(bases.slice(-2).map(producerSnapshotFileName));
    const state = log.producerState;
    const end = log.logEndOffset;
    await log.close();
    expect(await snapshotFiles()).toEqual([bases[bases.length - 1], end].map(producerSnapshotFileName));

    const logs = capturingLogger();
    const reopened = await openTestLog(partitionDir, { config, logger: logs.logger });
    expect(reopened.producerState).toEqual(state);
    expect(logs.entries().find((line) => line.msg === 'log loaded after a clean shutdown')).toMatchObject({
      producers: 2,
      producerSnapshotOffset: end.toString(),
      producerBatchesReplayed: 0,
    });
    await expectRetriesAnswered(reopened, sent);
    const last = sent[sent.length - 1];
    expect(await reopened.appendAsLeader(producerBatch(last.sequence + last.records), LEADER_EPOCH)).toMatchObject({ duplicate: false, baseOffset: end });
    await reopened.close();
  });

  it('rebuilds the state by replaying the log after a crash (no clean-shutdown marker), from the last roll snapshot or from the log start', async () => {
    const fs = new FaultInjectingFs();
    const log = await openTestLog(partitionDir, { config, fs });
    const sent = await appendHistory(log, 12);
    const state = log.producerState;
    const activeBase = log.segmentBaseOffsets[log.segmentBaseOffsets.length - 1];
    expect(log.logEndOffset).toBeGreaterThan(activeBase); // the active segment holds batches no snapshot has
    await crash(log, fs);
    expect(await readdir(partitionDir)).not.toContain('.kavka_cleanshutdown');

    const logs = capturingLogger();
    const recoveredFs = new FaultInjectingFs();
    const recovered = await openTestLog(partitionDir, { config, logger: logs.logger, fs: recoveredFs });
    expect(recovered.recovery.cleanShutdown).toBe(false);
    expect(recovered.producerState).toEqual(state);
    const opened = logs.entries().find((line) => line.msg === 'log recovered');
    expect(opened).toMatchObject({ producerSnapshotOffset: activeBase.toString() });
    expect(opened?.producerBatchesReplayed).toBeGreaterThan(0);
    await expectRetriesAnswered(recovered, sent);
    await crash(recovered, recoveredFs);

    // With every snapshot unreadable (torn to nothing) the whole log is replayed, to the same state.
    const snapshots = await snapshotFiles();
    expect(snapshots.length).toBeGreaterThan(0);
    for (const name of snapshots) await writeFile(join(partitionDir, name), Buffer.alloc(0));
    const fromScratch = capturingLogger();
    const replayed = await openTestLog(partitionDir, { config, logger: fromScratch.logger });
    expect(replayed.producerState).toEqual(state);
    const warnings = fromScratch.entries().filter((line) => line.msg === 'skipping an unreadable producer-state snapshot; using an older one or the log');
    expect(warnings).toHaveLength(snapshots.length);
    expect(fromScratch.entries().find((line) => line.msg === 'log recovered')).toMatchObject({ producerSnapshotOffset: null });
    await expectRetriesAnswered(replayed, sent);
    await replayed.close();
  });

  it('skips a corrupt snapshot with a warning naming the file, and falls back to an older one plus replay', async () => {
    const log = await openTestLog(partitionDir, { config });
    const sent = await appendHistory(log, 10);
    const state = log.producerState;
    const end = log.logEndOffset;
    await log.close();
    const newest = join(partitionDir, producerSnapshotFileName(end));
    const bytes = await readFile(newest);
    bytes[bytes.length - 3] ^= 0xff;
    await writeFile(newest, bytes);

    const logs = capturingLogger();
    const reopened = await openTestLog(partitionDir, { config, logger: logs.logger });
    expect(reopened.producerState).toEqual(state);
    const warning = logs.entries().find((line) => line.msg === 'skipping an unreadable producer-state snapshot; using an older one or the log');
    expect(warning).toMatchObject({ level: 40, topicPartition: 'orders-0', file: newest, snapshotOffset: end.toString() });
    expect(String(warning?.reason)).toMatch(/CRC-32C mismatch/);
    await expectRetriesAnswered(reopened, sent);
    await reopened.close();
  });
});

describe('follower appends', () => {
  it('record every batch, so a promoted log answers a retry of a batch it only copied and rejects a gap', async () => {
    const leader = await openTestLog(join(dir, 'orders-0-leader'));
    const follower = await openTestLog(partitionDir);
    const sent = await appendHistory(leader, 7);
    const fetched = await leader.read(0n, 1024 * 1024, { maxOffset: leader.logEndOffset, minOneBatch: true });
    expect(fetched.nextOffset).toBe(leader.logEndOffset);
    await follower.appendAsFollower(fetched.batches);
    expect(follower.producerState).toEqual(leader.producerState);
    await leader.close();

    // The follower becomes leader of a later epoch.
    await follower.assignEpochStartOffset(LEADER_EPOCH + 1);
    for (const original of sent.slice(-5)) {
      const retry = await follower.appendAsLeader(producerBatch(original.sequence, { records: original.records }), LEADER_EPOCH + 1);
      expect(retry).toMatchObject({ duplicate: true, baseOffset: original.result.baseOffset, lastOffset: original.result.lastOffset });
    }
    const last = sent[sent.length - 1];
    const next = last.sequence + last.records;
    expect(await codeOf(follower.appendAsLeader(producerBatch(next + 1), LEADER_EPOCH + 1))).toBe('OUT_OF_ORDER_SEQUENCE_NUMBER');
    expect(await follower.appendAsLeader(producerBatch(next), LEADER_EPOCH + 1)).toMatchObject({ duplicate: false, baseOffset: fetched.logEndOffset });
    await follower.close();
  });
});

describe('truncation', () => {
  const config = testConfig({ segmentBytes: 700, indexIntervalBytes: 100 });

  it('truncateTo rebuilds the state: a retry of a removed batch is appended again at the new offsets, a kept one is still a duplicate', async () => {
    const log = await openTestLog(partitionDir, { config });
    const sent: Sent[] = [];
    for (let sequence = 0; sequence < 12; sequence++) {
      sent.push({ sequence, records: 1, result: await log.appendAsLeader(producerBatch(sequence, { valueBytes: 100 }), LEADER_EPOCH) });
    }
    expect(log.segmentBaseOffsets.length).toBeGreaterThan(3);
    const cutAt = sent[7].result.baseOffset;
    expect(await log.truncateTo(cutAt)).toBe(cutAt);
    // Snapshots above the new end are gone; the newest kept one is at or below it.
    for (const name of await snapshotFiles()) expect(BigInt(name.slice(0, 20))).toBeLessThanOrEqual(cutAt);
    expect(log.producerState.endOffset).toBe(cutAt);
    expect(log.producerState.producers[0].batches.map((b) => b.lastSeq)).toEqual([2, 3, 4, 5, 6]);

    // A kept batch is still answered as a duplicate.
    expect(await log.appendAsLeader(producerBatch(6, { valueBytes: 100 }), LEADER_EPOCH)).toMatchObject({ duplicate: true, baseOffset: sent[6].result.baseOffset });
    // The producer retries the batches the truncation removed: they are new again, at new offsets.
    const again = await log.appendAsLeader(producerBatch(7, { valueBytes: 100 }), LEADER_EPOCH + 1);
    expect(again).toMatchObject({ duplicate: false, baseOffset: cutAt });
    expect(await codeOf(log.appendAsLeader(producerBatch(9, { valueBytes: 100 }), LEADER_EPOCH + 1))).toBe('OUT_OF_ORDER_SEQUENCE_NUMBER');
    expect(await log.appendAsLeader(producerBatch(8, { valueBytes: 100 }), LEADER_EPOCH + 1)).toMatchObject({ duplicate: false, baseOffset: cutAt + 1n });
    expect(await log.appendAsLeader(producerBatch(7, { valueBytes: 100 }), LEADER_EPOCH + 1)).toMatchObject({ duplicate: true, baseOffset: cutAt });
    const state = log.producerState;
    await log.close();
    const reopened = await openTestLog(partitionDir, { config });
    expect(reopened.producerState).toEqual(state);
    await reopened.close();
  });

  it('truncateFullyAndStartAt empties the state and deletes every snapshot: the producer must start over at sequence 0', async () => {
    const log = await openTestLog(partitionDir, { config });
    for (let sequence = 0; sequence < 8; sequence++) await log.appendAsLeader(producerBatch(sequence, { valueBytes: 100 }), LEADER_EPOCH);
    expect((await snapshotFiles()).length).toBeGreaterThan(0);
    await log.truncateFullyAndStartAt(100n);
    expect(await snapshotFiles()).toEqual([]);
    expect(log.producerState).toEqual({ endOffset: 100n, producers: [] });
    expect(await codeOf(log.appendAsLeader(producerBatch(8, { valueBytes: 100 }), LEADER_EPOCH))).toBe('UNKNOWN_PRODUCER_ID');
    expect(log.logEndOffset).toBe(100n);
    expect(await log.appendAsLeader(producerBatch(0, { producerEpoch: 1, valueBytes: 100 }), LEADER_EPOCH)).toMatchObject({ baseOffset: 100n, duplicate: false });
    await log.close();
  });
});

describe('expiration (producer.id.expiration.ms)', () => {
  it('drops a producer idle that long; its next batch, or a retry, is then UNKNOWN_PRODUCER_ID with nothing written', async () => {
    const clock = new ManualClock(START_MS);
    const log = await openTestLog(partitionDir, { clock, config: testConfig({ producerIdExpirationMs: 60_000 }) });
    await log.appendAsLeader(producerBatch(0), LEADER_EPOCH);
    clock.advance(10_000);
    await log.appendAsLeader(producerBatch(1), LEADER_EPOCH);
    await log.appendAsLeader(producerBatch(0, { producerId: OTHER_PID }), LEADER_EPOCH);
    expect(await log.removeExpiredProducers(START_MS + 69_999)).toBe(0);
    clock.advance(40_000);
    await log.appendAsLeader(producerBatch(1, { producerId: OTHER_PID }), LEADER_EPOCH); // OTHER_PID stays active
    expect(await log.removeExpiredProducers(START_MS + 70_000)).toBe(1);
    expect(log.producerState.producers.map((p) => p.producerId)).toEqual([OTHER_PID]);

    const before = await footprint(log);
    expect(await codeOf(log.appendAsLeader(producerBatch(2), LEADER_EPOCH))).toBe('UNKNOWN_PRODUCER_ID');
    expect(await codeOf(log.appendAsLeader(producerBatch(1), LEADER_EPOCH))).toBe('UNKNOWN_PRODUCER_ID');
    expect(await footprint(log)).toEqual(before);
    // The producer starts over (InitProducerId bumps its epoch): sequence 0 is accepted.
    expect(await log.appendAsLeader(producerBatch(0, { producerEpoch: 1 }), LEADER_EPOCH)).toMatchObject({ duplicate: false, baseOffset: before.logEndOffset });
    await log.close();
  });

  it('drops producers already expired when the state is loaded at open', async () => {
    const clock = new ManualClock(START_MS);
    const config = testConfig({ producerIdExpirationMs: 60_000 });
    const log = await openTestLog(partitionDir, { clock, config });
    await log.appendAsLeader(producerBatch(0), LEADER_EPOCH);
    clock.advance(30_000);
    await log.appendAsLeader(producerBatch(0, { producerId: OTHER_PID }), LEADER_EPOCH);
    await log.close();
    clock.advance(30_000);
    const reopened = await openTestLog(partitionDir, { clock, config });
    expect(reopened.producerState.producers.map((p) => p.producerId)).toEqual([OTHER_PID]);
    expect(await codeOf(reopened.appendAsLeader(producerBatch(1), LEADER_EPOCH))).toBe('UNKNOWN_PRODUCER_ID');
    expect(await reopened.appendAsLeader(producerBatch(1, { producerId: OTHER_PID }), LEADER_EPOCH)).toMatchObject({ duplicate: false });
    await reopened.close();
  });

  it('checks producer.id.expiration.ms like the other log config keys', async () => {
    const log = await openTestLog(partitionDir);
    expect(() => log.updateConfig(testConfig({ producerIdExpirationMs: 0 }))).toThrow(/producer\.id\.expiration\.ms=0/);
    await log.close();
  });
});
