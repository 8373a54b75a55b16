import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FaultInjectingFs } from '../../src/storage/index.js';
import { batch, makeTempDir, openTestLog, readAllBatches, removeTempDir, settle, testConfig, waitUntil } from './helpers/fixtures.js';

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir();
});
afterEach(async () => {
  await removeTempDir(dir);
});

const isLog = (path: string) => path.endsWith('.log');

describe('group commit (flush.policy=batch)', () => {
  it('covers many concurrent appends with far fewer fdatasyncs, every append resolved and durable', async () => {
    const fs = new FaultInjectingFs();
    const log = await openTestLog(join(dir, 'orders-0'), { fs });
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => log.appendAsLeader(batch({ records: 2, tag: i }), 0)));
    expect(results.map((r) => r.baseOffset)).toEqual(Array.from({ length: 200 }, (_, i) => BigInt(i * 2)));
    // All 200 were queued before the first write: one sync covers them all.
    expect(fs.count('datasync', isLog)).toBe(1);
    expect(log.durableEndOffset).toBe(400n);
    expect((await readAllBatches(log)).length).toBe(200);
    await log.close();
  });

  it('shares one fdatasync among every append written while the previous one ran', async () => {
    const fs = new FaultInjectingFs();
    const log = await openTestLog(join(dir, 'orders-0'), { fs });
    const hold = fs.hold('datasync', isLog);
    const resolved: number[] = [];
    const first = log.appendAsLeader(batch({ tag: 0 }), 0).then(() => resolved.push(0));
    await hold.reached;
    const rest = Array.from({ length: 50 }, (_, i) => log.appendAsLeader(batch({ tag: i + 1 }), 0).then(() => resolved.push(i + 1)));
    await waitUntil(() => log.logEndOffset === 51n, 'all 51 appends are written');
    await settle();
    expect(resolved).toEqual([]);
    expect(log.durableEndOffset).toBe(0n);
    hold.release();
    await Promise.all([first, ...rest]);
    expect(fs.count('datasync', isLog)).toBe(2);
    expect(resolved.length).toBe(51);
    expect(log.durableEndOffset).toBe(51n);
    await log.close();
  });

  it('resolves an append only after an fdatasync that started after its write', async () => {
    const fs = new FaultInjectingFs();
    const log = await openTestLog(join(dir, 'orders-0'), { fs });
    const firstHold = fs.hold('datasync', isLog);
    let firstDone = false;
    let secondDone = false;
    const first = log.appendAsLeader(batch(), 0).then(() => (firstDone = true));
    await firstHold.reached;
    const second = log.appendAsLeader(batch(), 0).then(() => (secondDone = true));
    await waitUntil(() => log.logEndOffset === 2n, 'the second append is written');
    const secondHold = fs.hold('datasync', isLog);
    firstHold.release();
    await first;
    await secondHold.reached;
    await settle();
    expect(firstDone).toBe(true);
    expect(secondDone).toBe(false); // the first sync started before its write
    expect(log.durableEndOffset).toBe(1n);
    secondHold.release();
    await second;
    expect(log.durableEndOffset).toBe(2n);
    await log.close();
  });

  it('lets a sync wait for the appends queued before it, but not for later arrivals', async () => {
    const fs = new FaultInjectingFs();
    const log = await openTestLog(join(dir, 'orders-0'), { fs });
    const durableSeen: bigint[] = [];
    log.onAppend(() => durableSeen.push(log.durableEndOffset));
    const firstWrite = fs.hold('write', isLog);
    const a = log.appendAsLeader(batch({ tag: 1 }), 0);
    await firstWrite.reached;
    const p1 = log.appendAsLeader(batch({ tag: 2 }), 0);
    const laterWrites = fs.hold('write', isLog);
    firstWrite.release();
    await laterWrites.reached; // A is written; its sync waits for P1, queued before it
    await settle();
    const later = [3, 4, 5].map((tag) => log.appendAsLeader(batch({ tag }), 0));
    const sync = fs.hold('datasync', isLog);
    laterWrites.release();
    await sync.reached;
    sync.release();
    await Promise.all([a, p1, ...later]);
    expect(durableSeen[0]).toBe(2n); // the first sync covered A and P1 only
    expect(log.durableEndOffset).toBe(5n);
    await log.close();
  });

  it('calls onAppend listeners after durability, once per sync', async () => {
    const fs = new FaultInjectingFs();
    const log = await openTestLog(join(dir, 'orders-0'), { fs });
    let calls = 0;
    const unsubscribe = log.onAppend(() => calls++);
    const hold = fs.hold('datasync', isLog);
    const append = log.appendAsLeader(batch(), 0);
    await hold.reached;
    expect(calls).toBe(0);
    hold.release();
    await append;
    expect(calls).toBe(1);
    unsubscribe();
    await log.appendAsLeader(batch(), 0);
    expect(calls).toBe(1);
    await log.close();
  });
});

describe('flush.policy=os', () => {
  it('resolves after the write without an fdatasync, and flush() syncs', async () => {
    const fs = new FaultInjectingFs();
    const log = await openTestLog(join(dir, 'orders-0'), { fs, config: testConfig({ flushPolicy: 'os' }) });
    let calls = 0;
    log.onAppend(() => calls++);
    for (let i = 0; i < 20; i++) await log.appendAsLeader(batch(), 0);
    expect(fs.count('datasync', isLog)).toBe(0);
    expect(log.durableEndOffset).toBe(20n);
    expect(calls).toBe(20);
    await log.flush();
    expect(fs.count('datasync', isLog)).toBe(1);
    await log.close();
  });
});
