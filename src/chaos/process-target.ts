// The chaos target of real `kavka broker` processes on 127.0.0.1 (ProcessCluster). Every
// inter-node link goes through its own fault proxy (peer.address.overrides) and every node's
// CLIENT listener sits behind a proxy it advertises, so isolating a node cuts it off from its
// peers and from the workload's clients alike. Node logs go to `<reportDir>/node-N.log`.
import { mkdir } from 'node:fs/promises';
import { KavkaError } from '../util/errors.js';
import { FAST_CLUSTER_TIMING, ProcessCluster } from '../harness/cluster-process.js';
import type { ChaosTarget, NodeFault } from './target.js';
import { partitionBytes } from './disk-faults.js';

export interface ProcessTargetOptions {
  size: number;
  dataRoot: string;
  logDir: string;
  /** Config for every node (timing, replication defaults). */
  overrides: Record<string, string>;
}

/**
 * Config of a chaos cluster: scaled-down timing (elections in ~0.3 s, fencing after 1.5 s, ISR
 * shrink after 3 s), small segments so followers have sealed segments to damage, RF 3 with
 * min.insync.replicas 2.
 */
export const CHAOS_CLUSTER_CONFIG: Record<string, string> = {
  ...FAST_CLUSTER_TIMING,
  'replica.lag.time.max.ms': '3000',
  'replica.fetch.wait.max.ms': '200',
  'replica.fetch.backoff.ms': '100',
  'log.segment.bytes': '16384',
  'default.replication.factor': '3',
  'min.insync.replicas': '2',
  'shutdown.timeout.ms': '10000',
  // The disk-full scenario flips storage writes to ENOSPC through the admin port.
  'debug.fault.injection.enable': 'true',
};

/** A 3-node chaos cluster on 127.0.0.1 under `dataRoot`, logs in `logDir`. */
export function startProcessTarget(options: { dataRoot: string; logDir: string; profile: string; size?: number }): Promise<ProcessTarget> {
  return ProcessTarget.start({ size: options.size ?? 3, dataRoot: options.dataRoot, logDir: options.logDir, overrides: CHAOS_CLUSTER_CONFIG });
}

export class ProcessTarget implements ChaosTarget {
  readonly kind = 'process';
  readonly capabilities: ReadonlySet<string> = new Set(['signals', 'links', 'one-way-links', 'delays', 'data-dir', 'storage-faults']);
  readonly nodeIds: readonly number[];
  private readonly delayed = new Set<number>();

  private constructor(readonly cluster: ProcessCluster) {
    this.nodeIds = [...cluster.nodes.keys()].sort((a, b) => a - b);
  }

  static async start(options: ProcessTargetOptions): Promise<ProcessTarget> {
    await mkdir(options.logDir, { recursive: true });
    const cluster = await ProcessCluster.start({ size: options.size, dataRoot: options.dataRoot, proxies: true, clientProxies: true, logDir: options.logDir, overrides: options.overrides });
    try {
      await cluster.waitReady(undefined, 30_000);
    } catch (error) {
      await cluster.destroy();
      throw error;
    }
    return new ProcessTarget(cluster);
  }

  bootstrap(): string[] {
    return this.nodeIds.map((id) => this.cluster.node(id).advertisedClientAddress);
  }

  adminUrl(id: number): string {
    const proc = this.cluster.node(id).process;
    if (proc === undefined) throw new KavkaError('BROKER_NOT_AVAILABLE', `node ${id} is not running`);
    return `http://${proc.adminAddress}`;
  }

  async fault(id: number, fault: NodeFault): Promise<void> {
    const signal = ({ kill: 'SIGKILL', stop: 'SIGTERM', pause: 'SIGSTOP', resume: 'SIGCONT' } as const)[fault];
    await this.cluster.signal(id, signal);
  }

  async start(id: number): Promise<void> {
    if (!this.cluster.isRunning(id)) await this.cluster.startNode(id);
  }

  isRunning(id: number): boolean {
    return this.cluster.isRunning(id);
  }

  async isolate(id: number): Promise<void> {
    this.mesh().isolate(id, 'blackhole');
    this.cluster.clientProxy(id).cut('blackhole');
    return Promise.resolve();
  }

  async cutLink(from: number, to: number): Promise<void> {
    this.mesh().cutLink(from, to, 'blackhole');
    return Promise.resolve();
  }

  async delay(id: number, ms: number): Promise<void> {
    for (const other of this.nodeIds) {
      if (other === id) continue;
      this.mesh().link(id, other).setDelay(ms);
      this.mesh().link(other, id).setDelay(ms);
    }
    this.delayed.add(id);
    return Promise.resolve();
  }

  async heal(): Promise<void> {
    this.mesh().heal();
    for (const id of this.nodeIds) this.cluster.clientProxy(id).heal();
    for (const id of this.delayed) await this.delay(id, 0);
    this.delayed.clear();
  }

  async storageFault(id: number, errno: string | null): Promise<void> {
    const response = await fetch(`${this.adminUrl(id)}/debug/storage-fault`, { method: 'POST', body: JSON.stringify({ errno }), signal: AbortSignal.timeout(5_000) });
    if (!response.ok) throw new KavkaError('UNKNOWN_SERVER_ERROR', `node ${id} refused the storage fault: ${await response.text()}`);
  }

  logFile(id: number): string | undefined {
    return this.cluster.logFile(id);
  }

  dataDir(id: number): string {
    return this.cluster.dataDir(id);
  }

  /** A replica's segment files back to back, read from its data dir. */
  replicaBytes(id: number, topic: string, partition: number): Promise<Buffer> {
    return partitionBytes(this.cluster.dataDir(id), topic, partition);
  }

  async destroy(): Promise<void> {
    await this.cluster.destroy();
  }

  private mesh() {
    const mesh = this.cluster.mesh;
    if (mesh === undefined) throw new KavkaError('UNKNOWN_SERVER_ERROR', 'the process target runs with proxies');
    return mesh;
  }
}
