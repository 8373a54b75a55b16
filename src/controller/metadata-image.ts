// An immutable picture of the cluster's metadata, produced by replaying metadata records.
// Readers hold an image for as long as they like; replay returns a new image and never changes
// the one it was given.
import { assert, assertNever } from '../util/assert.js';
import type { MetadataRecord } from './metadata-records.js';

export interface BrokerImage {
  readonly nodeId: number;
  readonly endpoints: ReadonlyMap<string, { host: string; port: number }>;
  readonly rack: string | undefined;
}

export interface PartitionImage {
  readonly partition: number;
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
  /** -1 when no replica can lead. */
  readonly leader: number;
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
}

export interface TopicImage {
  readonly name: string;
  readonly topicId: string;
  readonly configs: ReadonlyMap<string, string>;
  /** Index i holds partition i. */
  readonly partitions: readonly PartitionImage[];
}

export class MetadataImage {
  static readonly EMPTY = new MetadataImage(new Map(), new Map(), 0);

  private constructor(
    readonly brokers: ReadonlyMap<number, BrokerImage>,
    readonly topics: ReadonlyMap<string, TopicImage>,
    /** Records applied so far; grows by one per replay. */
    readonly offset: number,
  ) {}

  topic(name: string): TopicImage | undefined {
    return this.topics.get(name);
  }

  replay(record: MetadataRecord): MetadataImage {
    const brokers = new Map(this.brokers);
    const topics = new Map(this.topics);
    switch (record.type) {
      case 'RegisterBroker':
        brokers.set(record.nodeId, {
          nodeId: record.nodeId,
          endpoints: new Map(record.endpoints.map((e) => [e.name, { host: e.host, port: e.port }])),
          rack: record.rack,
        });
        break;
      case 'Topic':
        assert(!topics.has(record.name), `topic ${record.name} created twice`);
        topics.set(record.name, { name: record.name, topicId: record.topicId, configs: new Map(Object.entries(record.configs)), partitions: [] });
        break;
      case 'Partition': {
        const topic = topics.get(record.topic);
        assert(topic !== undefined, `partition record for unknown topic ${record.topic}`);
        assert(record.partition <= topic.partitions.length, `partition ${record.partition} of ${record.topic} skips an index`);
        const partitions = [...topic.partitions];
        partitions[record.partition] = {
          partition: record.partition,
          replicas: record.replicas,
          isr: record.isr,
          leader: record.leader,
          leaderEpoch: record.leaderEpoch,
          partitionEpoch: record.partitionEpoch,
        };
        topics.set(record.topic, { ...topic, partitions });
        break;
      }
      case 'RemoveTopic':
        assert(topics.has(record.name), `removing unknown topic ${record.name}`);
        topics.delete(record.name);
        break;
      case 'Config': {
        const topic = topics.get(record.topic);
        assert(topic !== undefined, `config record for unknown topic ${record.topic}`);
        const configs = new Map(topic.configs);
        for (const [key, value] of Object.entries(record.changes)) {
          if (value === null) configs.delete(key);
          else configs.set(key, value);
        }
        topics.set(record.topic, { ...topic, configs });
        break;
      }
      default:
        assertNever(record, 'metadata record');
    }
    return new MetadataImage(brokers, topics, this.offset + 1);
  }
}
