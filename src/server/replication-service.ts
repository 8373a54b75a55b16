// kavka.v1.Replication (proto/kavka/v1/replication.proto) both ways: the leader's handler for
// ReplicaFetch, served on the inter-broker listener, and the follower's client (the transport of
// the replica fetchers). Both only convert between protobuf and the replication layer's types;
// the protocol lives in src/replication.
import * as grpc from '@grpc/grpc-js';
import { KavkaError, isErrorName } from '../util/errors.js';
import { fromServiceError, loadReplicationGrpc } from '../proto/index.js';
import type { ReplicaFetchPartitionResult, ReplicaFetchRequest } from '../replication/index.js';
import type { ReplicationHandlers } from '../gen/kavka/v1/Replication.js';
import type { ReplicaFetchRequest__Output } from '../gen/kavka/v1/ReplicaFetchRequest.js';
import type { ReplicaFetchResponse, ReplicaFetchResponse__Output } from '../gen/kavka/v1/ReplicaFetchResponse.js';
import type { ReplicationClient as GrpcReplicationClient } from '../gen/kavka/v1/Replication.js';
import type { ServerContext } from './context.js';
import { unary } from './request-guard.js';

/** Slack over a fetch's long-poll before the follower gives up on the leader's answer. */
const FETCH_DEADLINE_SLACK_MS = 10_000;

export function replicationDefinition(): grpc.ServiceDefinition {
  return loadReplicationGrpc().kavka.v1.Replication.service;
}

export function replicationHandlers(context: ServerContext): ReplicationHandlers {
  return {
    ReplicaFetch: unary(context.logger, 'Replication.ReplicaFetch', async (req: ReplicaFetchRequest__Output, call) => {
      if (req.clusterId !== context.config.clusterId) {
        throw new KavkaError('INCONSISTENT_CLUSTER_ID', `broker ${req.replicaId} belongs to cluster ${req.clusterId}, this one to ${context.config.clusterId}`);
      }
      const abort = new AbortController();
      call.on('cancelled', () => abort.abort());
      const maxWaitMs = Math.min(Math.max(0, req.maxWaitMs), context.config.get('fetch.max.wait.ms.limit'));
      const results = await context.replicaManager.replicaFetch(
        {
          replicaId: req.replicaId,
          maxWaitMs,
          minBytes: req.minBytes,
          maxBytes: Math.min(Math.max(0, req.maxBytes), context.config.get('fetch.max.bytes')),
          partitions: req.partitions.map((p) => ({
            topicPartition: { topic: p.topic, partition: p.partition },
            topicId: p.topicId,
            currentLeaderEpoch: p.currentLeaderEpoch,
            fetchOffset: BigInt(p.fetchOffset),
            lastFetchedEpoch: p.lastFetchedEpoch,
            logStartOffset: BigInt(p.logStartOffset),
            maxBytes: Math.max(0, p.partitionMaxBytes),
          })),
        },
        abort.signal,
      );
      return toResponse(results);
    }),
  };
}

function toResponse(results: ReplicaFetchPartitionResult[]): ReplicaFetchResponse {
  return {
    partitions: results.map((r) => ({
      topic: r.topicPartition.topic,
      partition: r.topicPartition.partition,
      errorCode: r.errorCode,
      errorMessage: r.errorMessage,
      highWatermark: r.highWatermark.toString(),
      logStartOffset: r.logStartOffset.toString(),
      batches: r.batches,
      ...(r.divergingEpoch === undefined ? {} : { divergingEpoch: { epoch: r.divergingEpoch.epoch, endOffset: r.divergingEpoch.endOffset.toString() } }),
    })),
  };
}

export interface ReplicationClientOptions {
  clusterId: string;
  /** host:port of a broker's inter-broker listener (after peer.address.overrides). */
  addressOf: (nodeId: number) => string | undefined;
}

/** The follower's side: one grpc-js client per leader address. */
export class ReplicationClient {
  private readonly clients = new Map<string, GrpcReplicationClient>();
  private readonly grpcPackage = loadReplicationGrpc();

  constructor(private readonly options: ReplicationClientOptions) {}

  fetch(leaderId: number, request: ReplicaFetchRequest, signal: AbortSignal): Promise<ReplicaFetchPartitionResult[]> {
    const address = this.options.addressOf(leaderId);
    if (address === undefined) return Promise.reject(new KavkaError('BROKER_NOT_AVAILABLE', `no address known for broker ${leaderId}`));
    const client = this.client(address);
    return new Promise((resolve, reject) => {
      const call = client.ReplicaFetch(
        {
          clusterId: this.options.clusterId,
          replicaId: request.replicaId,
          maxWaitMs: request.maxWaitMs,
          minBytes: request.minBytes,
          maxBytes: request.maxBytes,
          partitions: request.partitions.map((p) => ({
            topic: p.topicPartition.topic,
            topicId: p.topicId,
            partition: p.topicPartition.partition,
            currentLeaderEpoch: p.currentLeaderEpoch,
            fetchOffset: p.fetchOffset.toString(),
            lastFetchedEpoch: p.lastFetchedEpoch,
            logStartOffset: p.logStartOffset.toString(),
            partitionMaxBytes: p.maxBytes,
          })),
        },
        { deadline: Date.now() + request.maxWaitMs + FETCH_DEADLINE_SLACK_MS },
        (error: grpc.ServiceError | null, response?: ReplicaFetchResponse__Output) => {
          signal.removeEventListener('abort', cancel);
          if (error !== null || response === undefined) reject(fromServiceError(error ?? new Error('empty response')));
          else resolve(fromResponse(response));
        },
      );
      const cancel = () => call.cancel();
      signal.addEventListener('abort', cancel, { once: true });
    });
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  private client(address: string): GrpcReplicationClient {
    let client = this.clients.get(address);
    if (client === undefined) {
      client = new this.grpcPackage.kavka.v1.Replication(address, grpc.credentials.createInsecure(), {
        'grpc.max_receive_message_length': 256 * 1024 * 1024,
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1000,
      });
      this.clients.set(address, client);
    }
    return client;
  }
}

function fromResponse(response: ReplicaFetchResponse__Output): ReplicaFetchPartitionResult[] {
  return response.partitions.map((p) => ({
    topicPartition: { topic: p.topic, partition: p.partition },
    errorCode: isErrorName(p.errorCode) ? p.errorCode : 'UNKNOWN_SERVER_ERROR',
    errorMessage: p.errorMessage,
    highWatermark: BigInt(p.highWatermark),
    logStartOffset: BigInt(p.logStartOffset),
    batches: p.batches,
    ...(p.divergingEpoch === null || p.divergingEpoch === undefined ? {} : { divergingEpoch: { epoch: p.divergingEpoch.epoch, endOffset: BigInt(p.divergingEpoch.endOffset) } }),
  }));
}
