// Starts an n-node Kavka cluster in this process: every node a broker and a controller voter,
// real gRPC on 127.0.0.1, real storage in its own temp dir, scaled-down Raft and session timing.
//
// Voters must know each other's addresses before any node starts, so the ports are reserved
// first (bind on port 0, read the port, close) and each node keeps its ports across restarts.
//
// Crash: there is no SIGKILL in-process. `crashNode` stops the node with shutdown.timeout.ms
// read as 0 (the node's config is wrapped so the value can be switched at crash time), which
// skips everything a controlled shutdown does for the cluster — no "fence me" heartbeat, no
// controller hand-off — and force-closes the listeners. The controller only learns of it when
// the session expires. What it does not simulate: the node still closes its logs (no torn
// tail, no lost page cache) and peers see its TCP connections close rather than go silent.
//
// Every wait is bounded; a timeout fails with what was being waited for.
import { readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker, type Broker } from '../../src/broker/index.js';
import { buildBrokerConfig, type BrokerConfig } from '../../src/config/index.js';
import { silentLogger, type Logger } from '../../src/util/logger.js';
import { Kavka, type KafkaMessage } from '../../src/client/index.js';
import type { KavkaClient } from '../../src/gen/kavka/v1/Kavka.js';
import type { MetadataResponse__Output } from '../../src/gen/kavka/v1/MetadataResponse.js';
import type { CreateTopicsResponse__Output } from '../../src/gen/kavka/v1/CreateTopicsResponse.js';
import type { ProduceResponse__Output } from '../../src/gen/kavka/v1/ProduceResponse.js';
import type { PartitionMetadata__Output } from '../../src/gen/kavka/v1/PartitionMetadata.js';
import { call, rawClient } from '../server/raw-client.js';
import { reservePorts } from '../../src/harness/cluster-process.js';
import { ProxyMesh } from '../../src/harness/fault-proxy.js';
import type { StorageFs } from '../../src/storage/index.js';

export const READY_TIMEOUT_MS = 30_000;

/** The scaled-down timing every cluster node gets unless overridden. */
export const CLUSTER_TIMING = {
  'controller.quorum.election.timeout.ms': '300',
  'broker.heartbeat.interval.ms': '100',
  'broker.session.timeout.ms': '1500',
  // A bound on each stop, so a test never waits long on a stop that cannot reach the controller.
  'shutdown.timeout.ms': '1000',
} as const;

export interface ClusterNode {
  readonly id: number;
  /** host:port of the CLIENT listener (fixed for the cluster's life). */
  readonly clientAddress: string;
  /** host:port of the INTERNAL (controller, Raft) listener. */
  readonly internalAddress: string;
  readonly dataDir: string;
  /** The running broker, or undefined while the node is stopped. */
  broker: Broker | undefined;
}

export interface TestClusterOptions {
  /** Extra config for single nodes, over `overrides` (node id -> key -> value). */
  nodeOverrides?: Record<number, Record<string, string>>;
  logger?: Logger;
  /**
   * Route every inter-node link (Raft, controller, replication) through a fault proxy, one per
   * directed link (`cluster.mesh`; set as each node's peer.address.overrides). Clients still
   * reach the CLIENT listeners directly.
   */
  proxies?: boolean;
  /** The storage interface of single nodes (e.g. a FaultInjectingFs), kept across restarts. */
  nodeFs?: Record<number, StorageFs>;
}

export interface TestCluster {
  readonly ids: readonly number[];
  readonly nodes: ReadonlyMap<number, ClusterNode>;
  /** With `proxies: true`: the proxies on the links between nodes (cut, heal, delay). */
  readonly mesh: ProxyMesh | undefined;
  /** The running broker of node `id`; throws if it is stopped. */
  broker(id: number): Broker;
  /** Ids of the nodes running now. */
  runningIds(): number[];
  clientAddress(id: number): string;
  /**
   * The active controller, when one node's controller is active and every running node names
   * it as controller; else undefined.
   */
  activeControllerId(): number | undefined;
  /** Waits until activeControllerId() is defined and returns it. */
  waitForActiveController(timeoutMs?: number): Promise<number>;
  /** A raw gRPC client (generated from the .proto files) to node `id`'s CLIENT listener, cached. */
  raw(id: number): KavkaClient;
  /** Metadata as node `id` answers it (every topic when `topics` is empty). */
  metadata(id: number, topics?: string[]): Promise<MetadataResponse__Output>;
  /** Controlled shutdown (fence, hand off controller leadership, close). The data dir stays. */
  stopNode(id: number): Promise<void>;
  /** Stops without a controlled shutdown (see the header). The data dir stays. */
  crashNode(id: number): Promise<void>;
  /** Starts a stopped node again on the same data dir and ports; resolves once it is ready. */
  restartNode(id: number, options?: { waitReady?: boolean }): Promise<Broker>;
  /** Polls `condition` until it returns a value other than false/undefined/null, or fails after timeoutMs. */
  waitFor<T>(condition: () => T | false | undefined | null | Promise<T | false | undefined | null>, timeoutMs: number, what?: string): Promise<T>;
  /** Stops every running node (crash-style, fast) and removes the temp dirs. Idempotent. */
  destroy(): Promise<void>;
}


export async function waitFor<T>(
  condition: () => T | false | undefined | null | Promise<T | false | undefined | null>,
  timeoutMs: number,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value !== false && value !== undefined && value !== null) return value;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const suffix = lastError === undefined ? '' : `; last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${suffix}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function isAddressInUse(error: unknown): boolean {
  const text = error instanceof Error ? `${error.message} ${String((error as { cause?: unknown }).cause ?? '')}` : String(error);
  return /EADDRINUSE|address already in use|No address added/i.test(text);
}

export async function startTestCluster(n = 3, overrides: Record<string, string> = {}, options: TestClusterOptions = {}): Promise<TestCluster> {
  // Ports are reserved, released, then bound by the nodes one by one; meanwhile the connections
  // the started nodes (and proxies) open take ephemeral ports, rarely one reserved for a node that
  // has not bound yet. Start over on fresh ports then (bounded).
  for (let attempt = 1; ; attempt++) {
    try {
      return await startTestClusterOnce(n, overrides, options);
    } catch (error) {
      if (/EMFILE|Too many open files/.test(`${String(error)} ${String((error as { cause?: unknown }).cause ?? '')}`)) {
        throw new Error(`starting the test cluster ran out of file descriptors; this process holds: ${openDescriptorSummary()}`, { cause: error });
      }
      if (attempt >= 3 || !isAddressInUse(error)) throw error;
    }
  }
}

/** What this process's open file descriptors are, most common kinds first (Linux /proc only). */
function openDescriptorSummary(): string {
  try {
    const kinds = new Map<string, number>();
    for (const fd of readdirSync('/proc/self/fd')) {
      let target: string;
      try {
        target = readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        continue;
      }
      const kind = target.replace(/\[\d+\]/, '[]').replace(/\/[^/]*$/, '/*');
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    }
    return [...kinds.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([kind, count]) => `${count} ${kind}`).join(', ');
  } catch (error) {
    return `(cannot list /proc/self/fd: ${(error as Error).message})`;
  }
}

async function startTestClusterOnce(n: number, overrides: Record<string, string>, options: TestClusterOptions): Promise<TestCluster> {
  const logger = options.logger ?? silentLogger();
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  const ports = await reservePorts(2 * n);
  const voters = ids.map((id, i) => `${id}@127.0.0.1:${ports[2 * i + 1]}`).join(',');
  const nodes = new Map<number, ClusterNode>();
  for (const [i, id] of ids.entries()) {
    nodes.set(id, {
      id,
      clientAddress: `127.0.0.1:${ports[2 * i]}`,
      internalAddress: `127.0.0.1:${ports[2 * i + 1]}`,
      dataDir: await mkdtemp(join(tmpdir(), `kavka-cluster-${id}-`)),
      broker: undefined,
    });
  }
  const mesh = options.proxies === true ? await ProxyMesh.start(new Map([...nodes].map(([id, node]) => [id, node.internalAddress]))) : undefined;
  /** Nodes whose next stop is a crash (shutdown.timeout.ms read as 0). */
  const crashing = new Set<number>();
  const rawClients = new Map<number, KavkaClient>();
  let destroyed = false;

  const configFor = (node: ClusterNode): BrokerConfig => {
    const built = buildBrokerConfig({
      overrides: new Map(
        Object.entries({
          ...CLUSTER_TIMING,
          listeners: `CLIENT://${node.clientAddress},INTERNAL://${node.internalAddress}`,
          'admin.listener': '127.0.0.1:0',
          'controller.quorum.voters': voters,
          'log.level': 'silent',
          ...(mesh === undefined ? {} : { 'peer.address.overrides': mesh.overridesFor(node.id) }),
          ...overrides,
          ...options.nodeOverrides?.[node.id],
          'node.id': String(node.id),
          'log.dirs': node.dataDir,
        }),
      ),
    });
    const get = ((key: Parameters<BrokerConfig['get']>[0]) => (key === 'shutdown.timeout.ms' && crashing.has(node.id) ? 0 : built.get(key))) as BrokerConfig['get'];
    return { ...built, get };
  };

  const startNode = async (node: ClusterNode): Promise<Broker> => {
    if (node.broker !== undefined) throw new Error(`node ${node.id} is already running`);
    crashing.delete(node.id);
    // A port just released may take a moment to be bindable again; retry briefly, bounded.
    const deadline = Date.now() + 5_000;
    for (;;) {
      try {
        node.broker = await startBroker({ config: configFor(node), logger, fs: options.nodeFs?.[node.id] });
        return node.broker;
      } catch (error) {
        if (!isAddressInUse(error) || Date.now() >= deadline) {
          throw new Error(`node ${node.id} did not start (CLIENT ${node.clientAddress}, INTERNAL ${node.internalAddress}): ${error instanceof Error ? error.message : String(error)}`, { cause: error });
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  };

  const stopWith = async (id: number, crash: boolean) => {
    const node = nodeOrThrow(id);
    const broker = node.broker;
    if (broker === undefined) return;
    if (crash) crashing.add(id);
    // A cached channel to a stopped node would keep dialing its port; a new one is made on use.
    rawClients.get(id)?.close();
    rawClients.delete(id);
    try {
      await broker.stop();
    } finally {
      node.broker = undefined;
      crashing.delete(id);
    }
  };

  const nodeOrThrow = (id: number): ClusterNode => {
    const node = nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id} in this cluster (nodes ${ids.join(',')})`);
    return node;
  };

  const cluster: TestCluster = {
    ids,
    nodes,
    mesh,
    broker(id) {
      const broker = nodeOrThrow(id).broker;
      if (broker === undefined) throw new Error(`node ${id} is not running`);
      return broker;
    },
    runningIds: () => ids.filter((id) => nodes.get(id)?.broker !== undefined),
    clientAddress: (id) => nodeOrThrow(id).clientAddress,
    activeControllerId() {
      const running = cluster.runningIds().map((id) => cluster.broker(id));
      const active = running.filter((b) => b.controller.isActive);
      if (active.length !== 1) return undefined;
      const id = active[0].nodeId;
      return running.every((b) => b.controller.controllerId === id) ? id : undefined;
    },
    waitForActiveController: (timeoutMs = 15_000) => waitFor(() => cluster.activeControllerId(), timeoutMs, 'one active controller that every running node agrees on'),
    raw(id) {
      let client = rawClients.get(id);
      if (client === undefined) {
        client = rawClient(nodeOrThrow(id).clientAddress);
        rawClients.set(id, client);
      }
      return client;
    },
    async metadata(id, topics = []) {
      const result = await call<object, MetadataResponse__Output>(cluster.raw(id), 'Metadata', { topics });
      if (!result.ok) throw new Error(`Metadata from node ${id} failed: ${result.details}`);
      return result.value;
    },
    stopNode: (id) => stopWith(id, false),
    crashNode: (id) => stopWith(id, true),
    async restartNode(id, restartOptions = {}) {
      const broker = await startNode(nodeOrThrow(id));
      if (restartOptions.waitReady !== false) await broker.waitReady(READY_TIMEOUT_MS);
      return broker;
    },
    waitFor,
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      for (const client of rawClients.values()) client.close();
      rawClients.clear();
      // Crash-style: a controlled shutdown of the last nodes would wait for a quorum that is gone.
      await Promise.allSettled(ids.map((id) => stopWith(id, true)));
      await mesh?.close();
      await Promise.all([...nodes.values()].map((node) => rm(node.dataDir, { recursive: true, force: true })));
    },
  };

  try {
    // startBroker of a multi-voter node returns once it listens; readiness needs the quorum.
    const started = await Promise.allSettled([...nodes.values()].map((node) => startNode(node)));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    await Promise.all(ids.map((id) => cluster.broker(id).waitReady(READY_TIMEOUT_MS)));
    // Each node is ready once its own image has it unfenced; wait until every image has them all.
    await waitFor(
      () => ids.every((id) => cluster.broker(id).controller.image.unfencedBrokerIds().length === ids.length),
      READY_TIMEOUT_MS,
      'every node to see every broker unfenced',
    );
  } catch (error) {
    await cluster.destroy();
    throw error;
  }
  return cluster;
}

// ------------------------------------------------------------------ requests tests make

const fastRetry = { retries: 8, initialRetryTimeMs: 20, maxRetryTimeMs: 250 };
/** Bound on anything that needs an election, a session expiry or a catch-up. */
export const SETTLE_MS = 10_000;

/** A TS client bootstrapped from the given nodes, with fast retries. */
export function clusterClient(cluster: TestCluster, bootstrap: number[]): Kavka {
  return new Kavka({ clientId: 'cluster-test', brokers: bootstrap.map((id) => cluster.clientAddress(id)), retry: fastRetry, requestTimeoutMs: 5_000 });
}

export async function createTopic(cluster: TestCluster, via: number, topic: object): Promise<CreateTopicsResponse__Output['topics'][number]> {
  const result = await call<object, CreateTopicsResponse__Output>(cluster.raw(via), 'CreateTopics', {
    topics: [{ configs: {}, assignments: [], ...topic }],
    validateOnly: false,
  });
  if (!result.ok) throw new Error(`CreateTopics via node ${via} failed: ${result.details}`);
  return result.value.topics[0];
}

/** Replica assignment: partition i gets replicas[i]. */
export function assignments(replicas: number[][]): { partition: number; brokerIds: number[] }[] {
  return replicas.map((brokerIds, partition) => ({ partition, brokerIds }));
}

export async function partitionOf(cluster: TestCluster, via: number, topic: string, partition: number): Promise<PartitionMetadata__Output> {
  const metadata = await cluster.metadata(via, [topic]);
  const t = metadata.topics.find((x) => x.name === topic);
  if (t === undefined || t.errorCode !== 'NONE') throw new Error(`node ${via} does not know topic ${topic}: ${t?.errorCode} ${t?.errorMessage}`);
  const p = t.partitions.find((x) => x.partition === partition);
  if (p === undefined) throw new Error(`node ${via} has no partition ${topic}-${partition}`);
  return p;
}

/** acks=all produce of plain records through the raw client; returns the partition's answer. */
export async function produce(cluster: TestCluster, via: number, topic: string, partition: number, values: string[]): Promise<ProduceResponse__Output['topics'][number]['partitions'][number]> {
  const result = await call<object, ProduceResponse__Output>(cluster.raw(via), 'Produce', {
    acks: -1,
    timeoutMs: 5_000,
    topics: [{ name: topic, partitions: [{ partition, records: values.map((v) => ({ value: Buffer.from(v) })) }] }],
  });
  if (!result.ok) throw new Error(`Produce via node ${via} failed: ${result.details}`);
  return result.value.topics[0].partitions[0];
}

/**
 * Produce to the node whose Metadata names it the partition's leader, retrying while it refuses
 * with NOT_LEADER_OR_FOLLOWER. A node's Metadata (its metadata image) runs ahead of its replica
 * manager: right after a create or a leader change it names itself leader while still refusing
 * writes, e.g. "led by node N, not by node N" (a src bug). A refused produce writes nothing, so this stays a first write.
 */
export async function produceToLeader(cluster: TestCluster, leader: number, topic: string, partition: number, values: string[]): Promise<ProduceResponse__Output['topics'][number]['partitions'][number]> {
  return waitFor(
    async () => {
      const answer = await produce(cluster, leader, topic, partition, values);
      return answer.errorCode === 'NOT_LEADER_OR_FOLLOWER' ? undefined : answer;
    },
    SETTLE_MS,
    `node ${leader} to open ${topic}-${partition}`,
  );
}

/** Reads exactly `count` records of `topic` from the beginning with the TS consumer (bounded). */
export async function consumeAll(client: Kavka, topic: string, count: number, partitions?: number[]): Promise<{ partition: number; message: KafkaMessage }[]> {
  const consumer = client.consumer({ maxWaitTimeMs: 50 });
  const out: { partition: number; message: KafkaMessage }[] = [];
  try {
    if (partitions === undefined) await consumer.subscribe({ topics: [topic], fromBeginning: true });
    else consumer.assign([{ topic, partitions, fromBeginning: true }]);
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        out.push({ partition, message });
      },
    });
    await waitFor(() => out.length >= count, SETTLE_MS, `${count} records of ${topic}`);
    // Anything beyond `count` would be a duplicate or a foreign record: give it a moment to show.
    await new Promise((resolve) => setTimeout(resolve, 100));
  } finally {
    await consumer.stop();
    await consumer.disconnect();
  }
  return out;
}

/** The ids of `ids` other than `not`. */
export function others(ids: readonly number[], ...not: number[]): number[] {
  return ids.filter((id) => !not.includes(id));
}
