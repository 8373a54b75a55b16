// Damage done to a stopped node's data dir, the way disks and crashes damage it:
//   tornTail      the active segment loses the end of its last batch (a write cut short)
//   flipBit       one bit of a record inside a sealed segment changes (bit rot)
//   wipe          the whole data dir is gone (a replaced disk), the node keeps its id
// Each says whether it damaged anything and what, for the history and the report. The node must
// be stopped.
import { readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { scanBatches } from '../codec/record-batch.js';
import type { Prng } from '../util/prng.js';

export interface Damage {
  damaged: boolean;
  what: string;
}

/** Segment files of one partition in a data dir, oldest first. */
async function segmentFiles(dataDir: string, topic: string, partition: number): Promise<string[]> {
  const dir = join(dataDir, `${topic}-${partition}`);
  const names = await readdir(dir).catch(() => [] as string[]);
  return names
    .filter((n) => /^\d{20}\.log$/.test(n))
    .sort()
    .map((n) => join(dir, n));
}

/** Every segment of the partition back to back (for comparing replicas byte for byte). */
export async function partitionBytes(dataDir: string, topic: string, partition: number): Promise<Buffer> {
  const files = await segmentFiles(dataDir, topic, partition);
  return Buffer.concat(await Promise.all(files.map((f) => readFile(f))));
}

/** Cuts the active segment in the middle of its last batch. */
export async function tornTail(dataDir: string, topic: string, partition: number, random: Prng): Promise<Damage> {
  const files = await segmentFiles(dataDir, topic, partition);
  const active = files[files.length - 1];
  if (active === undefined) return { damaged: false, what: `no segment of ${topic}-${partition} to tear` };
  const bytes = await readFile(active);
  const batches = scanBatches(bytes, { verifyCrc: false }).batches;
  const last = batches[batches.length - 1];
  if (last === undefined) return { damaged: false, what: `${active} holds no batch to tear` };
  const cut = last.position + 1 + random.int(last.size - 1);
  await truncate(active, cut);
  return { damaged: true, what: `tore ${active} at byte ${cut} (inside its last batch at offset ${last.header.baseOffset}, ${bytes.length - cut} bytes dropped)` };
}

/** Flips one bit in the records of a batch of a sealed segment (not the active one). */
export async function flipBit(dataDir: string, topic: string, partition: number, random: Prng): Promise<Damage> {
  const files = await segmentFiles(dataDir, topic, partition);
  const sealed = files.slice(0, -1);
  if (sealed.length === 0) return { damaged: false, what: `${topic}-${partition} has no sealed segment yet; nothing flipped` };
  const file = sealed[random.int(sealed.length)];
  const bytes = await readFile(file);
  const batches = scanBatches(bytes, { verifyCrc: false }).batches;
  if (batches.length === 0) return { damaged: false, what: `${file} holds no batch; nothing flipped` };
  const batch = batches[random.int(batches.length)];
  // Past the 61-byte header, inside the records: the CRC covers them, the framing does not.
  const headerBytes = 61;
  const at = batch.position + headerBytes + random.int(Math.max(1, batch.size - headerBytes));
  const bit = random.int(8);
  bytes[at] ^= 1 << bit;
  await writeFile(file, bytes);
  return { damaged: true, what: `flipped bit ${bit} of byte ${at} in ${file} (batch at offset ${batch.header.baseOffset})` };
}

/** Deletes the node's whole data dir. */
export async function wipe(dataDir: string): Promise<Damage> {
  const existed = await stat(dataDir).then(
    () => true,
    () => false,
  );
  await rm(dataDir, { recursive: true, force: true });
  return existed ? { damaged: true, what: `deleted ${dataDir}` } : { damaged: false, what: `${dataDir} did not exist` };
}
