// The producer's configuration: ProducerConfig with its defaults filled in and every bound
// checked when the Producer is constructed (each error names its key), and the BatchSettings of
// one send(), which a ProducerRecord may override.
//
// Pure functions: no I/O, no state. The Producer calls resolveProducerConfig() once in its
// constructor and batchSettingsFor() at the start of every send().
import type { CompressionName } from '../codec/record-batch.js';
import { KavkaError } from '../util/errors.js';
import type { BatchSettings } from './accumulator.js';
import { MAX_UNACKNOWLEDGED_BATCHES_PER_PARTITION } from './idempotence.js';
import type { Acks, ProducerConfig, ProducerRecord } from './types.js';

export interface ResolvedProducerConfig {
  lingerMs: number;
  batchSizeBytes: number;
  acks: Acks;
  compression: CompressionName;
  maxInFlightRequests: number;
  maxRequestSizeBytes: number;
  maxBufferedBytes: number;
  timeoutMs: number;
  allowAutoTopicCreation: boolean;
  useUnaryProduce: boolean;
  idempotent: boolean;
  /** Whether the user set idempotent: true (then a send() with other acks is refused). */
  idempotentExplicit: boolean;
}

export function resolveProducerConfig(config: ProducerConfig): ResolvedProducerConfig {
  const resolved: ResolvedProducerConfig = {
    lingerMs: config.lingerMs ?? 5,
    batchSizeBytes: config.batchSizeBytes ?? 16_384,
    acks: config.acks ?? -1,
    compression: config.compression ?? 'none',
    maxInFlightRequests: config.maxInFlightRequests ?? 5,
    maxRequestSizeBytes: config.maxRequestSizeBytes ?? 1_048_576,
    maxBufferedBytes: config.maxBufferedBytes ?? 32 * 1024 * 1024,
    timeoutMs: config.timeoutMs ?? 30_000,
    allowAutoTopicCreation: config.allowAutoTopicCreation ?? true,
    useUnaryProduce: config.useUnaryProduce ?? false,
    idempotent: false,
    idempotentExplicit: config.idempotent === true,
  };
  const positive: [keyof ResolvedProducerConfig, number][] = [
    ['batchSizeBytes', resolved.batchSizeBytes],
    ['maxInFlightRequests', resolved.maxInFlightRequests],
    ['maxRequestSizeBytes', resolved.maxRequestSizeBytes],
    ['maxBufferedBytes', resolved.maxBufferedBytes],
    ['timeoutMs', resolved.timeoutMs],
  ];
  for (const [name, value] of positive) {
    if (!Number.isInteger(value) || value <= 0) throw new KavkaError('INVALID_REQUEST', `producer ${name} must be a positive integer, got ${value}`, { retriable: false });
  }
  if (!Number.isInteger(resolved.lingerMs) || resolved.lingerMs < 0) throw new KavkaError('INVALID_REQUEST', `producer lingerMs must be a non-negative integer, got ${resolved.lingerMs}`, { retriable: false });
  checkAcks(resolved.acks);
  checkCompression(resolved.compression);
  if (config.idempotent !== undefined && typeof config.idempotent !== 'boolean') throw new KavkaError('INVALID_REQUEST', `producer idempotent must be true or false, got ${String(config.idempotent)}`, { retriable: false });
  if (config.idempotent === true) {
    if (resolved.acks !== -1) throw new KavkaError('INVALID_REQUEST', `an idempotent producer needs acks -1 (all in-sync replicas), got acks ${resolved.acks}: set acks: -1 or idempotent: false`, { retriable: false });
    if (resolved.maxInFlightRequests > MAX_UNACKNOWLEDGED_BATCHES_PER_PARTITION) {
      throw new KavkaError(
        'INVALID_REQUEST',
        `an idempotent producer allows at most ${MAX_UNACKNOWLEDGED_BATCHES_PER_PARTITION} maxInFlightRequests (the broker remembers a producer's last ${MAX_UNACKNOWLEDGED_BATCHES_PER_PARTITION} batches per partition), got ${resolved.maxInFlightRequests}: lower maxInFlightRequests or set idempotent: false`,
        { retriable: false },
      );
    }
  }
  // Kafka 3: on unless set, and silently off when acks or max in flight conflict with it.
  resolved.idempotent = config.idempotent ?? (resolved.acks === -1 && resolved.maxInFlightRequests <= MAX_UNACKNOWLEDGED_BATCHES_PER_PARTITION);
  return resolved;
}

/** The settings of one send(): the record's acks, compression and timeoutMs, else the producer's. */
export function batchSettingsFor(record: ProducerRecord, config: ResolvedProducerConfig): BatchSettings {
  const acks = record.acks ?? config.acks;
  checkAcks(acks);
  if (config.idempotentExplicit && acks !== -1) {
    throw new KavkaError('INVALID_REQUEST', `this producer is idempotent (idempotent: true), which needs acks -1; the send asked for acks ${acks}`, { retriable: false });
  }
  const compression = record.compression ?? config.compression;
  checkCompression(compression);
  const timeoutMs = record.timeoutMs ?? config.timeoutMs;
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new KavkaError('INVALID_REQUEST', `timeoutMs must be a positive integer, got ${timeoutMs}`, { retriable: false });
  return { acks, compression, timeoutMs };
}

function checkAcks(acks: number): asserts acks is Acks {
  if (acks !== -1 && acks !== 0 && acks !== 1) throw new KavkaError('INVALID_REQUIRED_ACKS', `acks must be -1, 0 or 1, got ${acks}`, { retriable: false });
}

function checkCompression(compression: string): asserts compression is CompressionName {
  if (compression !== 'none' && compression !== 'gzip') throw new KavkaError('UNSUPPORTED_COMPRESSION_TYPE', `compression ${compression} is not supported; use none or gzip`, { retriable: false });
}
