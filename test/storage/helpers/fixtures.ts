// Shared fixtures for storage tests: temp dirs, configs, batches, and helpers that read a whole log.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { encodeRecordBatch, readBatchHeader, scanBatches, type CompressionName } from '../../../src/codec/record-batch.js';
import { ManualClock } from '../../../src/util/clock.js';
import { createLogger, silentLogger, type Logger } from '../../../src/util/logger.js';
import { openPartitionLog, type FilePartitionLog, type LogConfig, type PartitionLog, type SealedSegmentVerification, type StorageFs, type TopicPartition } from '../../../src/storage/index.js';

export const TP: TopicPartition = { topic: 'orders', partition: 0 };
export const START_MS = 1_700_000_000_000;
/** The topic id storage tests create partition logs under (LogManager.createLog). */
export const TOPIC_ID = 'b7c1f9a2-0d3e-4c5b-9a8f-6e2d1c0b3a49';

export async function makeTempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'kavka-storage-'));
}

export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** Kafka's defaults for the rest (retention 7 days, message.max.bytes 1048588), small segments. */
export function testConfig(overrides: Partial<LogConfig> = {}): LogConfig {
  return {
    segmentBytes: 1024 * 1024,
    segmentMs: 604_800_000,
    retentionMs: 604_800_000,
    retentionBytes: -1,
    retentionMessages: -1,
    maxMessageBytes: 1_048_588,
    indexIntervalBytes: 256,
    flushPolicy: 'batch',
    messageTimestampType: 'CreateTime',
    producerIdExpirationMs: 86_400_000,
    ...overrides,
  };
}

export interface BatchOptions {
  records?: number;
  valueBytes?: number;
  timestamp?: bigint;
  /** Added per record: record i has timestamp + i * timestampStep. */
  timestampStep?: bigint;
  compression?: CompressionName;
  baseOffset?: bigint;
  offsetDeltas?: number[];
  /** A marker byte written into every value, so batches differ. */
  tag?: number;
}

export function batch(options: BatchOptions = {}): Buffer {
  const count = options.offsetDeltas?.length ?? options.records ?? 1;
  const timestamp = options.timestamp ?? BigInt(START_MS);
  const step = options.timestampStep ?? 0n;
  const records = Array.from({ length: count }, (_, i) => ({
    key: Buffer.from(`key-${i}`),
    value: Buffer.alloc(options.valueBytes ?? 10, (options.tag ?? i) & 0xff),
    timestamp: timestamp + BigInt(i) * step,
  }));
  return encodeRecordBatch({ records, compression: options.compression, baseOffset: options.baseOffset, offsetDeltas: options.offsetDeltas });
}

export interface OpenOptions {
  config?: LogConfig;
  clock?: ManualClock;
  fs?: StorageFs;
  logger?: Logger;
  verifySealedSegments?: SealedSegmentVerification;
}

export function openTestLog(directory: string, options: OpenOptions = {}): Promise<FilePartitionLog> {
  return openPartitionLog({
    directory,
    topicPartition: TP,
    config: options.config ?? testConfig(),
    clock: options.clock ?? new ManualClock(START_MS),
    logger: options.logger ?? silentLogger(),
    fs: options.fs,
    verifySealedSegments: options.verifySealedSegments,
  });
}

export interface ReadBatch {
  baseOffset: bigint;
  lastOffset: bigint;
  bytes: Buffer;
}

/** Every batch from fetchOffset to the log end, one read at a time (bounded). */
export async function readAllBatches(log: PartitionLog, fetchOffset = log.logStartOffset, maxBytes = 64 * 1024): Promise<ReadBatch[]> {
  const out: ReadBatch[] = [];
  let offset = fetchOffset;
  for (let reads = 0; offset < log.logEndOffset; reads++) {
    if (reads > 100_000) throw new Error('readAllBatches did not reach the log end');
    const result = await log.read(offset, maxBytes, { maxOffset: log.logEndOffset, minOneBatch: true });
    if (result.batches.length === 0) break;
    out.push(...splitBatches(result.batches));
    offset = result.nextOffset;
  }
  return out;
}

export function splitBatches(bytes: Buffer): ReadBatch[] {
  const scan = scanBatches(bytes, { verifyCrc: true });
  if (scan.stop.kind !== 'end') throw new Error(`read returned bytes that are not whole valid batches: ${JSON.stringify(scan.stop)}`);
  return scan.batches.map((b) => {
    const header = readBatchHeader(bytes, b.position);
    return { baseOffset: header.baseOffset, lastOffset: header.baseOffset + BigInt(header.lastOffsetDelta), bytes: bytes.subarray(b.position, b.position + b.size) };
  });
}

/** Resolves after pending I/O callbacks and microtasks have run (for "has it resolved yet?" checks). */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Polls until `condition` holds (bounded); for state that changes when real I/O completes. */
export async function waitUntil(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

export interface CapturedLogs {
  logger: Logger;
  /** Every line logged so far, parsed (pino JSON: level 40 = warn). */
  entries(): Record<string, unknown>[];
}

/** A logger whose JSON lines a test can read back. */
export function capturingLogger(): CapturedLogs {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      lines.push(...String(chunk).split('\n').filter((line) => line !== ''));
      callback();
    },
  });
  return { logger: createLogger({ level: 'debug', destination }), entries: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}
