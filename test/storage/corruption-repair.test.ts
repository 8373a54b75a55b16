// Kavka issue 6: a bit flip in a sealed segment is caught by the CRC, the corrupt bytes are never
// served, and recovery repairs the replica (truncate at the bad batch, keep the file aside, mark
// it as needing a re-fetch) so it can re-fetch from its leader.
import { access, readFile, readdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openLogManager, type FilePartitionLog, type LogManager, type SealedSegmentVerification } from '../../src/storage/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { batch, makeTempDir, openTestLog, readAllBatches, removeTempDir, START_MS, testConfig, TOPIC_ID, TP, type ReadBatch } from './helpers/fixtures.js';

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
const name = (base: bigint, suffix: string) => base.toString().padStart(20, '0') + suffix;

interface Written {
  batches: ReadBatch[];
  segments: bigint[];
}

/** A cleanly closed log of 3+ segments. */
async function writeLog(directory = partitionDir): Promise<Written> {
  const log = await openTestLog(directory, { config: CONFIG });
  for (let i = 0; i < 60; i++) await log.appendAsLeader(batch({ records: 1 + (i % 3), valueBytes: 30 + (i % 5) * 20, tag: i }), 0);
  const batches = await readAllBatches(log);
  const segments = log.segmentBaseOffsets;
  expect(segments.length).toBeGreaterThanOrEqual(3);
  await log.close();
  return { batches, segments };
}

/** Flips one bit in the records of the `k`-th batch of segment `segment` (covered by the CRC). Returns the batch and its byte position. */
async function flipBit(written: Written, segment: bigint, k: number, directory = partitionDir): Promise<{ victim: ReadBatch; position: number; path: string; original: Buffer }> {
  const path = join(directory, name(segment, '.log'));
  const original = await readFile(path);
  const inSegment = written.batches.filter((b) => b.baseOffset >= segment && (written.segments.find((s) => s > segment) ?? 1n << 62n) > b.baseOffset);
  const victim = inSegment[k];
  const position = inSegment.slice(0, k).reduce((sum, b) => sum + b.bytes.length, 0);
  const damaged = Buffer.from(original);
  damaged[position + victim.bytes.length - 3] ^= 0x10;
  await writeFile(path, damaged);
  return { victim, position, path, original: damaged };
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

function open(verifySealedSegments: SealedSegmentVerification): Promise<FilePartitionLog> {
  return openTestLog(partitionDir, { config: CONFIG, verifySealedSegments });
}

describe('a bit flip in a sealed segment', () => {
  it('is repaired at open when sealed segments are verified: truncated at the bad batch, the segment kept aside, the later segments gone, indexes right', async () => {
    const written = await writeLog();
    const [, second] = written.segments;
    const { victim, position, path, original } = await flipBit(written, second, 2);
    const log = await open('always');
    expect(log.recovery.corruptionRepaired).toMatchObject({ file: path, keptAs: `${path}.corrupt`, position, truncatedToOffset: victim.baseOffset, segmentsDeleted: written.segments.length - 2 });
    expect(log.logEndOffset).toBe(victim.baseOffset);
    expect(log.refetchRequired).toBe(victim.baseOffset);
    expect(log.segmentBaseOffsets).toEqual(written.segments.slice(0, 2));
    const kept = written.batches.filter((b) => b.lastOffset < victim.baseOffset);
    // Indexes right: every offset kept reads back its own batch, through the rebuilt index.
    for (const b of kept) {
      const read = await log.read(b.baseOffset, 1, { maxOffset: log.logEndOffset, minOneBatch: true });
      expect(read.batches.equals(b.bytes)).toBe(true);
    }
    expect(Buffer.concat((await readAllBatches(log)).map((b) => b.bytes)).equals(Buffer.concat(kept.map((b) => b.bytes)))).toBe(true);
    expect((await readFile(`${path}.corrupt`)).equals(original)).toBe(true);
    const names = await readdir(partitionDir);
    for (const later of written.segments.slice(2)) expect(names).not.toContain(name(later, '.log'));
    expect(names).toContain('.kavka_refetch_required');

    // The replica re-fetches from its leader: a follower append at the new log end is accepted.
    const refetched = written.batches.find((b) => b.baseOffset === victim.baseOffset);
    await log.appendAsFollower(Buffer.from(refetched!.bytes));
    expect(log.logEndOffset).toBe(victim.lastOffset + 1n);
    await log.close();
  });

  it('keeps the refetch-required marker across a restart until it is cleared', async () => {
    const written = await writeLog();
    const { victim } = await flipBit(written, written.segments[0], 1);
    await (await open('always')).close();
    const again = await open('always');
    expect(again.recovery.corruptionRepaired).toBeUndefined();
    expect(again.refetchRequired).toBe(victim.baseOffset);
    await again.clearRefetchRequired();
    expect(again.refetchRequired).toBeUndefined();
    expect(await exists(join(partitionDir, '.kavka_refetch_required'))).toBe(false);
    await again.close();
    const third = await open('always');
    expect(third.refetchRequired).toBeUndefined();
    await third.close();
  });

  it('is verified under the default policy only after an unclean shutdown', async () => {
    const written = await writeLog();
    const { victim } = await flipBit(written, written.segments[0], 2);
    const trusted = await open('unclean');
    expect(trusted.recovery).toMatchObject({ cleanShutdown: true, sealedSegmentsVerified: 0, corruptionRepaired: undefined });
    expect(trusted.logEndOffset).toBe(written.batches.at(-1)!.lastOffset + 1n);
    // A crash: the marker written by close() is gone.
    await trusted.close();
    await unlink(join(partitionDir, '.kavka_cleanshutdown'));
    const recovered = await open('unclean');
    // The first segment is the damaged one: the check stops there.
    expect(recovered.recovery.sealedSegmentsVerified).toBe(1);
    expect(recovered.recovery.corruptionRepaired?.truncatedToOffset).toBe(victim.baseOffset);
    await recovered.close();
  });

  it('is never verified at open with policy never, and still never served', async () => {
    const written = await writeLog();
    const { victim, path } = await flipBit(written, written.segments[0], 2);
    await unlink(join(partitionDir, '.kavka_cleanshutdown'));
    const log = await open('never');
    expect(log.recovery.sealedSegmentsVerified).toBe(0);
    const error = await log.read(victim.baseOffset, 64 * 1024, { maxOffset: log.logEndOffset, minOneBatch: true }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'KAFKA_STORAGE_ERROR' });
    expect((error as Error).message).toContain(path);
    await log.close();
  });

  it('in the active segment after a clean shutdown is repaired when verification is always', async () => {
    const written = await writeLog();
    const active = written.segments.at(-1)!;
    const { victim } = await flipBit(written, active, 1);
    const log = await open('always');
    expect(log.recovery.corruptionRepaired?.truncatedToOffset).toBe(victim.baseOffset);
    expect(log.refetchRequired).toBe(victim.baseOffset);
    expect(log.logEndOffset).toBe(victim.baseOffset);
    await log.close();
  });
});

describe('the serving path', () => {
  it('never serves a batch that fails its CRC: the read fails, batches before it are still read, and the log dir goes offline for corruption', async () => {
    const logManager: LogManager = await openLogManager({ logDir: dir, nodeId: 1, clusterId: 'test', clock: new ManualClock(START_MS), logger: silentLogger() });
    const log = await logManager.createLog(TP, CONFIG, TOPIC_ID);
    for (let i = 0; i < 60; i++) await log.appendAsLeader(batch({ records: 2, valueBytes: 60, tag: i }), 0);
    const batches = await readAllBatches(log);
    const reasons: string[] = [];
    logManager.onOffline((reason) => reasons.push(reason));
    // Damage the file under the open log, as a disk would.
    const path = join(partitionDir, name(0n, '.log'));
    const bytes = await readFile(path);
    const victim = batches[5];
    const position = batches.slice(0, 5).reduce((sum, b) => sum + b.bytes.length, 0);
    bytes[position + 40] ^= 0x01;
    await writeFile(path, bytes);

    // A read that stops before the bad batch is served.
    const before = await log.read(0n, position, { maxOffset: victim.baseOffset, minOneBatch: true });
    expect(before.nextOffset).toBe(victim.baseOffset);
    // A read that would include it serves nothing.
    const error = await log.read(0n, 64 * 1024, { maxOffset: log.logEndOffset, minOneBatch: true }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'KAFKA_STORAGE_ERROR' });
    expect((error as Error).message).toContain(`position ${position}`);
    expect(logManager.state).toMatchObject({ kind: 'offline', cause: 'corruption' });
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toContain(path);
    await expect(log.read(0n, 1024, { maxOffset: log.logEndOffset, minOneBatch: true })).rejects.toMatchObject({ code: 'KAFKA_STORAGE_ERROR' });
    await logManager.close();
  });
});
