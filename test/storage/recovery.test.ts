import { readFile, readdir, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FaultInjectingFs, type FilePartitionLog } from '../../src/storage/index.js';
import { batch, makeTempDir, openTestLog, readAllBatches, removeTempDir, testConfig, type ReadBatch } from './helpers/fixtures.js';

let dir: string;
let partitionDir: string;
beforeEach(async () => {
  dir = await makeTempDir();
  partitionDir = join(dir, 'orders-0');
});
afterEach(async () => {
  await removeTempDir(dir);
});

const CONFIG = testConfig({ segmentBytes: 4000, indexIntervalBytes: 300 });
const SEGMENT_0 = '00000000000000000000';

/** A closed log of 3+ segments; returns what it holds. */
async function writeLog(): Promise<{ batches: ReadBatch[]; segments: bigint[] }> {
  const log = await openTestLog(partitionDir, { config: CONFIG });
  for (let i = 0; i < 60; i++) await log.appendAsLeader(batch({ records: 1 + (i % 3), valueBytes: 30 + (i % 5) * 20, tag: i, compression: i % 4 === 0 ? 'gzip' : 'none' }), 0);
  const batches = await readAllBatches(log);
  const segments = log.segmentBaseOffsets;
  expect(segments.length).toBeGreaterThanOrEqual(3);
  await log.close();
  return { batches, segments };
}

async function expectSameBatches(log: FilePartitionLog, expected: ReadBatch[]): Promise<void> {
  const actual = await readAllBatches(log);
  expect(actual.map((b) => b.baseOffset)).toEqual(expected.map((b) => b.baseOffset));
  expect(Buffer.concat(actual.map((b) => b.bytes)).equals(Buffer.concat(expected.map((b) => b.bytes)))).toBe(true);
}

function captureLogger(): { logger: pino.Logger; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString('utf8'));
      callback();
    },
  });
  const logger = pino({ level: 'info' }, stream);
  return { logger, lines: () => chunks.join('').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('recovery on open', () => {
  it('after a clean shutdown loads the indexes without rebuilding or writing anything', async () => {
    const { batches } = await writeLog();
    const fs = new FaultInjectingFs();
    const log = await openTestLog(partitionDir, { config: CONFIG, fs });
    expect(log.recovery).toMatchObject({ cleanShutdown: true, indexesRebuilt: 0, bytesTruncated: 0 });
    expect(fs.count('write')).toBe(0);
    expect(fs.count('truncate')).toBe(0);
    // Only the active segment's tail is read: one chunk, from its last index entry.
    expect(fs.count('read', (path) => path.endsWith('.log'))).toBeLessThanOrEqual(2);
    await expectSameBatches(log, batches);
    expect((await log.appendAsLeader(batch(), 0)).baseOffset).toBe(batches[batches.length - 1].lastOffset + 1n);
    await log.close();
  });

  it('rebuilds a missing index of a sealed segment and writes it back', async () => {
    const { batches } = await writeLog();
    const indexBefore = await readFile(join(partitionDir, `${SEGMENT_0}.index`));
    expect(indexBefore.length).toBeGreaterThan(0);
    await unlink(join(partitionDir, `${SEGMENT_0}.index`));
    const log = await openTestLog(partitionDir, { config: CONFIG });
    expect(log.recovery).toMatchObject({ cleanShutdown: true, indexesRebuilt: 1, bytesTruncated: 0 });
    expect((await readFile(join(partitionDir, `${SEGMENT_0}.index`))).equals(indexBefore)).toBe(true);
    await expectSameBatches(log, batches);
    await log.close();
  });

  it.each([
    ['of the wrong size', (bytes: Buffer) => bytes.subarray(0, bytes.length - 3)],
    ['with entries out of order', (bytes: Buffer) => Buffer.concat([bytes.subarray(8, 16), bytes.subarray(0, 8), bytes.subarray(16)])],
    ['pointing past the log', (bytes: Buffer) => {
      const copy = Buffer.from(bytes);
      copy.writeInt32BE(0x7fff0000, copy.length - 4);
      return copy;
    }],
    ['of zeros', (bytes: Buffer) => Buffer.alloc(bytes.length)],
  ])('rebuilds an offset index %s', async (_name, damage) => {
    const { batches } = await writeLog();
    const path = join(partitionDir, `${SEGMENT_0}.index`);
    const original = await readFile(path);
    expect(original.length).toBeGreaterThanOrEqual(16);
    await writeFile(path, damage(original));
    const log = await openTestLog(partitionDir, { config: CONFIG });
    expect(log.recovery.indexesRebuilt).toBe(1);
    expect((await readFile(path)).equals(original)).toBe(true);
    await expectSameBatches(log, batches);
    await log.close();
  });

  it('recovers the active segment when its index is damaged after a clean shutdown, without cutting data', async () => {
    const { batches, segments } = await writeLog();
    const active = segments[segments.length - 1].toString().padStart(20, '0');
    await writeFile(join(partitionDir, `${active}.timeindex`), Buffer.alloc(7));
    const log = await openTestLog(partitionDir, { config: CONFIG });
    expect(log.recovery).toMatchObject({ cleanShutdown: false, indexesRebuilt: 1, bytesTruncated: 0 });
    await expectSameBatches(log, batches);
    await log.close();
  });

  it('after a crash scans only the active segment and rebuilds its indexes', async () => {
    const { batches } = await writeLog();
    await unlink(join(partitionDir, '.kavka_cleanshutdown'));
    const log = await openTestLog(partitionDir, { config: CONFIG });
    expect(log.recovery).toMatchObject({ cleanShutdown: false, indexesRebuilt: 1, bytesTruncated: 0 });
    await expectSameBatches(log, batches);
    await log.close();
  });

  it('truncates a torn active segment and logs the bytes cut with the topic-partition', async () => {
    const { batches, segments } = await writeLog();
    const active = segments[segments.length - 1].toString().padStart(20, '0');
    const path = join(partitionDir, `${active}.log`);
    const size = (await stat(path)).size;
    await truncate(path, size - 5);
    const { logger, lines } = captureLogger();
    const log = await openTestLog(partitionDir, { config: CONFIG, logger });
    const last = batches[batches.length - 1];
    expect(log.logEndOffset).toBe(last.baseOffset);
    expect(log.recovery.bytesTruncated).toBe(last.bytes.length - 5);
    const warning = lines().find((l) => l.level === 40 && typeof l.bytesTruncated === 'number');
    expect(warning).toMatchObject({ topicPartition: 'orders-0', bytesTruncated: last.bytes.length - 5 });
    expect(String(warning?.msg)).toMatch(/bytes cut/);
    await expectSameBatches(log, batches.slice(0, -1));
    await log.close();
  });

  it('repairs a sealed segment found corrupt by an index rebuild: truncated at the bad batch, the file kept aside, refetch required', async () => {
    const { batches } = await writeLog();
    const logPath = join(partitionDir, `${SEGMENT_0}.log`);
    const bytes = await readFile(logPath);
    const victim = batches[3];
    const position = batches.slice(0, 3).reduce((sum, b) => sum + b.bytes.length, 0);
    bytes[position + victim.bytes.length - 2] ^= 0xff;
    await writeFile(logPath, bytes);
    // With its index intact (and a clean shutdown) a sealed segment is trusted, as Kafka does; an index rebuild reads it all.
    await unlink(join(partitionDir, `${SEGMENT_0}.index`));
    const log = await openTestLog(partitionDir, { config: CONFIG });
    expect(log.recovery.corruptionRepaired).toMatchObject({ file: logPath, keptAs: `${logPath}.corrupt`, position, truncatedToOffset: victim.baseOffset });
    expect(log.logEndOffset).toBe(victim.baseOffset);
    expect(log.refetchRequired).toBe(victim.baseOffset);
    expect(log.segmentBaseOffsets).toEqual([0n]);
    await expectSameBatches(log, batches.slice(0, 3));
    // The operator's copy is the whole segment as it was found.
    expect((await readFile(`${logPath}.corrupt`)).equals(bytes)).toBe(true);
    expect((await readFile(logPath)).length).toBe(position);
    await log.close();
  });

  it('deletes leftover temp files and orphan indexes', async () => {
    await writeLog();
    await writeFile(join(partitionDir, `${SEGMENT_0}.index.tmp`), 'partial');
    await writeFile(join(partitionDir, '00000000000000099999.index'), Buffer.alloc(8));
    const log = await openTestLog(partitionDir, { config: CONFIG });
    const names = await readdir(partitionDir);
    expect(names.filter((n) => n.endsWith('.tmp') || n.startsWith('00000000000000099999'))).toEqual([]);
    await log.close();
  });
});
