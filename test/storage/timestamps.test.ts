import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeRecordBatch } from '../../src/codec/record-batch.js';
import { ManualClock } from '../../src/util/clock.js';
import { batch, makeTempDir, openTestLog, removeTempDir, START_MS, testConfig } from './helpers/fixtures.js';
import { randomInt, testSeed, withSeed } from './helpers/prng.js';

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir();
});
afterEach(async () => {
  await removeTempDir(dir);
});

describe('offsetForTimestamp and maxTimestampOffset', () => {
  it('find the first offset whose record timestamp is >= the target, across segments and restarts', async () => {
    await withSeed(testSeed(20240611), async (random) => {
      const partitionDir = join(dir, 'orders-0');
      const config = testConfig({ segmentBytes: 2500, indexIntervalBytes: 200 });
      let log = await openTestLog(partitionDir, { config });
      // Timestamps drift upward with jitter, so batches are not sorted by time inside or between them.
      const records: { offset: bigint; timestamp: bigint }[] = [];
      let clock = START_MS;
      for (let b = 0; b < 80; b++) {
        const count = randomInt(random, 1, 6);
        const timestamps = Array.from({ length: count }, () => BigInt((clock += randomInt(random, -30, 60))));
        const encoded = encodeRecordBatch({
          records: timestamps.map((timestamp, i) => ({ key: null, value: Buffer.alloc(randomInt(random, 5, 80), i), timestamp })),
          compression: random() < 0.3 ? 'gzip' : 'none',
        });
        const result = await log.appendAsLeader(encoded, 0);
        timestamps.forEach((timestamp, i) => records.push({ offset: result.baseOffset + BigInt(i), timestamp }));
      }
      expect(log.segmentCount).toBeGreaterThan(3);

      const expectedFor = (target: bigint) => {
        const found = records.find((r) => r.timestamp >= target);
        return found === undefined ? undefined : { offset: found.offset, timestamp: found.timestamp };
      };
      const maxRecord = records.reduce((best, r) => (r.timestamp > best.timestamp ? r : best));
      const minTs = records.reduce((m, r) => (r.timestamp < m ? r.timestamp : m), records[0].timestamp);
      const check = async () => {
        for (let i = 0; i < 150; i++) {
          const target = minTs - 50n + BigInt(randomInt(random, 0, Number(maxRecord.timestamp - minTs) + 100));
          expect(await log.offsetForTimestamp(target), `target ${target}`).toEqual(expectedFor(target));
        }
        expect(await log.offsetForTimestamp(maxRecord.timestamp + 1n)).toBeUndefined();
        expect(await log.offsetForTimestamp(0n)).toEqual(expectedFor(0n));
        expect(await log.maxTimestampOffset()).toEqual({ offset: maxRecord.offset, timestamp: maxRecord.timestamp });
      };
      await check();
      await log.close();
      log = await openTestLog(partitionDir, { config });
      expect(log.recovery.cleanShutdown).toBe(true);
      await check();
      await log.close();
      // Without indexes, everything is rebuilt from the .log files.
      const { readdir } = await import('node:fs/promises');
      for (const name of await readdir(partitionDir)) if (name.endsWith('index') || name.startsWith('.kavka')) await rm(join(partitionDir, name));
      log = await openTestLog(partitionDir, { config });
      expect(log.recovery.indexesRebuilt).toBe(log.segmentCount);
      await check();
      await log.close();
    });
  });

  it('use the broker’s append time for LogAppendTime topics', async () => {
    const clock = new ManualClock(START_MS);
    const log = await openTestLog(join(dir, 'orders-0'), { clock, config: testConfig({ messageTimestampType: 'LogAppendTime' }) });
    await log.appendAsLeader(batch({ records: 2, timestamp: 5n }), 0);
    clock.advance(1000);
    await log.appendAsLeader(batch({ records: 2, timestamp: 5n }), 0);
    expect(await log.offsetForTimestamp(BigInt(START_MS + 1))).toEqual({ offset: 2n, timestamp: BigInt(START_MS + 1000) });
    expect(await log.offsetForTimestamp(6n)).toEqual({ offset: 0n, timestamp: BigInt(START_MS) });
    expect(await log.maxTimestampOffset()).toEqual({ offset: 2n, timestamp: BigInt(START_MS + 1000) });
    await log.close();
  });

  it('answer undefined on an empty log', async () => {
    const log = await openTestLog(join(dir, 'orders-0'));
    expect(await log.offsetForTimestamp(0n)).toBeUndefined();
    expect(await log.maxTimestampOffset()).toBeUndefined();
    await log.close();
  });
});
