// Runs a Kavka cluster as real `kavka broker` processes on 127.0.0.1, for process fault tests,
// the failover measurement and chaos runs. Every node is a controller voter. Ports are reserved
// up front (the voters' addresses must be known before any node starts); with `proxies`, every
// directed link between nodes goes through a FaultProxy (peer.address.overrides), so a test can
// cut or delay one direction of one link.
//
// Nodes can be killed (any signal), paused (SIGSTOP) and resumed, stopped (SIGTERM: controlled
// shutdown) and restarted on the same ports and data dir. Queries go over the CLIENT listener
// with a plain gRPC client: who is the active controller, and the partitions' leaders.
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadKavkaGrpc } from '../proto/index.js';
import type { MetadataResponse__Output } from '../gen/kavka/v1/MetadataResponse.js';
import type { DescribeQuorumResponse__Output } from '../gen/kavka/v1/DescribeQuorumResponse.js';
import type { KavkaClient } from '../gen/kavka/v1/Kavka.js';
import { startBrokerProcess, type BrokerProcess } from './broker-process.js';
import { FaultProxy, ProxyMesh } from './fault-proxy.js';

export interface ClusterProcessOptions {
  /** Nodes 1..size, all voters. */
  size: number;
  /** Nodes size+1..size+observers with process.roles=broker: they follow the metadata log without voting. */
  observers?: number;
  /** Parent directory; node N keeps its data in `<dataRoot>/node-N`. */
  dataRoot: string;
  /** Route every inter-node link through a fault proxy. */
  proxies?: boolean;
  /**
   * Put a fault proxy in front of every node's CLIENT listener and advertise it, so clients reach
   * the node only through it (cut by clientProxy(id)).
   */
  clientProxies?: boolean;
  /** Each node appends its log lines to `<logDir>/node-N.log`. */
  logDir?: string;
  /** Extra config for every node (and per node). */
  overrides?: Record<string, string>;
  nodeOverrides?: (nodeId: number) => Record<string, string>;
  /**
   * Called when a node's process exits without signal() having ended it (it crashed, or halted
   * on a failed metadata log with exit code 3). The node counts as down from then on.
   */
  onUnexpectedExit?: (nodeId: number, exit: { code: number | null; signal: NodeJS.Signals | null }) => void;
}

export interface ProcessNode {
  readonly nodeId: number;
  readonly clientAddress: string;
  readonly internalAddress: string;
  /** Where clients connect: the client proxy when there is one, else clientAddress. */
  readonly advertisedClientAddress: string;
  process: BrokerProcess | undefined;
}

/** Scaled-down timing for tests: elections in ~0.3 s, fencing after 1.5 s of silence. */
export const FAST_CLUSTER_TIMING: Record<string, string> = {
  'controller.quorum.election.timeout.ms': '300',
  'broker.heartbeat.interval.ms': '100',
  'broker.session.timeout.ms': '1500',
};

/** Reserves `count` distinct free TCP ports on 127.0.0.1 (bound together, then released). */
export async function reservePorts(count: number): Promise<number[]> {
  const held = await holdPorts(count);
  await held.release();
  return held.ports;
}

/**
 * Binds `count` free TCP ports on 127.0.0.1 and keeps them bound until release(), so listeners
 * opened on port 0 meanwhile (fault proxies) cannot be given one of them.
 */
export async function holdPorts(count: number): Promise<{ ports: number[]; release(): Promise<void> }> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<Server>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((s) => {
    const address = s.address();
    if (address === null || typeof address === 'string') throw new Error('a reserved port has no TCP address');
    return address.port;
  });
  return { ports, release: () => Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))).then(() => undefined) };
}

function unary<Res>(client: KavkaClient, method: 'Metadata' | 'DescribeQuorum', request: object, timeoutMs: number): Promise<Res> {
  return new Promise((resolve, reject) => {
    const fn = client[method].bind(client) as unknown as (req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Res) => void) => void;
    fn(request, { deadline: Date.now() + timeoutMs }, (error, response) => (error !== null || response === undefined ? reject(error ?? new Error('empty')) : resolve(response)));
  });
}

export class ProcessCluster {
  readonly nodes = new Map<number, ProcessNode>();
  private readonly clients = new Map<number, KavkaClient>();
  private readonly grpcPackage = loadKavkaGrpc();
  /** Starts in flight, so a second startNode of the same node waits for the first. */
  private readonly starting = new Map<number, Promise<void>>();
  /** Processes signal() is ending on purpose (their exit is not unexpected). */
  private readonly ending = new WeakSet<BrokerProcess>();

  private constructor(
    private readonly options: ClusterProcessOptions,
    readonly mesh: ProxyMesh | undefined,
    private readonly clientProxies: ReadonlyMap<number, FaultProxy>,
  ) {}

  /** Reserves ports, starts the proxies (if asked) and every node; returns once all listen. */
  static async start(options: ClusterProcessOptions): Promise<ProcessCluster> {
    const total = options.size + (options.observers ?? 0);
    const held = await holdPorts(total * 2);
    const { ports } = held;
    const internal = new Map<number, string>();
    for (let id = 1; id <= total; id++) internal.set(id, `127.0.0.1:${ports[total + id - 1]}`);
    const mesh = options.proxies === true ? await ProxyMesh.start(internal) : undefined;
    const clientProxies = new Map<number, FaultProxy>();
    if (options.clientProxies === true) {
      for (let id = 1; id <= total; id++) clientProxies.set(id, await FaultProxy.start({ target: `127.0.0.1:${ports[id - 1]}`, name: `clients->${id}` }));
    }
    await held.release();
    const cluster = new ProcessCluster(options, mesh, clientProxies);
    for (let id = 1; id <= total; id++) {
      const clientAddress = `127.0.0.1:${ports[id - 1]}`;
      cluster.nodes.set(id, { nodeId: id, clientAddress, advertisedClientAddress: clientProxies.get(id)?.address ?? clientAddress, internalAddress: internal.get(id) ?? '', process: undefined });
    }
    // Wait for every start to settle before giving up, so no node that was still starting when
    // another failed is left running.
    const started = await Promise.allSettled([...cluster.nodes.keys()].map((id) => cluster.startNode(id)));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed !== undefined) {
      await cluster.destroy();
      throw failed.reason;
    }
    return cluster;
  }

  /** controller.quorum.voters of this cluster: nodes 1..size. */
  get voters(): string {
    return [...this.nodes.values()].filter((n) => n.nodeId <= this.options.size).map((n) => `${n.nodeId}@${n.internalAddress}`).join(',');
  }

  node(id: number): ProcessNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  /**
   * Starts (or restarts) node `id` on its ports and data dir; returns once it listens. A start
   * already in flight for the node is waited for instead of starting a second process.
   */
  startNode(id: number): Promise<void> {
    const inFlight = this.starting.get(id);
    if (inFlight !== undefined) return inFlight;
    const start = this.startProcess(id).finally(() => this.starting.delete(id));
    this.starting.set(id, start);
    return start;
  }

  private async startProcess(id: number): Promise<void> {
    const node = this.node(id);
    if (node.process !== undefined) return;
    const overrides: Record<string, string> = {
      'node.id': String(id),
      listeners: `CLIENT://${node.clientAddress},INTERNAL://${node.internalAddress}`,
      ...(node.advertisedClientAddress === node.clientAddress ? {} : { 'advertised.listeners': `CLIENT://${node.advertisedClientAddress},INTERNAL://${node.internalAddress}` }),
      'controller.quorum.voters': this.voters,
      ...(id > this.options.size ? { 'process.roles': 'broker' } : {}),
      ...(this.mesh === undefined ? {} : { 'peer.address.overrides': this.mesh.overridesFor(id) }),
      ...this.options.overrides,
      ...this.options.nodeOverrides?.(id),
    };
    // A port reserved for this node can be taken meanwhile as the ephemeral port of some
    // outgoing connection; that is short-lived, so try again a few times.
    for (let attempt = 1; ; attempt++) {
      try {
        const proc = await startBrokerProcess(this.dataDir(id), overrides, this.options.logDir === undefined ? {} : { logFile: this.logFile(id) });
        node.process = proc;
        void proc.exited.then((exit) => {
          if (this.ending.has(proc) || node.process !== proc) return;
          node.process = undefined;
          this.dropClient(id);
          this.options.onUnexpectedExit?.(id, exit);
        });
        return;
      } catch (error) {
        if (attempt >= 5 || !/EADDRINUSE/.test((error as Error).message)) throw error;
        await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
      }
    }
  }

  /** Node `id`'s data directory (its log.dirs). */
  dataDir(id: number): string {
    return join(this.options.dataRoot, `node-${id}`);
  }

  /** Where node `id` appends its log lines, when the cluster has a logDir. */
  logFile(id: number): string | undefined {
    return this.options.logDir === undefined ? undefined : join(this.options.logDir, `node-${id}.log`);
  }

  /** The proxy in front of node `id`'s CLIENT listener (clientProxies). */
  clientProxy(id: number): FaultProxy {
    const proxy = this.clientProxies.get(id);
    if (proxy === undefined) throw new Error(`node ${id} has no client proxy; start the cluster with clientProxies`);
    return proxy;
  }

  /** Node `id`'s /readyz: registered, unfenced, metadata caught up. */
  async isReady(id: number): Promise<boolean> {
    const proc = this.node(id).process;
    if (proc === undefined) return false;
    return fetch(`http://${proc.adminAddress}/readyz`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false);
  }

  /** Waits until every running node (or the given ones) passes /readyz. */
  async waitReady(ids: number[] = [...this.nodes.keys()].filter((id) => this.isRunning(id)), timeoutMs = 30_000): Promise<void> {
    await ProcessCluster.waitFor(`nodes ${ids.join(',')} to be ready`, async () => ((await Promise.all(ids.map((id) => this.isReady(id)))).every(Boolean) ? true : undefined), timeoutMs, 50);
  }

  /** Sends a signal; for SIGKILL and SIGTERM waits until the process has exited. */
  async signal(id: number, signal: NodeJS.Signals): Promise<void> {
    const proc = this.node(id).process;
    if (proc === undefined) return;
    if (signal === 'SIGKILL' || signal === 'SIGTERM') this.ending.add(proc);
    proc.child.kill(signal);
    if (signal === 'SIGKILL' || signal === 'SIGTERM') {
      await proc.exited;
      this.node(id).process = undefined;
      this.dropClient(id);
    }
  }

  isRunning(id: number): boolean {
    return this.node(id).process !== undefined;
  }

  /** Node `id`'s Metadata answer (brokers and the controller id it knows). */
  metadata(id: number, topics: string[] = [], timeoutMs = 2000): Promise<MetadataResponse__Output> {
    return unary<MetadataResponse__Output>(this.client(id), 'Metadata', { topics, brokersOnly: topics.length === 0 }, timeoutMs);
  }

  describeQuorum(id: number, timeoutMs = 2000): Promise<DescribeQuorumResponse__Output> {
    return unary<DescribeQuorumResponse__Output>(this.client(id), 'DescribeQuorum', {}, timeoutMs);
  }

  /**
   * The active controller as the running nodes (minus `excluding`) agree on it: every one of them
   * names the same node, and that node answers DescribeQuorum as leader. Undefined until then.
   */
  async agreedController(excluding: number[] = []): Promise<{ controllerId: number; epoch: number } | undefined> {
    const ids = [...this.nodes.keys()].filter((id) => this.isRunning(id) && !excluding.includes(id));
    const answers = await Promise.all(ids.map((id) => this.metadata(id, [], 1000).then((m) => m.controllerId, () => -1)));
    const first = answers[0];
    if (first === undefined || first < 0 || answers.some((a) => a !== first) || excluding.includes(first) || !this.isRunning(first)) return undefined;
    try {
      const quorum = await this.describeQuorum(first, 1000);
      return quorum.leaderId === first ? { controllerId: first, epoch: Number(quorum.leaderEpoch) } : undefined;
    } catch {
      return undefined;
    }
  }

  /** Polls `probe` every intervalMs until it returns a value, or throws after timeoutMs. */
  static async waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 20): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe().catch(() => undefined);
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }

  /** Stops every node (SIGKILL, so a test's teardown is quick) and the proxies. Keeps the data. */
  async destroy(): Promise<void> {
    await Promise.allSettled(this.starting.values());
    await Promise.all([...this.nodes.keys()].map((id) => this.signal(id, 'SIGKILL')));
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
    await this.mesh?.close();
    await Promise.all([...this.clientProxies.values()].map((proxy) => proxy.close()));
  }

  private client(id: number): KavkaClient {
    let client = this.clients.get(id);
    if (client === undefined) {
      client = new this.grpcPackage.kavka.v1.Kavka(this.node(id).clientAddress, grpc.credentials.createInsecure());
      this.clients.set(id, client);
    }
    return client;
  }

  private dropClient(id: number): void {
    this.clients.get(id)?.close();
    this.clients.delete(id);
  }
}
