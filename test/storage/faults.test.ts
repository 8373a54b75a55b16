// Disk faults through the storage interface (DESIGN.md section 2 and 8): a write or fsync error
// takes the whole log dir offline, every later append and read fails with KAFKA_STORAGE_ERROR,
// the failed fsync is never retried, and reopening recovers every acknowledged record.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FaultInjectingFs, openLogManager, type FilePartitionLog, type LogManager, type PartitionLog } from '../../src/storage/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { batch, makeTempDir, readAllBatches, removeTempDir, START_MS, testConfig, TOPIC_ID } from './helpers/fixtures.js';

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir();
});
afterEach(async () => {
  await removeTempDir(dir);
});

const ORDERS = { topic: 'orders', partition: 0 };
const PAYMENTS = { topic: 'payments', partition: 0 };
const isOrdersLog = (path: string) => path.includes('orders-0') && path.endsWith('.log');

async function open(fs?: FaultInjectingFs): Promise<LogManager> {
  return openLogManager({ logDir: join(dir, 'data'), nodeId: 1, clusterId: 'c1', clock: new ManualClock(START_MS), logger: silentLogger(), fs });
}

function storageErrorOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected KAFKA_STORAGE_ERROR, but it resolved');
    },
    (error: unknown) => {
      expect(error).toMatchObject({ code: 'KAFKA_STORAGE_ERROR' });
      return error;
    },
  );
}

async function expectEverythingRejected(manager: LogManager, logs: PartitionLog[]): Promise<void> {
  for (const log of logs) {
    await storageErrorOf(log.appendAsLeader(batch(), 0));
    await storageErrorOf(log.read(0n, 1000, { maxOffset: log.logEndOffset, minOneBatch: true }));
    await storageErrorOf(log.flush());
    await storageErrorOf(log.applyRetention(START_MS));
  }
  await storageErrorOf(manager.createLog({ topic: 'new', partition: 0 }, testConfig(), TOPIC_ID));
}

/** Reopens with the real fs and returns the record offsets of the log. */
async function reopenedOffsets(tp: { topic: string; partition: number }): Promise<bigint[]> {
  const manager = await open();
  const log = await manager.createLog(tp, testConfig(), TOPIC_ID);
  const offsets = (await readAllBatches(log)).map((b) => b.baseOffset);
  await manager.close();
  return offsets;
}

describe('a write error (ENOSPC)', () => {
  it('takes the log dir offline once, fails every later call, and loses no acknowledged record', async () => {
    const fs = new FaultInjectingFs();
    const manager = await open(fs);
    const reasons: string[] = [];
    manager.onOffline((reason) => reasons.push(reason));
    const orders = await manager.createLog(ORDERS, testConfig(), TOPIC_ID);
    const payments = await manager.createLog(PAYMENTS, testConfig(), TOPIC_ID);
    for (let i = 0; i < 5; i++) await orders.appendAsLeader(batch({ tag: i }), 0);
    await payments.appendAsLeader(batch(), 0);

    fs.failNext('write', 'ENOSPC', isOrdersLog);
    const error = await storageErrorOf(orders.appendAsLeader(batch(), 0));
    expect(String((error as Error).message)).toContain('ENOSPC');
    expect(manager.state).toMatchObject({ kind: 'offline', sinceMs: START_MS });
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toContain('ENOSPC');
    const syncsAtFailure = fs.count('datasync');
    await expectEverythingRejected(manager, [orders, payments]);
    await manager.close();
    expect(reasons).toHaveLength(1);
    expect(fs.count('datasync')).toBe(syncsAtFailure); // nothing synced after the failure, not even at close

    expect(await reopenedOffsets(ORDERS)).toEqual([0n, 1n, 2n, 3n, 4n]);
    expect(await reopenedOffsets(PAYMENTS)).toEqual([0n]);
  });
});

describe('an fsync error', () => {
  it.each(['EIO', 'ENOSPC'])('(%s) rejects the appends waiting on it, takes the dir offline, and is never retried', async (code) => {
    const fs = new FaultInjectingFs();
    const manager = await open(fs);
    const reasons: string[] = [];
    manager.onOffline((reason) => reasons.push(reason));
    const orders = await manager.createLog(ORDERS, testConfig(), TOPIC_ID);
    const payments = await manager.createLog(PAYMENTS, testConfig(), TOPIC_ID);
    const acknowledged: bigint[] = [];
    for (let i = 0; i < 3; i++) acknowledged.push((await orders.appendAsLeader(batch({ tag: i }), 0)).baseOffset);

    fs.failNext('datasync', code, isOrdersLog);
    const failing = Array.from({ length: 10 }, (_, i) => orders.appendAsLeader(batch({ tag: 100 + i }), 0));
    for (const append of failing) await storageErrorOf(append);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatch(new RegExp(`fdatasync .*orders-0.*${code}`));
    expect(orders.durableEndOffset).toBe(3n);
    const syncsOfOrders = fs.count('datasync', isOrdersLog);
    const syncsAtFailure = fs.count('datasync');
    await expectEverythingRejected(manager, [orders, payments]);
    await manager.close();
    expect(fs.count('datasync', isOrdersLog)).toBe(syncsOfOrders);
    expect(fs.count('datasync')).toBe(syncsAtFailure);

    // The records whose fsync failed may or may not be there; every acknowledged one is.
    const offsets = await reopenedOffsets(ORDERS);
    expect(offsets.slice(0, acknowledged.length)).toEqual(acknowledged);
  });

  it('during a roll takes the dir offline too', async () => {
    const fs = new FaultInjectingFs();
    const manager = await open(fs);
    const one = batch({ valueBytes: 100 }).length;
    const orders = await manager.createLog(ORDERS, testConfig({ segmentBytes: one * 2 }), TOPIC_ID);
    await orders.appendAsLeader(batch({ valueBytes: 100 }), 0);
    await orders.appendAsLeader(batch({ valueBytes: 100 }), 0);
    fs.failNext('rename', 'EIO', (path) => path.endsWith('.index.tmp'));
    await storageErrorOf(orders.appendAsLeader(batch({ valueBytes: 100 }), 0));
    expect(manager.state.kind).toBe('offline');
    await manager.close();
    expect(await reopenedOffsets(ORDERS)).toEqual([0n, 1n]);
  });
});

describe('space returns (Kavka issue 6)', () => {
  it('a probe fails while the disk is full and works once it is not; reopen brings the dir back through recovery, never by retrying the failed fsync', async () => {
    const fs = new FaultInjectingFs();
    const manager = await open(fs);
    const orders = await manager.createLog(ORDERS, testConfig(), TOPIC_ID);
    for (let i = 0; i < 4; i++) await orders.appendAsLeader(batch({ tag: i }), 0);
    // The disk is full for everything: appends, the probe file, the checkpoint files.
    fs.failAlways('write', 'ENOSPC');
    fs.failAlways('datasync', 'ENOSPC');
    await storageErrorOf(orders.appendAsLeader(batch({ tag: 9 }), 0));
    expect(manager.state).toMatchObject({ kind: 'offline', cause: 'io' });
    expect(manager.failures).toBe(1);
    await expect(manager.probe()).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(manager.state.kind).toBe('offline');

    fs.clearFaults();
    fs.clearCalls();
    await manager.probe();
    expect(fs.calls.filter((c) => c.path.endsWith('.log'))).toEqual([]); // the probe touches no log
    await manager.reopen();
    expect(manager.state.kind).toBe('online');
    expect(manager.getLog(ORDERS)).toBeUndefined();
    expect(manager.partitionDirectories()).toEqual([ORDERS]);
    const reopened = (await manager.createLog(ORDERS, testConfig(), TOPIC_ID)) as FilePartitionLog;
    // No clean-shutdown marker was written while offline: the open recovered as after a crash.
    expect(reopened.recovery.cleanShutdown).toBe(false);
    expect((await readAllBatches(reopened)).map((b) => b.baseOffset)).toEqual([0n, 1n, 2n, 3n]);
    expect((await reopened.appendAsLeader(batch({ tag: 10 }), 0)).baseOffset).toBe(4n);
    await expect(orders.read(0n, 100, { maxOffset: 4n, minOneBatch: true })).rejects.toMatchObject({ code: 'KAFKA_STORAGE_ERROR' }); // the old object stays closed
    await manager.close();
  });

  it('a reopen after corruption CRC-checks the sealed segments whatever the policy, and counts the repair', async () => {
    const manager = await openLogManager({ logDir: join(dir, 'data'), nodeId: 1, clusterId: 'c1', clock: new ManualClock(START_MS), logger: silentLogger(), verifySealedSegments: 'never' });
    const config = testConfig({ segmentBytes: 2000 });
    const orders = await manager.createLog(ORDERS, config, TOPIC_ID);
    for (let i = 0; i < 30; i++) await orders.appendAsLeader(batch({ tag: i, valueBytes: 100 }), 0);
    const path = join(dir, 'data', 'orders-0', '00000000000000000000.log');
    const bytes = await readFile(path);
    bytes[200] ^= 0x04;
    await writeFile(path, bytes);
    await storageErrorOf(orders.read(0n, 64 * 1024, { maxOffset: orders.logEndOffset, minOneBatch: true }));
    expect(manager.state).toMatchObject({ kind: 'offline', cause: 'corruption' });
    await manager.probe();
    await manager.reopen();
    const repaired = (await manager.createLog(ORDERS, config, TOPIC_ID)) as FilePartitionLog;
    expect(repaired.recovery.corruptionRepaired?.file).toBe(path);
    expect(repaired.refetchRequired).toBe(repaired.logEndOffset);
    expect(manager.corruptionRepairs).toBe(1);
    await manager.close();
  });
});
