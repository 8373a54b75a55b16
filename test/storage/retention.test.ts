import { readdir, writeFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FaultInjectingFs } from '../../src/storage/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { KavkaError } from '../../src/util/errors.js';
import { batch, makeTempDir, openTestLog, readAllBatches, removeTempDir, splitBatches, START_MS, testConfig } from './helpers/fixtures.js';

let dir: string;
let partitionDir: string;
beforeEach(async () => {
  dir = await makeTempDir();
  partitionDir = join(dir, 'orders-0');
});
afterEach(async () => {
  await removeTempDir(dir);
});

const ONE = batch({ valueBytes: 100 }).length;
/** Three one-record batches per segment. */
const SEGMENT_BYTES = ONE * 3;

async function logFiles(): Promise<string[]> {
  return (await readdir(partitionDir)).filter((name) => name.endsWith('.log')).sort();
}

describe('applyRetention', () => {
  it('deletes sealed segments whose newest record is older than retentionMs, and moves the log start up', async () => {
    const clock = new ManualClock(START_MS);
    const log = await openTestLog(partitionDir, { clock, config: testConfig({ segmentBytes: SEGMENT_BYTES, retentionMs: 10_000 }) });
    for (let i = 0; i < 8; i++) await log.appendAsLeader(batch({ valueBytes: 100, timestamp: BigInt(START_MS + i * 1000) }), 0);
    expect(log.segmentBaseOffsets).toEqual([0n, 3n, 6n]);
    // Segment 0's newest record is at +2000, segment 3's at +5000.
    expect(await log.applyRetention(START_MS + 12_000)).toBe(0);
    expect(await log.applyRetention(START_MS + 12_001)).toBe(1);
    expect(log.logStartOffset).toBe(3n);
    expect(await logFiles()).toEqual(['00000000000000000003.log', '00000000000000000006.log']);
    await expect(log.read(2n, 1000, { maxOffset: 8n, minOneBatch: true })).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
    expect((await readAllBatches(log)).map((b) => b.baseOffset)).toEqual([3n, 4n, 5n, 6n, 7n]);
    // The active segment is never deleted, even when everything in it is old.
    expect(await log.applyRetention(START_MS + 1_000_000)).toBe(1);
    expect(log.segmentBaseOffsets).toEqual([6n]);
    expect(log.logStartOffset).toBe(6n);
    expect(log.sizeBytes).toBe(2 * ONE);
    await log.close();
  });

  it('rolls an active segment past segmentMs first (only when it holds data), so time retention can delete it', async () => {
    const clock = new ManualClock(START_MS);
    const log = await openTestLog(partitionDir, { clock, config: testConfig({ segmentMs: 5000, retentionMs: 1000 }) });
    await log.appendAsLeader(batch({ timestamp: BigInt(START_MS) }), 0);
    expect(await log.applyRetention(START_MS + 5000)).toBe(0);
    expect(log.segmentCount).toBe(1);
    clock.advance(5001);
    expect(await log.applyRetention(clock.nowMs())).toBe(1);
    expect(log.segmentBaseOffsets).toEqual([1n]);
    expect(log.logStartOffset).toBe(1n);
    expect(log.logEndOffset).toBe(1n);
    clock.advance(100_000);
    expect(await log.applyRetention(clock.nowMs())).toBe(0); // the empty active segment does not roll
    expect(log.segmentBaseOffsets).toEqual([1n]);
    expect((await log.appendAsLeader(batch(), 0)).baseOffset).toBe(1n);
    await log.close();
  });

  it('deletes the oldest sealed segments while the log stays at or above retentionBytes without them', async () => {
    const log = await openTestLog(partitionDir, { config: testConfig({ segmentBytes: SEGMENT_BYTES, retentionBytes: ONE * 5 }) });
    for (let i = 0; i < 10; i++) await log.appendAsLeader(batch({ valueBytes: 100 }), 0);
    expect(log.segmentBaseOffsets).toEqual([0n, 3n, 6n, 9n]);
    // 10 batches, limit 5: deleting segment 0 leaves 7 (>= 5); deleting segment 3 too would leave 4.
    expect(await log.applyRetention(START_MS)).toBe(1);
    expect(log.sizeBytes).toBe(ONE * 7);
    expect(log.logStartOffset).toBe(3n);
    expect(await log.applyRetention(START_MS)).toBe(0);
    await log.close();
  });

  it('keeps at least retentionMessages offsets: a segment goes only if the rest still hold that many', async () => {
    const log = await openTestLog(partitionDir, { config: testConfig({ segmentBytes: SEGMENT_BYTES, retentionMessages: 4 }) });
    for (let i = 0; i < 11; i++) await log.appendAsLeader(batch({ valueBytes: 100 }), 0);
    expect(log.segmentBaseOffsets).toEqual([0n, 3n, 6n, 9n]);
    // Log end 11: without segments 0 and 3 the log holds 6..10 (5 >= 4); without 6 too it would hold 2.
    expect(await log.applyRetention(START_MS)).toBe(2);
    expect(log.logStartOffset).toBe(6n);
    expect(log.logEndOffset - log.logStartOffset).toBeGreaterThanOrEqual(4n);
    await log.close();
  });

  it('keeps the log start offset across a clean restart and a crash', async () => {
    const config = testConfig({ segmentBytes: SEGMENT_BYTES, retentionMessages: 3 });
    let log = await openTestLog(partitionDir, { config });
    for (let i = 0; i < 9; i++) await log.appendAsLeader(batch({ valueBytes: 100 }), 0);
    expect(await log.applyRetention(START_MS)).toBe(2);
    expect(log.logStartOffset).toBe(6n);
    await log.close();
    log = await openTestLog(partitionDir, { config });
    expect(log.logStartOffset).toBe(6n);
    await log.close();
    await unlink(join(partitionDir, '.kavka_cleanshutdown'));
    log = await openTestLog(partitionDir, { config });
    expect(log.recovery.cleanShutdown).toBe(false);
    expect(log.logStartOffset).toBe(6n);
    expect(log.logEndOffset).toBe(9n);
    await log.close();
  });

  it('deletes at open the segments a crash left below a checkpointed log start', async () => {
    const config = testConfig({ segmentBytes: SEGMENT_BYTES });
    let log = await openTestLog(partitionDir, { config });
    for (let i = 0; i < 7; i++) await log.appendAsLeader(batch({ valueBytes: 100 }), 0);
    await log.close();
    // As if retention had written its checkpoint and crashed before unlinking segment 0.
    await writeFile(join(partitionDir, 'log-start-offset-checkpoint'), '0\n1\norders 0 3\n');
    log = await openTestLog(partitionDir, { config });
    expect(log.logStartOffset).toBe(3n);
    expect(log.recovery.segmentsBelowLogStartDeleted).toBe(1);
    expect(await logFiles()).toEqual(['00000000000000000003.log', '00000000000000000006.log']);
    await log.close();
  });

  it('lets a read that started before a segment was deleted finish from it', async () => {
    const fs = new FaultInjectingFs();
    const log = await openTestLog(partitionDir, { fs, config: testConfig({ segmentBytes: SEGMENT_BYTES, retentionMessages: 1 }) });
    for (let i = 0; i < 7; i++) await log.appendAsLeader(batch({ valueBytes: 100, tag: i }), 0);
    const hold = fs.hold('read', (path) => path.endsWith('00000000000000000000.log'));
    const reading = log.read(0n, 10_000, { maxOffset: 7n, minOneBatch: true });
    await hold.reached;
    expect(await log.applyRetention(START_MS)).toBe(2);
    expect(fs.count('close', (path) => path.endsWith('00000000000000000000.log'))).toBe(0);
    hold.release();
    const result = await reading;
    expect(splitBatches(result.batches).map((b) => b.baseOffset)).toEqual([0n, 1n, 2n]);
    expect(fs.count('close', (path) => path.endsWith('00000000000000000000.log'))).toBe(1);
    await expect(log.read(0n, 10_000, { maxOffset: 7n, minOneBatch: true })).rejects.toBeInstanceOf(KavkaError);
    await log.close();
  });
});
