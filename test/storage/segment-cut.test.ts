// Cutting a segment for truncation (LogSegment.planCut / applyCut): whatever the offset, the
// segment is left as if only the batches kept had ever been appended: size, offset index, max
// timestamp and the offset that reached it, and the index-interval accounting. Timestamps are
// random (not increasing), so the max timestamp often comes from a batch between index entries.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeRecordBatch, lastOffsetOf, readBatchHeader } from '../../src/codec/record-batch.js';
import { nodeStorageFs } from '../../src/storage/index.js';
import { LogSegment } from '../../src/storage/segment.js';
import { makeTempDir, removeTempDir, START_MS } from './helpers/fixtures.js';
import { randomInt, testSeed, withSeed, type Random } from './helpers/prng.js';

const SEED = testSeed(0xc0ffee);
const INTERVAL = 300;
const BASE = 1000n;

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir();
});
afterEach(async () => {
  await removeTempDir(dir);
});

function randomBatches(random: Random, count: number): Buffer[] {
  const out: Buffer[] = [];
  let offset = BASE;
  for (let i = 0; i < count; i++) {
    const records = randomInt(random, 1, 5);
    out.push(
      encodeRecordBatch({
        baseOffset: offset,
        records: Array.from({ length: records }, () => ({ key: null, value: Buffer.alloc(randomInt(random, 5, 120), i & 0xff), timestamp: BigInt(START_MS + randomInt(random, 0, 50_000)) })),
      }),
    );
    offset += BigInt(records) + (random() < 0.2 ? BigInt(randomInt(random, 1, 4)) : 0n); // some gaps, as compaction leaves
  }
  return out;
}

async function segmentOf(name: string, batches: Buffer[]): Promise<LogSegment> {
  const segment = await LogSegment.create(nodeStorageFs, join(dir, name), BASE, START_MS);
  for (const bytes of batches) {
    const header = readBatchHeader(bytes);
    const position = segment.size;
    await segment.file.write(bytes, position);
    if (position === 0) segment.rollBaseMs = START_MS; // as the log does on a segment's first append
    segment.recordBatch(position, bytes.length, lastOffsetOf(header), header.maxTimestamp, INTERVAL);
  }
  return segment;
}

describe('LogSegment.planCut / applyCut', () => {
  it('leaves the segment as if only the batches kept had been appended, for every cut offset', async () => {
    await withSeed(SEED, async (random) => {
      const { mkdir } = await import('node:fs/promises');
      await mkdir(join(dir, 'whole'));
      await mkdir(join(dir, 'kept'));
      const batches = randomBatches(random, 60);
      const headers = batches.map((b) => readBatchHeader(b));
      const whole = await segmentOf('whole', batches);
      const lastOffset = lastOffsetOf(headers[headers.length - 1]);
      const offsets = Array.from({ length: 80 }, () => BASE + BigInt(randomInt(random, 0, Number(lastOffset - BASE) + 3)));
      offsets.push(BASE, lastOffset, lastOffset + 1n);
      for (const offset of offsets) {
        const keptCount = headers.filter((h) => lastOffsetOf(h) < offset).length;
        const cut = await whole.planCut(offset, whole.size);
        const expectedEnd = keptCount === 0 ? BASE : lastOffsetOf(headers[keptCount - 1]) + 1n;
        expect(cut.endOffset, `cut at ${offset}`).toBe(expectedEnd);
        // Apply to a fresh copy of the whole segment, compare with a segment of the kept batches.
        const name = `copy-${offset}`;
        await mkdir(join(dir, name));
        const copy = await segmentOf(name, batches);
        copy.applyCut(offset, cut, START_MS);
        const kept = await segmentOf('kept', batches.slice(0, keptCount));
        expect(copy.size, `size after a cut at ${offset}`).toBe(kept.size);
        expect(Buffer.from(copy.offsetIndex.toBytes()).equals(Buffer.from(kept.offsetIndex.toBytes())), `offset index after a cut at ${offset}`).toBe(true);
        expect([copy.maxTimestampSoFar, copy.offsetOfMaxTimestampSoFar], `max timestamp after a cut at ${offset}`).toEqual([kept.maxTimestampSoFar, kept.offsetOfMaxTimestampSoFar]);
        expect(copy.timeIndex.inconsistency(offset), `time index after a cut at ${offset}`).toBeUndefined();
        expect(copy.rollBaseMs === undefined, `roll base after a cut at ${offset}`).toBe(keptCount === 0);
        // The next append indexes exactly as it would have on the kept segment.
        const next = encodeRecordBatch({ baseOffset: expectedEnd + 5n, records: [{ key: null, value: Buffer.alloc(400), timestamp: BigInt(START_MS) }] });
        for (const segment of [copy, kept]) segment.recordBatch(segment.size, next.length, expectedEnd + 5n, BigInt(START_MS), INTERVAL);
        expect(Buffer.from(copy.offsetIndex.toBytes()).equals(Buffer.from(kept.offsetIndex.toBytes())), `offset index after an append following a cut at ${offset}`).toBe(true);
        await copy.close();
        await kept.close();
        const { rm } = await import('node:fs/promises');
        await rm(join(dir, 'kept', '00000000000000001000.log'));
        await rm(join(dir, name), { recursive: true });
      }
      await whole.close();
    });
  });
});
