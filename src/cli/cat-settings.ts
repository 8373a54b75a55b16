// `kavka cat -X key=value`: the client settings kcat users reach for, under librdkafka's names
// (and Kafka Java's where they differ). Unknown keys and bad values are refused naming the key.
// Pure.
import { CliError } from './cli-error.js';
import type { Acks, AutoOffsetReset } from '../client/index.js';

export interface CatSettings {
  clientId: string;
  brokers: string[] | undefined;
  requestTimeoutMs: number | undefined;
  retries: number | undefined;
  retryBackoffMs: number | undefined;
  // producer
  batchSizeBytes: number | undefined;
  lingerMs: number | undefined;
  acks: Acks | undefined;
  compression: 'none' | 'gzip' | undefined;
  maxInFlightRequests: number | undefined;
  produceTimeoutMs: number | undefined;
  // consumer
  fetchWaitMaxMs: number | undefined;
  fetchMinBytes: number | undefined;
  fetchMaxBytes: number | undefined;
  maxPartitionFetchBytes: number | undefined;
  autoOffsetReset: AutoOffsetReset | undefined;
}

export function defaultCatSettings(): CatSettings {
  return {
    clientId: 'kavka-cat',
    brokers: undefined,
    requestTimeoutMs: undefined,
    retries: undefined,
    retryBackoffMs: undefined,
    batchSizeBytes: undefined,
    lingerMs: undefined,
    acks: undefined,
    compression: undefined,
    maxInFlightRequests: undefined,
    produceTimeoutMs: undefined,
    fetchWaitMaxMs: undefined,
    fetchMinBytes: undefined,
    fetchMaxBytes: undefined,
    maxPartitionFetchBytes: undefined,
    autoOffsetReset: undefined,
  };
}

function integer(key: string, value: string, min: number, max = 2 ** 31 - 1): number {
  if (!/^-?\d+$/.test(value)) throw new CliError(`-X ${key}=${value}: expected an integer`);
  const n = Number(value);
  if (n < min || n > max) throw new CliError(`-X ${key}=${value}: must be between ${min} and ${max}`);
  return n;
}

function parseAcks(key: string, value: string): Acks {
  if (value === 'all' || value === '-1') return -1;
  if (value === '0') return 0;
  if (value === '1') return 1;
  throw new CliError(`-X ${key}=${value}: expected all, -1, 0 or 1`);
}

function parseCompression(key: string, value: string): 'none' | 'gzip' {
  if (value === 'none' || value === 'gzip') return value;
  if (['snappy', 'lz4', 'zstd', 'inherit'].includes(value)) throw new CliError(`-X ${key}=${value}: UNSUPPORTED_COMPRESSION_TYPE: only none and gzip are supported`);
  throw new CliError(`-X ${key}=${value}: expected none or gzip`);
}

function parseReset(key: string, value: string): AutoOffsetReset {
  if (['earliest', 'smallest', 'beginning'].includes(value)) return 'earliest';
  if (['latest', 'largest', 'end'].includes(value)) return 'latest';
  if (value === 'error' || value === 'none') return 'none';
  throw new CliError(`-X ${key}=${value}: expected earliest, latest or error`);
}

type Setter = (settings: CatSettings, key: string, value: string) => void;

const SETTERS: Record<string, { doc: string; set: Setter }> = {
  'client.id': { doc: 'client id sent to the brokers', set: (s, _k, v) => void (s.clientId = v) },
  'bootstrap.servers': { doc: 'brokers, like -b', set: (s, _k, v) => void (s.brokers = v.split(',').filter((b) => b.length > 0)) },
  'metadata.broker.list': { doc: 'brokers, like -b', set: (s, _k, v) => void (s.brokers = v.split(',').filter((b) => b.length > 0)) },
  'socket.timeout.ms': { doc: 'deadline of one request (ms)', set: (s, k, v) => void (s.requestTimeoutMs = integer(k, v, 1)) },
  retries: { doc: 'retries of a retriable failure', set: (s, k, v) => void (s.retries = integer(k, v, 0, 1000)) },
  'message.send.max.retries': { doc: 'retries of a retriable failure', set: (s, k, v) => void (s.retries = integer(k, v, 0, 1000)) },
  'retry.backoff.ms': { doc: 'first retry backoff (ms)', set: (s, k, v) => void (s.retryBackoffMs = integer(k, v, 0)) },
  'batch.size': { doc: 'producer batch size in bytes', set: (s, k, v) => void (s.batchSizeBytes = integer(k, v, 1)) },
  'linger.ms': { doc: 'producer linger (ms)', set: (s, k, v) => void (s.lingerMs = integer(k, v, 0)) },
  'queue.buffering.max.ms': { doc: 'producer linger (ms), librdkafka name', set: (s, k, v) => void (s.lingerMs = integer(k, v, 0)) },
  acks: { doc: 'all|-1, 0 or 1', set: (s, k, v) => void (s.acks = parseAcks(k, v)) },
  'request.required.acks': { doc: 'all|-1, 0 or 1', set: (s, k, v) => void (s.acks = parseAcks(k, v)) },
  'compression.codec': { doc: 'none or gzip', set: (s, k, v) => void (s.compression = parseCompression(k, v)) },
  'compression.type': { doc: 'none or gzip', set: (s, k, v) => void (s.compression = parseCompression(k, v)) },
  'max.in.flight.requests.per.connection': { doc: 'produce requests in flight per broker', set: (s, k, v) => void (s.maxInFlightRequests = integer(k, v, 1, 1000)) },
  'max.in.flight': { doc: 'produce requests in flight per broker', set: (s, k, v) => void (s.maxInFlightRequests = integer(k, v, 1, 1000)) },
  'request.timeout.ms': { doc: 'produce ack timeout (ms)', set: (s, k, v) => void (s.produceTimeoutMs = integer(k, v, 1)) },
  'fetch.wait.max.ms': { doc: 'consumer long-poll wait (ms)', set: (s, k, v) => void (s.fetchWaitMaxMs = integer(k, v, 0)) },
  'fetch.min.bytes': { doc: 'bytes a fetch waits for', set: (s, k, v) => void (s.fetchMinBytes = integer(k, v, 0)) },
  'fetch.max.bytes': { doc: 'bytes per fetch response', set: (s, k, v) => void (s.fetchMaxBytes = integer(k, v, 1)) },
  'max.partition.fetch.bytes': { doc: 'bytes per partition per fetch', set: (s, k, v) => void (s.maxPartitionFetchBytes = integer(k, v, 1)) },
  'fetch.message.max.bytes': { doc: 'bytes per partition per fetch, librdkafka name', set: (s, k, v) => void (s.maxPartitionFetchBytes = integer(k, v, 1)) },
  'auto.offset.reset': { doc: 'earliest|smallest, latest|largest or error', set: (s, k, v) => void (s.autoOffsetReset = parseReset(k, v)) },
};

export function supportedSettingKeys(): string[] {
  return Object.keys(SETTERS).sort();
}

export function describeSettings(): string {
  return supportedSettingKeys()
    .map((key) => `${key.padEnd(40)} ${SETTERS[key].doc}`)
    .join('\n');
}

/** Applies one `key=value` (librdkafka's "topic." prefix is accepted and dropped). */
export function applySetting(settings: CatSettings, assignment: string): void {
  const eq = assignment.indexOf('=');
  if (eq <= 0) throw new CliError(`expected -X property=value, not ${assignment}; use -X list to see the supported properties`);
  let key = assignment.slice(0, eq);
  const value = assignment.slice(eq + 1);
  if (key.startsWith('topic.') && SETTERS[key] === undefined) key = key.slice('topic.'.length);
  const setter = SETTERS[key];
  if (setter === undefined) throw new CliError(`-X ${key}: unknown configuration property "${key}"; supported: ${supportedSettingKeys().join(', ')}`);
  setter.set(settings, key, value);
}
