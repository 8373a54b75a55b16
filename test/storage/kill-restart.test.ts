// Every append that resolved under flush.policy=batch survives a kill -9 of the process, at any
// moment (mid-write, mid-sync, mid-roll), and the log continues after recovery. SIGKILL keeps the
// page cache, so this proves the storage layer keeps no acknowledged state only in memory and
// recovers whatever the kill cut; power loss is the fsync's job, which group-commit tests cover.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readBatchHeader } from '../../src/codec/record-batch.js';
import { batch, makeTempDir, openTestLog, readAllBatches, removeTempDir } from './helpers/fixtures.js';
import { randomInt, testSeed, withSeed } from './helpers/prng.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'helpers', 'append-forever.ts');

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir();
});
afterEach(async () => {
  await removeTempDir(dir);
});

/** Runs the child until `acks` appends resolved, then SIGKILLs it; returns baseOffset -> tag of the acknowledged appends. */
async function runAndKill(partitionDir: string, round: number, acks: number): Promise<Map<bigint, number>> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, partitionDir, String(round)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const acknowledged = new Map<bigint, number>();
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child made ${acknowledged.size} acks in time; stderr: ${stderr}`)), 30_000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      const [kind, offset, tag] = line.split(' ');
      if (kind !== 'ack') return;
      acknowledged.set(BigInt(offset), Number(tag));
      if (acknowledged.size === acks) {
        child.kill('SIGKILL');
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      if (acknowledged.size < acks) reject(new Error(`child exited after ${acknowledged.size} acks; stderr: ${stderr}`));
    });
  });
  await exited;
  return acknowledged;
}

describe('kill -9', () => {
  it('loses no acknowledged append, and the log continues after recovery', async () => {
    await withSeed(testSeed(9), async (random) => {
      const partitionDir = join(dir, 'orders-0');
      const everAcknowledged = new Map<bigint, number>();
      for (let round = 1; round <= 3; round++) {
        for (const [offset, tag] of await runAndKill(partitionDir, round, randomInt(random, 200, 600))) everAcknowledged.set(offset, tag);
        const log = await openTestLog(partitionDir);
        expect(log.recovery.cleanShutdown).toBe(false);
        const stored = new Map((await readAllBatches(log)).map((b) => [b.baseOffset, b.bytes]));
        for (const [offset, tag] of everAcknowledged) {
          const bytes = stored.get(offset);
          expect(bytes, `acknowledged batch at ${offset} (round ${round})`).toBeDefined();
          expect(bytes!.equals(stampedLike(bytes!, batch({ records: 1 + (tag % 3), valueBytes: 50 + (tag % 400), tag }))), `bytes at ${offset}`).toBe(true);
        }
        expect((await log.appendAsLeader(batch(), 0)).baseOffset).toBe(log.logEndOffset - 1n);
        await log.close();
      }
    });
  });
});

/** `original` with the base offset and leader epoch a stored batch was stamped with. */
function stampedLike(stored: Buffer, original: Buffer): Buffer {
  const copy = Buffer.from(original);
  const header = readBatchHeader(stored);
  copy.writeBigInt64BE(header.baseOffset, 0);
  copy.writeInt32BE(header.partitionLeaderEpoch, 12);
  return copy;
}
