// PartitionLog.appendAsFollower: a follower writes the batches it fetched from its leader byte for
// byte (offsets, leader epochs and LogAppendTime timestamps are the leader's), only at its log
// end, in order, with epochs never going back; durability and segment rolls as for the leader.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeRecordBatch, readBatchHeader, setPartitionLeaderEpoch } from '../../src/codec/record-batch.js';
import { FaultInjectingFs, type FilePartitionLog, type PartitionLog } from '../../src/storage/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { KavkaError } from '../../src/util/errors.js';
import { batch, makeTempDir, openTestLog, readAllBatches, removeTempDir, settle, START_MS, testConfig, waitUntil } from './helpers/fixtures.js';

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir();
});
afterEach(async () => {
  await removeTempDir(dir);
});

const isLog = (path: string) => path.endsWith('.log');

function codeOf(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'resolved',
    (error: unknown) => (error instanceof KavkaError ? error.code : `not a KavkaError: ${String(error)}`),
  );
}

/** A batch as a leader would hold it: offsets from baseOffset, stamped with epoch. */
function leaderBatch(baseOffset: bigint, epoch: number, records = 1, tag = 0): Buffer {
  const bytes = batch({ baseOffset, records, tag, valueBytes: 30 });
  setPartitionLeaderEpoch(bytes, epoch);
  return bytes;
}

/** Copies everything from `from` into `to` the way a fetcher would: read chunks at the follower's log end. */
async function replicate(from: PartitionLog, to: PartitionLog, maxBytes: number): Promise<number> {
  let appends = 0;
  for (let rounds = 0; to.logEndOffset < from.logEndOffset; rounds++) {
    if (rounds > 10_000) throw new Error('replication did not converge');
    const fetched = await from.read(to.logEndOffset, maxBytes, { maxOffset: from.logEndOffset, minOneBatch: true });
    // A copy, as bytes off the wire are: the leader's own buffers are never shared.
    await to.appendAsFollower(Buffer.from(fetched.batches));
    appends++;
  }
  return appends;
}

/** A leader log of several epochs, segments and codecs. */
async function writeLeaderLog(leader: PartitionLog): Promise<void> {
  const epochs = [0, 0, 0, 2, 2, 3, 7, 7, 7, 7];
  for (let i = 0; i < 40; i++) {
    const epoch = epochs[Math.floor(i / 4)];
    await leader.appendAsLeader(batch({ records: 1 + (i % 4), valueBytes: 20 + (i % 9) * 30, tag: i, compression: i % 5 === 0 ? 'gzip' : 'none', timestampStep: 3n }), epoch);
  }
}

describe('appendAsFollower', () => {
  it('writes the leader’s batches byte for byte: reads, segments and epochs match the leader’s', async () => {
    const config = testConfig({ segmentBytes: 2500, indexIntervalBytes: 200 });
    const leader = await openTestLog(join(dir, 'leader', 'orders-0'), { config });
    const follower = await openTestLog(join(dir, 'follower', 'orders-0'), { config });
    await writeLeaderLog(leader);
    expect(await replicate(leader, follower, 1500)).toBeGreaterThan(3);
    const fromLeader = await readAllBatches(leader);
    const fromFollower = await readAllBatches(follower);
    expect(fromFollower.map((b) => b.baseOffset)).toEqual(fromLeader.map((b) => b.baseOffset));
    expect(Buffer.concat(fromFollower.map((b) => b.bytes)).equals(Buffer.concat(fromLeader.map((b) => b.bytes)))).toBe(true);
    expect(follower.logEndOffset).toBe(leader.logEndOffset);
    expect(follower.durableEndOffset).toBe(leader.logEndOffset);
    expect(follower.segmentBaseOffsets).toEqual(leader.segmentBaseOffsets);
    expect(follower.leaderEpochEntries).toEqual(leader.leaderEpochEntries);
    expect(follower.leaderEpochEntries.map((e) => e.epoch)).toEqual([0, 2, 3, 7]);
    // Every offset reads the same batch from both logs.
    for (let offset = 0n; offset < leader.logEndOffset; offset += 3n) {
      const a = await leader.read(offset, 1, { maxOffset: leader.logEndOffset, minOneBatch: true });
      const b = await follower.read(offset, 1, { maxOffset: follower.logEndOffset, minOneBatch: true });
      expect(b.batches.equals(a.batches)).toBe(true);
    }
    await leader.close();
    await follower.close();
    // The segment files themselves are identical.
    for (const name of ['00000000000000000000.log']) {
      expect((await readFile(join(dir, 'follower', 'orders-0', name))).equals(await readFile(join(dir, 'leader', 'orders-0', name)))).toBe(true);
    }
  });

  it('keeps a LogAppendTime batch’s timestamp as the leader stamped it, whatever the follower’s clock', async () => {
    const config = testConfig({ messageTimestampType: 'LogAppendTime' });
    const leader = await openTestLog(join(dir, 'leader', 'orders-0'), { config, clock: new ManualClock(START_MS + 5000) });
    const follower = await openTestLog(join(dir, 'follower', 'orders-0'), { config, clock: new ManualClock(START_MS + 99_000) });
    await leader.appendAsLeader(batch({ records: 2, timestamp: 42n }), 1);
    const fetched = await leader.read(0n, 1 << 20, { maxOffset: 2n, minOneBatch: true });
    const result = await follower.appendAsFollower(Buffer.from(fetched.batches));
    expect(result).toMatchObject({ baseOffset: 0n, lastOffset: 1n, logAppendTimeMs: -1n, recordCount: 2, sizeBytes: fetched.batches.length });
    const [stored] = await readAllBatches(follower);
    expect(stored.bytes.equals(fetched.batches)).toBe(true);
    expect(readBatchHeader(stored.bytes).maxTimestamp).toBe(BigInt(START_MS + 5000));
    expect(await follower.maxTimestampOffset()).toEqual(await leader.maxTimestampOffset());
    expect(await follower.offsetForTimestamp(BigInt(START_MS))).toEqual({ offset: 0n, timestamp: BigInt(START_MS + 5000) });
    await leader.close();
    await follower.close();
  });

  it('accepts what the leader stored but a producer may not send: offset gaps inside a batch, a batch over max.message.bytes', async () => {
    const follower = await openTestLog(join(dir, 'orders-0'), { config: testConfig({ maxMessageBytes: 200 }) });
    const compacted = batch({ baseOffset: 0n, offsetDeltas: [0, 2, 5] });
    setPartitionLeaderEpoch(compacted, 1);
    const large = batch({ baseOffset: 6n, valueBytes: 500 });
    setPartitionLeaderEpoch(large, 1);
    await follower.appendAsFollower(Buffer.concat([compacted, large]));
    expect(follower.logEndOffset).toBe(7n);
    expect((await readAllBatches(follower)).map((b) => [b.baseOffset, b.lastOffset])).toEqual([
      [0n, 5n],
      [6n, 6n],
    ]);
    await follower.close();
  });

  it('rejects a batch that does not start at the log end (OFFSET_OUT_OF_RANGE naming both offsets), and writes nothing', async () => {
    const follower = await openTestLog(join(dir, 'orders-0'));
    await follower.appendAsFollower(leaderBatch(0n, 1, 3));
    const overlap = await follower.appendAsFollower(leaderBatch(2n, 1)).catch((e: unknown) => e);
    expect(overlap).toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
    expect((overlap as Error).message).toMatch(/starts at offset 2 but the log end offset is 3/);
    const gap = await follower.appendAsFollower(leaderBatch(5n, 1)).catch((e: unknown) => e);
    expect(gap).toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
    expect((gap as Error).message).toMatch(/starts at offset 5 but the log end offset is 3/);
    expect([follower.logEndOffset, follower.sizeBytes]).toEqual([3n, leaderBatch(0n, 1, 3).length]);
    await follower.appendAsFollower(leaderBatch(3n, 1));
    expect(follower.logEndOffset).toBe(4n);
    await follower.close();
  });

  it('rejects batches out of offset order (INVALID_RECORD) and epochs going back (FENCED_LEADER_EPOCH), in the call or against the log', async () => {
    const follower = await openTestLog(join(dir, 'orders-0'));
    await follower.appendAsFollower(leaderBatch(0n, 4, 2));
    const before = { end: follower.logEndOffset, size: follower.sizeBytes, epochs: follower.leaderEpochEntries };
    const cases: [string, Buffer, string][] = [
      ['overlapping batches', Buffer.concat([leaderBatch(2n, 4, 3), leaderBatch(4n, 4)]), 'INVALID_RECORD'],
      ['batches going backwards', Buffer.concat([leaderBatch(2n, 4, 3), leaderBatch(1n, 4)]), 'INVALID_RECORD'],
      ['an epoch going back inside the call', Buffer.concat([leaderBatch(2n, 6), leaderBatch(3n, 5)]), 'FENCED_LEADER_EPOCH'],
      ['an epoch below the log’s latest', leaderBatch(2n, 3), 'FENCED_LEADER_EPOCH'],
      ['a batch without an epoch after epochs', leaderBatch(2n, -1), 'FENCED_LEADER_EPOCH'],
    ];
    for (const [name, bytes, code] of cases) {
      expect(await codeOf(follower.appendAsFollower(bytes)), name).toBe(code);
      expect({ end: follower.logEndOffset, size: follower.sizeBytes, epochs: follower.leaderEpochEntries }, name).toEqual(before);
    }
    const message = await follower.appendAsFollower(leaderBatch(2n, 3)).catch((e: unknown) => (e as Error).message);
    expect(message).toMatch(/leader epoch 3, below this log's latest epoch 4/);
    await follower.close();
  });

  it('rejects damaged bytes with the errors a producer gets (CORRUPT_MESSAGE, INVALID_RECORD)', async () => {
    const follower = await openTestLog(join(dir, 'orders-0'));
    const flipped = leaderBatch(0n, 1, 2);
    flipped[flipped.length - 1] ^= 0x01;
    expect(await codeOf(follower.appendAsFollower(flipped))).toBe('CORRUPT_MESSAGE');
    expect(await codeOf(follower.appendAsFollower(leaderBatch(0n, 1).subarray(0, 40)))).toBe('CORRUPT_MESSAGE');
    expect(await codeOf(follower.appendAsFollower(Buffer.concat([leaderBatch(0n, 1), leaderBatch(1n, 1).subarray(0, 70)])))).toBe('CORRUPT_MESSAGE');
    expect(await codeOf(follower.appendAsFollower(Buffer.alloc(0)))).toBe('INVALID_RECORD');
    expect([follower.logEndOffset, follower.sizeBytes]).toEqual([0n, 0]);
    await follower.close();
  });

  it('resolves only after an fdatasync covering it (flush.policy=batch), shared by concurrent appends, and then calls onAppend', async () => {
    const fs = new FaultInjectingFs();
    const follower = await openTestLog(join(dir, 'orders-0'), { fs });
    await follower.appendAsFollower(leaderBatch(0n, 1));
    let notified = 0;
    follower.onAppend(() => notified++);
    const hold = fs.hold('datasync', isLog);
    const syncsBefore = fs.count('datasync', isLog);
    const resolved: number[] = [];
    const first = follower.appendAsFollower(leaderBatch(1n, 1)).then(() => resolved.push(1));
    await hold.reached;
    const second = follower.appendAsFollower(leaderBatch(2n, 2)).then(() => resolved.push(2));
    const third = follower.appendAsFollower(leaderBatch(3n, 2)).then(() => resolved.push(3));
    await waitUntil(() => follower.logEndOffset === 4n, 'the later appends are written while the first sync is held');
    await settle();
    expect(resolved).toEqual([]);
    expect(follower.durableEndOffset).toBe(1n);
    expect(notified).toBe(0);
    hold.release();
    await Promise.all([first, second, third]);
    expect(resolved).toEqual([1, 2, 3]);
    expect(fs.count('datasync', isLog) - syncsBefore).toBe(2); // one for the first, one shared by the others
    expect(follower.durableEndOffset).toBe(4n);
    expect(notified).toBe(2);
    await follower.close();
  });

  it('resolves at once under flush.policy=os, with the bytes counted durable', async () => {
    const fs = new FaultInjectingFs();
    const follower = await openTestLog(join(dir, 'orders-0'), { fs, config: testConfig({ flushPolicy: 'os' }) });
    let notified = 0;
    follower.onAppend(() => notified++);
    await follower.appendAsFollower(Buffer.concat([leaderBatch(0n, 1, 2), leaderBatch(2n, 1)]));
    expect(fs.count('datasync', isLog)).toBe(0);
    expect(follower.durableEndOffset).toBe(3n);
    expect(notified).toBe(1);
    await follower.close();
  });

  it('rolls segments by segment.bytes and segment.ms like leader appends', async () => {
    const one = leaderBatch(0n, 1).length;
    const clock = new ManualClock(START_MS);
    const follower = await openTestLog(join(dir, 'orders-0'), { clock, config: testConfig({ segmentBytes: one * 3, segmentMs: 1000 }) });
    for (let i = 0; i < 7; i++) await follower.appendAsFollower(leaderBatch(BigInt(i), 1, 1, i));
    expect(follower.segmentBaseOffsets).toEqual([0n, 3n, 6n]);
    clock.advance(1001);
    await follower.appendAsFollower(leaderBatch(7n, 1));
    expect(follower.segmentBaseOffsets).toEqual([0n, 3n, 6n, 7n]);
    await follower.close();
  });

  it('lets a replica switch roles: leader appends continue after follower appends, and the reverse', async () => {
    const log: FilePartitionLog = await openTestLog(join(dir, 'orders-0'));
    await log.appendAsFollower(Buffer.concat([leaderBatch(0n, 1, 2), leaderBatch(2n, 2)]));
    expect((await log.appendAsLeader(batch(), 3)).baseOffset).toBe(3n);
    await log.appendAsFollower(leaderBatch(4n, 5));
    expect(log.leaderEpochEntries).toEqual([
      { epoch: 1, startOffset: 0n },
      { epoch: 2, startOffset: 2n },
      { epoch: 3, startOffset: 3n },
      { epoch: 5, startOffset: 4n },
    ]);
    expect(await codeOf(log.appendAsLeader(batch(), 3))).toBe('FENCED_LEADER_EPOCH');
    await log.close();
  });

  it('fails with KAFKA_STORAGE_ERROR when the write fails, taking the dir offline', async () => {
    const fs = new FaultInjectingFs();
    const follower = await openTestLog(join(dir, 'orders-0'), { fs });
    fs.failNext('write', 'ENOSPC', isLog);
    expect(await codeOf(follower.appendAsFollower(leaderBatch(0n, 1)))).toBe('KAFKA_STORAGE_ERROR');
    expect(await codeOf(follower.appendAsFollower(leaderBatch(0n, 1)))).toBe('KAFKA_STORAGE_ERROR');
    await follower.close();
  });

  it('encodes what a real leader would send across several batches in one call', async () => {
    const follower = await openTestLog(join(dir, 'orders-0'));
    const bytes = Buffer.concat([
      encodeRecordBatch({ baseOffset: 0n, partitionLeaderEpoch: 2, records: [{ key: null, value: Buffer.from('a'), timestamp: BigInt(START_MS) }] }),
      encodeRecordBatch({ baseOffset: 1n, partitionLeaderEpoch: 2, compression: 'gzip', records: [{ key: null, value: Buffer.from('b'), timestamp: BigInt(START_MS) }, { key: null, value: Buffer.from('c'), timestamp: BigInt(START_MS) }] }),
      encodeRecordBatch({ baseOffset: 3n, partitionLeaderEpoch: 4, records: [{ key: null, value: Buffer.from('d'), timestamp: BigInt(START_MS) }] }),
    ]);
    const result = await follower.appendAsFollower(bytes);
    expect(result).toMatchObject({ baseOffset: 0n, lastOffset: 3n, recordCount: 4, sizeBytes: bytes.length, logStartOffset: 0n });
    expect(follower.leaderEpochEntries).toEqual([
      { epoch: 2, startOffset: 0n },
      { epoch: 4, startOffset: 3n },
    ]);
    const read = await follower.read(0n, 1 << 20, { maxOffset: 4n, minOneBatch: true });
    expect(read.batches.equals(bytes)).toBe(true);
    await follower.close();
  });
});
