// An immutable picture of the cluster's metadata, produced by replaying metadata records.
// Readers hold an image for as long as they like; replay returns a new image and never changes
// the one it was given.
import { assert, assertNever } from '../util/assert.js';
import type { MetadataRecord, PartitionChangeRecord, PartitionRecord } from './metadata-records.js';

export interface BrokerImage {
  readonly nodeId: number;
  readonly endpoints: ReadonlyMap<string, { host: string; port: number }>;
  readonly rack: string | undefined;
  /** Undefined for registrations written before incarnation ids existed. */
  readonly incarnationId: string | undefined;
  /** The id of its log dir contents (see RegisterBrokerRecord.directoryId); undefined if unknown. */
  readonly directoryId: string | undefined;
  /**
   * A fenced broker leads nothing and takes no new replicas. Every registration starts fenced
   * and is unfenced once the controller accepts its first heartbeat (KIP-631).
   */
  readonly fenced: boolean;
}

// Invariants (asserted on every replay): replicas are distinct; isr ⊆ replicas;
// leader ∈ isr or leader = -1; leaderEpoch and partitionEpoch never decrease.
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
  static readonly EMPTY = new MetadataImage(new Map(), new Map(), 0, 0);

  private constructor(
    readonly brokers: ReadonlyMap<number, BrokerImage>,
    readonly topics: ReadonlyMap<string, TopicImage>,
    /** Where this image is in the metadata log: +1 per replay, or set by atOffset (the Raft index). */
    readonly offset: number,
    /** Producer ids below this have been handed out; never decreases. */
    readonly nextProducerId: number,
  ) {}

  /** The same image at a given metadata offset (the Raft index that produced it). */
  atOffset(offset: number): MetadataImage {
    assert(offset >= 0, `metadata offset ${offset} is negative`);
    return new MetadataImage(this.brokers, this.topics, offset, this.nextProducerId);
  }

  topic(name: string): TopicImage | undefined {
    return this.topics.get(name);
  }

  /** Registered and unfenced: the brokers that may lead partitions and take new replicas, ascending. */
  unfencedBrokerIds(): number[] {
    return [...this.brokers.values()].filter((b) => !b.fenced).map((b) => b.nodeId).sort((a, b) => a - b);
  }

  /** True when the broker is registered and unfenced. */
  isUnfenced(nodeId: number): boolean {
    return this.brokers.get(nodeId)?.fenced === false;
  }

  replay(record: MetadataRecord): MetadataImage {
    const brokers = new Map(this.brokers);
    const topics = new Map(this.topics);
    let nextProducerId = this.nextProducerId;
    switch (record.type) {
      case 'RegisterBroker':
        // A new registration (also a re-registration by a restarted process) starts fenced.
        brokers.set(record.nodeId, {
          nodeId: record.nodeId,
          endpoints: new Map(record.endpoints.map((e) => [e.name, { host: e.host, port: e.port }])),
          rack: record.rack,
          incarnationId: record.incarnationId,
          directoryId: record.directoryId,
          fenced: true,
        });
        break;
      case 'FenceBroker':
      case 'UnfenceBroker': {
        const broker = brokers.get(record.nodeId);
        assert(broker !== undefined, `${record.type} for unregistered broker ${record.nodeId}`);
        brokers.set(record.nodeId, { ...broker, fenced: record.type === 'FenceBroker' });
        break;
      }
      case 'UnregisterBroker':
        assert(brokers.has(record.nodeId), `unregistering unknown broker ${record.nodeId}`);
        brokers.delete(record.nodeId);
        break;
      case 'Topic':
        assert(!topics.has(record.name), `topic ${record.name} created twice`);
        topics.set(record.name, { name: record.name, topicId: record.topicId, configs: new Map(Object.entries(record.configs)), partitions: [] });
        break;
      case 'Partition':
        replayPartition(topics, record);
        break;
      case 'PartitionChange':
        replayPartitionChange(topics, record);
        break;
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
      case 'ProducerIds':
        assert(record.nextProducerId > nextProducerId, `producer id block goes backward: ${record.nextProducerId} after ${nextProducerId}`);
        nextProducerId = record.nextProducerId;
        break;
      default:
        assertNever(record, 'metadata record');
    }
    return new MetadataImage(brokers, topics, this.offset + 1, nextProducerId);
  }
}

function assertPartitionInvariants(where: string, p: PartitionImage): void {
  assert(new Set(p.replicas).size === p.replicas.length, `${where}: replicas ${p.replicas.join(',')} name a broker twice`);
  assert(new Set(p.isr).size === p.isr.length, `${where}: isr ${p.isr.join(',')} names a broker twice`);
  for (const id of p.isr) assert(p.replicas.includes(id), `${where}: isr member ${id} is not a replica (${p.replicas.join(',')})`);
  assert(p.leader === -1 || p.isr.includes(p.leader), `${where}: leader ${p.leader} is not in isr ${p.isr.join(',')}`);
}

function replayPartition(topics: Map<string, TopicImage>, record: PartitionRecord): void {
  const topic = topics.get(record.topic);
  assert(topic !== undefined, `partition record for unknown topic ${record.topic}`);
  assert(record.partition <= topic.partitions.length, `partition ${record.partition} of ${record.topic} skips an index`);
  const next: PartitionImage = {
    partition: record.partition,
    replicas: record.replicas,
    isr: record.isr,
    leader: record.leader,
    leaderEpoch: record.leaderEpoch,
    partitionEpoch: record.partitionEpoch,
  };
  const where = `${record.topic}-${record.partition}`;
  assertPartitionInvariants(where, next);
  const previous = topic.partitions[record.partition] as PartitionImage | undefined;
  if (previous !== undefined) {
    assert(next.leaderEpoch >= previous.leaderEpoch, `${where}: leaderEpoch goes backward`);
    assert(next.partitionEpoch >= previous.partitionEpoch, `${where}: partitionEpoch goes backward`);
  }
  const partitions = [...topic.partitions];
  partitions[record.partition] = next;
  topics.set(record.topic, { ...topic, partitions });
}

function replayPartitionChange(topics: Map<string, TopicImage>, record: PartitionChangeRecord): void {
  const where = `${record.topic}-${record.partition}`;
  const topic = topics.get(record.topic);
  assert(topic !== undefined, `partition change for unknown topic ${record.topic}`);
  const previous = topic.partitions[record.partition] as PartitionImage | undefined;
  assert(previous !== undefined, `partition change for unknown partition ${where}`);
  assert(record.leader !== undefined || record.isr !== undefined || record.replicas !== undefined, `${where}: partition change changes nothing`);
  const leader = record.leader ?? previous.leader;
  const next: PartitionImage = {
    partition: record.partition,
    replicas: record.replicas ?? previous.replicas,
    isr: record.isr ?? previous.isr,
    leader,
    // Epochs only grow: +1 or +0, never set from the record.
    leaderEpoch: leader === previous.leader ? previous.leaderEpoch : previous.leaderEpoch + 1,
    partitionEpoch: previous.partitionEpoch + 1,
  };
  assertPartitionInvariants(where, next);
  const partitions = [...topic.partitions];
  partitions[record.partition] = next;
  topics.set(record.topic, { ...topic, partitions });
}
