// The client's view of the cluster: broker addresses and each known topic's partitions with
// their leaders, from the last MetadataResponse. Producer, consumer and admin of one Kavka
// instance share it. Called from many async paths; every method is safe across awaits (a
// refresh replaces whole entries, never mutates one in place).
import { KavkaError, errorNameForCode, isErrorName, type ErrorName } from '../util/errors.js';
import type { MetadataResponse__Output } from '../gen/kavka/v1/MetadataResponse.js';
import type { KavkaRpc } from './rpc.js';
import type { ClientLogger } from './types.js';

export interface PartitionInfo {
  partition: number;
  errorCode: ErrorName;
  /** -1 when there is no leader. */
  leader: number;
  leaderEpoch: number;
  replicas: number[];
  isr: number[];
  offlineReplicas: number[];
}

export interface TopicInfo {
  name: string;
  errorCode: ErrorName;
  errorMessage: string;
  isInternal: boolean;
  /** Sorted by partition id. */
  partitions: PartitionInfo[];
}

export interface BrokerAddress {
  nodeId: number;
  host: string;
  port: number;
  rack: string;
  address: string;
}

/** Proto enums arrive as names; anything unexpected becomes UNKNOWN_SERVER_ERROR. */
export function errorNameOf(code: string | number | undefined): ErrorName {
  if (code === undefined) return 'NONE';
  if (typeof code === 'number') return errorNameForCode(code);
  return isErrorName(code) ? code : 'UNKNOWN_SERVER_ERROR';
}

export function formatAddress(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}

export function topicInfoFrom(topic: MetadataResponse__Output['topics'][number]): TopicInfo {
  const partitions = topic.partitions
    .map((p) => ({
      partition: p.partition,
      errorCode: errorNameOf(p.errorCode),
      leader: p.leaderId,
      leaderEpoch: p.leaderEpoch,
      replicas: [...p.replicas],
      isr: [...p.isr],
      offlineReplicas: [...p.offlineReplicas],
    }))
    .sort((a, b) => a.partition - b.partition);
  return { name: topic.name, errorCode: errorNameOf(topic.errorCode), errorMessage: topic.errorMessage, isInternal: topic.isInternal, partitions };
}

export interface MetadataSnapshot {
  clusterId: string;
  controllerId: number;
  answeringNodeId: number;
  /** The address the answering broker was reached at. */
  answeringAddress: string;
  brokers: BrokerAddress[];
  topics: TopicInfo[];
}

export class Cluster {
  private brokers = new Map<number, BrokerAddress>();
  private topics = new Map<string, TopicInfo>();
  private clusterId = '';
  private controllerId = -1;
  /** Rotates the broker a metadata request goes to first, so one dead broker is not retried forever. */
  private nextBootstrapIndex = 0;
  private connected: Promise<void> | undefined;

  constructor(
    private readonly bootstrap: string[],
    private readonly rpc: KavkaRpc,
    private readonly logger: ClientLogger | undefined,
  ) {
    if (bootstrap.length === 0) throw new KavkaError('INVALID_REQUEST', 'brokers must list at least one "host:port" address', { retriable: false });
    for (const address of bootstrap) {
      if (!/^(\[[^\]]+\]|[^:]+):\d+$/.test(address)) throw new KavkaError('INVALID_REQUEST', `broker address "${address}" is not host:port`, { retriable: false });
    }
  }

  /** Fetches metadata once (for no topics), so a bad bootstrap list fails early. */
  connect(): Promise<void> {
    this.connected ??= this.fetchMetadata([], false).then(
      () => undefined,
      (error: unknown) => {
        this.connected = undefined;
        throw error;
      },
    );
    return this.connected;
  }

  /** Candidate addresses for a metadata request: known brokers first, then the bootstrap list. */
  private candidateAddresses(): string[] {
    const known = [...this.brokers.values()].map((b) => b.address);
    const all = [...new Set([...known, ...this.bootstrap])];
    const start = this.nextBootstrapIndex % all.length;
    return [...all.slice(start), ...all.slice(0, start)];
  }

  /**
   * Asks one broker after another for metadata on `topics` ([] = only brokers and the
   * controller when `allTopics` is false; every topic when it is true). Updates the cache.
   */
  async fetchMetadata(topics: string[], allTopics: boolean, allowAutoTopicCreation = false): Promise<MetadataSnapshot> {
    let lastError: unknown;
    for (const address of this.candidateAddresses()) {
      try {
        const response = await this.rpc.metadata(address, { topics, allowAutoTopicCreation, brokersOnly: topics.length === 0 && !allTopics });
        return this.apply(response, address, topics, allTopics);
      } catch (error) {
        lastError = error;
        this.nextBootstrapIndex++;
        this.logger?.debug({ address, error: String(error) }, 'metadata request failed; trying the next broker');
      }
    }
    if (lastError instanceof KavkaError) throw lastError;
    throw new KavkaError('BROKER_NOT_AVAILABLE', `no broker answered a metadata request (tried ${this.candidateAddresses().join(', ')})`, { cause: lastError });
  }

  private apply(response: MetadataResponse__Output, address: string, requested: string[], allTopics: boolean): MetadataSnapshot {
    const brokers = new Map<number, BrokerAddress>();
    for (const b of response.brokers) {
      brokers.set(b.nodeId, { nodeId: b.nodeId, host: b.host, port: b.port, rack: b.rack, address: formatAddress(b.host, b.port) });
    }
    this.brokers = brokers;
    this.clusterId = response.clusterId;
    this.controllerId = response.controllerId;
    const topics = response.topics.map(topicInfoFrom);
    const next = new Map(this.topics);
    if (allTopics) next.clear();
    const wanted = new Set(requested);
    for (const topic of topics) {
      if (allTopics || wanted.has(topic.name)) next.set(topic.name, topic);
    }
    this.topics = next;
    return {
      clusterId: response.clusterId,
      controllerId: response.controllerId,
      answeringNodeId: response.nodeId,
      answeringAddress: address,
      brokers: [...brokers.values()].sort((a, b) => a.nodeId - b.nodeId),
      topics: allTopics ? topics : topics.filter((t) => wanted.has(t.name)),
    };
  }

  /** Re-reads metadata for the given topics (the cache's own topics when omitted). */
  async refresh(topics: string[] = [...this.topics.keys()], allowAutoTopicCreation = false): Promise<void> {
    if (topics.length === 0) {
      await this.fetchMetadata([], false);
      return;
    }
    await this.fetchMetadata(topics, false, allowAutoTopicCreation);
  }

  /**
   * The cached topic, fetching metadata when it is not cached. Throws UNKNOWN_TOPIC_OR_PARTITION
   * (retriable) when the cluster does not know it, and the topic's error otherwise.
   */
  async topic(name: string, allowAutoTopicCreation = false): Promise<TopicInfo> {
    let info = this.topics.get(name);
    if (info === undefined || info.errorCode !== 'NONE' || info.partitions.length === 0) {
      await this.fetchMetadata([name], false, allowAutoTopicCreation);
      info = this.topics.get(name);
    }
    if (info === undefined) throw new KavkaError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${name} is not in the metadata`);
    if (info.errorCode !== 'NONE') throw new KavkaError(info.errorCode, `topic ${name}: ${info.errorMessage || info.errorCode}`);
    if (info.partitions.length === 0) throw new KavkaError('LEADER_NOT_AVAILABLE', `topic ${name} has no partitions yet`);
    return info;
  }

  cachedTopic(name: string): TopicInfo | undefined {
    return this.topics.get(name);
  }

  /** The leader's node id and address; LEADER_NOT_AVAILABLE (retriable) when there is none. */
  leaderFor(topic: string, partition: number): { nodeId: number; address: string } {
    const info = this.topics.get(topic);
    const p = info?.partitions.find((x) => x.partition === partition);
    if (info === undefined || p === undefined) throw new KavkaError('UNKNOWN_TOPIC_OR_PARTITION', `${topic}-${partition} is not in the metadata`);
    if (p.leader < 0) throw new KavkaError('LEADER_NOT_AVAILABLE', `${topic}-${partition} has no leader`);
    const broker = this.brokers.get(p.leader);
    if (broker === undefined) throw new KavkaError('LEADER_NOT_AVAILABLE', `${topic}-${partition} is led by node ${p.leader}, which is not in the broker list`);
    return { nodeId: p.leader, address: broker.address };
  }

  brokerAddress(nodeId: number): string | undefined {
    return this.brokers.get(nodeId)?.address;
  }

  /** Any broker to send a cluster-wide request to (the controller when known). */
  async anyBrokerAddress(): Promise<string> {
    if (this.brokers.size === 0) await this.fetchMetadata([], false);
    const controller = this.brokers.get(this.controllerId);
    if (controller !== undefined) return controller.address;
    const first = this.candidateAddresses()[0];
    if (first === undefined) throw new KavkaError('BROKER_NOT_AVAILABLE', 'no broker is known');
    return first;
  }

  /** Forgets a topic (after it was deleted). */
  forget(topic: string): void {
    const next = new Map(this.topics);
    next.delete(topic);
    this.topics = next;
  }

  describe(): { clusterId: string; controllerId: number; brokers: BrokerAddress[] } {
    return { clusterId: this.clusterId, controllerId: this.controllerId, brokers: [...this.brokers.values()].sort((a, b) => a.nodeId - b.nodeId) };
  }
}
