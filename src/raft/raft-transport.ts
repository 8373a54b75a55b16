// The RaftTransport port: how a RaftNode reaches its peers. Delivery is best effort: messages may
// be lost, delayed, duplicated or reordered, and Raft tolerates all four. Implementations:
// MemoryRaftNetwork (below: in-process, with connect / disconnect / partition for tests) and
// GrpcRaftTransport (grpc-raft-transport.ts: the kavka.v1.Raft service).
import type { Clock } from '../util/clock.js';
import type { Message } from './messages.js';
import type { NodeId } from './types.js';

export interface RaftTransport {
  /** Queues `message` for `message.to`. Never throws and never waits: a full queue drops. */
  send(message: Message): void;
  /**
   * Registers the receiver of messages addressed to this node (the RaftNode). Called once;
   * messages that arrive before are dropped. The handler is never called re-entrantly from send().
   */
  listen(handler: (message: Message) => void): void;
  /** Stops sending and receiving; queued messages are dropped. */
  close(): Promise<void>;
}

/**
 * An in-process network of RaftTransports. Each directed link is up or down; a message crosses a
 * link that is up, asynchronously (a clock.schedule(0) later), in send order. Faults:
 * disconnect(id) cuts every link to and from a node, connect(id) restores them, partition(groups)
 * lets messages flow only within each group, heal() restores everything.
 *
 * Who calls it: tests, from one thread. Not safe to share between processes (it is one process).
 */
export class MemoryRaftNetwork {
  private readonly handlers = new Map<NodeId, (message: Message) => void>();
  private readonly disconnected = new Set<NodeId>();
  /** Group number per node while partitioned; undefined = fully connected. */
  private groups: Map<NodeId, number> | undefined;
  /** Messages lost to a fault or a missing receiver (for assertions). */
  dropped = 0;
  delivered = 0;

  constructor(private readonly clock: Clock) {}

  /** The transport of node `id`. A node that reopens (crash-restart) takes a new endpoint. */
  endpoint(id: NodeId): RaftTransport {
    let closed = false;
    let registered: ((message: Message) => void) | undefined;
    return {
      send: (message) => {
        if (closed) return;
        this.route(message);
      },
      listen: (handler) => {
        registered = handler;
        this.handlers.set(id, handler);
      },
      close: async () => {
        closed = true;
        // A newer endpoint of the same node (after a restart) keeps its handler.
        if (registered !== undefined && this.handlers.get(id) === registered) this.handlers.delete(id);
      },
    };
  }

  disconnect(id: NodeId): void {
    this.disconnected.add(id);
  }

  connect(id: NodeId): void {
    this.disconnected.delete(id);
  }

  /** Only nodes in the same group talk; nodes in no group are cut off. */
  partition(groups: readonly (readonly NodeId[])[]): void {
    this.groups = new Map();
    groups.forEach((group, n) => group.forEach((id) => this.groups?.set(id, n)));
  }

  heal(): void {
    this.groups = undefined;
    this.disconnected.clear();
  }

  private linkUp(from: NodeId, to: NodeId): boolean {
    if (this.disconnected.has(from) || this.disconnected.has(to)) return false;
    if (this.groups === undefined) return true;
    const a = this.groups.get(from);
    return a !== undefined && a === this.groups.get(to);
  }

  private route(message: Message): void {
    if (!this.linkUp(message.from, message.to)) {
      this.dropped++;
      return;
    }
    this.clock.schedule(0, () => {
      // Checked again on arrival: a cut made while the message was in flight loses it.
      const handler = this.handlers.get(message.to);
      if (handler === undefined || !this.linkUp(message.from, message.to)) {
        this.dropped++;
        return;
      }
      this.delivered++;
      handler(message);
    });
  }
}
