// PartitionLog.truncateTo and truncateFullyAndStartAt, a follower's truncation to the divergence
// point (KIP-101 / KIP-279) and its restart below the leader's log start: whole batches removed,
// segments above deleted, indexes and timestamps as if the removed batches had never been
// written, durable before resolving, survived by reopen and crash, safe for reads in flight,
// and a failure takes the log dir offline like any write failure.
import { readFile, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeRecordBatch, effectiveTimestamp, encodeRecordBatch, setPartitionLeaderEpoch } from '../../src/codec/record-batch.js';
import { FaultInjectingFs, openLogManager, type FilePartitionLog, type PartitionLog } from '../../src/storage/index.js';
import { AssertionError } from '../../src/util/assert.js';
import { ManualClock } from '../../src/util/clock.js';
import { KavkaError } from '../../src/util/errors.js';
import { silentLogger } from '../../src/util/logger.js';
import { batch, capturingLogger, makeTempDir, openTestLog, readAllBatches, removeTempDir, settle, START_MS, testConfig, TOPIC_ID, waitUntil, type ReadBatch } from './helpers/fixtures.js';
import { randomInt, testSeed, withSeed, type Random } from './helpers/prng.js';

const SEED = testSeed(0x7a0c47e);
const CONFIG = testConfig({ segmentBytes: 2000, indexIntervalBytes: 250 });
const MARKER = '.kavka_cleanshutdown';

let dir: string;
let partitionDir: string;
beforeEach(async () => {
  dir = await makeTempDir();
  partitionDir = join(dir, 'orders-0');
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

/** Batches of 1-3 records with shuffled timestamps, leader epochs 1..5 going up. */
function randomBatches(random: Random, count: number): { bytes: Buffer; epoch: number }[] {
  return Array.from({ length: count }, (_, i) => ({
    bytes: encodeRecordBatch({
      records: Array.from({ length: randomInt(random, 1, 4) }, (_unused, r) => ({
        key: Buffer.from(`k${i}-${r}`),
        value: Buffer.alloc(randomInt(random, 10, 200), i & 0xff),
        timestamp: BigInt(START_MS + randomInt(random, 0, 100_000)),
      })),
      compression: i % 7 === 3 ? 'gzip' : 'none',
    }),
    epoch: 1 + Math.floor((i * 5) / count),
  }));
}

/** A log of several segments written as leader; returns what it holds. */
async function writeLog(log: PartitionLog, random: Random, count = 45): Promise<ReadBatch[]> {
  for (const { bytes, epoch } of randomBatches(random, count)) await log.appendAsLeader(bytes, epoch);
  return readAllBatches(log);
}

/** What offsetForTimestamp must answer, from the batches alone: the first record (by offset) at or after the timestamp. */
function expectedOffsetForTimestamp(batches: ReadBatch[], target: bigint): { offset: bigint; timestamp: bigint } | undefined {
  for (const b of batches) {
    const { header, records } = decodeRecordBatch(b.bytes);
    for (const record of records) {
      const timestamp = effectiveTimestamp(header, record);
      if (timestamp >= target) return { offset: record.offset, timestamp };
    }
  }
  return undefined;
}

function expectedMaxTimestamp(batches: ReadBatch[]): { offset: bigint; timestamp: bigint } | undefined {
  let best: { offset: bigint; timestamp: bigint } | undefined;
  for (const b of batches) {
    const { header, records } = decodeRecordBatch(b.bytes);
    for (const record of records) {
      const timestamp = effectiveTimestamp(header, record);
      if (best === undefined || timestamp > best.timestamp) best = { offset: record.offset, timestamp };
    }
  }
  return best;
}

/** The log holds exactly `kept`, byte for byte, and every lookup (offset, timestamp, max timestamp) agrees with them. */
async function expectHolds(log: PartitionLog, kept: ReadBatch[], what: string): Promise<void> {
  const end = kept.length === 0 ? log.logStartOffset : kept[kept.length - 1].lastOffset + 1n;
  expect(log.logEndOffset, what).toBe(end);
  const actual = await readAllBatches(log);
  expect(actual.map((b) => b.baseOffset), what).toEqual(kept.map((b) => b.baseOffset));
  expect(Buffer.concat(actual.map((b) => b.bytes)).equals(Buffer.concat(kept.map((b) => b.bytes))), what).toBe(true);
  for (const b of kept) {
    for (const offset of [b.baseOffset, b.lastOffset]) {
      const read = await log.read(offset, 1, { maxOffset: end, minOneBatch: true });
      expect(read.batches.subarray(0, 8).readBigInt64BE(0), `${what}: read at ${offset}`).toBe(b.baseOffset);
    }
  }
  for (let t = START_MS - 1; t <= START_MS + 100_001; t += 2_500) {
    expect(await log.offsetForTimestamp(BigInt(t)), `${what}: offsetForTimestamp(${t})`).toEqual(expectedOffsetForTimestamp(kept, BigInt(t)));
  }
  expect(await log.maxTimestampOffset(), `${what}: maxTimestampOffset`).toEqual(expectedMaxTimestamp(kept));
  expect(log.sizeBytes, what).toBe(kept.reduce((sum, b) => sum + b.bytes.length, 0));
}

function keptBelow(batches: ReadBatch[], offset: bigint): ReadBatch[] {
  return batches.filter((b) => b.lastOffset < offset);
}

describe('truncateTo', () => {
  it('at a batch boundary in the active segment: the log end becomes the offset, and appends continue there', async () => {
    const log = await openTestLog(partitionDir);
    for (let i = 0; i < 6; i++) await log.appendAsLeader(batch({ records: 2, tag: i }), 1);
    const before = await readAllBatches(log);
    expect(await log.truncateTo(6n)).toBe(6n);
    await expectHolds(log, before.slice(0, 3), 'after the truncation');
    expect(log.durableEndOffset).toBe(6n);
    const next = batch({ baseOffset: 6n, tag: 99 });
    setPartitionLeaderEpoch(next, 2);
    await log.appendAsFollower(next);
    expect((await log.appendAsLeader(batch(), 2)).baseOffset).toBe(7n);
    expect(log.logEndOffset).toBe(8n);
    await log.close();
  });

  it('inside a batch: removes the whole batch, resolves with its base offset, and logs where it cut', async () => {
    const { logger, entries } = capturingLogger();
    const log = await openTestLog(partitionDir, { logger });
    await log.appendAsLeader(batch({ records: 3 }), 1);
    await log.appendAsLeader(batch({ records: 3 }), 1);
    const before = await readAllBatches(log);
    expect(await log.truncateTo(4n)).toBe(3n);
    await expectHolds(log, before.slice(0, 1), 'after a mid-batch truncation');
    const line = entries().find((e) => e.msg === 'truncated the log to 3, the batch boundary at or below 4');
    expect(line).toMatchObject({ requestedOffset: '4', logEndOffset: '3', previousLogEndOffset: '6', topicPartition: 'orders-0' });
    await log.close();
  });

  it('across segments: deletes the segments above, cuts the one holding the new end, and keeps every lookup right', async () => {
    await withSeed(SEED, async (random) => {
      const template = join(dir, 'template');
      const original = await writeLog(await openTestLog(template, { config: CONFIG }), random).then(async (batches) => batches);
      for (let round = 0; round < 6; round++) {
        const roundDir = join(dir, `round-${round}`);
        const log = await openTestLog(roundDir, { config: CONFIG });
        for (const b of original) await log.appendAsFollower(Buffer.from(b.bytes));
        expect(log.segmentCount).toBeGreaterThanOrEqual(4);
        const offset = round === 0 ? log.segmentBaseOffsets[1] : BigInt(randomInt(random, 1, Number(log.logEndOffset)));
        const kept = keptBelow(original, offset);
        const end = await log.truncateTo(offset);
        const what = `round ${round}: truncateTo(${offset})`;
        expect(end, what).toBe(kept.length === 0 ? 0n : kept[kept.length - 1].lastOffset + 1n);
        await expectHolds(log, kept, what);
        expect(log.durableEndOffset, what).toBe(end);
        // No segment starts above the new end, and the files on disk are those segments.
        const bases = log.segmentBaseOffsets;
        expect(bases.every((base) => base <= end), what).toBe(true);
        const files = (await readdir(roundDir)).filter((name) => name.endsWith('.log')).sort();
        expect(files, what).toEqual(bases.map((base) => `${base.toString().padStart(20, '0')}.log`));
        expect((await stat(join(roundDir, files[files.length - 1]))).size, what).toBe(log.sizeBytes - kept.filter((b) => b.baseOffset < bases[bases.length - 1]).reduce((s, b) => s + b.bytes.length, 0));
        // Epoch entries agree with the batches kept.
        for (const b of kept) expect(log.epochForOffset(b.baseOffset), what).toBe(b.bytes.readInt32BE(12));
        expect(log.leaderEpochEntries.every((entry) => entry.startOffset < end), what).toBe(true);
        // Appending continues, and rolls, from the new end.
        const more = randomBatches(random, 12);
        const appended: ReadBatch[] = [];
        for (const { bytes } of more) await log.appendAsLeader(bytes, 6);
        appended.push(...(await readAllBatches(log, end)));
        expect(appended[0].baseOffset, what).toBe(end);
        await expectHolds(log, [...kept, ...appended], `${what}, then appends`);
        await log.close();
        // A clean reopen, and one after a crash, hold the same.
        for (const crash of [false, true]) {
          if (crash) await unlink(join(roundDir, MARKER));
          const reopened = await openTestLog(roundDir, { config: CONFIG });
          await expectHolds(reopened, [...kept, ...appended], `${what}, reopened${crash ? ' after a crash' : ''}`);
          expect(reopened.recovery.leaderEpochCacheRebuilt, what).toBe(false);
          await reopened.close();
        }
      }
    });
  });

  it('is durable when it resolves: a crash right after (no close) finds the truncated log', async () => {
    await withSeed(SEED, async (random) => {
      const log = await openTestLog(partitionDir, { config: CONFIG });
      const original = await writeLog(log, random);
      const offset = original[Math.floor(original.length / 3)].baseOffset + 1n;
      const end = await log.truncateTo(offset);
      // Another instance opens the directory as the next process would after a crash here.
      const afterCrash = await openTestLog(partitionDir, { config: CONFIG });
      expect(afterCrash.recovery).toMatchObject({ cleanShutdown: false, leaderEpochCacheRebuilt: false, leaderEpochEntriesDropped: 0 });
      expect(afterCrash.logEndOffset).toBe(end);
      await expectHolds(afterCrash, keptBelow(original, offset), 'opened after a crash');
      expect(afterCrash.leaderEpochEntries).toEqual(log.leaderEpochEntries);
      await afterCrash.close();
      await log.close();
    }, 1);
  });

  it('drops the epoch entries starting at or after the new log end, durably', async () => {
    const log = await openTestLog(partitionDir);
    await log.appendAsLeader(batch({ records: 2 }), 1);
    await log.appendAsLeader(batch({ records: 2 }), 3);
    await log.appendAsLeader(batch({ records: 2 }), 4);
    await log.appendAsLeader(batch({ records: 2 }), 4);
    expect(await log.truncateTo(3n)).toBe(2n);
    expect(log.leaderEpochEntries).toEqual([{ epoch: 1, startOffset: 0n }]);
    expect(log.endOffsetForEpoch(1)).toEqual({ epoch: 1, endOffset: 2n });
    expect(log.endOffsetForEpoch(3)).toEqual({ epoch: -1, endOffset: -1n });
    expect(await readFile(join(partitionDir, 'leader-epoch-checkpoint'), 'utf8')).toBe('0\n1\n1 0\n');
    await log.close();
  });

  it('at or above the log end removes nothing; below the log start it is a caller bug (assertion)', async () => {
    const one = batch({ valueBytes: 100 }).length;
    const log = await openTestLog(partitionDir, { config: testConfig({ segmentBytes: one * 2, retentionBytes: one * 4 }) });
    for (let i = 0; i < 6; i++) await log.appendAsLeader(batch({ valueBytes: 100, tag: i }), 1);
    expect(await log.applyRetention(START_MS)).toBe(1);
    expect(log.logStartOffset).toBe(2n);
    const held = (await readAllBatches(log)).length;
    expect(await log.truncateTo(6n)).toBe(6n);
    expect(await log.truncateTo(1000n)).toBe(6n);
    expect((await readAllBatches(log)).length).toBe(held);
    await expect(log.truncateTo(1n)).rejects.toThrow(AssertionError);
    expect(await log.truncateTo(2n)).toBe(2n); // down to the log start: empty, still starting there
    expect([log.logStartOffset, log.logEndOffset, log.sizeBytes]).toEqual([2n, 2n, 0]);
    expect((await log.appendAsLeader(batch(), 1)).baseOffset).toBe(2n);
    await log.close();
  });

  it('waits for reads that started before it to finish before cutting the file; reads after see the truncated log', async () => {
    const fs = new FaultInjectingFs();
    const log = await openTestLog(partitionDir, { fs });
    for (let i = 0; i < 6; i++) await log.appendAsLeader(batch({ records: 2, tag: i, valueBytes: 300 }), 1);
    const before = await readAllBatches(log);
    // Only the first read waits: the truncation reads headers too.
    let holdNext = true;
    const hold = fs.hold('read', (path) => {
      if (!isLog(path) || !holdNext) return false;
      holdNext = false;
      return true;
    });
    const slowRead = log.read(8n, 1 << 20, { maxOffset: 12n, minOneBatch: true });
    await hold.reached;
    let truncated = false;
    const truncation = log.truncateTo(4n).then((end) => {
      truncated = true;
      return end;
    });
    await waitUntil(() => log.logEndOffset === 4n, 'the truncation switched the log over');
    await settle();
    expect(fs.count('truncate', isLog)).toBe(0); // the file is not cut under the read
    expect(truncated).toBe(false);
    hold.release();
    const old = await slowRead;
    expect(old.logEndOffset).toBe(12n);
    expect(old.batches.equals(Buffer.concat(before.slice(4).map((b) => b.bytes)))).toBe(true);
    expect(await truncation).toBe(4n);
    expect(fs.count('truncate', isLog)).toBe(1);
    await expect(log.read(8n, 1000, { maxOffset: 12n, minOneBatch: true })).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
    await expectHolds(log, before.slice(0, 2), 'after the held read');
    await log.close();
  });

  it('rejects appends still waiting for the durability of records it removed (NOT_LEADER_OR_FOLLOWER)', async () => {
    const fs = new FaultInjectingFs();
    const log = await openTestLog(partitionDir, { fs });
    await log.appendAsLeader(batch({ records: 2 }), 1);
    const hold = fs.hold('datasync', isLog);
    const kept = log.appendAsLeader(batch({ tag: 1 }), 1);
    await hold.reached;
    const removed = log.appendAsLeader(batch({ tag: 2 }), 1);
    await waitUntil(() => log.logEndOffset === 4n, 'both appends are written');
    const truncation = log.truncateTo(3n);
    expect(await codeOf(removed)).toBe('NOT_LEADER_OR_FOLLOWER');
    hold.release();
    expect(await truncation).toBe(3n);
    await kept;
    expect(log.durableEndOffset).toBe(3n);
    await log.close();
  });

  it('syncs what it did before resolving: the segments above unlinked newest first with a directory fsync each, then the cut fdatasynced', async () => {
    const fs = new FaultInjectingFs();
    const one = batch({ valueBytes: 100 }).length;
    const log = await openTestLog(partitionDir, { fs, config: testConfig({ segmentBytes: one * 2 }) });
    for (let i = 0; i < 7; i++) await log.appendAsLeader(batch({ valueBytes: 100, tag: i }), 1);
    expect(log.segmentBaseOffsets).toEqual([0n, 2n, 4n, 6n]);
    fs.clearCalls();
    expect(await log.truncateTo(3n)).toBe(3n);
    const calls = fs.calls.filter((c) => ['unlink', 'syncDirectory', 'truncate', 'datasync'].includes(c.operation) && !c.path.endsWith('.tmp')).map((c) => `${c.operation} ${c.path.slice(partitionDir.length + 1) || '.'}`);
    expect(calls).toEqual([
      'unlink 00000000000000000006.log',
      'unlink 00000000000000000006.index',
      'unlink 00000000000000000006.timeindex',
      'syncDirectory .',
      'unlink 00000000000000000004.log',
      'unlink 00000000000000000004.index',
      'unlink 00000000000000000004.timeindex',
      'syncDirectory .',
      'truncate 00000000000000000002.log',
      'datasync 00000000000000000002.log',
      // The producer-state snapshots of the rolls above the new end, durably gone before any append.
      'unlink 00000000000000000004.snapshot',
      'unlink 00000000000000000006.snapshot',
      'syncDirectory .',
    ]);
    expect(log.segmentBaseOffsets).toEqual([0n, 2n]);
    await log.close();
  });
});

describe('truncateFullyAndStartAt', () => {
  it('restarts the log empty at the offset; follower appends continue there; a reopen sees the same', async () => {
    const log = await openTestLog(partitionDir, { config: CONFIG });
    for (let i = 0; i < 30; i++) await log.appendAsLeader(batch({ records: 2, tag: i, valueBytes: 100 }), 2);
    expect(log.segmentCount).toBeGreaterThan(2);
    await log.truncateFullyAndStartAt(500n);
    expect([log.logStartOffset, log.logEndOffset, log.durableEndOffset, log.sizeBytes, log.segmentCount]).toEqual([500n, 500n, 500n, 0, 1]);
    expect(log.latestEpoch()).toBeUndefined();
    expect((await readdir(partitionDir)).filter((name) => name.endsWith('.log'))).toEqual(['00000000000000000500.log']);
    expect(await readFile(join(partitionDir, 'log-start-offset-checkpoint'), 'utf8')).toBe('0\n1\norders 0 500\n');
    await expect(log.read(10n, 1000, { maxOffset: 500n, minOneBatch: true })).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
    const fetched = batch({ baseOffset: 500n, records: 3 });
    setPartitionLeaderEpoch(fetched, 7);
    await log.appendAsFollower(fetched);
    expect(log.logEndOffset).toBe(503n);
    expect(log.leaderEpochEntries).toEqual([{ epoch: 7, startOffset: 500n }]);
    await log.close();
    const reopened = await openTestLog(partitionDir, { config: CONFIG });
    expect([reopened.logStartOffset, reopened.logEndOffset]).toEqual([500n, 503n]);
    expect((await readAllBatches(reopened)).map((b) => b.bytes.equals(fetched))).toEqual([true]);
    expect(reopened.leaderEpochEntries).toEqual([{ epoch: 7, startOffset: 500n }]);
    await reopened.close();
  });

  it('may move the log start down, and to an offset a segment already had (the name is reused)', async () => {
    const log = await openTestLog(partitionDir);
    await log.truncateFullyAndStartAt(100n);
    await log.appendAsLeader(batch({ records: 5 }), 1);
    await log.truncateFullyAndStartAt(100n);
    expect([log.logStartOffset, log.logEndOffset]).toEqual([100n, 100n]);
    await log.truncateFullyAndStartAt(40n);
    expect([log.logStartOffset, log.logEndOffset]).toEqual([40n, 40n]);
    expect((await log.appendAsLeader(batch(), 1)).baseOffset).toBe(40n);
    await log.close();
    const reopened = await openTestLog(partitionDir);
    expect([reopened.logStartOffset, reopened.logEndOffset]).toEqual([40n, 41n]);
    await reopened.close();
  });

  it('lets the first follower batch start past the offset (an empty log may begin with a gap), readable from the start', async () => {
    const log = await openTestLog(partitionDir);
    await log.appendAsLeader(batch(), 1);
    await log.truncateFullyAndStartAt(100n);
    const later = batch({ baseOffset: 103n, records: 2 });
    setPartitionLeaderEpoch(later, 2);
    await log.appendAsFollower(later);
    expect([log.logStartOffset, log.logEndOffset]).toEqual([100n, 105n]);
    const read = await log.read(100n, 1000, { maxOffset: 105n, minOneBatch: true });
    expect(read.batches.equals(later)).toBe(true);
    // Not once the log holds a record: then a gap is an error.
    const gapped = batch({ baseOffset: 107n });
    setPartitionLeaderEpoch(gapped, 2);
    expect(await codeOf(log.appendAsFollower(gapped))).toBe('OFFSET_OUT_OF_RANGE');
    await log.close();
    const reopened = await openTestLog(partitionDir);
    expect([reopened.logStartOffset, reopened.logEndOffset]).toEqual([100n, 105n]);
    await reopened.close();
  });

  it('lets reads in flight finish on the old segments', async () => {
    const fs = new FaultInjectingFs();
    const log = await openTestLog(partitionDir, { fs });
    for (let i = 0; i < 4; i++) await log.appendAsLeader(batch({ tag: i, valueBytes: 200 }), 1);
    const before = await readAllBatches(log);
    const hold = fs.hold('read', isLog);
    const slowRead = log.read(0n, 1 << 20, { maxOffset: 4n, minOneBatch: true });
    await hold.reached;
    await log.truncateFullyAndStartAt(10n);
    hold.release();
    expect((await slowRead).batches.equals(Buffer.concat(before.map((b) => b.bytes)))).toBe(true);
    expect(log.logEndOffset).toBe(10n);
    await log.close();
  });
});

describe('a disk failure during truncation', () => {
  async function openManagerLog(fs: FaultInjectingFs, config = CONFIG) {
    const manager = await openLogManager({ logDir: join(dir, 'data'), nodeId: 1, clusterId: 'c1', clock: new ManualClock(START_MS), logger: silentLogger(), fs });
    const reasons: string[] = [];
    manager.onOffline((reason) => reasons.push(reason));
    const log = (await manager.createLog({ topic: 'orders', partition: 0 }, config, TOPIC_ID)) as FilePartitionLog;
    return { manager, log, reasons };
  }

  async function reopen(): Promise<{ log: FilePartitionLog; close: () => Promise<void> }> {
    const manager = await openLogManager({ logDir: join(dir, 'data'), nodeId: 1, clusterId: 'c1', clock: new ManualClock(START_MS), logger: silentLogger() });
    const log = (await manager.createLog({ topic: 'orders', partition: 0 }, CONFIG, TOPIC_ID)) as FilePartitionLog;
    return { log, close: () => manager.close() };
  }

  it('an fsync error takes the log dir offline; reopening finds the truncated log and drops the epochs past its end', async () => {
    await withSeed(SEED, async (random) => {
      const fs = new FaultInjectingFs();
      const { manager, log, reasons } = await openManagerLog(fs);
      const original = await writeLog(log, random);
      const latestEpochStart = log.leaderEpochEntries[log.leaderEpochEntries.length - 1].startOffset;
      const offset = latestEpochStart - 3n;
      fs.failNext('datasync', 'EIO', isLog);
      expect(await codeOf(log.truncateTo(offset))).toBe('KAFKA_STORAGE_ERROR');
      expect(manager.state.kind).toBe('offline');
      expect(reasons).toHaveLength(1);
      expect(reasons[0]).toMatch(/truncate .*EIO/);
      expect(await codeOf(log.appendAsFollower(batch({ baseOffset: log.logEndOffset })))).toBe('KAFKA_STORAGE_ERROR');
      expect(await codeOf(log.truncateTo(0n))).toBe('KAFKA_STORAGE_ERROR');
      expect(await codeOf(log.truncateFullyAndStartAt(0n))).toBe('KAFKA_STORAGE_ERROR');
      expect(() => log.endOffsetForEpoch(1)).toThrow(expect.objectContaining({ code: 'KAFKA_STORAGE_ERROR' }));
      await manager.close();
      const { log: reopened, close } = await reopen();
      // The cut happened before the failed fsync; the epoch checkpoint was never rewritten.
      await expectHolds(reopened, keptBelow(original, offset), 'reopened after the failure');
      expect(reopened.recovery.leaderEpochEntriesDropped).toBeGreaterThan(0);
      for (const b of keptBelow(original, offset)) expect(reopened.epochForOffset(b.baseOffset)).toBe(b.bytes.readInt32BE(12));
      await close();
    }, 2);
  });

  it.each([
    ['unlinking a segment above', 'unlink'],
    ['cutting the segment file', 'truncate'],
    ['syncing the directory', 'syncDirectory'],
  ] as const)('a failure %s takes the dir offline and leaves a prefix of the log, never a hole', async (_name, operation) => {
    await withSeed(SEED, async (random) => {
      const fs = new FaultInjectingFs();
      const { manager, log } = await openManagerLog(fs);
      const original = await writeLog(log, random);
      const bases = log.segmentBaseOffsets;
      expect(bases.length).toBeGreaterThanOrEqual(4);
      const offset = bases[1] + 1n;
      if (operation === 'unlink') fs.failNext('unlink', 'EIO', (path) => path.endsWith(`${bases[bases.length - 2].toString().padStart(20, '0')}.log`));
      else if (operation === 'truncate') fs.failNext('truncate', 'EIO', isLog);
      else fs.failNext('syncDirectory', 'EIO');
      expect(await codeOf(log.truncateTo(offset))).toBe('KAFKA_STORAGE_ERROR');
      expect(manager.state.kind).toBe('offline');
      await manager.close();
      const { log: reopened, close } = await reopen();
      const held = await readAllBatches(reopened);
      expect(held.length).toBeGreaterThanOrEqual(keptBelow(original, offset).length);
      expect(Buffer.concat(held.map((b) => b.bytes)).equals(Buffer.concat(original.slice(0, held.length).map((b) => b.bytes)))).toBe(true);
      expect(reopened.logEndOffset).toBe(held[held.length - 1].lastOffset + 1n);
      // Whatever is left, the follower can finish the truncation and go on.
      expect(await reopened.truncateTo(offset)).toBe(keptBelow(original, offset).slice(-1)[0].lastOffset + 1n);
      await close();
    }, 3);
  });

  it('during truncateFullyAndStartAt takes the dir offline; reopening finds the old log or a prefix of it, or the new empty one', async () => {
    const fs = new FaultInjectingFs();
    const { manager, log } = await openManagerLog(fs, testConfig({ segmentBytes: batch({ valueBytes: 100 }).length * 2 }));
    for (let i = 0; i < 7; i++) await log.appendAsLeader(batch({ valueBytes: 100, tag: i }), 1);
    const original = await readAllBatches(log);
    fs.failNext('unlink', 'EIO', (path) => path.endsWith('00000000000000000002.log'));
    expect(await codeOf(log.truncateFullyAndStartAt(1000n))).toBe('KAFKA_STORAGE_ERROR');
    expect(manager.state.kind).toBe('offline');
    await manager.close();
    const { log: reopened, close } = await reopen();
    const held = await readAllBatches(reopened);
    expect(held.map((b) => b.baseOffset)).toEqual([0n, 1n, 2n, 3n]); // segments 4 and 6 went first
    expect(Buffer.concat(held.map((b) => b.bytes)).equals(Buffer.concat(original.slice(0, 4).map((b) => b.bytes)))).toBe(true);
    // The epoch checkpoint was cleared first: it is rebuilt from what is left.
    expect(reopened.recovery.leaderEpochCacheRebuilt).toBe(true);
    expect(reopened.leaderEpochEntries).toEqual([{ epoch: 1, startOffset: 0n }]);
    await reopened.truncateFullyAndStartAt(1000n);
    expect([reopened.logStartOffset, reopened.logEndOffset]).toEqual([1000n, 1000n]);
    await close();
  });
});
