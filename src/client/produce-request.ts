// One Produce request of the producer, both ways: the batches taken for a broker become a
// ProduceRequest (per topic, per partition, the partition's encoded batches back to back), and
// the ProduceResponse becomes one outcome per partition: its batches appended at consecutive
// offsets, or an error for all of them.
//
// Plain functions: no I/O and no state of their own. The Producer hands in encode (which stamps
// an idempotent batch with its sequence on first use) and applies the outcomes.
import { KavkaError } from '../util/errors.js';
import type { BatchResult, ProducerBatch } from './accumulator.js';
import { errorNameOf } from './cluster.js';
import { partitionKey } from './idempotence.js';
import type { ProduceRequest } from '../gen/kavka/v1/ProduceRequest.js';
import type { ProduceResponse__Output } from '../gen/kavka/v1/ProduceResponse.js';

/** Per topic, per partition, the batches of one request in queue order. */
export type BatchesByPartition = Map<string, Map<number, ProducerBatch[]>>;

type PartitionResponse = ProduceResponse__Output['topics'][number]['partitions'][number];

/** What the broker did with the batches of one partition of a request. */
export type PartitionOutcome =
  | { kind: 'failed'; error: KavkaError }
  | { kind: 'appended'; results: { batch: ProducerBatch; result: BatchResult }[] };

/** Groups the batches per topic and partition, keeping their order; timeoutMs is the largest of theirs. */
export function groupByPartition(batches: ProducerBatch[]): { byTopic: BatchesByPartition; timeoutMs: number } {
  const byTopic: BatchesByPartition = new Map();
  let timeoutMs = 0;
  for (const batch of batches) {
    let partitions = byTopic.get(batch.topic);
    if (partitions === undefined) {
      partitions = new Map();
      byTopic.set(batch.topic, partitions);
    }
    const list = partitions.get(batch.partition);
    if (list === undefined) partitions.set(batch.partition, [batch]);
    else list.push(batch);
    timeoutMs = Math.max(timeoutMs, batch.settings.timeoutMs);
  }
  return { byTopic, timeoutMs };
}

/** The request for grouped batches; each partition's batches go back to back, encoded by `encode` in order. */
export function buildProduceRequest(byTopic: BatchesByPartition, acks: number, timeoutMs: number, encode: (batch: ProducerBatch) => Buffer): Omit<ProduceRequest, 'correlationId'> {
  const topics = [...byTopic].map(([name, partitions]) => ({
    name,
    partitions: [...partitions].map(([partition, list]) => ({
      partition,
      batches: list.length === 1 ? encode(list[0]) : Buffer.concat(list.map((b) => encode(b))),
    })),
  }));
  return { acks, timeoutMs, topics };
}

/** The response's partition results by partitionKey. */
export function resultsByPartition(response: ProduceResponse__Output): Map<string, PartitionResponse> {
  const results = new Map<string, PartitionResponse>();
  for (const topic of response.topics) {
    for (const p of topic.partitions) results.set(partitionKey(topic.name, p.partition), p);
  }
  return results;
}

/** The outcome for `list`, the batches sent for topic-partition, given its result (undefined: none in the response). */
export function partitionOutcome(topic: string, partition: number, list: ProducerBatch[], result: PartitionResponse | undefined): PartitionOutcome {
  const code = result === undefined ? 'UNKNOWN_SERVER_ERROR' : errorNameOf(result.errorCode);
  // A duplicate answered with offsets is a success: the broker has these batches there.
  const duplicateWithOffsets = code === 'DUPLICATE_SEQUENCE_NUMBER' && result !== undefined && BigInt(result.baseOffset) >= 0n;
  if (result === undefined || (code !== 'NONE' && !duplicateWithOffsets)) {
    const message = result === undefined ? `produce response has no result for ${topic}-${partition}` : `${topic}-${partition}: ${result.errorMessage || code}`;
    return { kind: 'failed', error: new KavkaError(code, message, result === undefined ? { retriable: false } : {}) };
  }
  // The broker appended the batches at consecutive offsets from base_offset.
  let baseOffset = BigInt(result.baseOffset);
  const results: { batch: ProducerBatch; result: BatchResult }[] = [];
  for (const batch of list) {
    results.push({ batch, result: { baseOffset, logAppendTime: BigInt(result.logAppendTime), logStartOffset: BigInt(result.logStartOffset) } });
    if (baseOffset >= 0n) baseOffset += BigInt(batch.recordCount);
  }
  return { kind: 'appended', results };
}
