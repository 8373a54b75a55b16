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
      return this.toResponse(results, plan).response;
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
        const { response, partitions } = this.toResponse(results, plan);
        const failed = partitions.some((p) => p.errorCode !== 'NONE');
        if (failed || partitions.some((p) => (p.batches?.length ?? 0) > 0 || (p.records?.length ?? 0) > 0)) {
          const writable = call.write(response);
          if (!writable) await drainedOrAborted(call, abort.signal);
        }
        if (failed) break;
        partitions.forEach((p, i) => (plan.requests[i].fetchOffset = BigInt(p.nextFetchOffset as string)));
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

  /** The response, and its partitions in request order. */
  private toResponse(results: FetchPartitionResult[], plan: FetchPlan): { response: FetchResponse; partitions: FetchPartitionResponse[] } {
    const { metrics } = this.context;
    const byTopic = new Map<string, FetchPartitionResponse[]>();
    const inOrder: FetchPartitionResponse[] = [];
    // Decoded records are larger than their batches; they share the response's byte budget.
    const budget = { remainingBytes: plan.maxBytes };
    results.forEach((r, i) => {
      const topic = r.topicPartition.topic;
      if (r.errorCode === 'NONE') {
        // Counted only for partitions that exist, so a client cannot mint metric series.
        metrics.fetchRequests.inc({ topic });
        metrics.fetchBytes.inc({ topic }, r.batches.length);
      } else {
        metrics.errors.inc({ method: 'Fetch', code: r.errorCode });
      }
      const partition: FetchPartitionResponse = {
        partition: r.topicPartition.partition,
        errorCode: r.errorCode,
        errorMessage: r.errorMessage,
        highWatermark: r.highWatermark.toString(),
        logStartOffset: r.logStartOffset.toString(),
        lastStableOffset: r.highWatermark.toString(),
        nextFetchOffset: r.nextFetchOffset.toString(),
        ...(r.currentLeader === undefined ? {} : { currentLeader: r.currentLeader }),
      };
      if (plan.plainRecords) {
        const decoded = decodeForClient(r.batches, plan.requests[i].fetchOffset, budget);
        partition.records = decoded.records;
        if (decoded.nextFetchOffset !== undefined) partition.nextFetchOffset = decoded.nextFetchOffset.toString();
        if (decoded.error !== undefined && decoded.records.length === 0) {
          partition.errorCode = decoded.error.code;
          partition.errorMessage = decoded.error.message;
        }
      } else {
        partition.batches = r.batches;
      }
      const list = byTopic.get(topic) ?? [];
      list.push(partition);
      byTopic.set(topic, list);
      inOrder.push(partition);
    });
    return { response: { topics: [...byTopic].map(([name, partitions]) => ({ name, partitions })) }, partitions: inOrder };
  }
}

/** Resolves when a paused stream can take more, or when the call ends. */
function drainedOrAborted(call: grpc.ServerWritableStream<FetchRequest__Output, FetchResponse>, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      call.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    call.on('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Rough bytes a decoded record takes in a response: its payload plus field framing. */
function decodedSize(record: { key: Buffer | null; value: Buffer | null; headers: { key: string; value: Buffer | null }[] }): number {
  let size = 48 + (record.key?.length ?? 0) + (record.value?.length ?? 0);
  for (const h of record.headers) size += 8 + h.key.length + (h.value?.length ?? 0);
  return size;
}

/**
 * Decodes batches into records at or above the fetch offset, within the byte budget (always at
 * least one record). Stops at the first batch that does not decode: records before it are
 * returned and the next fetch starts at that batch, so its error is reported, never skipped.
 * `nextFetchOffset` is set when the decoding stopped before the end of the batches.
 */
export function decodeForClient(
  batches: Buffer,
  fetchOffset: bigint,
  budget: { remainingBytes: number },
): { records: ConsumedRecord[]; nextFetchOffset: bigint | undefined; error: KavkaError | undefined } {
  const records: ConsumedRecord[] = [];
  for (const { position, size, header } of scanBatches(batches, { verifyCrc: false }).batches) {
    if (isControl(header.attributes)) continue;
    let decoded;
    try {
      decoded = decodeRecordBatch(batches.subarray(position, position + size)).records;
    } catch (error) {
      const stopAt = header.baseOffset > fetchOffset ? header.baseOffset : fetchOffset;
      return { records, nextFetchOffset: stopAt, error: toKavkaError(error, 'CORRUPT_MESSAGE') };
    }
    const timestampType = timestampTypeOf(header.attributes) === 'LogAppendTime' ? 'LOG_APPEND_TIME' : 'CREATE_TIME';
    for (const record of decoded) {
      if (record.offset < fetchOffset) continue;
      const cost = decodedSize(record);
      if (records.length > 0 && cost > budget.remainingBytes) return { records, nextFetchOffset: record.offset, error: undefined };
      budget.remainingBytes -= cost;
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
  return { records, nextFetchOffset: undefined, error: undefined };
}
