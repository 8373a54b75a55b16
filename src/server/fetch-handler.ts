// Fetch and FetchStream adapters: clamp the client's limits to the broker's, long-poll through
// the replica manager, and shape the reply (raw batches, or decoded records for clients that
// ask for `plain_records`).
import type * as grpc from '@grpc/grpc-js';
import { KavkaError, toKavkaError } from '../util/errors.js';
import { decodeRecordBatch, effectiveTimestamp, isControl, scanBatches, timestampTypeOf } from '../codec/index.js';
import type { FetchPartitionRequest, FetchPartitionResult } from '../replication/index.js';
import type { FetchRequest__Output } from '../gen/kavka/v1/FetchRequest.js';
import type { FetchResponse } from '../gen/kavka/v1/FetchResponse.js';
import type { FetchPartitionResponse } from '../gen/kavka/v1/FetchPartitionResponse.js';
import type { ConsumedRecord } from '../gen/kavka/v1/ConsumedRecord.js';
import type { ServerContext } from './context.js';
import { answerError, checkDecoded } from './request-guard.js';
import { failStream, shuttingDownError, type StreamRegistry } from './stream-registry.js';
import { toServiceError } from '../proto/index.js';

/** Kafka's max.partition.fetch.bytes default, used when a request gives 0. */
export const DEFAULT_PARTITION_FETCH_BYTES = 1_048_576;
/** A FetchStream re-polls at least this often, so a cancelled stream is noticed. */
const STREAM_POLL_MAX_WAIT_MS = 1_000;

interface FetchPlan {
  requests: FetchPartitionRequest[];
  maxBytes: number;
  minBytes: number;
  maxWaitMs: number;
  plainRecords: boolean;
}

export class FetchHandler {
  constructor(
    private readonly context: ServerContext,
    private readonly streams: StreamRegistry,
  ) {}

  async fetchOnce(request: FetchRequest__Output, call: grpc.ServerUnaryCall<FetchRequest__Output, FetchResponse>): Promise<FetchResponse> {
    const plan = this.plan(request);
    const abort = new AbortController();
    call.on('cancelled', () => abort.abort());
    // On shutdown a long-poll answers at once with what it has.
    const unregister = this.streams.add(() => abort.abort());
    try {
      const results = await this.context.replicaManager.fetch(plan.requests, { ...plan, signal: abort.signal });
      return this.toResponse(results, plan);
    } finally {
      unregister();
    }
  }

  /** Follows the log: sends each non-empty read, advancing offsets, until cancelled or an error. */
  fetchStream(call: grpc.ServerWritableStream<FetchRequest__Output, FetchResponse>): void {
    const abort = new AbortController();
    let shuttingDown = false;
    const unregister = this.streams.add(() => {
      shuttingDown = true;
      abort.abort();
    });
    call.on('cancelled', () => abort.abort());
    call.on('error', () => abort.abort());
    const run = async () => {
      checkDecoded(call.request);
      const plan = this.plan(call.request);
      const maxWaitMs = Math.min(Math.max(plan.maxWaitMs, 1), STREAM_POLL_MAX_WAIT_MS);
      while (!abort.signal.aborted) {
        const results = await this.context.replicaManager.fetch(plan.requests, { ...plan, minBytes: Math.max(1, plan.minBytes), maxWaitMs, signal: abort.signal });
        if (abort.signal.aborted) break;
        const failed = results.some((r) => r.errorCode !== 'NONE');
        if (failed || results.some((r) => r.batches.length > 0)) {
          const writable = call.write(this.toResponse(results, plan));
          if (!writable) await new Promise<void>((resolve) => call.once('drain', resolve));
        }
        if (failed) break;
        for (const [i, r] of results.entries()) plan.requests[i].fetchOffset = r.nextFetchOffset;
      }
      if (shuttingDown) failStream(call, toServiceError(shuttingDownError(this.context.nodeId)));
      else call.end();
    };
    run()
      .catch((error: unknown) => {
        if (!abort.signal.aborted || shuttingDown) failStream(call, answerError(error, this.context.logger, 'FetchStream'));
      })
      .finally(unregister);
  }

  private plan(request: FetchRequest__Output): FetchPlan {
    const { config } = this.context;
    const brokerMax = config.get('fetch.max.bytes');
    // An absurd max_bytes is clamped, never refused; the first batch is returned whole anyway.
    const maxBytes = request.maxBytes <= 0 ? brokerMax : Math.min(request.maxBytes, brokerMax);
    const maxWaitMs = Math.min(Math.max(0, request.maxWaitMs), config.get('fetch.max.wait.ms.limit'));
    if (request.topics.length === 0) throw new KavkaError('INVALID_REQUEST', 'the fetch request names no topic partitions');
    const requests: FetchPartitionRequest[] = [];
    for (const topic of request.topics) {
      for (const p of topic.partitions) {
        const partitionMax = p.partitionMaxBytes <= 0 ? DEFAULT_PARTITION_FETCH_BYTES : p.partitionMaxBytes;
        requests.push({ topicPartition: { topic: topic.name, partition: p.partition }, fetchOffset: BigInt(p.fetchOffset), maxBytes: Math.min(partitionMax, maxBytes) });
      }
    }
    return { requests, maxBytes, minBytes: Math.max(0, request.minBytes), maxWaitMs, plainRecords: request.plainRecords };
  }

  private toResponse(results: FetchPartitionResult[], plan: FetchPlan): FetchResponse {
    const { metrics } = this.context;
    const byTopic = new Map<string, FetchPartitionResponse[]>();
    results.forEach((r, i) => {
      const topic = r.topicPartition.topic;
      metrics.fetchRequests.inc({ topic });
      if (r.errorCode !== 'NONE') metrics.errors.inc({ method: 'Fetch', code: r.errorCode });
      metrics.fetchBytes.inc({ topic }, r.batches.length);
      let partition: FetchPartitionResponse = {
        partition: r.topicPartition.partition,
        errorCode: r.errorCode,
        errorMessage: r.errorMessage,
        highWatermark: r.highWatermark.toString(),
        logStartOffset: r.logStartOffset.toString(),
        lastStableOffset: r.highWatermark.toString(),
        nextFetchOffset: r.nextFetchOffset.toString(),
      };
      if (plan.plainRecords) partition = { ...partition, records: this.decode(r.batches, plan.requests[i].fetchOffset, partition) };
      else partition.batches = r.batches;
      const list = byTopic.get(topic) ?? [];
      list.push(partition);
      byTopic.set(topic, list);
    });
    return { topics: [...byTopic].map(([name, partitions]) => ({ name, partitions })) };
  }

  /** Decodes batches into records at or above the fetch offset; a decoding failure becomes the partition's error. */
  private decode(batches: Buffer, fetchOffset: bigint, partition: FetchPartitionResponse): ConsumedRecord[] {
    const records: ConsumedRecord[] = [];
    try {
      for (const { position, size, header } of scanBatches(batches, { verifyCrc: false }).batches) {
        if (isControl(header.attributes)) continue;
        const { records: decoded } = decodeRecordBatch(batches.subarray(position, position + size));
        const timestampType = timestampTypeOf(header.attributes) === 'LogAppendTime' ? 'LOG_APPEND_TIME' : 'CREATE_TIME';
        for (const record of decoded) {
          if (record.offset < fetchOffset) continue;
          records.push({
            offset: record.offset.toString(),
            timestamp: effectiveTimestamp(header, record).toString(),
            timestampType,
            key: record.key ?? undefined,
            value: record.value ?? undefined,
            headers: record.headers.map((h) => ({ key: h.key, value: h.value ?? undefined })),
            leaderEpoch: header.partitionLeaderEpoch,
          });
        }
      }
    } catch (error) {
      const e = toKavkaError(error);
      partition.errorCode = e.code;
      partition.errorMessage = e.message;
    }
    return records;
  }
}
