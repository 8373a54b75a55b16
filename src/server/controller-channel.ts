// The way a node talks to the active controller: kavka.v1.Controller calls over the controller
// listener (KIP-631 registration and heartbeats, AlterPartition, forwarded admin requests).
// The channel finds the active controller from this node's Raft view and follows NOT_CONTROLLER
// hints; while no controller is known, or one is unreachable, it backs off and tries again until
// the call's deadline, then fails with a retriable error. The active controller may be this node:
// the call then goes over the loopback like any other, so there is one code path.
//
// One grpc-js client per peer address, kept for the channel's life; close() closes them.
import * as grpc from '@grpc/grpc-js';
import { KavkaError } from '../util/errors.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { fromServiceError, loadControllerGrpc } from '../proto/index.js';

/** Response header with the metadata offset that holds a forwarded change. */
export const METADATA_OFFSET_HEADER = 'kavka-metadata-offset';

export type ControllerMethod =
  | 'RegisterBroker'
  | 'BrokerHeartbeat'
  | 'AlterPartition'
  | 'AllocateProducerIds'
  | 'CreateTopics'
  | 'DeleteTopics'
  | 'CreatePartitions'
  | 'AlterConfigs'
  | 'DescribeQuorum'
  | 'AddRaftVoter'
  | 'RemoveRaftVoter';

export interface ControllerChannelOptions {
  nodeId: number;
  /** This node's view of the active controller's id (-1 when unknown). */
  controllerId: () => number;
  /**
   * Voters to ask while no controller is known (a node not yet in the quorum, e.g. a broker-only
   * node before its registration makes it an observer); their NOT_CONTROLLER hints lead on.
   */
  voterIds: () => readonly number[];
  /** host:port of a node's controller listener, after peer.address.overrides. */
  addressOf: (nodeId: number) => string | undefined;
  clock: Clock;
  logger: Logger;
  /** Default bound on one call including its retries. */
  requestTimeoutMs: number;
}

export interface ControllerReply<Res> {
  response: Res;
  /** From the METADATA_OFFSET_HEADER response header, when the controller sent one. */
  metadataOffset: number | undefined;
}

const BACKOFF_MIN_MS = 25;
const BACKOFF_MAX_MS = 500;

export class ControllerChannel {
  private readonly service = loadControllerGrpc().kavka.v1.Controller.service;
  private readonly clients = new Map<string, grpc.Client>();
  private closed = false;

  constructor(private readonly options: ControllerChannelOptions) {}

  /**
   * Calls `method` on the active controller, retrying retriable failures until the deadline.
   * Non-retriable errors (a rejected request) are thrown at once.
   */
  async call<Res>(method: ControllerMethod, request: object, timeoutMs = this.options.requestTimeoutMs): Promise<ControllerReply<Res>> {
    const { clock } = this.options;
    const deadline = clock.monotonicMs() + timeoutMs;
    let backoff = BACKOFF_MIN_MS;
    let hint: number | undefined;
    let last: KavkaError | undefined;
    let probe = 0;
    for (;;) {
      if (this.closed) throw new KavkaError('BROKER_NOT_AVAILABLE', 'the node is shutting down');
      const known = this.options.controllerId();
      const voters = this.options.voterIds();
      const target = hint ?? (known >= 0 ? known : (voters[probe++ % Math.max(1, voters.length)] ?? -1));
      hint = undefined;
      const address = target >= 0 ? this.options.addressOf(target) : undefined;
      const remaining = deadline - clock.monotonicMs();
      if (address !== undefined && remaining > 0) {
        try {
          return await this.callOnce<Res>(address, method, request, remaining);
        } catch (error) {
          last = fromServiceError(error);
          if (!last.retriable) throw last;
          if (last.code === 'NOT_CONTROLLER' && last.leaderHint !== undefined && last.leaderHint !== target) {
            hint = last.leaderHint;
            continue;
          }
        }
      }
      const wait = Math.min(backoff, deadline - clock.monotonicMs());
      if (wait <= 0) {
        const why = last === undefined ? 'no active controller is known' : `${last.code}: ${last.message}`;
        throw new KavkaError(last?.code === 'NOT_CONTROLLER' || last === undefined ? 'NOT_CONTROLLER' : 'REQUEST_TIMED_OUT', `${method} to the controller did not complete within ${timeoutMs} ms (${why}); retry`, {
          retriable: true,
          cause: last,
        });
      }
      await new Promise<void>((resolve) => clock.schedule(wait, resolve));
      backoff = Math.min(BACKOFF_MAX_MS, backoff * 2);
    }
  }

  close(): void {
    this.closed = true;
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  private client(address: string): grpc.Client {
    let client = this.clients.get(address);
    if (client === undefined) {
      client = new grpc.Client(address, grpc.credentials.createInsecure(), {
        // Reconnect quickly after a controller restarts.
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1000,
      });
      this.clients.set(address, client);
    }
    return client;
  }

  private callOnce<Res>(address: string, method: ControllerMethod, request: object, timeoutMs: number): Promise<ControllerReply<Res>> {
    const definition = this.service[method] as unknown as grpc.MethodDefinition<object, Res>;
    const metadata = new grpc.Metadata();
    return new Promise((resolve, reject) => {
      let metadataOffset: number | undefined;
      const call = this.client(address).makeUnaryRequest(
        definition.path,
        definition.requestSerialize,
        definition.responseDeserialize,
        request,
        metadata,
        // Bound one attempt so an unreachable controller is retried elsewhere in time.
        { deadline: Date.now() + Math.min(timeoutMs, 5000) },
        (error, response) => {
          if (error !== null || response === undefined) reject(error ?? new Error('empty response'));
          else resolve({ response, metadataOffset });
        },
      );
      call.on('metadata', (md: grpc.Metadata) => {
        const value = md.get(METADATA_OFFSET_HEADER)[0];
        if (value !== undefined) metadataOffset = Number(value);
      });
    });
  }
}
