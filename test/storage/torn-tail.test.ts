// The torn-tail test: a crash (or a damaged disk) leaves the active segment cut at any byte, or
// with any byte flipped. Recovery must keep exactly the whole valid batches before the damage,
// byte for byte, and appends must continue at the offset after them.
//
// Flips are placed on bytes the CRC-32C covers, plus the length and magic fields. The base offset
// (bytes 0-7) and the partition leader epoch (12-15) sit outside the CRC in RecordBatch v2, as in
// Kafka; damage there can pass unnoticed, so it is not part of this test.
import { readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeRecordBatch, scanBatches } from '../../src/codec/record-batch.js';
import { FaultInjectingFs } from '../../src/storage/index.js';
import { batch, makeTempDir, openTestLog, readAllBatches, removeTempDir, START_MS, testConfig, type ReadBatch } from './helpers/fixtures.js';
import { randomInt, testSeed, withSeed, type Random } from './helpers/prng.js';

const SEED = testSeed(0x5eed7a11);
/** Build with small segments for two sealed segments, then a large active one. */
const SMALL_SEGMENTS = testConfig({ segmentBytes: 3000, indexIntervalBytes: 400 });
const CONFIG = testConfig({ segmentBytes: 1024 * 1024, indexIntervalBytes: 400 });
const MARKER = '.kavka_cleanshutdown';

interface ActiveBatch {
  position: number;
  size: number;
  baseOffset: bigint;
  lastOffset: bigint;
}

let dir: string;
let partitionDir: string;
/** Every file of the closed log, to restore before each damage. */
let pristine: Map<string, Buffer>;
let sealedBatches: ReadBatch[];
let activeName: string;
let activeBase: bigint;
let activeBytes: Buffer;
let activeBatches: ActiveBatch[];

function randomBatch(random: Random, index: number, small: boolean): Buffer {
  const count = small ? randomInt(random, 1, 3) : randomInt(random, 1, 8);
  const valueBytes = small ? randomInt(random, 1, 40) : randomInt(random, 1, 700);
  return encodeRecordBatch({
    records: Array.from({ length: count }, (_, i) => ({
      key: random() < 0.5 ? null : Buffer.from(`k${index}-${i}`),
      value: Buffer.from(Array.from({ length: valueBytes }, () => randomInt(random, 0, 256))),
      timestamp: BigInt(START_MS + index * 10 + i),
    })),
    compression: random() < 0.3 ? 'gzip' : 'none',
  });
}

beforeAll(async () => {
  dir = await makeTempDir();
  partitionDir = join(dir, 'orders-0');
  await withSeed(SEED, async (random) => {
    const log = await openTestLog(partitionDir, { config: SMALL_SEGMENTS });
    let index = 0;
    while (log.segmentCount < 3) await log.appendAsLeader(randomBatch(random, index++, false), 0);
    log.updateConfig(CONFIG);
    for (let i = 0; i < 40; i++) await log.appendAsLeader(randomBatch(random, index++, i >= 36), 0);
    activeBase = log.segmentBaseOffsets[2];
    sealedBatches = (await readAllBatches(log)).filter((b) => b.baseOffset < activeBase);
    await log.close();
  });
  pristine = new Map(readdirSync(partitionDir).map((name) => [name, readFileSync(join(partitionDir, name))]));
  activeName = `${activeBase.toString().padStart(20, '0')}.log`;
  activeBytes = pristine.get(activeName) as Buffer;
  const scan = scanBatches(activeBytes, { verifyCrc: true });
  expect(scan.stop.kind).toBe('end');
  activeBatches = scan.batches.map((b) => ({ position: b.position, size: b.size, baseOffset: b.header.baseOffset, lastOffset: b.header.baseOffset + BigInt(b.header.lastOffsetDelta) }));
  expect(activeBatches.length).toBeGreaterThanOrEqual(41);
});

afterAll(async () => {
  await removeTempDir(dir);
});

/** Restores the closed log, replacing the active .log by `activeLog`; drops the marker to simulate a crash. */
function restore(activeLog: Buffer, crashed: boolean): void {
  for (const name of readdirSync(partitionDir)) if (!pristine.has(name)) unlinkSync(join(partitionDir, name));
  for (const [name, bytes] of pristine) {
    if (name.endsWith('.log') && name !== activeName) continue; // sealed segments are never written
    writeFileSync(join(partitionDir, name), name === activeName ? activeLog : bytes);
  }
  if (crashed) unlinkSync(join(partitionDir, MARKER));
}

/** Opens the damaged log and checks it holds exactly the active batches before `firstLost` (and all sealed ones). */
async function expectRecoveredPrefix(fs: FaultInjectingFs, firstLost: number, fileSize: number, what: string, checkSealed: boolean): Promise<void> {
  const log = await openTestLog(partitionDir, { config: CONFIG, fs });
  try {
    const kept = activeBatches.slice(0, firstLost);
    const keptBytes = kept.length === 0 ? 0 : kept[kept.length - 1].position + kept[kept.length - 1].size;
    const expectedEnd = kept.length === 0 ? activeBase : kept[kept.length - 1].lastOffset + 1n;
    expect(log.logEndOffset, what).toBe(expectedEnd);
    expect(log.recovery.bytesTruncated, what).toBe(fileSize - keptBytes);
    expect(statSync(join(partitionDir, activeName)).size, `${what}: the file is cut too`).toBe(keptBytes);
    expect(log.segmentCount, what).toBe(3);
    const recovered = await readAllBatches(log, activeBase);
    expect(recovered.map((b) => b.baseOffset), what).toEqual(kept.map((b) => b.baseOffset));
    expect(Buffer.concat(recovered.map((b) => b.bytes)).equals(activeBytes.subarray(0, keptBytes)), what).toBe(true);
    if (checkSealed) {
      const sealed = (await readAllBatches(log)).filter((b) => b.baseOffset < activeBase);
      expect(Buffer.concat(sealed.map((b) => b.bytes)).equals(Buffer.concat(sealedBatches.map((b) => b.bytes))), what).toBe(true);
    }
    const appended = await log.appendAsLeader(batch({ tag: 0xab }), 0);
    expect(appended.baseOffset, what).toBe(expectedEnd);
    const [reread] = await readAllBatches(log, expectedEnd);
    expect(reread.baseOffset, what).toBe(expectedEnd);
  } finally {
    await log.close();
  }
}

/** Index of the first active batch not wholly inside [0, cut). */
function firstBatchNotBefore(cut: number): number {
  const index = activeBatches.findIndex((b) => b.position + b.size > cut);
  return index < 0 ? activeBatches.length : index;
}

describe('the torn-tail test', () => {
  it('recovers exactly the whole batches before a cut at every byte of the last batches and at random bytes of the segment', async () => {
    await withSeed(SEED, async (random) => {
      const fs = new FaultInjectingFs(undefined, { skipSync: true });
      const tailStart = activeBatches[activeBatches.length - 4].position;
      const cuts: number[] = [];
      for (let cut = tailStart; cut < activeBytes.length; cut++) cuts.push(cut);
      for (let i = 0; i < 150; i++) cuts.push(randomInt(random, 0, activeBytes.length));
      expect(cuts.length).toBeGreaterThan(200);
      for (const [i, cut] of cuts.entries()) {
        // Alternate: a crash (no marker), and a clean shutdown whose file was cut afterwards.
        const crashed = i % 2 === 0;
        restore(activeBytes.subarray(0, cut), crashed);
        fs.clearCalls();
        await expectRecoveredPrefix(fs, firstBatchNotBefore(cut), cut, `cut at ${cut} of ${activeBytes.length} (${crashed ? 'crash' : 'clean marker'})`, i % 40 === 0);
      }
    }, 1);
  });

  it('recovers exactly the valid prefix before a batch with a flipped byte', async () => {
    await withSeed(SEED, async (random) => {
      const fs = new FaultInjectingFs(undefined, { skipSync: true });
      for (let i = 0; i < 200; i++) {
        const victim = randomInt(random, 0, activeBatches.length);
        const { position, size } = activeBatches[victim];
        // Bytes 8-11 (length) and 16.. (magic, CRC, and everything the CRC covers).
        const offsetInBatch = random() < 0.1 ? randomInt(random, 8, 12) : randomInt(random, 16, size);
        const damaged = Buffer.from(activeBytes);
        damaged[position + offsetInBatch] ^= randomInt(random, 1, 256);
        restore(damaged, true);
        fs.clearCalls();
        await expectRecoveredPrefix(fs, victim, damaged.length, `byte ${offsetInBatch} of batch ${victim} (position ${position}) flipped`, i % 40 === 0);
      }
    }, 2);
  });
});
