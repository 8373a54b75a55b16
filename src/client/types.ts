// The public shapes of the TypeScript client. They follow kafkajs where kafkajs has a shape
// (offsets and timestamps as decimal strings, keys and values as Buffers), so code written for
// kafkajs reads the same here. Nothing in this file does I/O.
import type { Clock } from '../util/clock.js';
import type { CompressionName } from '../codec/record-batch.js';

/** A pino-compatible logger; pino's Logger satisfies it. Absent = no logging. */
export interface ClientLogger {
  debug(bindings: Record<string, unknown>, message: string): void;
  info(bindings: Record<string, unknown>, message: string): void;
  warn(bindings: Record<string, unknown>, message: string): void;
  error(bindings: Record<string, unknown>, message: string): void;
}

export interface RetryOptions {
  /** How many times a retriable failure is retried (so up to retries + 1 attempts). */
  retries: number;
  initialRetryTimeMs: number;
  maxRetryTimeMs: number;
}

export interface KavkaConfig {
  clientId: string;
  /** Bootstrap addresses, "host:port". */
  brokers: string[];
  retry?: Partial<RetryOptions>;
  /** Deadline of one unary request (Metadata, CreateTopics, ListOffsets, ...). */
  requestTimeoutMs?: number;
  logger?: ClientLogger;
  /** Handed in for tests; defaults to the system clock. */
  clock?: Clock;
  /** Uniform in [0, 1); handed in for tests (jitter, sticky partition); defaults to Math.random. */
  random?: () => number;
}

// ---------------------------------------------------------------- producing

export type MessageBytes = string | Buffer | null;

/** kafkajs IHeaders: a repeated header key is written once per array element. */
export type MessageHeaders = Record<string, string | Buffer | null | undefined | (string | Buffer | null)[]>;

export interface Message {
  key?: MessageBytes;
  value: MessageBytes;
  headers?: MessageHeaders;
  partition?: number;
  /** Milliseconds since the epoch; a decimal string or a number. Absent = now. */
  timestamp?: string | number;
}

export type Acks = -1 | 0 | 1;

export interface ProducerRecord {
  topic: string;
  messages: Message[];
  acks?: Acks;
  timeoutMs?: number;
  compression?: CompressionName;
}

export interface TopicMessages {
  topic: string;
  messages: Message[];
}

export interface ProducerBatchRecord {
  topicMessages: TopicMessages[];
  acks?: Acks;
  timeoutMs?: number;
  compression?: CompressionName;
}

/** One per partition a send() wrote to, as kafkajs returns it. */
export interface RecordMetadata {
  topicName: string;
  partition: number;
  errorCode: number;
  /** Offset of the first record this send() wrote to the partition. "-1" with acks=0. */
  baseOffset: string;
  logAppendTime: string;
  logStartOffset: string;
}

export interface PartitionerArgs {
  topic: string;
  /** Partitions of the topic, with their leaders (-1 when leaderless). */
  partitionMetadata: { partitionId: number; leader: number }[];
  message: Message;
}

/** A custom partitioner returns the partition for a message. */
export type CustomPartitioner = (args: PartitionerArgs) => number;

export interface ProducerConfig {
  /** How long a batch waits for more records before it is sent (Kafka linger.ms). */
  lingerMs?: number;
  /** A batch is sent once its records reach this many bytes (Kafka batch.size). */
  batchSizeBytes?: number;
  acks?: Acks;
  compression?: CompressionName;
  /** Produce requests outstanding per broker (Kafka max.in.flight.requests.per.connection). */
  maxInFlightRequests?: number;
  /** Upper bound on one produce request's batches, in bytes (Kafka max.request.size). */
  maxRequestSizeBytes?: number;
  /**
   * Bytes of records a producer holds before send() waits for acknowledgements (Kafka
   * buffer.memory). Default 32 MiB.
   */
  maxBufferedBytes?: number;
  /** Ack timeout the broker applies (ProduceRequest.timeout_ms). */
  timeoutMs?: number;
  /** kafkajs style: a factory returning the partitioner. Absent = Kafka's default. */
  partitioner?: () => CustomPartitioner;
  /** Ask the broker to create missing topics (if its auto.create.topics.enable allows). */
  allowAutoTopicCreation?: boolean;
  /** Use the unary Produce RPC instead of ProduceStream. */
  useUnaryProduce?: boolean;
  /**
   * Kafka's enable.idempotence: the producer gets a producer id (InitProducerId) and stamps every
   * batch with it, its epoch and a per-partition sequence, so the broker drops a retried batch it
   * already has and keeps each partition's batches in order even with several in flight.
   * Default: on when acks is -1 and maxInFlightRequests <= 5, else off (as Kafka 3 does when not
   * set explicitly). `true` with acks 0 or 1, or with more than 5 in flight, is a config error.
   * With the default on, a send() that asks for acks 0 or 1 sends those records without
   * idempotence; with `true` such a send() is refused.
   */
  idempotent?: boolean;
}

// ---------------------------------------------------------------- consuming

/** Headers as a consumer sees them: a repeated key becomes an array, as in kafkajs. */
export type ConsumedHeaders = Record<string, Buffer | null | (Buffer | null)[]>;

export interface KafkaMessage {
  offset: string;
  timestamp: string;
  /** "CreateTime" or "LogAppendTime" (kcat calls them create and logappend). */
  timestampType: 'CreateTime' | 'LogAppendTime';
  key: Buffer | null;
  value: Buffer | null;
  headers: ConsumedHeaders;
  /** The headers in wire order, nulls kept: what kcat prints. */
  headerList: { key: string; value: Buffer | null }[];
  /** Size of the record's key plus value, for progress accounting. */
  size: number;
}

export interface EachMessagePayload {
  topic: string;
  partition: number;
  message: KafkaMessage;
  /** The node id of the broker that served the fetch. */
  brokerId: number;
  heartbeat(): Promise<void>;
  /** Pauses this partition; returns a function that resumes it. */
  pause(): () => void;
}

export interface Batch {
  topic: string;
  partition: number;
  highWatermark: string;
  messages: KafkaMessage[];
  isEmpty(): boolean;
  firstOffset(): string | null;
  lastOffset(): string;
  offsetLag(): string;
}

export interface EachBatchPayload {
  batch: Batch;
  brokerId: number;
  resolveOffset(offset: string): void;
  heartbeat(): Promise<void>;
  isRunning(): boolean;
  isStale(): boolean;
  pause(): () => void;
}

export interface PartitionEndInfo {
  topic: string;
  partition: number;
  /** The consumer's position, equal to the high watermark. */
  offset: string;
  highWatermark: string;
}

export interface ConsumerRunConfig {
  eachMessage?: (payload: EachMessagePayload) => Promise<void> | void;
  eachBatch?: (payload: EachBatchPayload) => Promise<void> | void;
  /** With eachBatch: move the position past the whole batch when the handler returns. */
  eachBatchAutoResolve?: boolean;
  /**
   * Called when a partition's position reaches its high watermark (librdkafka's partition EOF),
   * once each time it gets there.
   */
  onPartitionEnd?: (info: PartitionEndInfo) => Promise<void> | void;
}

export type AutoOffsetReset = 'earliest' | 'latest' | 'none';

export interface ConsumerConfig {
  /** Consumer groups are a later issue: a groupId is refused. */
  groupId?: string;
  /** Bytes a fetch may return in total (the broker clamps to its fetch.max.bytes). */
  maxBytes?: number;
  maxBytesPerPartition?: number;
  minBytes?: number;
  maxWaitTimeMs?: number;
  /** What to do when the position is outside the log (OFFSET_OUT_OF_RANGE). */
  autoOffsetReset?: AutoOffsetReset;
}

export interface SubscribeOptions {
  topics?: (string | RegExp)[];
  topic?: string | RegExp;
  fromBeginning?: boolean;
  /** Start at the first record with timestamp >= this (ms since the epoch). */
  fromTimestamp?: number | string;
}

export interface AssignOptions {
  topic: string;
  /** Absent = every partition of the topic. */
  partitions?: number[];
  fromBeginning?: boolean;
  fromTimestamp?: number | string;
}

export interface TopicPartitions {
  topic: string;
  partitions?: number[];
}

export interface SeekOptions {
  topic: string;
  partition: number;
  /** A decimal string (kafkajs) or a bigint/number; must be >= 0. */
  offset: string | number | bigint;
}

// ---------------------------------------------------------------- admin

export interface ITopicConfig {
  topic: string;
  numPartitions?: number;
  replicationFactor?: number;
  configEntries?: { name: string; value: string }[];
  /** kafkajs shape: one entry per partition with the broker ids of its replicas. */
  replicaAssignment?: { partition: number; replicas: number[] }[];
}

export interface PartitionMetadata {
  partitionErrorCode: number;
  partitionId: number;
  leader: number;
  leaderEpoch: number;
  replicas: number[];
  isr: number[];
  offlineReplicas: number[];
}

export interface TopicMetadata {
  name: string;
  isInternal: boolean;
  partitions: PartitionMetadata[];
}

export interface BrokerInfo {
  nodeId: number;
  host: string;
  port: number;
  rack: string;
}

export interface ClusterDescription {
  clusterId: string;
  controller: number;
  brokers: BrokerInfo[];
  /** The node that answered the request. */
  answeringNodeId: number;
}

export const ConfigResourceTypes = { TOPIC: 2, BROKER: 4 } as const;
export type ConfigResourceType = (typeof ConfigResourceTypes)[keyof typeof ConfigResourceTypes];

export interface DescribeConfigResource {
  type: ConfigResourceType;
  name: string;
  configNames?: string[];
}

export interface ConfigEntryDescription {
  configName: string;
  configValue: string | null;
  readOnly: boolean;
  isDefault: boolean;
  configSource: string;
  isSensitive: boolean;
}

export interface DescribeConfigResponse {
  resources: {
    errorCode: number;
    errorMessage: string;
    resourceName: string;
    resourceType: ConfigResourceType;
    configEntries: ConfigEntryDescription[];
  }[];
  throttleTime: number;
}

export interface AlterConfigResource {
  type: ConfigResourceType;
  name: string;
  /** Incremental: SET (the default when a value is given) or DELETE a named key. */
  configEntries: { name: string; value?: string; operation?: 'SET' | 'DELETE' }[];
}

export interface PartitionOffsets {
  partition: number;
  /** The high watermark, as kafkajs reports it. */
  offset: string;
  high: string;
  low: string;
}
