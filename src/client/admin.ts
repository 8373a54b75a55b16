// The kafkajs-shaped admin client: topics, partitions, configs, offsets, cluster description and
// the controller quorum (KIP-595 DescribeQuorum, KIP-853 AddRaftVoter / RemoveRaftVoter).
// Cluster-wide requests go to the controller when known (any broker forwards otherwise); each
// is retried on retriable errors after a metadata refresh.
import { ERROR_CODES, KavkaError, type ErrorName } from '../util/errors.js';
import type { Cluster, MetadataSnapshot, TopicInfo } from './cluster.js';
import { errorNameOf } from './cluster.js';
import { listOffsets, listOffsetsDetailed, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP } from './offsets.js';
import { withRetry } from './retry.js';
import type { ConnectionPool, KavkaRpc } from './rpc.js';
import type { CreatableTopic } from '../gen/kavka/v1/CreatableTopic.js';
import type { QuorumReplicaState__Output } from '../gen/kavka/v1/QuorumReplicaState.js';
import type {
  AlterConfigResource,
  ClientLogger,
  ClusterDescription,
  ConfigResourceType,
  DescribeConfigResource,
  DescribeConfigResponse,
  ITopicConfig,
  PartitionOffsets,
  RetryOptions,
  TopicMetadata,
} from './types.js';
import { ConfigResourceTypes } from './types.js';

export interface AdminDependencies {
  cluster: Cluster;
  rpc: KavkaRpc;
  pool: ConnectionPool;
  random: () => number;
  sleep: (ms: number) => Promise<void>;
  retry: RetryOptions;
  logger: ClientLogger | undefined;
}

/** One member of the metadata quorum as the active controller sees it. */
export interface QuorumReplicaState {
  replicaId: number;
  /** The last metadata log offset the leader knows this replica holds; "-1" when unknown. */
  logEndOffset: string;
  /** How many entries it is behind the leader's log end. */
  lag: string;
  /** Its Raft store's directory id (KIP-853); "" when unknown. */
  directoryId: string;
  /** Its store was re-created after its data was deleted: it does not vote until it is added back. */
  rejoining: boolean;
}

/**
 * The controller quorum (Kafka's QuorumInfo). Offsets are decimal strings, as everywhere in
 * this client; the epoch is a number, as partition leader epochs are.
 */
export interface QuorumInfo {
  leaderId: number;
  /** The Raft term of the active controller. */
  leaderEpoch: number;
  /** The committed offset of the metadata log. */
  highWatermark: string;
  voters: QuorumReplicaState[];
  /** Broker-only nodes that follow the metadata log without voting. */
  observers: QuorumReplicaState[];
}


function toReplicaState(replica: QuorumReplicaState__Output): QuorumReplicaState {
  return { replicaId: replica.replicaId, logEndOffset: replica.logEndOffset, lag: replica.lag, directoryId: replica.directoryId, rejoining: replica.rejoining };
}

function voterIdOrThrow(voterId: number): number {
  if (!Number.isInteger(voterId) || voterId < 0 || voterId > 0x7fffffff) {
    throw new KavkaError('INVALID_REQUEST', `voter id must be a non-negative 32-bit integer, got ${voterId}`, { retriable: false });
  }
  return voterId;
}

const RESOURCE_TYPE_NAMES: Record<ConfigResourceType, 'TOPIC' | 'BROKER'> = { 2: 'TOPIC', 4: 'BROKER' };

function resourceTypeNumber(name: string): ConfigResourceType {
  return name === 'BROKER' ? ConfigResourceTypes.BROKER : ConfigResourceTypes.TOPIC;
}

/**
 * A per-resource error of an admin answer. An unknown topic is final here (the request named
 * it), while in the producer and consumer it is retriable (metadata may lag a creation).
 */
function resultError(code: ErrorName, what: string, message: string): KavkaError {
  const options = code === 'UNKNOWN_TOPIC_OR_PARTITION' ? { retriable: false } : {};
  return new KavkaError(code, `${what}: ${message || code}`, options);
}

function toPartitionMetadata(topic: TopicInfo): TopicMetadata {
  return {
    name: topic.name,
    isInternal: topic.isInternal,
    partitions: topic.partitions.map((p) => ({
      partitionErrorCode: ERROR_CODES[p.errorCode],
      partitionId: p.partition,
      leader: p.leader,
      leaderEpoch: p.leaderEpoch,
      replicas: p.replicas,
      isr: p.isr,
      offlineReplicas: p.offlineReplicas,
    })),
  };
}

export class Admin {
  constructor(private readonly deps: AdminDependencies) {}

  async connect(): Promise<void> {
    await this.deps.cluster.connect();
  }

  async disconnect(): Promise<void> {
    this.deps.pool.close();
  }

  private retrying<T>(operation: () => Promise<T>): Promise<T> {
    return withRetry(operation, {
      options: this.deps.retry,
      random: this.deps.random,
      sleep: this.deps.sleep,
      beforeRetry: () => this.deps.cluster.refresh([]),
    });
  }

  /**
   * Creates topics. Resolves true when all were created, false when one already existed (as
   * kafkajs); any other per-topic error is thrown. With waitForLeaders (the default) it waits
   * until every new partition has a leader.
   */
  async createTopics(options: { topics: ITopicConfig[]; validateOnly?: boolean; waitForLeaders?: boolean; timeoutMs?: number }): Promise<boolean> {
    const topics: CreatableTopic[] = options.topics.map((t) => {
      const configs: Record<string, string> = {};
      for (const entry of t.configEntries ?? []) configs[entry.name] = entry.value;
      const creatable: CreatableTopic = {
        name: t.topic,
        configs,
        assignments: (t.replicaAssignment ?? []).map((a) => ({ partition: a.partition, brokerIds: a.replicas })),
      };
      if (t.numPartitions !== undefined && t.numPartitions !== -1) creatable.numPartitions = t.numPartitions;
      if (t.replicationFactor !== undefined && t.replicationFactor !== -1) creatable.replicationFactor = t.replicationFactor;
      return creatable;
    });
    const allCreated = await this.retrying(async () => {
      const response = await this.deps.rpc.createTopics(await this.deps.cluster.anyBrokerAddress(), { topics, validateOnly: options.validateOnly ?? false }, options.timeoutMs);
      let created = true;
      for (const result of response.topics) {
        const code = errorNameOf(result.errorCode);
        if (code === 'TOPIC_ALREADY_EXISTS') created = false;
        else if (code !== 'NONE') throw resultError(code, `create topic ${result.name}`, result.errorMessage);
      }
      return created;
    });
    if (!options.validateOnly && (options.waitForLeaders ?? true)) await this.waitForLeaders(topics.map((t) => t.name as string), options.timeoutMs ?? 30_000);
    return allCreated;
  }

  private async waitForLeaders(names: string[], timeoutMs: number): Promise<void> {
    const deadlineAttempts = Math.max(1, Math.ceil(timeoutMs / 50));
    for (let attempt = 0; attempt < deadlineAttempts; attempt++) {
      const snapshot = await this.deps.cluster.fetchMetadata(names, false);
      const ready = names.every((name) => {
        const topic = snapshot.topics.find((t) => t.name === name);
        return topic !== undefined && topic.errorCode === 'NONE' && topic.partitions.length > 0 && topic.partitions.every((p) => p.leader >= 0);
      });
      if (ready) return;
      await this.deps.sleep(50);
    }
    throw new KavkaError('LEADER_NOT_AVAILABLE', `topics ${names.join(', ')} have partitions without a leader after ${timeoutMs} ms`);
  }

  async deleteTopics(options: { topics: string[]; timeoutMs?: number }): Promise<void> {
    await this.retrying(async () => {
      const response = await this.deps.rpc.deleteTopics(await this.deps.cluster.anyBrokerAddress(), { names: options.topics }, options.timeoutMs);
      for (const result of response.topics) {
        const code = errorNameOf(result.errorCode);
        if (code !== 'NONE') throw resultError(code, `delete topic ${result.name}`, result.errorMessage);
        this.deps.cluster.forget(result.name);
      }
    });
  }

  async createPartitions(options: { topicPartitions: { topic: string; count: number; assignments?: number[][] }[]; validateOnly?: boolean; timeoutMs?: number }): Promise<boolean> {
    const topics = options.topicPartitions.map((tp) => ({
      name: tp.topic,
      count: tp.count,
      assignments: (tp.assignments ?? []).map((brokerIds, i) => ({ partition: i, brokerIds })),
    }));
    await this.retrying(async () => {
      const response = await this.deps.rpc.createPartitions(await this.deps.cluster.anyBrokerAddress(), { topics, validateOnly: options.validateOnly ?? false }, options.timeoutMs);
      for (const result of response.topics) {
        const code = errorNameOf(result.errorCode);
        if (code !== 'NONE') throw resultError(code, `create partitions for ${result.name}`, result.errorMessage);
      }
    });
    return true;
  }

  /** Fresh metadata of one topic; an unknown topic fails at once (not retried). */
  private async topicOrThrow(name: string): Promise<TopicInfo> {
    const snapshot = await this.deps.cluster.fetchMetadata([name], false);
    const topic = snapshot.topics.find((t) => t.name === name);
    if (topic === undefined) throw resultError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${name}`, 'not in the metadata');
    if (topic.errorCode !== 'NONE') throw resultError(topic.errorCode, `topic ${name}`, topic.errorMessage);
    return topic;
  }

  async listTopics(): Promise<string[]> {
    const snapshot = await this.retrying(() => this.deps.cluster.fetchMetadata([], true));
    return snapshot.topics.map((t) => t.name);
  }

  /** Metadata of the given topics (every topic when omitted). Unknown topics throw. */
  async fetchTopicMetadata(options: { topics?: string[] } = {}): Promise<{ topics: TopicMetadata[] }> {
    const snapshot = await this.fetchMetadataSnapshot(options.topics);
    for (const topic of snapshot.topics) {
      if (topic.errorCode !== 'NONE') throw resultError(topic.errorCode, `topic ${topic.name}`, topic.errorMessage);
    }
    return { topics: snapshot.topics.map(toPartitionMetadata) };
  }

  /** The raw metadata answer (brokers, controller, topics with errors), for tools such as kcat -L. */
  fetchMetadataSnapshot(topics?: string[]): Promise<MetadataSnapshot> {
    const all = topics === undefined || topics.length === 0;
    return this.retrying(() => this.deps.cluster.fetchMetadata(all ? [] : topics, all));
  }

  async describeCluster(): Promise<ClusterDescription> {
    const snapshot = await this.retrying(() => this.deps.cluster.fetchMetadata([], false));
    return {
      clusterId: snapshot.clusterId,
      controller: snapshot.controllerId,
      answeringNodeId: snapshot.answeringNodeId,
      brokers: snapshot.brokers.map((b) => ({ nodeId: b.nodeId, host: b.host, port: b.port, rack: b.rack })),
    };
  }

  /** Per partition: the high watermark (as `offset` and `high`) and the log start (`low`). */
  async fetchTopicOffsets(topic: string): Promise<PartitionOffsets[]> {
    return this.retrying(async () => {
      const info = await this.topicOrThrow(topic);
      const partitions = info.partitions.map((p) => p.partition);
      const [low, high] = await Promise.all([
        listOffsets(this.deps.cluster, this.deps.rpc, partitions.map((partition) => ({ topic, partition, timestamp: EARLIEST_TIMESTAMP }))),
        listOffsets(this.deps.cluster, this.deps.rpc, partitions.map((partition) => ({ topic, partition, timestamp: LATEST_TIMESTAMP }))),
      ]);
      return partitions.map((partition) => {
        const key = `${topic}\u0000${partition}`;
        const highOffset = (high.get(key)?.offset ?? -1n).toString();
        return { partition, offset: highOffset, high: highOffset, low: (low.get(key)?.offset ?? -1n).toString() };
      });
    });
  }

  /**
   * Per partition, the first offset whose record timestamp is >= `timestamp`; the high
   * watermark where there is none (as kafkajs). Without a timestamp: the high watermark.
   */
  async fetchTopicOffsetsByTimestamp(topic: string, timestamp?: number): Promise<{ partition: number; offset: string }[]> {
    return this.retrying(async () => {
      const info = await this.topicOrThrow(topic);
      const partitions = info.partitions.map((p) => p.partition);
      const query = timestamp === undefined ? LATEST_TIMESTAMP : BigInt(timestamp);
      const found = await listOffsets(this.deps.cluster, this.deps.rpc, partitions.map((partition) => ({ topic, partition, timestamp: query })));
      const missing = partitions.filter((partition) => (found.get(`${topic}\u0000${partition}`)?.offset ?? -1n) < 0n);
      const ends = missing.length > 0 ? await listOffsets(this.deps.cluster, this.deps.rpc, missing.map((partition) => ({ topic, partition, timestamp: LATEST_TIMESTAMP }))) : new Map();
      return partitions.map((partition) => {
        const key = `${topic}\u0000${partition}`;
        const offset = found.get(key)?.offset ?? -1n;
        return { partition, offset: (offset >= 0n ? offset : (ends.get(key)?.offset ?? -1n)).toString() };
      });
    });
  }

  /**
   * The raw answer of ListOffsets for topic:partition:timestamp triples (kcat -Q): offset -1
   * where no record is that new; a partition's error is returned beside it, not thrown.
   */
  async queryOffsets(queries: { topic: string; partition: number; timestamp: bigint }[]): Promise<{ topic: string; partition: number; offset: string; timestamp: string; error?: KavkaError }[]> {
    // A partition asked about twice (two timestamps) goes in separate requests: answers are
    // keyed by partition.
    const rounds: (typeof queries)[] = [];
    const roundOf = queries.map((q) => {
      const round = rounds.findIndex((r) => !r.some((x) => x.topic === q.topic && x.partition === q.partition));
      const index = round >= 0 ? round : rounds.push([]) - 1;
      rounds[index].push(q);
      return index;
    });
    const answers = await this.retrying(() => Promise.all(rounds.map((round) => listOffsetsDetailed(this.deps.cluster, this.deps.rpc, round))));
    return queries.map((q, i) => {
      const outcome = answers[roundOf[i]].get(`${q.topic}\u0000${q.partition}`);
      if (outcome === undefined || 'error' in outcome) return { topic: q.topic, partition: q.partition, offset: '-1', timestamp: '-1', error: outcome?.error };
      return { topic: q.topic, partition: q.partition, offset: outcome.offset.toString(), timestamp: outcome.timestamp.toString() };
    });
  }

  async describeConfigs(options: { resources: DescribeConfigResource[]; includeSynonyms?: boolean }): Promise<DescribeConfigResponse> {
    const request = { resources: options.resources.map((r) => ({ type: RESOURCE_TYPE_NAMES[r.type], name: r.name, keys: r.configNames ?? [] })) };
    const response = await this.retrying(async () => {
      const answer = await this.deps.rpc.describeConfigs(await this.deps.cluster.anyBrokerAddress(), request);
      for (const result of answer.results) {
        const code = errorNameOf(result.errorCode);
        if (code !== 'NONE') throw resultError(code, `describe configs of ${result.name}`, result.errorMessage);
      }
      return answer;
    });
    const resources = response.results.map((result) => {
      return {
        errorCode: 0,
        errorMessage: result.errorMessage,
        resourceName: result.name,
        resourceType: resourceTypeNumber(result.type),
        configEntries: result.entries.map((e) => ({
          configName: e.name,
          configValue: e.value ?? null,
          readOnly: e.readOnly,
          isDefault: e.isDefault,
          configSource: e.source,
          isSensitive: e.isSensitive,
        })),
      };
    });
    return { resources, throttleTime: 0 };
  }

  /** Incremental: each entry SETs its value, or DELETEs the key (reverting to the default). */
  async alterConfigs(options: { resources: AlterConfigResource[]; validateOnly?: boolean }): Promise<void> {
    const request = {
      validateOnly: options.validateOnly ?? false,
      resources: options.resources.map((r) => ({
        type: RESOURCE_TYPE_NAMES[r.type],
        name: r.name,
        configs: r.configEntries.map((e) => {
          const op = e.operation ?? (e.value === undefined ? 'DELETE' : 'SET');
          if (op === 'SET' && e.value === undefined) throw new KavkaError('INVALID_CONFIG', `config ${e.name} of ${r.name}: SET needs a value`, { retriable: false });
          return op === 'SET' ? { name: e.name, op, value: e.value } : { name: e.name, op };
        }),
      })),
    };
    await this.retrying(async () => {
      const response = await this.deps.rpc.alterConfigs(await this.deps.cluster.anyBrokerAddress(), request);
      for (const result of response.results) {
        const code = errorNameOf(result.errorCode);
        if (code !== 'NONE') throw resultError(code, `alter configs of ${result.name}`, result.errorMessage);
      }
    });
  }

  /**
   * The controller quorum: leader, epoch, high watermark, and how far each voter and observer
   * has replicated the metadata log. Any broker answers (it asks the active controller).
   */
  async describeQuorum(options: { timeoutMs?: number } = {}): Promise<QuorumInfo> {
    const response = await this.retrying(async () => {
      return this.deps.rpc.describeQuorum(await this.deps.cluster.anyBrokerAddress(), options.timeoutMs);
    });
    return {
      leaderId: response.leaderId,
      leaderEpoch: Number(response.leaderEpoch),
      highWatermark: response.highWatermark,
      voters: response.voters.map(toReplicaState),
      observers: response.observers.map(toReplicaState),
    };
  }

  /**
   * Makes a node a controller voter (KIP-853), once it follows the metadata log as an observer;
   * otherwise INVALID_REQUEST. Resolves once the new configuration is committed. A retry after
   * a lost answer may fail with "already a voter".
   */
  async addRaftVoter(voterId: number, options: { timeoutMs?: number } = {}): Promise<void> {
    const request = { voterId: voterIdOrThrow(voterId) };
    await this.retrying(async () => {
      await this.deps.rpc.addRaftVoter(await this.deps.cluster.anyBrokerAddress(), request.voterId, options.timeoutMs);
    });
  }

  /**
   * Removes a controller voter (KIP-853); a node still registered stays an observer. The last
   * voter cannot be removed (INVALID_REQUEST).
   */
  async removeRaftVoter(voterId: number, options: { timeoutMs?: number } = {}): Promise<void> {
    const request = { voterId: voterIdOrThrow(voterId) };
    await this.retrying(async () => {
      await this.deps.rpc.removeRaftVoter(await this.deps.cluster.anyBrokerAddress(), request.voterId, options.timeoutMs);
    });
  }
}
