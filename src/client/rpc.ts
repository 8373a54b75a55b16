// gRPC channels to brokers, one per (address, profile), and promise-returning unary calls whose
// failures come out as KavkaError (fromServiceError reads the google.rpc.ErrorInfo details).
//
// Consumers get their own channels: they set grpc-node.flow_control_window to 16 MiB, which is
// what lets server->client streams run at >1 GB/s (DESIGN.md section 9). Producers and admin
// calls share the default channels.
import * as grpc from '@grpc/grpc-js';
import { fromServiceError, loadKavkaGrpc } from '../proto/index.js';
import type { ProtoGrpcType } from '../gen/kavka.js';
import type { KavkaClient } from '../gen/kavka/v1/Kavka.js';
import type { MetadataRequest } from '../gen/kavka/v1/MetadataRequest.js';
import type { MetadataResponse__Output } from '../gen/kavka/v1/MetadataResponse.js';
import type { CreateTopicsRequest } from '../gen/kavka/v1/CreateTopicsRequest.js';
import type { CreateTopicsResponse__Output } from '../gen/kavka/v1/CreateTopicsResponse.js';
import type { DeleteTopicsRequest } from '../gen/kavka/v1/DeleteTopicsRequest.js';
import type { DeleteTopicsResponse__Output } from '../gen/kavka/v1/DeleteTopicsResponse.js';
import type { CreatePartitionsRequest } from '../gen/kavka/v1/CreatePartitionsRequest.js';
import type { CreatePartitionsResponse__Output } from '../gen/kavka/v1/CreatePartitionsResponse.js';
import type { DescribeConfigsRequest } from '../gen/kavka/v1/DescribeConfigsRequest.js';
import type { DescribeConfigsResponse__Output } from '../gen/kavka/v1/DescribeConfigsResponse.js';
import type { AlterConfigsRequest } from '../gen/kavka/v1/AlterConfigsRequest.js';
import type { AlterConfigsResponse__Output } from '../gen/kavka/v1/AlterConfigsResponse.js';
import type { ProduceRequest } from '../gen/kavka/v1/ProduceRequest.js';
import type { ProduceResponse__Output } from '../gen/kavka/v1/ProduceResponse.js';
import type { FetchRequest } from '../gen/kavka/v1/FetchRequest.js';
import type { FetchResponse__Output } from '../gen/kavka/v1/FetchResponse.js';
import type { ListOffsetsRequest } from '../gen/kavka/v1/ListOffsetsRequest.js';
import type { ListOffsetsResponse__Output } from '../gen/kavka/v1/ListOffsetsResponse.js';
import type { DescribeQuorumResponse__Output } from '../gen/kavka/v1/DescribeQuorumResponse.js';
import type { InitProducerIdRequest } from '../gen/kavka/v1/InitProducerIdRequest.js';
import type { InitProducerIdResponse__Output } from '../gen/kavka/v1/InitProducerIdResponse.js';

export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
export const CONSUMER_FLOW_CONTROL_WINDOW_BYTES = 16 * 1024 * 1024;

export type ChannelProfile = 'default' | 'consumer';

export function channelOptionsFor(profile: ChannelProfile, clientId: string): grpc.ChannelOptions {
  const options: grpc.ChannelOptions = {
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
    'grpc.primary_user_agent': `kavka-client/${clientId}`,
    'grpc.keepalive_time_ms': 30_000,
    // Kafka's reconnect.backoff.ms / reconnect.backoff.max.ms: grpc-js's defaults (1 s growing
    // to 120 s) would keep a restarted broker unreachable long after it is back, and calls on a
    // channel waiting to reconnect fail at once.
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': 1_000,
  };
  if (profile === 'consumer') options['grpc-node.flow_control_window'] = CONSUMER_FLOW_CONTROL_WINDOW_BYTES;
  return options;
}

/**
 * Owns the gRPC channels of one producer, consumer or admin (each has its own pool, as each
 * kafkajs client has its own connections); close() closes them all. Safe across awaits: a channel is created on first use and reused after.
 */
export class ConnectionPool {
  private readonly clients = new Map<string, KavkaClient>();
  private closed = false;

  constructor(
    private readonly clientId: string,
    private readonly grpcType: ProtoGrpcType = loadKavkaGrpc(),
  ) {}

  client(address: string, profile: ChannelProfile = 'default'): KavkaClient {
    const key = `${profile}|${address}`;
    let client = this.clients.get(key);
    if (client === undefined) {
      if (this.closed) throw new Error('the client is closed');
      client = new this.grpcType.kavka.v1.Kavka(address, grpc.credentials.createInsecure(), channelOptionsFor(profile, this.clientId));
      this.clients.set(key, client);
    }
    return client;
  }

  /** Closes the channels to one address, e.g. after the broker went away. */
  drop(address: string): void {
    for (const [key, client] of this.clients) {
      if (key.endsWith(`|${address}`)) {
        client.close();
        this.clients.delete(key);
      }
    }
  }

  close(): void {
    this.closed = true;
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}

function deadlineAfter(timeoutMs: number): Date {
  return new Date(Date.now() + timeoutMs);
}

type UnaryInvoker<Res> = (options: grpc.CallOptions, callback: grpc.requestCallback<Res>) => grpc.ClientUnaryCall;

/** Runs one unary call with a deadline; rejects with a KavkaError. */
export function callUnary<Res>(invoke: UnaryInvoker<Res>, timeoutMs: number): Promise<Res> {
  return new Promise<Res>((resolve, reject) => {
    invoke({ deadline: deadlineAfter(timeoutMs) }, (error, response) => {
      if (error !== null) reject(fromServiceError(error));
      else if (response === undefined) reject(fromServiceError(new Error('empty response')));
      else resolve(response);
    });
  });
}

/** Typed unary RPCs of kavka.v1.Kavka against one address. */
export class KavkaRpc {
  constructor(
    private readonly pool: ConnectionPool,
    private readonly requestTimeoutMs: number,
  ) {}

  metadata(address: string, request: MetadataRequest): Promise<MetadataResponse__Output> {
    const client = this.pool.client(address);
    return callUnary((options, cb) => client.Metadata(request, options, cb), this.requestTimeoutMs);
  }

  createTopics(address: string, request: CreateTopicsRequest, timeoutMs = this.requestTimeoutMs): Promise<CreateTopicsResponse__Output> {
    const client = this.pool.client(address);
    return callUnary((options, cb) => client.CreateTopics(request, options, cb), timeoutMs);
  }

  deleteTopics(address: string, request: DeleteTopicsRequest, timeoutMs = this.requestTimeoutMs): Promise<DeleteTopicsResponse__Output> {
    const client = this.pool.client(address);
    return callUnary((options, cb) => client.DeleteTopics(request, options, cb), timeoutMs);
  }

  createPartitions(address: string, request: CreatePartitionsRequest, timeoutMs = this.requestTimeoutMs): Promise<CreatePartitionsResponse__Output> {
    const client = this.pool.client(address);
    return callUnary((options, cb) => client.CreatePartitions(request, options, cb), timeoutMs);
  }

  describeConfigs(address: string, request: DescribeConfigsRequest): Promise<DescribeConfigsResponse__Output> {
    const client = this.pool.client(address);
    return callUnary((options, cb) => client.DescribeConfigs(request, options, cb), this.requestTimeoutMs);
  }

  alterConfigs(address: string, request: AlterConfigsRequest): Promise<AlterConfigsResponse__Output> {
    const client = this.pool.client(address);
    return callUnary((options, cb) => client.AlterConfigs(request, options, cb), this.requestTimeoutMs);
  }

  produce(address: string, request: ProduceRequest, timeoutMs: number): Promise<ProduceResponse__Output> {
    const client = this.pool.client(address);
    return callUnary((options, cb) => client.Produce(request, options, cb), timeoutMs);
  }

  /** Fetch is a long poll: the deadline is its max wait plus the request timeout. */
  fetch(address: string, request: FetchRequest): Promise<FetchResponse__Output> {
    const client = this.pool.client(address, 'consumer');
    const timeoutMs = (request.maxWaitMs ?? 0) + this.requestTimeoutMs;
    return callUnary((options, cb) => client.Fetch(request, options, cb), timeoutMs);
  }

  listOffsets(address: string, request: ListOffsetsRequest): Promise<ListOffsetsResponse__Output> {
    const client = this.pool.client(address);
    return callUnary((options, cb) => client.ListOffsets(request, options, cb), this.requestTimeoutMs);
  }

  /** A producer id and epoch for an idempotent producer, or the next epoch of a given one (KIP-360). */
  initProducerId(address: string, request: InitProducerIdRequest, timeoutMs = this.requestTimeoutMs): Promise<InitProducerIdResponse__Output> {
    const client = this.pool.client(address);
    return callUnary((options, cb) => client.InitProducerId(request, options, cb), timeoutMs);
  }

  describeQuorum(address: string, timeoutMs = this.requestTimeoutMs): Promise<DescribeQuorumResponse__Output> {
    const client = this.pool.client(address);
    return callUnary((options, cb) => client.DescribeQuorum({}, options, cb), timeoutMs);
  }

  addRaftVoter(address: string, voterId: number, timeoutMs = this.requestTimeoutMs): Promise<object> {
    const client = this.pool.client(address);
    return callUnary((options, cb) => client.AddRaftVoter({ voterId }, options, cb), timeoutMs);
  }

  removeRaftVoter(address: string, voterId: number, timeoutMs = this.requestTimeoutMs): Promise<object> {
    const client = this.pool.client(address);
    return callUnary((options, cb) => client.RemoveRaftVoter({ voterId }, options, cb), timeoutMs);
  }
}
