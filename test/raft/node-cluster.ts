// In-process clusters of real RaftNodes for the driver tests: real level stores in a temp dir,
// real timers (a fast tick), and either the in-memory network or real gRPC on 127.0.0.1.
// Scenarios read like prose: `await cluster.until('a leader', (c) => c.leader() !== undefined)`,
// `await cluster.node(2).crash()`, `await cluster.node(2).restart()`.
//
// until() re-checks its condition whenever any node applies an entry or sees a leader change,
// and fails after a bounded wall-clock wait. No test sleeps.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  GrpcRaftTransport,
  LevelRaftStorage,
  MemoryRaftNetwork,
  RaftNode,
  raftServiceDefinition,
  type NodeId,
  type RaftStorage,
  type RaftTransport,
} from '../../src/raft/index.js';
import { systemClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { Prng } from './prng.js';
import { TestStateMachine } from './state-machine.js';

export const TICK_MS = 10;
export const ELECTION_TIMEOUT_TICKS = 10;
export const HEARTBEAT_INTERVAL_TICKS = 2;
export const CLUSTER_ID = 'test-cluster';

const encoder = new TextEncoder();

export type TransportKind = 'memory' | 'grpc';

export interface ClusterOptions {
  readonly ids: readonly NodeId[];
  readonly transport: TransportKind;
  readonly seed?: number;
  /** Wraps each opened store (e.g. to hold writes). */
  readonly wrapStorage?: (id: NodeId, storage: RaftStorage) => RaftStorage;
}

export class ClusterNode {
  node: RaftNode | undefined;
  machine = new TestStateMachine();
  /** For gRPC: the node's server and its port (kept across restarts). */
  server: grpc.Server | undefined;
  port = 0;
  transport: RaftTransport | undefined;

  constructor(
    readonly id: NodeId,
    readonly directory: string,
    private readonly cluster: NodeCluster,
  ) {}

  get raft(): RaftNode {
    if (this.node === undefined) throw new Error(`node ${this.id} is down`);
    return this.node;
  }

  get up(): boolean {
    return this.node !== undefined;
  }

  /** Opens the store in this node's directory and starts: a fresh start or a restart from disk. */
  async start(): Promise<void> {
    if (this.node !== undefined) throw new Error(`node ${this.id} is already up`);
    this.machine = new TestStateMachine();
    let storage: RaftStorage = await LevelRaftStorage.open({ directory: this.directory, clusterId: CLUSTER_ID, nodeId: this.id });
    if (this.cluster.options.wrapStorage !== undefined) storage = this.cluster.options.wrapStorage(this.id, storage);
    const transport = await this.cluster.transportFor(this);
    this.transport = transport;
    const node = await RaftNode.open({
      nodeId: this.id,
      bootstrap: { voters: [...this.cluster.options.ids], learners: [] },
      tickMs: TICK_MS,
      electionTimeoutTicks: ELECTION_TIMEOUT_TICKS,
      heartbeatIntervalTicks: HEARTBEAT_INTERVAL_TICKS,
      storage,
      transport,
      clock: systemClock,
      random: () => this.cluster.prng.next(),
      logger: silentLogger(),
    });
    const machine = this.machine;
    node.onApply((event) => {
      if (event.kind === 'snapshot') machine.applySnapshot(event.snapshot);
      else machine.apply(event.entry);
      this.cluster.changed();
    });
    node.onLeaderChange(() => this.cluster.changed());
    this.node = node;
    await node.start();
    this.cluster.changed();
  }

  /** Stops the node: its timer, transport, store and (gRPC) server. Its directory stays. */
  async crash(): Promise<void> {
    const node = this.node;
    this.node = undefined;
    if (this.server !== undefined) {
      this.server.forceShutdown();
      this.server = undefined;
    }
    await node?.close();
    this.cluster.changed();
  }

  async restart(): Promise<void> {
    await this.crash();
    await this.start();
  }

  values(): string[] {
    return this.machine.values.map((v) => v.value);
  }
}

export class NodeCluster {
  readonly nodes = new Map<NodeId, ClusterNode>();
  readonly prng: Prng;
  readonly network = new MemoryRaftNetwork(systemClock);
  private waiters = new Set<() => void>();

  private constructor(
    readonly options: ClusterOptions,
    readonly root: string,
  ) {
    this.prng = new Prng(options.seed ?? 1);
    for (const id of options.ids) this.nodes.set(id, new ClusterNode(id, join(root, `node-${id}`), this));
  }

  static async start(options: ClusterOptions): Promise<NodeCluster> {
    const root = await mkdtemp(join(tmpdir(), 'kavka-raft-node-'));
    const cluster = new NodeCluster(options, root);
    if (options.transport === 'grpc') {
      // Bind every server first so each transport knows every address.
      for (const node of cluster.nodes.values()) await cluster.bindServer(node);
    }
    for (const node of cluster.nodes.values()) await node.start();
    return cluster;
  }

  node(id: NodeId): ClusterNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  up(): ClusterNode[] {
    return [...this.nodes.values()].filter((n) => n.up);
  }

  /** The node that leads, if exactly one running node believes it leads in the highest term. */
  leader(): ClusterNode | undefined {
    const leaders = this.up().filter((n) => n.raft.isLeader);
    if (leaders.length === 0) return undefined;
    const top = Math.max(...leaders.map((n) => n.raft.term));
    const inTop = leaders.filter((n) => n.raft.term === top);
    return inTop.length === 1 ? inTop[0] : undefined;
  }

  /** A leader that every running node follows. */
  agreedLeader(): ClusterNode | undefined {
    const leader = this.leader();
    if (leader === undefined) return undefined;
    return this.up().every((n) => n.raft.leaderId === leader.id && n.raft.term === leader.raft.term) ? leader : undefined;
  }

  async until<T>(what: string, probe: (c: NodeCluster) => T | undefined | false, timeoutMs = 10_000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const check = (): boolean => {
        const value = probe(this);
        if (value === undefined || value === false) return false;
        cleanup();
        resolve(value);
        return true;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      const waiter = (): void => {
        check();
      };
      this.waiters.add(waiter);
      check();
    });
  }

  /** Proposes through the current leader, retrying on leader changes, until committed. */
  async propose(value: string, timeoutMs = 10_000): Promise<{ index: number; term: number }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const leader = await this.until('an agreed leader', (c) => c.agreedLeader(), Math.max(1, deadline - Date.now()));
      try {
        return await leader.raft.propose(encoder.encode(value));
      } catch (error) {
        if (Date.now() > deadline) throw error;
      }
    }
  }

  /** Wakes until() waiters. Called on every apply and leader change. */
  changed(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  async transportFor(node: ClusterNode): Promise<RaftTransport> {
    if (this.options.transport === 'memory') return this.network.endpoint(node.id);
    if (node.server === undefined) await this.bindServer(node);
    const peerAddresses = new Map<NodeId, string>();
    for (const other of this.nodes.values()) if (other.id !== node.id) peerAddresses.set(other.id, `127.0.0.1:${other.port}`);
    const transport = new GrpcRaftTransport({
      clusterId: CLUSTER_ID,
      nodeId: node.id,
      peerAddresses,
      clock: systemClock,
      random: () => this.prng.next(),
      logger: silentLogger(),
      reconnectBackoffMinMs: 20,
      reconnectBackoffMaxMs: 200,
    });
    (node.server as grpc.Server).addService(raftServiceDefinition(), transport.serviceHandlers());
    return transport;
  }

  /** A gRPC server on 127.0.0.1: an OS-assigned port first, the same port on restart. */
  private async bindServer(node: ClusterNode): Promise<void> {
    const server = new grpc.Server();
    node.port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`127.0.0.1:${node.port}`, grpc.ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port)));
    });
    node.server = server;
  }

  async close(): Promise<void> {
    for (const node of this.nodes.values()) await node.crash();
    await rm(this.root, { recursive: true, force: true });
  }
}
