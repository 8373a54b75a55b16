// The controller's decisions about topics, as pure functions: each takes a request and the
// current image and returns the records to commit plus the per-topic response. Nothing here
// writes anything; the caller commits the records and replays them into the next image.
import { KavkaError, type ErrorName } from '../util/errors.js';
import { isTopicConfigKey, validateTopicConfig } from './topic-config.js';
import type { MetadataImage } from './metadata-image.js';
import type { MetadataRecord, PartitionRecord } from './metadata-records.js';
import { collisionKey, validateTopicName } from './topic-name.js';

/** Bound on partitions per topic, so one request cannot create millions of files. */
export const MAX_PARTITIONS_PER_TOPIC = 10_000;

export interface TopicResult {
  name: string;
  errorCode: ErrorName;
  errorMessage: string;
}

export interface CreateTopicRequest {
  name: string;
  numPartitions?: number;
  replicationFactor?: number;
  configs: Record<string, string>;
  /** partition -> broker ids; when given, numPartitions and replicationFactor must be absent. */
  assignments: Map<number, number[]>;
}

export interface CreatedTopicResult extends TopicResult {
  numPartitions: number;
  replicationFactor: number;
}

export interface PlacementContext {
  defaultPartitions: number;
  defaultReplicationFactor: number;
  /** Brokers able to take replicas now (registered and unfenced), ascending. */
  liveBrokers: readonly number[];
  /**
   * Rack of each live broker. When every live broker has one, placement spreads each
   * partition's replicas across racks; otherwise it is plain round-robin.
   */
  brokerRacks?: ReadonlyMap<number, string | undefined>;
  /** Index to start round-robin placement at (random in production, fixed in tests). */
  startIndex: number;
  newTopicId: () => string;
}

export interface ControllerResult<R> {
  records: MetadataRecord[];
  results: R[];
}

function ok(name: string): TopicResult {
  return { name, errorCode: 'NONE', errorMessage: '' };
}

function failed(name: string, error: unknown): TopicResult {
  if (error instanceof KavkaError) return { name, errorCode: error.code, errorMessage: error.message };
  throw error;
}

/** Round-robin placement: partition p's replicas start at broker (start + p) and wrap. */
export function placeReplicas(numPartitions: number, replicationFactor: number, brokers: readonly number[], startIndex: number, firstPartition = 0): number[][] {
  const placement: number[][] = [];
  for (let p = firstPartition; p < firstPartition + numPartitions; p++) {
    const replicas: number[] = [];
    for (let r = 0; r < replicationFactor; r++) replicas.push(brokers[(startIndex + p + r) % brokers.length]);
    placement.push(replicas);
  }
  return placement;
}

/**
 * Kafka's rack-alternating broker order: racks in name order, and round i takes the i-th broker
 * of each rack that has one, so neighbours in the list sit on different racks while they can.
 */
export function rackAlternatingOrder(brokers: readonly number[], racks: ReadonlyMap<number, string | undefined>): number[] {
  const byRack = new Map<string, number[]>();
  for (const broker of brokers) {
    const rack = racks.get(broker) ?? '';
    byRack.set(rack, [...(byRack.get(rack) ?? []), broker]);
  }
  const groups = [...byRack.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, ids]) => ids);
  const order: number[] = [];
  for (let round = 0; order.length < brokers.length; round++) {
    for (const group of groups) if (round < group.length) order.push(group[round]);
  }
  return order;
}

/**
 * Rack-aware placement: partition p's first replica is the (start + p)-th broker of the
 * rack-alternating order; following replicas walk the order, skipping racks that already hold
 * a replica until every rack holds one, then take any broker not yet used. Each partition
 * therefore spans min(replicationFactor, racks) racks. (Kafka's AdminUtils also shifts followers
 * every full round; Kavka does not, as its round-robin placement does not.)
 */
export function placeReplicasRackAware(
  numPartitions: number,
  replicationFactor: number,
  brokers: readonly number[],
  racks: ReadonlyMap<number, string | undefined>,
  startIndex: number,
  firstPartition = 0,
): number[][] {
  const order = rackAlternatingOrder(brokers, racks);
  const rackOf = (broker: number) => racks.get(broker) ?? '';
  const rackCount = new Set(order.map(rackOf)).size;
  const placement: number[][] = [];
  for (let p = firstPartition; p < firstPartition + numPartitions; p++) {
    const first = (startIndex + p) % order.length;
    const replicas = [order[first]];
    const usedRacks = new Set([rackOf(order[first])]);
    for (const spreadRacks of [true, false]) {
      for (let k = 1; k < order.length && replicas.length < replicationFactor; k++) {
        const broker = order[(first + k) % order.length];
        if (replicas.includes(broker)) continue;
        if (spreadRacks && usedRacks.size < rackCount && usedRacks.has(rackOf(broker))) continue;
        replicas.push(broker);
        usedRacks.add(rackOf(broker));
      }
    }
    placement.push(replicas);
  }
  return placement;
}

function place(context: PlacementContext, numPartitions: number, replicationFactor: number, firstPartition: number): number[][] {
  const racks = context.brokerRacks;
  const everyBrokerHasRack = racks !== undefined && context.liveBrokers.every((b) => racks.get(b) !== undefined);
  if (everyBrokerHasRack) return placeReplicasRackAware(numPartitions, replicationFactor, context.liveBrokers, racks, context.startIndex, firstPartition);
  return placeReplicas(numPartitions, replicationFactor, context.liveBrokers, context.startIndex, firstPartition);
}

/** The brokers placement may use: registered and unfenced, ascending, with their racks. */
export function placementBrokers(image: MetadataImage): { liveBrokers: number[]; brokerRacks: Map<number, string | undefined> } {
  const liveBrokers = image.unfencedBrokerIds();
  return { liveBrokers, brokerRacks: new Map(liveBrokers.map((id) => [id, image.brokers.get(id)?.rack])) };
}

function checkPartitionCount(count: number, what: string): void {
  if (!Number.isInteger(count) || count <= 0) throw new KavkaError('INVALID_PARTITIONS', `${what} must be at least 1 (got ${count})`);
  if (count > MAX_PARTITIONS_PER_TOPIC) throw new KavkaError('INVALID_PARTITIONS', `${what} ${count} is above the limit of ${MAX_PARTITIONS_PER_TOPIC} per topic`);
}

function checkReplicationFactor(factor: number, liveBrokers: readonly number[]): void {
  if (!Number.isInteger(factor) || factor <= 0) throw new KavkaError('INVALID_REPLICATION_FACTOR', `replication factor must be at least 1 (got ${factor})`);
  if (factor > liveBrokers.length) {
    throw new KavkaError('INVALID_REPLICATION_FACTOR', `replication factor ${factor} is larger than the ${liveBrokers.length} available broker(s); lower it or start more brokers`);
  }
}

function checkAssignments(assignments: Map<number, number[]>, firstPartition: number, liveBrokers: readonly number[]): number[][] {
  const placement: number[][] = [];
  const width = assignments.get(firstPartition)?.length;
  for (let p = firstPartition; p < firstPartition + assignments.size; p++) {
    const replicas = assignments.get(p);
    if (replicas === undefined) throw new KavkaError('INVALID_REPLICA_ASSIGNMENT', `replica assignment skips partition ${p}; partitions must be numbered ${firstPartition}..${firstPartition + assignments.size - 1}`);
    if (replicas.length === 0) throw new KavkaError('INVALID_REPLICA_ASSIGNMENT', `partition ${p} has no replicas`);
    if (replicas.length !== width) throw new KavkaError('INVALID_REPLICA_ASSIGNMENT', `partition ${p} has ${replicas.length} replicas, others have ${width}; every partition needs the same count`);
    if (new Set(replicas).size !== replicas.length) throw new KavkaError('INVALID_REPLICA_ASSIGNMENT', `partition ${p} names a broker twice: ${replicas.join(',')}`);
    for (const broker of replicas) {
      if (!liveBrokers.includes(broker)) throw new KavkaError('INVALID_REPLICA_ASSIGNMENT', `partition ${p} names broker ${broker}, which is not an available broker (${liveBrokers.join(',')})`);
    }
    placement.push(replicas);
  }
  return placement;
}

function partitionRecords(topic: string, placement: number[][], firstPartition: number): PartitionRecord[] {
  // A new partition's ISR is all its replicas: they are all empty, so all in sync.
  return placement.map((replicas, i) => ({
    type: 'Partition',
    topic,
    partition: firstPartition + i,
    replicas,
    isr: [...replicas],
    leader: replicas[0],
    leaderEpoch: 0,
    partitionEpoch: 0,
  }));
}

export function createTopics(requests: CreateTopicRequest[], image: MetadataImage, context: PlacementContext): ControllerResult<CreatedTopicResult> {
  const records: MetadataRecord[] = [];
  const results: CreatedTopicResult[] = [];
  const taken = new Map<string, string>([...image.topics.keys()].map((name) => [collisionKey(name), name]));
  const seen = new Set<string>();
  for (const request of requests) {
    let numPartitions = request.numPartitions ?? context.defaultPartitions;
    let replicationFactor = request.replicationFactor ?? context.defaultReplicationFactor;
    try {
      if (seen.has(request.name)) throw new KavkaError('INVALID_REQUEST', `topic ${request.name} appears twice in one request`);
      seen.add(request.name);
      validateTopicName(request.name);
      if (image.topic(request.name) !== undefined) throw new KavkaError('TOPIC_ALREADY_EXISTS', `topic ${request.name} already exists`);
      const collides = taken.get(collisionKey(request.name));
      if (collides !== undefined) {
        throw new KavkaError('INVALID_TOPIC_EXCEPTION', `topic ${request.name} collides with existing topic ${collides}: names that differ only in '.' and '_' are not allowed`);
      }
      let placement: number[][];
      if (request.assignments.size > 0) {
        if (request.numPartitions !== undefined || request.replicationFactor !== undefined) {
          throw new KavkaError('INVALID_REQUEST', 'give either a replica assignment or partitions and replication factor, not both');
        }
        placement = checkAssignments(request.assignments, 0, context.liveBrokers);
        numPartitions = placement.length;
        replicationFactor = placement[0].length;
        checkPartitionCount(numPartitions, 'partition count');
      } else {
        checkPartitionCount(numPartitions, 'partition count');
        checkReplicationFactor(replicationFactor, context.liveBrokers);
        placement = place(context, numPartitions, replicationFactor, 0);
      }
      const configs: Record<string, string> = {};
      for (const [key, value] of Object.entries(request.configs)) configs[key] = validateTopicConfig(key, value);
      taken.set(collisionKey(request.name), request.name);
      records.push({ type: 'Topic', name: request.name, topicId: context.newTopicId(), configs });
      records.push(...partitionRecords(request.name, placement, 0));
      results.push({ ...ok(request.name), numPartitions, replicationFactor });
    } catch (error) {
      results.push({ ...failed(request.name, error), numPartitions, replicationFactor });
    }
  }
  return { records, results };
}

export function deleteTopics(names: string[], image: MetadataImage, deletionEnabled: boolean): ControllerResult<TopicResult> {
  const records: MetadataRecord[] = [];
  const results: TopicResult[] = [];
  const seen = new Set<string>();
  for (const name of names) {
    try {
      if (!deletionEnabled) throw new KavkaError('TOPIC_DELETION_DISABLED', 'topic deletion is disabled on this cluster (delete.topic.enable=false)');
      if (image.topic(name) === undefined || seen.has(name)) throw new KavkaError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${name} does not exist`);
      seen.add(name);
      records.push({ type: 'RemoveTopic', name });
      results.push(ok(name));
    } catch (error) {
      results.push(failed(name, error));
    }
  }
  return { records, results };
}

export interface CreatePartitionsRequest {
  name: string;
  count: number;
  assignments: Map<number, number[]>;
}

export function createPartitions(requests: CreatePartitionsRequest[], image: MetadataImage, context: PlacementContext): ControllerResult<TopicResult> {
  const records: MetadataRecord[] = [];
  const results: TopicResult[] = [];
  const seen = new Set<string>();
  for (const request of requests) {
    try {
      if (seen.has(request.name)) throw new KavkaError('INVALID_REQUEST', `topic ${request.name} appears twice in one request`);
      seen.add(request.name);
      const topic = image.topic(request.name);
      if (topic === undefined) throw new KavkaError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${request.name} does not exist`);
      const current = topic.partitions.length;
      checkPartitionCount(request.count, 'partition count');
      if (request.count <= current) {
        throw new KavkaError('INVALID_PARTITIONS', `topic ${request.name} has ${current} partitions; the new count must be larger (partitions are never removed)`);
      }
      const added = request.count - current;
      let placement: number[][];
      if (request.assignments.size > 0) {
        if (request.assignments.size !== added) throw new KavkaError('INVALID_REPLICA_ASSIGNMENT', `assignment gives ${request.assignments.size} partitions but ${added} are being added`);
        placement = checkAssignments(request.assignments, current, context.liveBrokers);
      } else {
        const factor = topic.partitions[0]?.replicas.length ?? context.defaultReplicationFactor;
        checkReplicationFactor(factor, context.liveBrokers);
        placement = place(context, added, factor, current);
      }
      records.push(...partitionRecords(request.name, placement, current));
      results.push(ok(request.name));
    } catch (error) {
      results.push(failed(request.name, error));
    }
  }
  return { records, results };
}

export interface AlterTopicConfigRequest {
  name: string;
  changes: { key: string; value: string | null }[];
}

export function alterTopicConfigs(requests: AlterTopicConfigRequest[], image: MetadataImage): ControllerResult<TopicResult> {
  const records: MetadataRecord[] = [];
  const results: TopicResult[] = [];
  for (const request of requests) {
    try {
      if (image.topic(request.name) === undefined) throw new KavkaError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${request.name} does not exist`);
      const changes: Record<string, string | null> = {};
      for (const change of request.changes) {
        if (change.value === null) {
          if (!isTopicConfigKey(change.key)) throw new KavkaError('INVALID_CONFIG', `unknown topic config ${change.key}`);
          changes[change.key] = null;
        } else {
          changes[change.key] = validateTopicConfig(change.key, change.value);
        }
      }
      if (Object.keys(changes).length > 0) records.push({ type: 'Config', topic: request.name, changes });
      results.push(ok(request.name));
    } catch (error) {
      results.push(failed(request.name, error));
    }
  }
  return { records, results };
}
