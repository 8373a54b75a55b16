import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FaultInjectingFs } from '../../src/storage/index.js';
import { GroupCommit } from '../../src/storage/group-commit.js';
import { KavkaError } from '../../src/util/errors.js';
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

describe('GroupCommit truncate and restart (follower truncation)', () => {
  /** A GroupCommit whose syncs wait until the test resolves them, in order. */
  function controlled(start: bigint) {
    const pending: (() => void)[] = [];
    const durable: bigint[] = [];
    const commit = new GroupCommit(start, {
      sync: () => new Promise<void>((resolve) => pending.push(resolve)),
      onDurable: (end) => durable.push(end),
      onSyncError: () => new KavkaError('KAFKA_STORAGE_ERROR', 'sync failed'),
    });
    const write = (end: bigint) => {
      commit.appendQueued();
      commit.noteWritten(end);
      commit.appendDone();
    };
    return { commit, pending, durable, write };
  }
  const truncated = new KavkaError('NOT_LEADER_OR_FOLLOWER', 'truncated');

  it('rejects the waiters above the new end, keeps the others waiting, and moves both ends down', async () => {
    const { commit, pending, write } = controlled(0n);
    write(5n);
    const below = commit.waitDurable(5n);
    write(9n);
    const above = commit.waitDurable(9n);
    expect(pending).toHaveLength(1); // a sync for offsets below 5 is in flight
    commit.truncate(7n, truncated);
    await expect(above).rejects.toBe(truncated);
    expect(commit.writtenEnd).toBe(7n);
    expect(commit.durableEnd).toBe(0n);
    commit.markDurable(7n); // what the truncation does once its own fdatasync is done
    await below;
    expect(commit.durableEnd).toBe(7n);
  });

  it('never lets a sync that started before a truncation mark later writes durable', async () => {
    const { commit, pending, write } = controlled(0n);
    write(10n);
    const gone = commit.waitDurable(10n);
    expect(pending).toHaveLength(1); // covers offsets below 10 as they were
    commit.truncate(4n, truncated);
    await expect(gone).rejects.toBe(truncated);
    commit.markDurable(4n);
    write(12n); // new bytes at offsets 4..11
    const fresh = commit.waitDurable(12n);
    pending.shift()?.(); // the stale sync completes: it covers none of the new bytes
    await settle();
    expect(commit.durableEnd).toBe(4n);
    expect(pending).toHaveLength(1); // a new sync started for the new bytes
    pending.shift()?.();
    await fresh;
    expect(commit.durableEnd).toBe(12n);
  });

  it('puts a later wait for earlier offsets (a duplicate retry) in offset order: it resolves with them, and a truncation below rejects it', async () => {
    const { commit, pending, write } = controlled(0n);
    write(5n);
    write(9n);
    const resolved: string[] = [];
    const upTo9 = commit.waitDurable(9n).then(() => resolved.push('9'));
    const upTo5 = commit.waitDurable(5n).then(() => resolved.push('5'));
    pending.shift()?.();
    await Promise.all([upTo9, upTo5]);
    expect(resolved).toEqual(['5', '9']);
    write(12n);
    write(15n);
    const upTo15 = commit.waitDurable(15n);
    const upTo12 = commit.waitDurable(12n);
    commit.truncate(10n, truncated);
    await expect(upTo15).rejects.toBe(truncated);
    await expect(upTo12).rejects.toBe(truncated);
  });

  it('restart() rejects every waiter and puts both ends at the new start, up or down', async () => {
    const { commit, write } = controlled(0n);
    write(3n);
    const waiting = commit.waitDurable(3n);
    commit.restart(100n, truncated);
    await expect(waiting).rejects.toBe(truncated);
    expect([commit.writtenEnd, commit.durableEnd]).toEqual([100n, 100n]);
    commit.restart(50n, truncated);
    expect([commit.writtenEnd, commit.durableEnd]).toEqual([50n, 50n]);
  });
});
