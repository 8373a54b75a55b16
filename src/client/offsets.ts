// ListOffsets against each partition's leader. Shared by the consumer (start positions) and the
// admin (fetchTopicOffsets, fetchTopicOffsetsByTimestamp).
import { KavkaError, toKavkaError } from '../util/errors.js';
import type { Cluster } from './cluster.js';
import { errorNameOf } from './cluster.js';
import type { KavkaRpc } from './rpc.js';

export const EARLIEST_TIMESTAMP = -2n;
export const LATEST_TIMESTAMP = -1n;

export interface OffsetQuery {
  topic: string;
  partition: number;
  /** -2 earliest, -1 latest, otherwise ms since the epoch. */
  timestamp: bigint;
}

export interface OffsetAnswer {
  /** -1 when no record has a timestamp >= the one asked for. */
  offset: bigint;
  timestamp: bigint;
}

export type OffsetOutcome = OffsetAnswer | { error: KavkaError };

/**
 * Asks each partition's leader; every query gets an answer or its own error (an unknown topic
 * or a leaderless partition included). Keys of the result are "topic\u0000partition".
 * A request-level failure (the broker unreachable) is thrown.
 */
export async function listOffsetsDetailed(cluster: Cluster, rpc: KavkaRpc, queries: OffsetQuery[]): Promise<Map<string, OffsetOutcome>> {
  const outcomes = new Map<string, OffsetOutcome>();
  const byLeader = new Map<string, Map<string, { partition: number; timestamp: string }[]>>();
  for (const q of queries) {
    const key = `${q.topic}\u0000${q.partition}`;
    try {
      if (cluster.cachedTopic(q.topic) === undefined) await cluster.topic(q.topic);
      const { address } = cluster.leaderFor(q.topic, q.partition);
      const topics = byLeader.get(address) ?? new Map<string, { partition: number; timestamp: string }[]>();
      const list = topics.get(q.topic) ?? [];
      list.push({ partition: q.partition, timestamp: q.timestamp.toString() });
      topics.set(q.topic, list);
      byLeader.set(address, topics);
    } catch (error) {
      outcomes.set(key, { error: toKavkaError(error) });
    }
  }
  await Promise.all(
    [...byLeader].map(async ([address, topics]) => {
      const response = await rpc.listOffsets(address, { topics: [...topics].map(([name, partitions]) => ({ name, partitions })) });
      for (const t of response.topics) {
        for (const p of t.partitions) {
          const code = errorNameOf(p.errorCode);
          const key = `${t.name}\u0000${p.partition}`;
          if (code !== 'NONE') outcomes.set(key, { error: new KavkaError(code, `list offsets for ${t.name}-${p.partition}: ${p.errorMessage || code}`) });
          else outcomes.set(key, { offset: BigInt(p.offset), timestamp: BigInt(p.timestamp) });
        }
      }
    }),
  );
  for (const q of queries) {
    const key = `${q.topic}\u0000${q.partition}`;
    if (!outcomes.has(key)) outcomes.set(key, { error: new KavkaError('UNKNOWN_SERVER_ERROR', `list offsets answered nothing for ${q.topic}-${q.partition}`, { retriable: false }) });
  }
  return outcomes;
}

/** Like listOffsetsDetailed, but throws the first partition error (retriable when it is). */
export async function listOffsets(cluster: Cluster, rpc: KavkaRpc, queries: OffsetQuery[]): Promise<Map<string, OffsetAnswer>> {
  const outcomes = await listOffsetsDetailed(cluster, rpc, queries);
  const answers = new Map<string, OffsetAnswer>();
  for (const [key, outcome] of outcomes) {
    if ('error' in outcome) throw outcome.error;
    answers.set(key, outcome);
  }
  return answers;
}
