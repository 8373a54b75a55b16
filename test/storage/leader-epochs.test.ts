// The leader epoch cache of a partition log (KIP-101 / KIP-279): kept by leader and follower
// appends, written to `leader-epoch-checkpoint`, made to agree with the log on open (entries past
// a lost tail dropped; a missing, damaged or inconsistent file rebuilt from batch headers),
// trimmed by retention as Kafka's truncateFromStart, and answering endOffsetForEpoch.
import { readFile, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { setPartitionLeaderEpoch } from '../../src/codec/record-batch.js';
import { FaultInjectingFs, type FilePartitionLog } from '../../src/storage/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { KavkaError } from '../../src/util/errors.js';
import { batch, capturingLogger, makeTempDir, openTestLog, readAllBatches, removeTempDir, START_MS, testConfig } from './helpers/fixtures.js';

let dir: string;
let partitionDir: string;
let checkpointPath: string;
beforeEach(async () => {
  dir = await makeTempDir();
  partitionDir = join(dir, 'orders-0');
  checkpointPath = join(partitionDir, 'leader-epoch-checkpoint');
});
afterEach(async () => {
  await removeTempDir(dir);
});

const CONFIG = testConfig({ segmentBytes: 1500, indexIntervalBytes: 200 });
const MARKER = '.kavka_cleanshutdown';

function codeOf(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'resolved',
    (error: unknown) => (error instanceof KavkaError ? error.code : `not a KavkaError: ${String(error)}`),
  );
}

function entries(log: FilePartitionLog): [number, bigint][] {
  return log.leaderEpochEntries.map((entry) => [entry.epoch, entry.startOffset]);
}

/** Epochs 1 @ 0, 2 @ 10, 4 @ 25 (one-record batches), log end 40: the JSDoc table's log. */
async function writeTableLog(log: FilePartitionLog): Promise<void> {
  for (let offset = 0; offset < 40; offset++) await log.appendAsLeader(batch({ tag: offset, valueBytes: 40 }), offset < 10 ? 1 : offset < 25 ? 2 : 4);
}

describe('the leader epoch cache of a log', () => {
  it('records the first offset of each new epoch of leader appends, and writes the checkpoint in Kafka’s format', async () => {
    const log = await openTestLog(partitionDir);
    expect(log.latestEpoch()).toBeUndefined();
    await log.appendAsLeader(batch({ records: 2 }), 0);
    await log.appendAsLeader(batch(), 0);
    await log.appendAsLeader(batch({ records: 3 }), 3);
    await log.appendAsLeader(batch(), 3);
    await log.appendAsLeader(batch(), 5);
    expect(entries(log)).toEqual([
      [0, 0n],
      [3, 3n],
      [5, 7n],
    ]);
    expect(log.latestEpoch()).toBe(5);
    expect(await readFile(checkpointPath, 'utf8')).toBe('0\n3\n0 0\n3 3\n5 7\n');
    await log.close();
  });

  it('rejects a leader append of an older epoch with FENCED_LEADER_EPOCH; -1 is taken only while no epoch is known, and never recorded', async () => {
    const log = await openTestLog(partitionDir);
    await log.appendAsLeader(batch(), -1);
    expect(log.latestEpoch()).toBeUndefined();
    await log.appendAsLeader(batch(), 4);
    expect(await codeOf(log.appendAsLeader(batch(), 3))).toBe('FENCED_LEADER_EPOCH');
    expect(await codeOf(log.appendAsLeader(batch(), -1))).toBe('FENCED_LEADER_EPOCH');
    expect(log.logEndOffset).toBe(2n);
    expect(entries(log)).toEqual([[4, 1n]]);
    await log.close();
  });

  it('answers endOffsetForEpoch as the JSDoc table says, before and after a restart', async () => {
    const log = await openTestLog(partitionDir, { config: CONFIG });
    await writeTableLog(log);
    const table: [number, number, bigint][] = [
      [-1, -1, -1n],
      [0, 0, 0n],
      [1, 1, 10n],
      [2, 2, 25n],
      [3, 2, 25n],
      [4, 4, 40n],
      [5, -1, -1n],
    ];
    const answers = (l: FilePartitionLog) => table.map(([requested]) => l.endOffsetForEpoch(requested));
    const expected = table.map(([, epoch, endOffset]) => ({ epoch, endOffset }));
    expect(answers(log)).toEqual(expected);
    expect([0n, 9n, 10n, 24n, 25n, 39n, 40n].map((offset) => log.epochForOffset(offset))).toEqual([1, 1, 2, 2, 4, 4, 4]);
    // A record's epoch is in its batch header too; the cache agrees with every batch.
    for (const b of await readAllBatches(log)) expect(b.bytes.readInt32BE(12)).toBe(log.epochForOffset(b.baseOffset));
    await log.close();
    const reopened = await openTestLog(partitionDir, { config: CONFIG });
    expect(reopened.recovery).toMatchObject({ leaderEpochCacheRebuilt: false, leaderEpochEntriesDropped: 0 });
    expect(answers(reopened)).toEqual(expected);
    await reopened.close();
  });

  it('survives close and reopen, and a crash (no clean-shutdown marker), unchanged and without a rebuild', async () => {
    const log = await openTestLog(partitionDir, { config: CONFIG });
    await writeTableLog(log);
    const before = entries(log);
    await log.close();
    await unlink(join(partitionDir, MARKER));
    const reopened = await openTestLog(partitionDir, { config: CONFIG });
    expect(reopened.recovery).toMatchObject({ cleanShutdown: false, leaderEpochCacheRebuilt: false });
    expect(entries(reopened)).toEqual(before);
    await reopened.close();
  });

  it.each([
    ['deleted', async () => unlink(checkpointPath)],
    ['garbage', async () => writeFile(checkpointPath, 'not a checkpoint')],
    ['out of order', async () => writeFile(checkpointPath, '0\n2\n4 25\n2 10\n')],
    ['missing the latest epoch', async () => writeFile(checkpointPath, '0\n2\n1 0\n2 10\n')],
    ['with an entry inside the last batch', async () => writeFile(checkpointPath, '0\n3\n1 0\n2 10\n4 41\n')],
  ])('is rebuilt from the batch headers when the checkpoint is %s, and says why', async (_name, damage) => {
    const log = await openTestLog(partitionDir, { config: CONFIG });
    await writeTableLog(log);
    await log.appendAsLeader(batch({ records: 3 }), 4); // the last batch holds offsets 40-42
    const before = entries(log);
    await log.close();
    await damage();
    const { logger, entries: logged } = capturingLogger();
    const reopened = await openTestLog(partitionDir, { config: CONFIG, logger });
    expect(reopened.recovery.leaderEpochCacheRebuilt).toBe(true);
    expect(entries(reopened)).toEqual(before);
    const warning = logged().find((line) => String(line.msg).startsWith('leader epoch checkpoint rebuilt'));
    expect(warning).toMatchObject({ level: 40, topicPartition: 'orders-0' });
    expect(await readFile(checkpointPath, 'utf8')).toBe('0\n3\n1 0\n2 10\n4 25\n');
    await reopened.close();
    // Written back: the next open trusts it.
    const again = await openTestLog(partitionDir, { config: CONFIG });
    expect(again.recovery.leaderEpochCacheRebuilt).toBe(false);
    await again.close();
  });

  it('drops entries past the log end after the tail that held them was lost, and logs it', async () => {
    const log = await openTestLog(partitionDir);
    await log.appendAsLeader(batch({ records: 2 }), 5);
    await log.appendAsLeader(batch(), 7);
    await log.appendAsLeader(batch(), 9);
    const lastSize = batch().length;
    await log.close();
    // A crash cut the last batch (epoch 9, offset 3): its entry is in the checkpoint, its bytes are gone.
    const segment = join(partitionDir, '00000000000000000000.log');
    await truncate(segment, (await stat(segment)).size - lastSize + 7);
    await unlink(join(partitionDir, MARKER));
    const { logger, entries: logged } = capturingLogger();
    const reopened = await openTestLog(partitionDir, { logger });
    expect(reopened.logEndOffset).toBe(3n);
    expect(reopened.recovery).toMatchObject({ leaderEpochCacheRebuilt: false, leaderEpochEntriesDropped: 1 });
    expect(entries(reopened)).toEqual([
      [5, 0n],
      [7, 2n],
    ]);
    expect(logged().some((line) => /dropped 1 entries at or past the log end/.test(String(line.msg)))).toBe(true);
    expect(await readFile(checkpointPath, 'utf8')).toBe('0\n2\n5 0\n7 2\n');
    // The lost epoch can be taken again by a follower append from the new leader.
    const bytes = batch({ baseOffset: 3n });
    setPartitionLeaderEpoch(bytes, 8);
    await reopened.appendAsFollower(bytes);
    expect(entries(reopened)).toEqual([
      [5, 0n],
      [7, 2n],
      [8, 3n],
    ]);
    await reopened.close();
  });

  it('writes the checkpoint before the batch of a new epoch: a failed write leaves an entry the next open drops', async () => {
    const fs = new FaultInjectingFs();
    const log = await openTestLog(partitionDir, { fs });
    await log.appendAsLeader(batch(), 1);
    fs.failNext('write', 'EIO', (path) => path.endsWith('.log'));
    expect(await codeOf(log.appendAsLeader(batch(), 2))).toBe('KAFKA_STORAGE_ERROR');
    expect(await readFile(checkpointPath, 'utf8')).toBe('0\n2\n1 0\n2 1\n');
    await log.close();
    const reopened = await openTestLog(partitionDir);
    expect(reopened.logEndOffset).toBe(1n);
    expect(entries(reopened)).toEqual([[1, 0n]]);
    expect(reopened.recovery.leaderEpochEntriesDropped).toBe(1);
    await reopened.close();
  });

  it('keeps the entry covering the new log start when retention deletes segments (Kafka’s truncateFromStart)', async () => {
    const clock = new ManualClock(START_MS);
    const one = batch({ valueBytes: 100 }).length;
    const config = testConfig({ segmentBytes: one * 3, retentionBytes: one * 4 });
    const log = await openTestLog(partitionDir, { clock, config });
    // Epoch 1 @ 0, 2 @ 2, 3 @ 7: segments [0-2] [3-5] [6-8] [9].
    for (let i = 0; i < 10; i++) await log.appendAsLeader(batch({ valueBytes: 100, tag: i }), i < 2 ? 1 : i < 7 ? 2 : 3);
    expect(log.segmentBaseOffsets).toEqual([0n, 3n, 6n, 9n]);
    expect(await log.applyRetention(START_MS)).toBe(2);
    expect(log.logStartOffset).toBe(6n);
    expect(entries(log)).toEqual([
      [2, 6n],
      [3, 7n],
    ]);
    expect(log.endOffsetForEpoch(1)).toEqual({ epoch: 1, endOffset: 6n });
    expect(log.endOffsetForEpoch(2)).toEqual({ epoch: 2, endOffset: 7n });
    expect(await readFile(checkpointPath, 'utf8')).toBe('0\n2\n2 6\n3 7\n');
    await log.close();
    const reopened = await openTestLog(partitionDir, { clock, config });
    expect(entries(reopened)).toEqual([
      [2, 6n],
      [3, 7n],
    ]);
    await reopened.close();
  });

  it('assignEpochStartOffset: a new leader records its epoch at the log end before writing', async () => {
    const log = await openTestLog(partitionDir);
    await log.appendAsLeader(batch({ records: 5 }), 1);
    await log.assignEpochStartOffset(3);
    expect(entries(log)).toEqual([
      [1, 0n],
      [3, 5n],
    ]);
    await log.assignEpochStartOffset(3); // again: nothing changes
    expect(await codeOf(log.assignEpochStartOffset(2))).toBe('FENCED_LEADER_EPOCH');
    // A follower that wrote epoch 2 records this leader never saw learns where epoch 1 ended here.
    expect(log.endOffsetForEpoch(2)).toEqual({ epoch: 1, endOffset: 5n });
    expect(log.endOffsetForEpoch(3)).toEqual({ epoch: 3, endOffset: 5n });
    expect(await readFile(checkpointPath, 'utf8')).toBe('0\n2\n1 0\n3 5\n');
    // Its first append in epoch 3 adds nothing more.
    expect((await log.appendAsLeader(batch(), 3)).baseOffset).toBe(5n);
    expect(entries(log)).toEqual([
      [1, 0n],
      [3, 5n],
    ]);
    await log.close();
  });

  it('an epoch assigned but never written is replaced by the next epoch at the same offset, or dropped by truncateTo', async () => {
    const log = await openTestLog(partitionDir);
    await log.appendAsLeader(batch({ records: 5 }), 1);
    await log.assignEpochStartOffset(3); // became leader of epoch 3, wrote nothing, lost leadership
    const fromEpoch4 = batch({ baseOffset: 5n });
    setPartitionLeaderEpoch(fromEpoch4, 4);
    await log.appendAsFollower(fromEpoch4);
    expect(entries(log)).toEqual([
      [1, 0n],
      [4, 5n],
    ]);
    await log.assignEpochStartOffset(6);
    // The next leader (epoch 7) holds epoch-5 records this replica lacks: after the divergence
    // check the follower truncates to its log end, which drops epoch 6, and then takes epoch 5.
    expect(await log.truncateTo(log.logEndOffset)).toBe(6n);
    expect(entries(log)).toEqual([
      [1, 0n],
      [4, 5n],
    ]);
    const fromEpoch5 = batch({ baseOffset: 6n });
    setPartitionLeaderEpoch(fromEpoch5, 5);
    await log.appendAsFollower(fromEpoch5);
    expect(log.latestEpoch()).toBe(5);
    await log.close();
  });

  it('is cleared by truncateFullyAndStartAt, and a log of batches without epochs has none', async () => {
    const log = await openTestLog(partitionDir);
    await log.appendAsLeader(batch(), -1);
    await log.close();
    const reopened = await openTestLog(partitionDir);
    expect(entries(reopened)).toEqual([]);
    await reopened.appendAsLeader(batch(), 2);
    await reopened.truncateFullyAndStartAt(50n);
    expect(entries(reopened)).toEqual([]);
    expect(reopened.latestEpoch()).toBeUndefined();
    expect(reopened.endOffsetForEpoch(2)).toEqual({ epoch: -1, endOffset: -1n });
    expect(await readFile(checkpointPath, 'utf8')).toBe('0\n0\n');
    await reopened.close();
  });
});
