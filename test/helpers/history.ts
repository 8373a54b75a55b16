// Cluster helpers for the history checker of src/chaos/history.ts (which the test files import
// through here): reading an in-process test cluster back (readFromLeader, compareReplicaLogs,
// waitConverged, readBack), and raw produce through a plain gRPC client (rawProduce).
import type { FetchResponse__Output } from '../../src/gen/kavka/v1/FetchResponse.js';
import type { FetchPartitionResponse__Output } from '../../src/gen/kavka/v1/FetchPartitionResponse.js';
import type { MetadataResponse__Output } from '../../src/gen/kavka/v1/MetadataResponse.js';
import type { ProduceResponse__Output } from '../../src/gen/kavka/v1/ProduceResponse.js';
import type { KavkaClient } from '../../src/gen/kavka/v1/Kavka.js';
import * as grpc from '@grpc/grpc-js';
import { checkHistory, classifyProduceError, compareReplicas, decodeRecords, DEFINITE_FAILURES, partitionKey, unary, type Acks, type History, type Observation, type ProduceOp, type ReadRecord, type Violation } from '../../src/chaos/history.js';
import type { TestCluster } from './cluster.js';

export * from '../../src/chaos/history.js';

export interface RawProduceResult {
  op: ProduceOp;
  /** With NOT_LEADER_OR_FOLLOWER: the leader the node named (-1 when none). */
  leaderHint?: number;
}

/**
 * One Produce of plain records through a raw gRPC client, recorded with a precise outcome: the
 * request is sent once and never retried, so its answer says exactly what happened to it.
 */
export async function rawProduce(history: History, producer: string, client: KavkaClient, topic: string, partition: number, values: string[], acks: Acks, timeoutMs: number, node?: number): Promise<RawProduceResult> {
  const op = history.invoke(producer, topic, partition, values, acks, node);
  const answer = await unary<ProduceResponse__Output>(
    client,
    'Produce',
    { acks, timeoutMs, topics: [{ name: topic, partitions: [{ partition, records: values.map((v) => ({ value: Buffer.from(v) })) }] }] },
    timeoutMs + 2_000,
  );
  if (!answer.ok) {
    // The request may have reached the broker and been appended before the call failed.
    const reason = answer.reason ?? grpc.status[answer.code];
    if (answer.reason !== undefined && DEFINITE_FAILURES.has(answer.reason)) history.fail(op, `${reason}: ${answer.details}`);
    else history.unknown(op, `${reason}: ${answer.details}`);
    return { op };
  }
  const p = answer.value.topics[0]?.partitions[0];
  if (p === undefined) {
    history.unknown(op, 'the response names no partition');
    return { op };
  }
  if (p.errorCode === 'NONE') {
    if (acks === 0) history.unknown(op, 'acks=0');
    else history.ok(op, BigInt(p.baseOffset));
    return { op };
  }
  const error = `${p.errorCode}: ${p.errorMessage}`;
  if (classifyProduceError(p.errorCode, p.errorMessage) === 'failed') history.fail(op, error);
  else history.unknown(op, error);
  return { op, ...(p.errorCode === 'NOT_LEADER_OR_FOLLOWER' && p.currentLeader !== null ? { leaderHint: p.currentLeader.leaderId } : {}) };
}

/** The partition's leader as node `via` sees it (-1 when none). */
export async function leaderOf(cluster: TestCluster, via: number, topic: string, partition: number): Promise<{ leader: number; leaderEpoch: number; isr: number[]; replicas: number[] }> {
  const answer = await unary<MetadataResponse__Output>(cluster.raw(via), 'Metadata', { topics: [topic] }, 5_000);
  if (!answer.ok) throw new Error(`Metadata from node ${via}: ${answer.details}`);
  const p = answer.value.topics.find((t) => t.name === topic)?.partitions.find((x) => x.partition === partition);
  if (p === undefined) throw new Error(`node ${via} does not know ${partitionKey(topic, partition)}`);
  return { leader: p.leaderId, leaderEpoch: p.leaderEpoch, isr: [...p.isr], replicas: [...p.replicas] };
}

async function fetchOnce(cluster: TestCluster, node: number, topic: string, partition: number, fetchOffset: bigint): Promise<FetchPartitionResponse__Output> {
  const answer = await unary<FetchResponse__Output>(
    cluster.raw(node),
    'Fetch',
    { maxWaitMs: 0, minBytes: 0, maxBytes: 4 << 20, topics: [{ name: topic, partitions: [{ partition, fetchOffset: fetchOffset.toString(), partitionMaxBytes: 4 << 20 }] }] },
    10_000,
  );
  if (!answer.ok) throw new Error(`Fetch from node ${node}: ${answer.details}`);
  const p = answer.value.topics[0]?.partitions[0];
  if (p === undefined) throw new Error(`Fetch from node ${node} names no partition`);
  return p;
}

/**
 * One consumer Fetch from `node` at `fetchOffset`, recorded as an observation (not final) of the
 * records it returned: below that node's high watermark, contiguous from the fetch offset.
 * Returns the offset to read next, or undefined when the node refused (not the leader, down).
 */
export async function observeFetch(cluster: TestCluster, history: History, node: number, topic: string, partition: number, fetchOffset: bigint): Promise<bigint | undefined> {
  let answer: FetchPartitionResponse__Output;
  try {
    answer = await fetchOnce(cluster, node, topic, partition, fetchOffset);
  } catch {
    return undefined;
  }
  if (answer.errorCode !== 'NONE') return undefined;
  const highWatermark = BigInt(answer.highWatermark);
  const records = decodeRecords(answer.batches, fetchOffset, highWatermark);
  if (records.length === 0) return fetchOffset;
  const to = records[records.length - 1].offset + 1n;
  history.observe({ source: `fetch from node ${node}`, topic, partition, from: fetchOffset, to, records, final: false });
  return to;
}

/**
 * Reads the whole partition below the high watermark from the node `via` names as leader and
 * records it as a final observation. The leader must answer; call it once the cluster settled.
 */
export async function readFromLeader(cluster: TestCluster, history: History, via: number, topic: string, partition: number): Promise<Observation> {
  const { leader } = await leaderOf(cluster, via, topic, partition);
  if (leader < 0) throw new Error(`${partitionKey(topic, partition)} has no leader (per node ${via})`);
  let first = await fetchOnce(cluster, leader, topic, partition, 0n);
  if (first.errorCode === 'OFFSET_OUT_OF_RANGE') first = await fetchOnce(cluster, leader, topic, partition, BigInt(first.logStartOffset));
  if (first.errorCode !== 'NONE') throw new Error(`Fetch of ${partitionKey(topic, partition)} from leader ${leader}: ${first.errorCode} ${first.errorMessage}`);
  const from = BigInt(first.logStartOffset);
  const highWatermark = BigInt(first.highWatermark);
  const records: ReadRecord[] = [];
  let offset = from;
  let answer = first;
  for (let i = 0; offset < highWatermark; i++) {
    if (i > 0) answer = await fetchOnce(cluster, leader, topic, partition, offset);
    if (answer.errorCode !== 'NONE') throw new Error(`Fetch of ${partitionKey(topic, partition)} at ${offset} from leader ${leader}: ${answer.errorCode} ${answer.errorMessage}`);
    const got = decodeRecords(answer.batches, offset, highWatermark);
    if (got.length === 0 || i > 100_000) throw new Error(`Fetch of ${partitionKey(topic, partition)} from leader ${leader} returned nothing at ${offset} below the high watermark ${highWatermark}`);
    records.push(...got);
    offset = got[got.length - 1].offset + 1n;
  }
  return history.observe({ source: `leader ${leader} (final read)`, topic, partition, from, to: highWatermark, records, final: true });
}

/** Every batch of one replica's log in [from, to), concatenated, read through its PartitionLog. */
async function replicaBytes(cluster: TestCluster, node: number, topic: string, partition: number, from: bigint, to: bigint): Promise<Buffer> {
  const log = cluster.broker(node).logManager.getLog({ topic, partition });
  if (log === undefined) throw new Error(`node ${node} has no log for ${partitionKey(topic, partition)}`);
  const parts: Buffer[] = [];
  let offset = from;
  for (let i = 0; offset < to; i++) {
    const read = await log.read(offset, 4 << 20, { maxOffset: to, minOneBatch: true });
    if (read.batches.length === 0 || i > 100_000) break;
    parts.push(read.batches);
    offset = read.nextOffset;
  }
  return Buffer.concat(parts);
}

export interface ReplicaState {
  node: number;
  logStartOffset: bigint;
  logEndOffset: bigint;
  /** As the node itself knows it (a follower learns it from its leader's fetch answers). */
  highWatermark: bigint;
}

/** Each running replica's log bounds and high watermark (from a Fetch to it: a follower's refusal carries its own HW). */
export async function replicaStates(cluster: TestCluster, topic: string, partition: number, replicas: readonly number[]): Promise<ReplicaState[]> {
  const states: ReplicaState[] = [];
  for (const node of replicas) {
    if (!cluster.runningIds().includes(node)) continue;
    const log = cluster.broker(node).logManager.getLog({ topic, partition });
    if (log === undefined) continue;
    const answer = await fetchOnce(cluster, node, topic, partition, log.logStartOffset);
    states.push({ node, logStartOffset: log.logStartOffset, logEndOffset: log.logEndOffset, highWatermark: BigInt(answer.highWatermark) });
  }
  return states;
}

/** compareReplicas over the running replicas of a test cluster, read through their PartitionLogs. */
export async function compareReplicaLogs(cluster: TestCluster, history: History, topic: string, partition: number, replicas: readonly number[]): Promise<Violation[]> {
  const states = await replicaStates(cluster, topic, partition, replicas);
  return compareReplicas(
    history,
    topic,
    partition,
    states.map((s) => ({ ...s, read: (from: bigint, to: bigint) => replicaBytes(cluster, s.node, topic, partition, from, to) })),
  );
}


/**
 * Waits until the partition has a leader every running node agrees on, its ISR is every replica,
 * and every replica's log end and high watermark equal the leader's log end (nothing in flight).
 */
export async function waitConverged(cluster: TestCluster, topic: string, partition: number, timeoutMs: number): Promise<{ leader: number; replicas: number[] }> {
  return cluster.waitFor(
    async () => {
      const running = cluster.runningIds();
      const views = await Promise.all(running.map((id) => leaderOf(cluster, id, topic, partition)));
      const [view] = views;
      if (view.leader < 0 || views.some((v) => v.leader !== view.leader || v.leaderEpoch !== view.leaderEpoch)) return undefined;
      if ([...view.isr].sort().join() !== [...view.replicas].sort().join()) return undefined;
      if (view.replicas.some((id) => !running.includes(id))) return undefined;
      const states = await replicaStates(cluster, topic, partition, view.replicas);
      const end = states.find((s) => s.node === view.leader)?.logEndOffset;
      if (states.length !== view.replicas.length || end === undefined || states.some((s) => s.logEndOffset !== end || s.highWatermark !== end)) return undefined;
      return { leader: view.leader, replicas: view.replicas };
    },
    timeoutMs,
    `${partitionKey(topic, partition)} to converge: one leader, full ISR, every replica's log end and HW at the leader's log end`,
  );
}

/**
 * After a run, per partition of `topic`: converge, read it from its leader and compare the
 * replicas' bytes (both recorded as final observations). Returns the replicas-differ violations;
 * run checkHistory once every topic is read back.
 */
export async function readBack(cluster: TestCluster, history: History, topic: string, partitions: number, timeoutMs: number): Promise<Violation[]> {
  const violations: Violation[] = [];
  for (let p = 0; p < partitions; p++) {
    const { leader, replicas } = await waitConverged(cluster, topic, p, timeoutMs);
    await readFromLeader(cluster, history, leader, topic, p);
    violations.push(...(await compareReplicaLogs(cluster, history, topic, p, replicas)));
  }
  return violations;
}

/** readBack of one topic, then the whole history's check. */
export async function checkPartitions(cluster: TestCluster, history: History, topic: string, partitions: number, timeoutMs: number): Promise<Violation[]> {
  const violations = await readBack(cluster, history, topic, partitions, timeoutMs);
  return [...violations, ...checkHistory(history)];
}
