// Which partition a message of one send() goes to: the message's own partition when it names
// one, else the user's custom partitioner, else Kafka's default (partitioner.ts: the key's hash,
// or the sticky partition for a null key). The chosen partition must exist in the topic.
//
// One per producer; the sticky choice is its only state. Called synchronously by the Producer
// while it appends a send's records and when it drains a batch (onBatchSent).
import { KavkaError } from '../util/errors.js';
import type { TopicInfo } from './cluster.js';
import type { PartitionChoice, StickyPartitioner } from './partitioner.js';
import type { CustomPartitioner, Message } from './types.js';

function choiceOf(topic: TopicInfo): PartitionChoice {
  return { partitions: topic.partitions.map((p) => p.partition), available: topic.partitions.filter((p) => p.leader >= 0).map((p) => p.partition) };
}

export class RecordPartitioner {
  /** `custom` is undefined when the user gave no partitioner. */
  constructor(
    private readonly sticky: StickyPartitioner,
    private readonly custom: CustomPartitioner | undefined,
  ) {}

  /** The partition of `message` (whose key converts to `key`) in `topic`. */
  partitionFor(topic: TopicInfo, message: Message, key: Buffer | null): number {
    const count = topic.partitions.length;
    let partition: number;
    if (message.partition !== undefined && message.partition !== null) partition = message.partition;
    else if (this.custom !== undefined) {
      partition = this.custom({ topic: topic.name, partitionMetadata: topic.partitions.map((p) => ({ partitionId: p.partition, leader: p.leader })), message });
    } else partition = this.sticky.partition(topic.name, key, choiceOf(topic));
    if (!Number.isInteger(partition) || partition < 0 || partition >= count) {
      throw new KavkaError('UNKNOWN_TOPIC_OR_PARTITION', `partition ${partition} does not exist in ${topic.name} (partitions 0..${count - 1})`, { retriable: false });
    }
    return partition;
  }

  /** A batch for `partition` of `topic` left the accumulator: the sticky partition may move on. */
  onBatchSent(topic: TopicInfo, partition: number): void {
    this.sticky.onBatchSent(topic.name, partition, choiceOf(topic));
  }
}
