import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isBatchCrcValid, readBatchHeader, timestampTypeOf } from '../../src/codec/record-batch.js';
import { FaultInjectingFs } from '../../src/storage/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { KavkaError } from '../../src/util/errors.js';
import { batch, makeTempDir, openTestLog, readAllBatches, removeTempDir, splitBatches, waitUntil, START_MS, testConfig } from './helpers/fixtures.js';

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir();
});
afterEach(async () => {
  await removeTempDir(dir);
});

function codeOf(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'resolved',
    (error: unknown) => (error instanceof KavkaError ? error.code : `not a KavkaError: ${String(error)}`),
  );
}

describe('appendAsLeader', () => {
  it('assigns offsets from the log end using each batch’s last offset delta, and stamps the leader epoch', async () => {
    const log = await openTestLog(join(dir, 'orders-0'));
    const first = await log.appendAsLeader(batch({ records: 3 }), 7);
    expect(first).toMatchObject({ baseOffset: 0n, lastOffset: 2n, logAppendTimeMs: -1n, logStartOffset: 0n, recordCount: 3 });
    const two = Buffer.concat([batch({ records: 1 }), batch({ records: 4, compression: 'gzip' })]);
    const second = await log.appendAsLeader(two, 8);
    expect(second).toMatchObject({ baseOffset: 3n, lastOffset: 7n, recordCount: 5, sizeBytes: two.length });
    expect(log.logEndOffset).toBe(8n);
    expect(log.durableEndOffset).toBe(8n);

    const batches = await readAllBatches(log);
    expect(batches.map((b) => [b.baseOffset, b.lastOffset])).toEqual([
      [0n, 2n],
      [3n, 3n],
      [4n, 7n],
    ]);
    expect(batches.map((b) => readBatchHeader(b.bytes).partitionLeaderEpoch)).toEqual([7, 8, 8]);
    for (const b of batches) expect(isBatchCrcValid(b.bytes)).toBe(true);
    await log.close();
  });

  it('rejects what a producer must not send, and leaves the log unchanged', async () => {
    const log = await openTestLog(join(dir, 'orders-0'), { config: testConfig({ maxMessageBytes: 500, segmentBytes: 4096 }) });
    expect(await codeOf(log.appendAsLeader(Buffer.alloc(0), 0))).toBe('INVALID_RECORD');
    const flipped = batch({ records: 2 });
    flipped[flipped.length - 1] ^= 0x01;
    expect(await codeOf(log.appendAsLeader(flipped, 0))).toBe('CORRUPT_MESSAGE');
    expect(await codeOf(log.appendAsLeader(batch().subarray(0, 40), 0))).toBe('CORRUPT_MESSAGE');
    expect(await codeOf(log.appendAsLeader(Buffer.concat([batch(), batch().subarray(0, 70)]), 0))).toBe('CORRUPT_MESSAGE');
    expect(await codeOf(log.appendAsLeader(batch({ valueBytes: 600 }), 0))).toBe('MESSAGE_TOO_LARGE');
    expect(await codeOf(log.appendAsLeader(batch({ offsetDeltas: [0, 2] }), 0))).toBe('INVALID_RECORD');
    expect(log.logEndOffset).toBe(0n);
    expect(log.sizeBytes).toBe(0);
    await log.appendAsLeader(batch(), 0);
    expect(log.logEndOffset).toBe(1n);
    await log.close();
  });

  it('stamps LogAppendTime: the timestamp-type bit and max timestamp, with a CRC that still verifies', async () => {
    const clock = new ManualClock(START_MS + 5000);
    const log = await openTestLog(join(dir, 'orders-0'), { clock, config: testConfig({ messageTimestampType: 'LogAppendTime' }) });
    const result = await log.appendAsLeader(batch({ records: 2, timestamp: 42n }), 0);
    expect(result.logAppendTimeMs).toBe(BigInt(START_MS + 5000));
    const [stored] = await readAllBatches(log);
    const header = readBatchHeader(stored.bytes);
    expect(timestampTypeOf(header.attributes)).toBe('LogAppendTime');
    expect(header.maxTimestamp).toBe(BigInt(START_MS + 5000));
    expect(isBatchCrcValid(stored.bytes)).toBe(true);
    await log.close();
  });

  it('rolls a new segment when the next append would pass segmentBytes', async () => {
    const one = batch({ valueBytes: 100 }).length;
    const log = await openTestLog(join(dir, 'orders-0'), { config: testConfig({ segmentBytes: one * 3 }) });
    for (let i = 0; i < 7; i++) await log.appendAsLeader(batch({ valueBytes: 100, tag: i }), 0);
    expect(log.segmentBaseOffsets).toEqual([0n, 3n, 6n]);
    expect(log.sizeBytes).toBe(one * 7);
    expect((await readAllBatches(log)).map((b) => b.baseOffset)).toEqual([0n, 1n, 2n, 3n, 4n, 5n, 6n]);
    await log.close();
  });

  it('rolls when the active segment’s first batch is older than segmentMs', async () => {
    const clock = new ManualClock(START_MS);
    const log = await openTestLog(join(dir, 'orders-0'), { clock, config: testConfig({ segmentMs: 1000 }) });
    await log.appendAsLeader(batch(), 0);
    clock.advance(1000);
    await log.appendAsLeader(batch(), 0);
    expect(log.segmentCount).toBe(1);
    clock.advance(1);
    await log.appendAsLeader(batch(), 0);
    expect(log.segmentBaseOffsets).toEqual([0n, 2n]);
    await log.close();
  });
});

describe('read', () => {
  it('returns whole batches up to maxBytes, and the first one even if larger when minOneBatch (KIP-74)', async () => {
    const log = await openTestLog(join(dir, 'orders-0'));
    const sizes = [];
    for (let i = 0; i < 5; i++) {
      const b = batch({ valueBytes: 100, tag: i });
      sizes.push(b.length);
      await log.appendAsLeader(b, 0);
    }
    const two = await log.read(0n, sizes[0] + sizes[1] + 10, { maxOffset: 5n, minOneBatch: true });
    expect(splitBatches(two.batches).map((b) => b.baseOffset)).toEqual([0n, 1n]);
    expect(two).toMatchObject({ nextOffset: 2n, logStartOffset: 0n, logEndOffset: 5n });
    const oneLarge = await log.read(1n, 10, { maxOffset: 5n, minOneBatch: true });
    expect(splitBatches(oneLarge.batches).map((b) => b.baseOffset)).toEqual([1n]);
    const none = await log.read(1n, 10, { maxOffset: 5n, minOneBatch: false });
    expect(none.batches.length).toBe(0);
    expect(none.nextOffset).toBe(1n);
    await log.close();
  });

  it('returns only batches whose last offset is below maxOffset', async () => {
    const log = await openTestLog(join(dir, 'orders-0'));
    await log.appendAsLeader(batch({ records: 3 }), 0);
    await log.appendAsLeader(batch({ records: 3 }), 0);
    const belowHighWatermark = await log.read(0n, 1 << 20, { maxOffset: 5n, minOneBatch: true });
    expect(splitBatches(belowHighWatermark.batches).map((b) => b.baseOffset)).toEqual([0n]);
    expect(belowHighWatermark.nextOffset).toBe(3n);
    const crossing = await log.read(3n, 1 << 20, { maxOffset: 5n, minOneBatch: true });
    expect(crossing.batches.length).toBe(0);
    await log.close();
  });

  it('answers OFFSET_OUT_OF_RANGE below the log start or above the log end, and nothing at the log end', async () => {
    const log = await openTestLog(join(dir, 'orders-0'));
    await log.appendAsLeader(batch({ records: 2 }), 0);
    const atEnd = await log.read(2n, 1000, { maxOffset: 2n, minOneBatch: true });
    expect(atEnd).toMatchObject({ nextOffset: 2n, logEndOffset: 2n });
    expect(atEnd.batches.length).toBe(0);
    expect(await codeOf(log.read(3n, 1000, { maxOffset: 3n, minOneBatch: true }))).toBe('OFFSET_OUT_OF_RANGE');
    expect(await codeOf(log.read(-1n, 1000, { maxOffset: 3n, minOneBatch: true }))).toBe('OFFSET_OUT_OF_RANGE');
    await log.close();
  });

  it('finds the batch holding any offset through the sparse index, in every segment', async () => {
    const log = await openTestLog(join(dir, 'orders-0'), { config: testConfig({ indexIntervalBytes: 300, segmentBytes: 3000 }) });
    const expected: [bigint, bigint][] = [];
    for (let i = 0; i < 60; i++) {
      const records = 1 + (i % 4);
      const result = await log.appendAsLeader(batch({ records, valueBytes: 20 + (i % 7) * 15, tag: i }), 0);
      expected.push([result.baseOffset, result.lastOffset]);
    }
    expect(log.segmentCount).toBeGreaterThan(2);
    for (let offset = 0n; offset < log.logEndOffset; offset++) {
      const result = await log.read(offset, 1, { maxOffset: log.logEndOffset, minOneBatch: true });
      const [first] = splitBatches(result.batches);
      expect(first.baseOffset <= offset && offset <= first.lastOffset).toBe(true);
      expect(expected).toContainEqual([first.baseOffset, first.lastOffset]);
    }
    await log.close();
  });

  it('returns the next batch for an offset inside a gap (a compacted log), across segments', async () => {
    const partitionDir = join(dir, 'orders-0');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(partitionDir);
    // Segment 0: offsets 0, 2, 5 | 10, 11 | 20. Segment 30: offsets 35..36 | 40.
    const first = Buffer.concat([batch({ baseOffset: 0n, offsetDeltas: [0, 2, 5] }), batch({ baseOffset: 10n, offsetDeltas: [0, 1] }), batch({ baseOffset: 20n })]);
    const second = Buffer.concat([batch({ baseOffset: 35n, offsetDeltas: [0, 1] }), batch({ baseOffset: 40n })]);
    await writeFile(join(partitionDir, '00000000000000000000.log'), first);
    await writeFile(join(partitionDir, '00000000000000000030.log'), second);
    const log = await openTestLog(partitionDir, { config: testConfig({ indexIntervalBytes: 0 }) });
    expect(log.logEndOffset).toBe(41n);
    const firstBatchAt = async (offset: bigint) => {
      const result = await log.read(offset, 1, { maxOffset: 41n, minOneBatch: true });
      return splitBatches(result.batches)[0]?.baseOffset;
    };
    expect(await firstBatchAt(3n)).toBe(0n); // inside the first batch's own gap
    expect(await firstBatchAt(6n)).toBe(10n);
    expect(await firstBatchAt(12n)).toBe(20n);
    expect(await firstBatchAt(21n)).toBe(35n); // past the end of segment 0: the next segment
    expect(await firstBatchAt(30n)).toBe(35n);
    expect(await firstBatchAt(37n)).toBe(40n);
    const appended = await log.appendAsLeader(batch(), 0);
    expect(appended.baseOffset).toBe(41n);
    await log.close();
  });

  it('is not held up by an fsync in flight, nor is the next append’s write', async () => {
    const fs = new FaultInjectingFs();
    const log = await openTestLog(join(dir, 'orders-0'), { fs });
    await log.appendAsLeader(batch({ tag: 1 }), 0);
    const hold = fs.hold('datasync');
    let firstDone = false;
    const first = log.appendAsLeader(batch({ tag: 2 }), 0).then(() => (firstDone = true));
    await hold.reached;
    const read = await log.read(0n, 1 << 20, { maxOffset: log.logEndOffset, minOneBatch: true });
    expect(splitBatches(read.batches).map((b) => b.baseOffset)).toEqual([0n, 1n]);
    const second = log.appendAsLeader(batch({ tag: 3 }), 0);
    await waitUntil(() => log.logEndOffset === 3n, 'the second append is written while the first sync is held');
    expect(log.durableEndOffset).toBe(1n);
    expect(firstDone).toBe(false);
    hold.release();
    await Promise.all([first, second]);
    expect(log.durableEndOffset).toBe(3n);
    await log.close();
  });
});
