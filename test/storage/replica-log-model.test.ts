// A seeded model test of a replica's log: follower and leader appends, truncateTo,
// truncateFullyAndStartAt, clean reopen and crash-reopen (no clean-shutdown marker) in random
// order, with small segments and a small index interval. After every step the log must hold
// exactly the model's batches, byte for byte, with the epoch cache the batches imply, and answer
// reads and timestamp lookups as the batches say. A failure prints the seed that replays it.
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeRecordBatch, effectiveTimestamp, encodeRecordBatch, lastOffsetOf, readBatchHeader } from '../../src/codec/record-batch.js';
import type { EpochEntry, FilePartitionLog } from '../../src/storage/index.js';
import { LeaderEpochCache } from '../../src/storage/leader-epoch-cache.js';
import { makeTempDir, openTestLog, readAllBatches, removeTempDir, START_MS, testConfig } from './helpers/fixtures.js';
import { randomInt, testSeed, withSeed, type Random } from './helpers/prng.js';

const SEED = testSeed(0x4e91ca);
const STEPS = 250;
const CONFIG = testConfig({ segmentBytes: 1200, indexIntervalBytes: 150 });

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir();
});
afterEach(async () => {
  await removeTempDir(dir);
});

interface Model {
  logStart: bigint;
  batches: Buffer[];
}

function modelEnd(model: Model): bigint {
  const last = model.batches[model.batches.length - 1];
  return last === undefined ? model.logStart : lastOffsetOf(readBatchHeader(last)) + 1n;
}

/** The epoch cache the model's batches imply: Kafka's rule, one entry per epoch increase. */
function modelEpochs(model: Model): EpochEntry[] {
  const cache = new LeaderEpochCache();
  for (const bytes of model.batches) {
    const header = readBatchHeader(bytes);
    const latest = cache.latestEpoch();
    if (header.partitionLeaderEpoch >= 0 && (latest === undefined || header.partitionLeaderEpoch > latest)) cache.assign(header.partitionLeaderEpoch, header.baseOffset);
  }
  return cache.entries();
}

function randomBatch(random: Random, baseOffset: bigint, epoch: number): Buffer {
  return encodeRecordBatch({
    baseOffset,
    partitionLeaderEpoch: epoch,
    records: Array.from({ length: randomInt(random, 1, 4) }, () => ({ key: null, value: Buffer.alloc(randomInt(random, 5, 150), randomInt(random, 0, 256)), timestamp: BigInt(START_MS + randomInt(random, 0, 10_000)) })),
  });
}

async function expectMatches(log: FilePartitionLog, model: Model, what: string): Promise<void> {
  expect([log.logStartOffset, log.logEndOffset], what).toEqual([model.logStart, modelEnd(model)]);
  const held = await readAllBatches(log);
  expect(Buffer.concat(held.map((b) => b.bytes)).equals(Buffer.concat(model.batches)), `${what}: bytes`).toBe(true);
  expect(log.leaderEpochEntries, `${what}: epochs`).toEqual(modelEpochs(model));
  expect(log.sizeBytes, `${what}: size`).toBe(model.batches.reduce((sum, b) => sum + b.length, 0));
  // Timestamp lookups, against the records themselves.
  for (const target of [START_MS, START_MS + 5_000, START_MS + 9_990]) {
    let expected: { offset: bigint; timestamp: bigint } | undefined;
    for (const bytes of model.batches) {
      const { header, records } = decodeRecordBatch(bytes);
      expected ??= records.map((r) => ({ offset: r.offset, timestamp: effectiveTimestamp(header, r) })).find((r) => r.timestamp >= BigInt(target));
    }
    expect(await log.offsetForTimestamp(BigInt(target)), `${what}: offsetForTimestamp(${target})`).toEqual(expected);
  }
}

describe('a replica log under random appends, truncations and restarts', () => {
  it('always holds exactly what the model says', async () => {
    await withSeed(SEED, async (random) => {
      const directory = join(dir, 'orders-0');
      let log = await openTestLog(directory, { config: CONFIG });
      const model: Model = { logStart: 0n, batches: [] };
      let epoch = 0;
      const counts = new Map<string, number>();
      for (let step = 0; step < STEPS; step++) {
        const roll = random();
        let action: string;
        if (roll < 0.4) {
          action = 'appendAsFollower';
          if (random() < 0.3) epoch += randomInt(random, 1, 3);
          const bytes: Buffer[] = [];
          let next = modelEnd(model);
          for (let i = randomInt(random, 1, 4); i > 0; i--) {
            const b = randomBatch(random, next, epoch);
            bytes.push(b);
            next = lastOffsetOf(readBatchHeader(b)) + 1n;
          }
          await log.appendAsFollower(Buffer.concat(bytes));
          model.batches.push(...bytes);
        } else if (roll < 0.6) {
          action = 'appendAsLeader';
          if (random() < 0.3) epoch += 1;
          const bytes = randomBatch(random, 0n, 0);
          const result = await log.appendAsLeader(bytes, epoch);
          expect(result.baseOffset).toBe(modelEnd(model));
          model.batches.push(bytes); // stamped in place by the append
        } else if (roll < 0.8) {
          action = 'truncateTo';
          const end = modelEnd(model);
          const offset = model.logStart + BigInt(randomInt(random, 0, Number(end - model.logStart) + 2));
          const newEnd = await log.truncateTo(offset);
          model.batches = model.batches.filter((b) => lastOffsetOf(readBatchHeader(b)) < offset);
          expect(newEnd, `step ${step}: truncateTo(${offset})`).toBe(modelEnd(model));
          // The epoch of the last batch kept is the latest now; later epochs continue from it.
          epoch = Math.max(0, ...model.batches.map((b) => readBatchHeader(b).partitionLeaderEpoch));
        } else if (roll < 0.85) {
          action = 'truncateFullyAndStartAt';
          const offset = BigInt(randomInt(random, 0, Number(modelEnd(model)) + 50));
          await log.truncateFullyAndStartAt(offset);
          model.logStart = offset;
          model.batches = [];
        } else {
          const crash = random() < 0.5;
          action = crash ? 'crash and reopen' : 'close and reopen';
          await log.close();
          if (crash) await unlink(join(directory, '.kavka_cleanshutdown'));
          log = await openTestLog(directory, { config: CONFIG });
          expect(log.recovery.leaderEpochCacheRebuilt, `step ${step}: ${action}`).toBe(false);
          expect(log.recovery.bytesTruncated, `step ${step}: ${action}`).toBe(0);
        }
        counts.set(action, (counts.get(action) ?? 0) + 1);
        await expectMatches(log, model, `step ${step} (${action})`);
      }
      await log.close();
      for (const action of ['appendAsFollower', 'appendAsLeader', 'truncateTo', 'truncateFullyAndStartAt', 'close and reopen', 'crash and reopen']) {
        expect(counts.get(action) ?? 0, `${action} ran`).toBeGreaterThan(3);
      }
    });
  });
});
