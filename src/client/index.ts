// The TypeScript client of Kavka, kafkajs-shaped. Depends only on src/proto, src/gen, src/codec
// and src/util.
export { Kavka } from './kavka.js';
export { Producer } from './producer.js';
export { Consumer } from './consumer.js';
export { Admin } from './admin.js';
export type { QuorumInfo, QuorumReplicaState } from './admin.js';
export { StickyPartitioner } from './partitioner.js';
export { RecordAccumulator, ProducerBatch } from './accumulator.js';
export { backoffMs, withRetry, DEFAULT_RETRY } from './retry.js';
export { decodeFetchedBatches } from './fetch-decode.js';
export { MAX_MESSAGE_BYTES, CONSUMER_FLOW_CONTROL_WINDOW_BYTES, channelOptionsFor } from './rpc.js';
export { ConfigResourceTypes } from './types.js';
export type { MetadataSnapshot, TopicInfo, PartitionInfo, BrokerAddress } from './cluster.js';
export type {
  Acks,
  AlterConfigResource,
  AssignOptions,
  AutoOffsetReset,
  Batch,
  BrokerInfo,
  ClientLogger,
  ClusterDescription,
  ConfigEntryDescription,
  ConfigResourceType,
  ConsumedHeaders,
  ConsumerConfig,
  ConsumerRunConfig,
  CustomPartitioner,
  DescribeConfigResource,
  DescribeConfigResponse,
  EachBatchPayload,
  EachMessagePayload,
  ITopicConfig,
  KafkaMessage,
  KavkaConfig,
  Message,
  MessageBytes,
  MessageHeaders,
  PartitionEndInfo,
  PartitionerArgs,
  PartitionMetadata,
  PartitionOffsets,
  ProducerBatchRecord,
  ProducerConfig,
  ProducerRecord,
  RecordMetadata,
  RetryOptions,
  SeekOptions,
  SubscribeOptions,
  TopicMessages,
  TopicMetadata,
  TopicPartitions,
} from './types.js';
export { KavkaError, isRetriable } from '../util/errors.js';
