// Producer-state snapshot files (Kafka's `<offset>.snapshot` files next to the segments): the whole
// ProducerStateManager state as of an offset, so a restart, a truncation or a new leader rebuilds
// from the latest snapshot at or below the log end offset plus the batch headers after it, not
// from the log start (which would also lose producers whose batches retention deleted).
//
// File `<20-digit end offset>.snapshot` in the partition directory, written atomically (temp,
// fdatasync, rename: atomic-file.ts) and big-endian:
//   offset  size  field
//        0     4  magic            "KPSS"
//        4     2  version          int16 = 1
//        6     4  crc              uint32  CRC-32C of bytes [10, end)
//       10     8  endOffset        int64   must equal the offset in the file name
//       18     4  producerCount    int32
//       22     …  producers, ascending by id, each:
//                   producerId int64, producerEpoch int16, batchCount int8 (1..5), then per batch
//                   (oldest first): firstSeq int32, lastSeq int32, firstOffset int64,
//                   lastOffset int64, timestampMs int64
// A file that fails any check (short, torn, bad magic/version/CRC, sizes that do not add up,
// offsets out of order or not below endOffset) is skipped, and the next older one is tried; with
// none left the state is rebuilt from the log start. Snapshots are an optimisation, never the
// only copy: everything in them can be replayed from the log they were taken of.
//
// Who calls it: the partition log, inside its append queue (see loadProducerState for open and
// truncation). Every file operation goes through StorageFs, so FaultInjectingFs reaches it.
//
// Crash safety: a snapshot describes ONE history of the log. After a truncation to T the
// snapshots above T describe batches that are gone, and the offsets above T will be reused by
// different batches; so deleteProducerSnapshotsAbove fsyncs the directory before returning, and
// the log must call it (loadProducerState does) before appending at T. A new snapshot's name need
// not survive a crash (an older snapshot plus a longer replay gives the same state), so writes do
// not fsync the directory unless asked.
import { join } from 'node:path';
import { crc32c } from '../util/crc32c.js';
import { assert } from '../util/assert.js';
import { writeFileAtomic } from './atomic-file.js';
import {
  MAX_BATCHES_PER_PRODUCER,
  ProducerStateManager,
  type ProducerBatchMetadata,
  type ProducerStateEntrySnapshot,
  type ProducerStateOptions,
  type ProducerStateSnapshot,
  type ReplayBatch,
} from './producer-state.js';
import { segmentFileName } from './segment.js';
import { isNotFound, type StorageFs } from './storage-fs.js';

export const PRODUCER_SNAPSHOT_SUFFIX = '.snapshot';
export const PRODUCER_SNAPSHOT_VERSION = 1;
const MAGIC = 0x4b505353; // "KPSS"
const HEADER_SIZE = 22;
const CRC_START = 10;
const ENTRY_HEADER_SIZE = 11;
const BATCH_SIZE = 36;
const INT64_MAX = (1n << 63n) - 1n;
const SNAPSHOT_NAME = /^(\d{20})\.snapshot$/;

export function producerSnapshotFileName(endOffset: bigint): string {
  return segmentFileName(endOffset, PRODUCER_SNAPSHOT_SUFFIX);
}

/** The offset of a `<20 digits>.snapshot` name, or undefined for any other name (temp files included). */
export function parseProducerSnapshotFileName(name: string): bigint | undefined {
  const match = SNAPSHOT_NAME.exec(name);
  return match === null ? undefined : BigInt(match[1]);
}

export function encodeProducerStateSnapshot(snapshot: ProducerStateSnapshot): Buffer {
  let size = HEADER_SIZE;
  for (const producer of snapshot.producers) size += ENTRY_HEADER_SIZE + producer.batches.length * BATCH_SIZE;
  const buffer = Buffer.alloc(size);
  buffer.writeUInt32BE(MAGIC, 0);
  buffer.writeInt16BE(PRODUCER_SNAPSHOT_VERSION, 4);
  buffer.writeBigInt64BE(snapshot.endOffset, 10);
  buffer.writeInt32BE(snapshot.producers.length, 18);
  let position = HEADER_SIZE;
  for (const producer of snapshot.producers) {
    assert(producer.batches.length >= 1 && producer.batches.length <= MAX_BATCHES_PER_PRODUCER, `producer ${producer.producerId} has ${producer.batches.length} batches`);
    buffer.writeBigInt64BE(producer.producerId, position);
    buffer.writeInt16BE(producer.producerEpoch, position + 8);
    buffer.writeInt8(producer.batches.length, position + 10);
    position += ENTRY_HEADER_SIZE;
    for (const batch of producer.batches) {
      buffer.writeInt32BE(batch.firstSeq, position);
      buffer.writeInt32BE(batch.lastSeq, position + 4);
      buffer.writeBigInt64BE(batch.firstOffset, position + 8);
      buffer.writeBigInt64BE(batch.lastOffset, position + 16);
      buffer.writeBigInt64BE(BigInt(batch.timestampMs), position + 24);
      position += BATCH_SIZE;
    }
  }
  assert(position === size, `snapshot encoded ${position} of ${size} bytes`);
  buffer.writeUInt32BE(crc32c(buffer.subarray(CRC_START)), 6);
  return buffer;
}

export type SnapshotDecodeResult = { ok: true; snapshot: ProducerStateSnapshot } | { ok: false; problem: string };

/** Decodes and checks a snapshot file's bytes; never throws on bad bytes. */
export function decodeProducerStateSnapshot(bytes: Buffer, expectedEndOffset?: bigint): SnapshotDecodeResult {
  const bad = (problem: string): SnapshotDecodeResult => ({ ok: false, problem });
  if (bytes.length < HEADER_SIZE) return bad(`${bytes.length} bytes, shorter than the ${HEADER_SIZE}-byte header (torn or empty)`);
  if (bytes.readUInt32BE(0) !== MAGIC) return bad(`bad magic 0x${bytes.readUInt32BE(0).toString(16)}`);
  const version = bytes.readInt16BE(4);
  if (version !== PRODUCER_SNAPSHOT_VERSION) return bad(`unsupported version ${version} (this broker reads ${PRODUCER_SNAPSHOT_VERSION})`);
  const storedCrc = bytes.readUInt32BE(6);
  const actualCrc = crc32c(bytes.subarray(CRC_START));
  if (storedCrc !== actualCrc) return bad(`CRC-32C mismatch: stored 0x${storedCrc.toString(16)}, computed 0x${actualCrc.toString(16)}`);
  const endOffset = bytes.readBigInt64BE(10);
  if (endOffset < 0n) return bad(`negative end offset ${endOffset}`);
  if (expectedEndOffset !== undefined && endOffset !== expectedEndOffset) return bad(`holds end offset ${endOffset} but is named for ${expectedEndOffset}`);
  const count = bytes.readInt32BE(18);
  if (count < 0) return bad(`negative producer count ${count}`);
  const producers: ProducerStateEntrySnapshot[] = [];
  let position = HEADER_SIZE;
  let previousId = -1n;
  for (let i = 0; i < count; i++) {
    if (position + ENTRY_HEADER_SIZE > bytes.length) return bad(`producer ${i} of ${count} runs past the end (${bytes.length} bytes)`);
    const producerId = bytes.readBigInt64BE(position);
    const producerEpoch = bytes.readInt16BE(position + 8);
    const batchCount = bytes.readInt8(position + 10);
    position += ENTRY_HEADER_SIZE;
    if (producerId <= previousId) return bad(`producer id ${producerId} is not above the previous ${previousId}`);
    previousId = producerId;
    if (producerEpoch < 0) return bad(`producer ${producerId} has negative epoch ${producerEpoch}`);
    if (batchCount < 1 || batchCount > MAX_BATCHES_PER_PRODUCER) return bad(`producer ${producerId} has ${batchCount} batches`);
    if (position + batchCount * BATCH_SIZE > bytes.length) return bad(`the batches of producer ${producerId} run past the end`);
    const batches: ProducerBatchMetadata[] = [];
    let previousLast = -1n;
    for (let j = 0; j < batchCount; j++) {
      const firstOffset = bytes.readBigInt64BE(position + 8);
      const lastOffset = bytes.readBigInt64BE(position + 16);
      const timestamp = bytes.readBigInt64BE(position + 24);
      if (firstOffset <= previousLast || firstOffset > lastOffset || lastOffset >= endOffset) {
        return bad(`producer ${producerId} batch ${firstOffset}..${lastOffset} is out of order or not below the end offset ${endOffset}`);
      }
      if (timestamp < BigInt(Number.MIN_SAFE_INTEGER) || timestamp > BigInt(Number.MAX_SAFE_INTEGER)) return bad(`producer ${producerId} timestamp ${timestamp} out of range`);
      previousLast = lastOffset;
      batches.push(Object.freeze({ firstSeq: bytes.readInt32BE(position), lastSeq: bytes.readInt32BE(position + 4), firstOffset, lastOffset, timestampMs: Number(timestamp) }));
      position += BATCH_SIZE;
    }
    producers.push(Object.freeze({ producerId, producerEpoch, batches: Object.freeze(batches) }));
  }
  if (position !== bytes.length) return bad(`${bytes.length - position} bytes after the last producer`);
  return { ok: true, snapshot: Object.freeze({ endOffset, producers: Object.freeze(producers) }) };
}

export function producerSnapshotPath(directory: string, endOffset: bigint): string {
  return join(directory, producerSnapshotFileName(endOffset));
}

export interface WriteSnapshotOptions {
  /** fsync the directory after the rename (default false: losing a new snapshot in a crash is harmless). */
  syncDirectory?: boolean;
}

/** Writes `<snapshot.endOffset>.snapshot` atomically, replacing one at the same offset. Returns its path. */
export async function writeProducerSnapshot(fs: StorageFs, directory: string, snapshot: ProducerStateSnapshot, options: WriteSnapshotOptions = {}): Promise<string> {
  assert(snapshot.endOffset >= 0n && snapshot.endOffset <= INT64_MAX, `snapshot end offset ${snapshot.endOffset} out of range`);
  const path = producerSnapshotPath(directory, snapshot.endOffset);
  await writeFileAtomic(fs, path, encodeProducerStateSnapshot(snapshot), { syncDirectory: options.syncDirectory ?? false });
  return path;
}

/** End offsets of the snapshot files in the directory, ascending. Temp files are not listed. */
export async function listProducerSnapshots(fs: StorageFs, directory: string): Promise<bigint[]> {
  const offsets: bigint[] = [];
  for (const name of await fs.readdir(directory)) {
    const offset = parseProducerSnapshotFileName(name);
    if (offset !== undefined) offsets.push(offset);
  }
  return offsets.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export interface SkippedSnapshot {
  endOffset: bigint;
  path: string;
  problem: string;
}

export interface LatestSnapshot {
  /** The newest readable snapshot at or below the bound; undefined when none is. */
  snapshot: ProducerStateSnapshot | undefined;
  /** Newer files at or below the bound that were unreadable (log them; they are left in place). */
  skipped: SkippedSnapshot[];
}

/** The newest valid snapshot with end offset <= atOrBelow, skipping corrupt or torn files. I/O errors other than ENOENT reject. */
export async function readLatestProducerSnapshot(fs: StorageFs, directory: string, atOrBelow: bigint): Promise<LatestSnapshot> {
  const skipped: SkippedSnapshot[] = [];
  const candidates = (await listProducerSnapshots(fs, directory)).filter((offset) => offset <= atOrBelow).reverse();
  for (const endOffset of candidates) {
    const path = producerSnapshotPath(directory, endOffset);
    let bytes: Buffer;
    try {
      bytes = await fs.readFile(path);
    } catch (error) {
      if (isNotFound(error)) continue;
      throw error;
    }
    const decoded = decodeProducerStateSnapshot(bytes, endOffset);
    if (decoded.ok) return { snapshot: decoded.snapshot, skipped };
    skipped.push({ endOffset, path, problem: decoded.problem });
  }
  return { snapshot: undefined, skipped };
}

async function unlinkSnapshots(fs: StorageFs, directory: string, offsets: bigint[]): Promise<void> {
  for (const offset of offsets) {
    try {
      await fs.unlink(producerSnapshotPath(directory, offset));
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
}

/**
 * Deletes the snapshots whose end offset is above `offset` (after a truncation to `offset`; a
 * snapshot AT `offset` still describes the log below it) and fsyncs the directory when it
 * deleted any, so they cannot come back after a crash. Returns the deleted end offsets.
 */
export async function deleteProducerSnapshotsAbove(fs: StorageFs, directory: string, offset: bigint): Promise<bigint[]> {
  const doomed = (await listProducerSnapshots(fs, directory)).filter((o) => o > offset);
  await unlinkSnapshots(fs, directory, doomed);
  if (doomed.length > 0) await fs.syncDirectory(directory);
  return doomed;
}

/**
 * Deletes every snapshot, durably: for a log that restarts empty at a new offset (Kafka's
 * truncateFullyAndStartAt), whose old snapshots describe another history even below that offset.
 */
export async function deleteAllProducerSnapshots(fs: StorageFs, directory: string): Promise<bigint[]> {
  return deleteProducerSnapshotsAbove(fs, directory, -1n);
}

/** Deletes the snapshots whose end offset is below `offset` (retention). No directory fsync: a stale old snapshot coming back is harmless. */
export async function deleteProducerSnapshotsBelow(fs: StorageFs, directory: string, offset: bigint): Promise<bigint[]> {
  const doomed = (await listProducerSnapshots(fs, directory)).filter((o) => o < offset);
  await unlinkSnapshots(fs, directory, doomed);
  return doomed;
}

/** Keeps the newest `keep` snapshots and deletes the rest. Returns the deleted end offsets. */
export async function retainLatestProducerSnapshots(fs: StorageFs, directory: string, keep: number): Promise<bigint[]> {
  assert(Number.isInteger(keep) && keep >= 1, `keep ${keep} snapshots: at least one`);
  const all = await listProducerSnapshots(fs, directory);
  const doomed = all.slice(0, Math.max(0, all.length - keep));
  await unlinkSnapshots(fs, directory, doomed);
  return doomed;
}

export interface LoadProducerStateOptions {
  fs: StorageFs;
  directory: string;
  logStartOffset: bigint;
  /** The log end offset: after open and recovery, or the offset just truncated to. */
  logEndOffset: bigint;
  /**
   * The log's batches in offset order starting with the batch holding `fromOffset` (or the first
   * after it); may run past logEndOffset (iteration stops there). Called at most once, and not
   * at all when nothing needs replaying. Build items with replayBatchOf(header, nowMs).
   */
  readBatches: (fromOffset: bigint) => Iterable<ReplayBatch> | AsyncIterable<ReplayBatch>;
  producerState?: ProducerStateOptions;
}

export interface LoadedProducerState {
  manager: ProducerStateManager;
  /** End offset of the snapshot it started from; undefined when it started from the log start. */
  snapshotOffset: bigint | undefined;
  skipped: SkippedSnapshot[];
  /** Snapshots deleted because they were above logEndOffset. */
  deletedAbove: bigint[];
  replayed: number;
}

/**
 * The producer state of a log whose offsets are [logStartOffset, logEndOffset), for open
 * (after recovery) and for truncation (logEndOffset = the truncation offset): deletes the
 * snapshots above logEndOffset (durably), loads the newest valid snapshot at or below it, and
 * replays the batches from max(snapshot end, logStartOffset) to logEndOffset. After a clean
 * shutdown that wrote a snapshot at the log end offset, nothing is replayed.
 */
export async function loadProducerState(options: LoadProducerStateOptions): Promise<LoadedProducerState> {
  const { fs, directory, logStartOffset, logEndOffset } = options;
  const deletedAbove = await deleteProducerSnapshotsAbove(fs, directory, logEndOffset);
  const { snapshot, skipped } = await readLatestProducerSnapshot(fs, directory, logEndOffset);
  const snapshotEnd = snapshot?.endOffset ?? logStartOffset;
  const from = snapshotEnd > logStartOffset ? snapshotEnd : logStartOffset;
  const batches = from < logEndOffset ? options.readBatches(from) : [];
  const { manager, replayed } = await ProducerStateManager.loadFromSnapshotAndReplay(snapshot, batches, { logStartOffset, logEndOffset }, options.producerState);
  return { manager, snapshotOffset: snapshot?.endOffset, skipped, deletedAbove, replayed };
}
