// The kavka.v1.Raft gRPC service (proto/kavka/v1/raft.proto): the receiving side as a service
// definition plus handlers that a gRPC server adds (the broker's INTERNAL listener), and the
// sending side, GrpcRaftTransport, which keeps one long-lived `Send` client stream per peer.
//
// Sending, per peer (PeerLink):
//   idle --send--> open --stream fails--> backoff --timer--> open ...
//   A bounded queue holds messages not yet written to the stream. When it is full the oldest is
//   dropped and counted (Raft tolerates loss; newer messages carry newer commit and match
//   information, so the oldest are the least useful). Messages already written to a stream that
//   then fails are lost too; the core retries what matters (heartbeats, probes, elections).
//   Reconnects back off exponentially with jitter from reconnectBackoffMinMs to
//   reconnectBackoffMaxMs; the channel's own reconnect backoff is set to the same bounds.
//
// Receiving: every message is checked against the cluster id and this node's id and dropped
// (counted) if it was meant for another cluster or node or does not decode. Messages of one
// stream are handed to onMessage in arrival order, one at a time (onMessage must not block).
//
// Probe (unary): a node whose Raft store was just created asks each bootstrap peer whether the
// cluster already knows it (GrpcRaftTransport.probe), before it formats the store; the answer
// comes from the onProbe callback of the answering node (undefined: UNAVAILABLE, not ready).
//
// Who calls it: one RaftNode (send, listen, close) and the broker's gRPC server (handlers), all
// on the Node event loop; no method awaits except close().
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { RaftMessage, RaftMessage__Output } from '../gen/kavka/v1/RaftMessage.js';
import type { RaftSendSummary, RaftSendSummary__Output } from '../gen/kavka/v1/RaftSendSummary.js';
import { PROTO_LOADER_OPTIONS } from '../proto/load.js';
import { assert } from '../util/assert.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { Message } from './messages.js';
import { messageFromProto, messageToProto, RAFT_PROTO_FILE } from './raft-codec.js';
import type { RaftTransport } from './raft-transport.js';
import type { NodeId } from './types.js';

export const RAFT_SERVICE_NAME = 'kavka.v1.Raft';
const SEND_PATH = '/kavka.v1.Raft/Send';
const PROBE_PATH = '/kavka.v1.Raft/Probe';

/** What a peer says about itself and the asking node (see raft.proto RaftProbeResponse). */
export interface RaftProbeAnswer {
  readonly nodeId: NodeId;
  readonly term: number;
  readonly lastIndex: number;
  readonly commit: number;
  readonly directoryId: string;
  /** The asking node is a registered broker in the peer's metadata: it has been in this cluster. */
  readonly knowsNode: boolean;
}

export function loadRaftPackageDefinition(): protoLoader.PackageDefinition {
  return protoLoader.loadSync([RAFT_PROTO_FILE], PROTO_LOADER_OPTIONS);
}

const MALFORMED = Symbol('malformed Raft message');
interface Malformed {
  readonly [MALFORMED]: string;
}

/**
 * The kavka.v1.Raft service definition for grpc.Server#addService. Its request deserializer
 * never throws: undecodable bytes reach the handler as a marker and are dropped there, so one bad
 * message does not fail the peer's whole stream.
 */
export function raftServiceDefinition(definition = loadRaftPackageDefinition()): grpc.ServiceDefinition {
  const service = definition[RAFT_SERVICE_NAME] as grpc.ServiceDefinition;
  const send = service.Send as grpc.MethodDefinition<RaftMessage, RaftSendSummary>;
  return {
    Send: {
      ...send,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return send.requestDeserialize(bytes);
        } catch (error) {
          return { [MALFORMED]: (error as Error).message } satisfies Malformed;
        }
      },
    },
    Probe: service.Probe,
  };
}

/** Counters of one receiving side. */
export interface RaftReceiveStats {
  received: number;
  /** Wrong cluster, wrong recipient, or undecodable. */
  dropped: number;
}

export interface RaftServiceOptions {
  readonly clusterId: string;
  /** This node: messages for any other node are dropped. */
  readonly nodeId: NodeId;
  /** Receives each valid message; must not block (RaftNode.receive queues into the core). */
  readonly onMessage: (message: Message) => void;
  readonly logger: Logger;
  /** Counters to update, if the caller wants them (e.g. for /metrics). */
  readonly stats?: RaftReceiveStats;
  /** Where each open inbound stream registers a function that ends it (for shutdown). */
  readonly inbound?: Set<() => void>;
  /** Answers a Probe from node `from`; undefined when this node cannot answer yet. */
  readonly onProbe?: (from: NodeId) => RaftProbeAnswer | undefined;
}

/** The handlers of kavka.v1.Raft, for grpc.Server#addService(raftServiceDefinition(), ...). */
export function raftServiceHandlers(options: RaftServiceOptions): grpc.UntypedServiceImplementation {
  const stats = options.stats ?? { received: 0, dropped: 0 };
  const Send = (call: grpc.ServerReadableStream<unknown, RaftSendSummary>, callback: grpc.sendUnaryData<RaftSendSummary>): void => {
    let received = 0;
    let dropped = 0;
    call.on('data', (raw: RaftMessage__Output | Malformed) => {
      received++;
      stats.received++;
      const problem = checkInbound(raw, options);
      if (typeof problem === 'string') {
        dropped++;
        stats.dropped++;
        options.logger.debug({ problem }, 'dropped an inbound Raft message');
        return;
      }
      options.onMessage(problem);
    });
    let answered = false;
    const finish = () => {
      options.inbound?.delete(finish);
      if (answered) return;
      answered = true;
      callback(null, { received: String(received), dropped: String(dropped) });
    };
    options.inbound?.add(finish);
    call.on('end', finish);
    call.on('error', () => {
      // The peer went away mid-stream; what arrived was delivered, the rest is lost (tolerated).
      options.inbound?.delete(finish);
    });
  };
  const Probe = (call: grpc.ServerUnaryCall<{ clusterId: string; from: number }, unknown>, callback: grpc.sendUnaryData<unknown>): void => {
    const { clusterId, from } = call.request;
    if (clusterId !== options.clusterId) {
      callback({ code: grpc.status.FAILED_PRECONDITION, details: `node ${options.nodeId} is in cluster ${options.clusterId}, not ${clusterId}` });
      return;
    }
    const answer = options.onProbe?.(from);
    if (answer === undefined) {
      callback({ code: grpc.status.UNAVAILABLE, details: `node ${options.nodeId} cannot answer a Raft probe yet` });
      return;
    }
    callback(null, {
      clusterId: options.clusterId,
      nodeId: answer.nodeId,
      term: String(answer.term),
      lastIndex: String(answer.lastIndex),
      commit: String(answer.commit),
      directoryId: answer.directoryId,
      knowsNode: answer.knowsNode,
    });
  };
  return { Send, Probe };
}

/** The message, or why it is dropped. */
function checkInbound(raw: RaftMessage__Output | Malformed, options: RaftServiceOptions): Message | string {
  if (MALFORMED in raw) return `undecodable: ${raw[MALFORMED]}`;
  let decoded;
  try {
    decoded = messageFromProto(raw);
  } catch (error) {
    return `invalid: ${(error as Error).message}`;
  }
  const { clusterId, message } = decoded;
  if (clusterId !== options.clusterId) return `for cluster ${clusterId}, not ${options.clusterId}`;
  if (message.to !== options.nodeId) return `for node ${message.to}, not ${options.nodeId}`;
  if (message.from === options.nodeId) return `from this node ${message.from}`;
  return message;
}

// ---------------------------------------------------------------------------------------------
// Sending side

export interface GrpcRaftTransportOptions {
  readonly clusterId: string;
  readonly nodeId: NodeId;
  /** host:port of each peer's INTERNAL listener (after peer.address.overrides). */
  readonly peerAddresses: ReadonlyMap<NodeId, string>;
  readonly clock: Clock;
  /** Uniform in [0, 1), for backoff jitter. */
  readonly random: () => number;
  readonly logger: Logger;
  /** Bound of each peer's queue of unsent messages. Default 1024. */
  readonly maxQueuedMessagesPerPeer?: number;
  /** Default 50. */
  readonly reconnectBackoffMinMs?: number;
  /** Default 2000. */
  readonly reconnectBackoffMaxMs?: number;
  /** HTTP/2 keepalive, so a stream to a vanished peer fails. Default 10000. */
  readonly keepaliveTimeMs?: number;
  /** Largest message this node sends (snapshots travel whole). Default 64 MiB. */
  readonly maxSendMessageBytes?: number;
}

export interface PeerLinkStats {
  readonly address: string;
  readonly connected: boolean;
  readonly queued: number;
  readonly sent: number;
  readonly dropped: number;
  readonly reconnects: number;
}

/** Sends over gRPC; receives through the handlers the broker's server calls (serviceHandlers()). */
export class GrpcRaftTransport implements RaftTransport {
  private readonly links = new Map<NodeId, PeerLink>();
  /** Enders of the peers' open Send streams to this node. */
  private readonly inbound = new Set<() => void>();
  private readonly addresses: Map<NodeId, string>;
  private handler: ((message: Message) => void) | undefined;
  private probeHandler: ((from: NodeId) => RaftProbeAnswer | undefined) | undefined;
  private closed = false;
  readonly receiveStats: RaftReceiveStats = { received: 0, dropped: 0 };
  /** Messages for a peer with no known address. */
  unroutable = 0;

  constructor(private readonly options: GrpcRaftTransportOptions) {
    const queueMax = options.maxQueuedMessagesPerPeer ?? 1024;
    const backoffMin = options.reconnectBackoffMinMs ?? 50;
    const backoffMax = options.reconnectBackoffMaxMs ?? 2000;
    assert(queueMax >= 1, 'maxQueuedMessagesPerPeer >= 1');
    assert(backoffMin >= 1 && backoffMin <= backoffMax, 'reconnectBackoffMinMs in [1, reconnectBackoffMaxMs]');
    this.addresses = new Map(options.peerAddresses);
  }

  send(message: Message): void {
    if (this.closed) return;
    const link = this.linkTo(message.to);
    if (link === undefined) {
      this.unroutable++;
      return;
    }
    link.send(message);
  }

  listen(handler: (message: Message) => void): void {
    assert(this.handler === undefined, 'listen() is called once');
    this.handler = handler;
  }

  /** Handlers for grpc.Server#addService(raftServiceDefinition(), ...): they feed listen()'s handler. */
  serviceHandlers(): grpc.UntypedServiceImplementation {
    return raftServiceHandlers({
      clusterId: this.options.clusterId,
      nodeId: this.options.nodeId,
      logger: this.options.logger,
      stats: this.receiveStats,
      inbound: this.inbound,
      onProbe: (from) => (this.closed ? undefined : this.probeHandler?.(from)),
      onMessage: (message) => {
        if (!this.closed) this.handler?.(message);
      },
    });
  }

  /** Sets who answers Probe calls to this node (RaftProbeAnswer); before that they get UNAVAILABLE. */
  onProbe(handler: (from: NodeId) => RaftProbeAnswer | undefined): void {
    this.probeHandler = handler;
  }

  /**
   * Asks a peer about itself and this node (see the file header). Rejects on any failure within
   * deadlineMs; a peer with no known address rejects at once.
   */
  probe(peer: NodeId, deadlineMs: number): Promise<RaftProbeAnswer> {
    const address = this.addresses.get(peer);
    if (address === undefined || address === '') return Promise.reject(new Error(`no address for node ${peer}`));
    const client = new grpc.Client(address, grpc.credentials.createInsecure());
    const probeMethod = loadRaftPackageDefinition()[RAFT_SERVICE_NAME] as unknown as Record<string, grpc.MethodDefinition<object, Record<string, unknown>>>;
    const method = probeMethod.Probe;
    return new Promise<RaftProbeAnswer>((resolve, reject) => {
      client.makeUnaryRequest(
        PROBE_PATH,
        method.requestSerialize,
        method.responseDeserialize,
        { clusterId: this.options.clusterId, from: this.options.nodeId },
        new grpc.Metadata(),
        { deadline: this.options.clock.nowMs() + deadlineMs },
        (error, response) => {
          client.close();
          if (error !== null || response === undefined) {
            reject(error ?? new Error('empty probe answer'));
            return;
          }
          resolve({
            nodeId: Number(response.nodeId),
            term: Number(response.term),
            lastIndex: Number(response.lastIndex),
            commit: Number(response.commit),
            directoryId: String(response.directoryId),
            knowsNode: response.knowsNode === true,
          });
        },
      );
    });
  }

  /** Points a peer at a new address (a membership change or a moved node); reconnects. */
  setPeerAddress(id: NodeId, address: string): void {
    this.addresses.set(id, address);
    const link = this.links.get(id);
    if (link !== undefined && link.address !== address) {
      link.close();
      this.links.delete(id);
    }
  }

  /**
   * Answers every open inbound stream, so a server shutting down does not wait for peers to end
   * them. Peers reconnect (elsewhere or later); messages in flight are lost, which Raft tolerates.
   */
  endInbound(): void {
    for (const end of [...this.inbound]) end();
  }

  stats(): Map<NodeId, PeerLinkStats> {
    const out = new Map<NodeId, PeerLinkStats>();
    for (const [id, link] of this.links) out.set(id, link.stats());
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const link of this.links.values()) link.close();
    this.links.clear();
  }

  private linkTo(id: NodeId): PeerLink | undefined {
    const existing = this.links.get(id);
    if (existing !== undefined) return existing;
    const address = this.addresses.get(id);
    if (address === undefined) return undefined;
    const link = new PeerLink(id, address, this.options);
    this.links.set(id, link);
    return link;
  }
}

type LinkState =
  | { readonly kind: 'idle' }
  | { readonly kind: 'open'; readonly call: grpc.ClientWritableStream<RaftMessage>; readonly openedAtMs: number; writable: boolean }
  | { readonly kind: 'backoff'; readonly cancel: () => void }
  | { readonly kind: 'closed' };

/** One directed link: this node -> peer. Transitions: idle -> open -> backoff -> open ...; any -> closed. */
class PeerLink {
  private readonly client: grpc.Client;
  private state: LinkState = { kind: 'idle' };
  private queue: Message[] = [];
  private readonly queueMax: number;
  private readonly backoffMinMs: number;
  private readonly backoffMaxMs: number;
  private failures = 0;
  private sent = 0;
  private dropped = 0;
  private reconnects = 0;
  private readonly logger: Logger;

  constructor(
    readonly peerId: NodeId,
    readonly address: string,
    private readonly options: GrpcRaftTransportOptions,
  ) {
    this.queueMax = options.maxQueuedMessagesPerPeer ?? 1024;
    this.backoffMinMs = options.reconnectBackoffMinMs ?? 50;
    this.backoffMaxMs = options.reconnectBackoffMaxMs ?? 2000;
    this.logger = options.logger.child({ peerId, address });
    this.client = new grpc.Client(address, grpc.credentials.createInsecure(), {
      'grpc.initial_reconnect_backoff_ms': this.backoffMinMs,
      'grpc.max_reconnect_backoff_ms': this.backoffMaxMs,
      'grpc.keepalive_time_ms': options.keepaliveTimeMs ?? 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.max_send_message_length': options.maxSendMessageBytes ?? 64 * 1024 * 1024,
    });
  }

  send(message: Message): void {
    if (this.state.kind === 'closed') return;
    if (this.queue.length >= this.queueMax) {
      this.queue.shift();
      this.dropped++;
    }
    this.queue.push(message);
    if (this.state.kind === 'idle') this.open();
    else if (this.state.kind === 'open') this.flush();
  }

  stats(): PeerLinkStats {
    return {
      address: this.address,
      connected: this.state.kind === 'open',
      queued: this.queue.length,
      sent: this.sent,
      dropped: this.dropped,
      reconnects: this.reconnects,
    };
  }

  close(): void {
    const state = this.state;
    this.state = { kind: 'closed' };
    this.dropped += this.queue.length;
    this.queue = [];
    if (state.kind === 'backoff') state.cancel();
    if (state.kind === 'open') state.call.end();
    this.client.close();
  }

  private open(): void {
    assert(this.state.kind === 'idle' || this.state.kind === 'backoff', `open a link from idle or backoff, not ${this.state.kind}`);
    const serialize = (m: RaftMessage): Buffer => SEND_SERIALIZE(m);
    const call = this.client.makeClientStreamRequest<RaftMessage, RaftSendSummary__Output>(
      SEND_PATH,
      serialize,
      SUMMARY_DESERIALIZE,
      new grpc.Metadata(),
      {},
      (error) => this.onStreamEnd(call, error),
    );
    call.on('error', () => {
      // Reported through the callback above.
    });
    const state: LinkState = { kind: 'open', call, openedAtMs: this.options.clock.monotonicMs(), writable: true };
    this.state = state;
    call.on('drain', () => {
      if (this.state !== state) return;
      state.writable = true;
      this.flush();
    });
    this.flush();
  }

  private flush(): void {
    const state = this.state;
    assert(state.kind === 'open', 'flush an open link');
    while (state.writable && this.queue.length > 0) {
      const message = this.queue.shift() as Message;
      this.sent++;
      state.writable = state.call.write(messageToProto(this.options.clusterId, message));
    }
  }

  private onStreamEnd(call: grpc.ClientWritableStream<RaftMessage>, error: grpc.ServiceError | null): void {
    const state = this.state;
    if (state.kind !== 'open' || state.call !== call) return; // closed, or an old stream
    if (this.options.clock.monotonicMs() - state.openedAtMs >= this.backoffMaxMs) this.failures = 0;
    this.failures++;
    const delayMs = this.backoffDelayMs();
    if (this.failures === 1) this.logger.info({ err: error?.message, delayMs }, 'Raft stream to peer ended; reconnecting');
    else this.logger.debug({ err: error?.message, delayMs, failures: this.failures }, 'Raft stream to peer ended again');
    const cancel = this.options.clock.schedule(delayMs, () => {
      if (this.state.kind !== 'backoff') return;
      this.reconnects++;
      if (this.queue.length === 0) this.state = { kind: 'idle' };
      else this.open();
    });
    this.state = { kind: 'backoff', cancel };
  }

  /** Exponential from the minimum, capped, with up to 50% jitter downwards. */
  private backoffDelayMs(): number {
    const exponent = Math.min(this.failures - 1, 20);
    const ceiling = Math.min(this.backoffMaxMs, this.backoffMinMs * 2 ** exponent);
    return Math.max(1, Math.round(ceiling * (0.5 + 0.5 * this.options.random())));
  }
}

// Serializers from the proto definition, shared by every link.
const SEND_METHOD = (loadRaftPackageDefinition()[RAFT_SERVICE_NAME] as grpc.ServiceDefinition).Send as grpc.MethodDefinition<
  RaftMessage,
  RaftSendSummary__Output
>;
const SEND_SERIALIZE = SEND_METHOD.requestSerialize;
const SUMMARY_DESERIALIZE = SEND_METHOD.responseDeserialize;
