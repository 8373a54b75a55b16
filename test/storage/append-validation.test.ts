// A producer's batch whose header lies about its records is rejected on the leader (Kafka's
// LogValidator), so it never reaches the log, where reads, ListOffsets and consumers would later
// fail on it with CORRUPT_MESSAGE. Each case builds a batch with a valid CRC-32C over the lie.
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BATCH_HEADER_SIZE, computeBatchCrc, encodeRecordBatch, INT64_MAX, LOG_OVERHEAD } from '../../src/codec/record-batch.js';
import type { FilePartitionLog } from '../../src/storage/index.js';
import { KavkaError } from '../../src/util/errors.js';
import { batch, makeTempDir, openTestLog, readAllBatches, removeTempDir, START_MS } from './helpers/fixtures.js';

let dir: string;
let log: FilePartitionLog;
beforeEach(async () => {
  dir = await makeTempDir();
  log = await openTestLog(join(dir, 'orders-0'));
  await log.appendAsLeader(batch({ records: 2, timestampStep: 1n }), 0);
});
afterEach(async () => {
  await log.close();
  await removeTempDir(dir);
});

interface HeaderPatch {
  recordsCount?: number;
  lastOffsetDelta?: number;
  baseTimestamp?: bigint;
  gzip?: boolean;
}

/** A batch with `template`'s header, `body` as its records region, the patch applied, and a CRC that verifies. */
function forge(template: Buffer, body: Buffer, patch: HeaderPatch = {}): Buffer {
  const out = Buffer.alloc(BATCH_HEADER_SIZE + body.length);
  template.copy(out, 0, 0, BATCH_HEADER_SIZE);
  body.copy(out, BATCH_HEADER_SIZE);
  out.writeInt32BE(out.length - LOG_OVERHEAD, 8);
  if (patch.gzip === true) out.writeInt16BE(out.readInt16BE(21) | 1, 21);
  if (patch.lastOffsetDelta !== undefined) out.writeInt32BE(patch.lastOffsetDelta, 23);
  if (patch.baseTimestamp !== undefined) out.writeBigInt64BE(patch.baseTimestamp, 27);
  if (patch.recordsCount !== undefined) out.writeInt32BE(patch.recordsCount, 57);
  out.writeUInt32BE(computeBatchCrc(out), 17);
  return out;
}

function recordsOf(bytes: Buffer): Buffer {
  return bytes.subarray(BATCH_HEADER_SIZE);
}

function records(timestamps: bigint[]): Buffer {
  return encodeRecordBatch({ records: timestamps.map((timestamp, i) => ({ key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`), timestamp })) });
}

async function rejection(bytes: Buffer): Promise<KavkaError> {
  const error = await log.appendAsLeader(bytes, 0).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KavkaError);
  return error as KavkaError;
}

/** The log holds exactly the batch beforeEach appended, serves it, and takes the next append at offset 2. */
async function expectUnchangedAndServing(): Promise<void> {
  expect(log.logEndOffset).toBe(2n);
  expect(log.sizeBytes).toBe(batch({ records: 2, timestampStep: 1n }).length);
  expect((await readAllBatches(log)).map((b) => [b.baseOffset, b.lastOffset])).toEqual([[0n, 1n]]);
  expect(await log.maxTimestampOffset()).toEqual({ offset: 1n, timestamp: BigInt(START_MS) + 1n });
  expect(await log.offsetForTimestamp(BigInt(START_MS))).toEqual({ offset: 0n, timestamp: BigInt(START_MS) });
  const next = await log.appendAsLeader(batch({ records: 3 }), 0);
  expect([next.baseOffset, next.lastOffset]).toEqual([2n, 4n]);
  await readAllBatches(log);
}

describe('appendAsLeader checks the records against the batch header', () => {
  it('rejects a batch whose recordsCount (and last offset delta) says 5 but that holds 1 record', async () => {
    const one = batch();
    const error = await rejection(forge(one, recordsOf(one), { recordsCount: 5, lastOffsetDelta: 4 }));
    expect(error.code).toBe('CORRUPT_MESSAGE');
    expect(error.message).toMatch(/holds 1 records but its recordsCount says 5/);
    await expectUnchangedAndServing();
  });

  it('rejects a batch claiming 2^31-1 records', async () => {
    const one = batch();
    const error = await rejection(forge(one, recordsOf(one), { recordsCount: 2 ** 31 - 1, lastOffsetDelta: 2 ** 31 - 2 }));
    expect(error.code).toBe('CORRUPT_MESSAGE');
    expect(error.message).toContain('2147483647');
    await expectUnchangedAndServing();
  });

  it('rejects a batch holding more records than recordsCount says', async () => {
    const two = batch({ records: 2 });
    const error = await rejection(forge(two, recordsOf(two), { recordsCount: 1, lastOffsetDelta: 0 }));
    expect(error.code).toBe('CORRUPT_MESSAGE');
    expect(error.message).toMatch(/more records than its recordsCount 1/);
    await expectUnchangedAndServing();
  });

  it('rejects offset deltas that do not run 0..n-1 (last offset delta inconsistent with the records)', async () => {
    const gap = batch({ offsetDeltas: [0, 5] });
    const lastTooFar = await rejection(forge(gap, recordsOf(gap), { lastOffsetDelta: 1 }));
    expect(lastTooFar.code).toBe('INVALID_RECORD');
    expect(lastTooFar.message).toMatch(/record 1 has offset delta 5/);
    const fromOne = batch({ offsetDeltas: [1, 2] });
    const notFromZero = await rejection(forge(fromOne, recordsOf(fromOne), { lastOffsetDelta: 1 }));
    expect(notFromZero.code).toBe('INVALID_RECORD');
    expect(notFromZero.message).toMatch(/record 0 has offset delta 1/);
    await expectUnchangedAndServing();
  });

  it('rejects a gzip batch whose body is garbage under a valid CRC', async () => {
    const gzipped = batch({ records: 3, compression: 'gzip' });
    const garbage = Buffer.alloc(gzipped.length - BATCH_HEADER_SIZE, 0x5a);
    const error = await rejection(forge(gzipped, garbage));
    expect(error.code).toBe('CORRUPT_MESSAGE');
    expect(error.message).toMatch(/gzip batch at offset 0 does not decompress/);
    await expectUnchangedAndServing();
  });

  it('checks the records inside a gzip body too', async () => {
    const plain = batch({ records: 2 });
    const error = await rejection(forge(plain, gzipSync(recordsOf(plain)), { gzip: true, recordsCount: 3, lastOffsetDelta: 2 }));
    expect(error.code).toBe('CORRUPT_MESSAGE');
    expect(error.message).toMatch(/holds 2 records but its recordsCount says 3/);
    const good = forge(plain, gzipSync(recordsOf(plain)), { gzip: true });
    await expect(log.appendAsLeader(good, 0)).resolves.toMatchObject({ baseOffset: 2n, lastOffset: 3n });
  });

  it('rejects record lengths that run past the records region or do not match the fields', async () => {
    const one = batch();
    const body = Buffer.from(recordsOf(one));
    body[0] = 120; // zig-zag 60: longer than what is left
    const pastEnd = await rejection(forge(one, body));
    expect(pastEnd.code).toBe('CORRUPT_MESSAGE');
    expect(pastEnd.message).toMatch(/record 0 at byte 0 of the records has length 60/);

    const longer = Buffer.concat([recordsOf(one), Buffer.from([0])]);
    longer[0] += 2; // one more byte than the fields take
    const mismatch = await rejection(forge(one, longer));
    expect(mismatch.code).toBe('CORRUPT_MESSAGE');
    expect(mismatch.message).toMatch(/fields take \d+ bytes but its length says/);
    await expectUnchangedAndServing();
  });

  it('rejects timestamps outside int64 or below 0 other than -1, and accepts -1', async () => {
    const twoApart = records([0n, 5n]);
    const overflow = await rejection(forge(twoApart, recordsOf(twoApart), { baseTimestamp: INT64_MAX - 2n }));
    expect(overflow.code).toBe('INVALID_TIMESTAMP');
    expect(overflow.message).toMatch(/record 1 has timestamp 9223372036854775810/);
    const single = records([0n]);
    const negative = await rejection(forge(single, recordsOf(single), { baseTimestamp: -7n }));
    expect(negative.code).toBe('INVALID_TIMESTAMP');
    expect(negative.message).toMatch(/record 0 has timestamp -7/);
    const belowBase = records([0n, 2n]);
    const minusTwo = await rejection(forge(belowBase, recordsOf(belowBase), { baseTimestamp: -4n }));
    expect(minusTwo.code).toBe('INVALID_TIMESTAMP');
    await expectUnchangedAndServing();
    await expect(log.appendAsLeader(forge(single, recordsOf(single), { baseTimestamp: -1n }), 0)).resolves.toMatchObject({ baseOffset: 5n });
  });

  it('rejects the whole append when one of its batches lies, writing none of them', async () => {
    const one = batch();
    const lying = forge(one, recordsOf(one), { recordsCount: 5, lastOffsetDelta: 4 });
    const error = await rejection(Buffer.concat([batch({ records: 3 }), lying, batch()]));
    expect(error.code).toBe('CORRUPT_MESSAGE');
    expect(error.message).toMatch(/the batch at byte \d+ of the append/);
    await expectUnchangedAndServing();
  });
});
