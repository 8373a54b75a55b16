// The chaos target of real `kavka broker` processes on 127.0.0.1 (ProcessCluster). Every
// inter-node link goes through its own fault proxy (peer.address.overrides) and every node's
// CLIENT listener sits behind a proxy it advertises, so isolating a node cuts it off from its
// peers and from the workload's clients alike. Node logs go to `<reportDir>/node-N.log`.
// Like a restart policy, the target restarts a node that exits by itself (a halt on a failed
// metadata log) and reports it (watch). For the long disk-full profile each log dir can be a
// small tmpfs of its own (small-disks.ts).
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { KavkaError } from '../util/errors.js';
import { FAST_CLUSTER_TIMING, ProcessCluster } from '../harness/cluster-process.js';
import type { ChaosTarget, NodeEvent, NodeFault } from './target.js';
import { EXIT_METADATA_LOG_FAILED } from '../cli/exit-codes.js';
import { partitionBytes } from './disk-faults.js';
import { fillDisk, freeDisk, mountSmallDisks, unmountSmallDisks } from './small-disks.js';

export interface ProcessTargetOptions {
  size: number;
  dataRoot: string;
  logDir: string;
  /** Config for every node (timing, replication defaults). */
  overrides: Record<string, string>;
  /** Each node's log dir is a tmpfs of this many MiB, mounted before start (root only); metadata.log.dir stays on the ordinary disk. */
  smallDiskMiB?: number;
}

/** Size of each node's log dir file system when a scenario asks for small disks: room for a long run's data, small enough to fill at once. */
export const SMALL_DISK_MIB = 256;

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
  // disk-full and metadata-disk-full make storage writes fail with ENOSPC through the admin port.
  'debug.fault.injection.enable': 'true',
};

/** The supervisor's first restart comes this long after a node exits; each failed attempt doubles it, up to RESTART_MAX_MS. */
const RESTART_BASE_MS = 250;
const RESTART_MAX_MS = 4_000;
/** A node that ran this long before exiting starts again from RESTART_BASE_MS. */
const RESTART_RESET_MS = 10_000;

/**
 * A 3-node chaos cluster on 127.0.0.1 under `dataRoot`, logs in `logDir`. With smallDisks, each
 * node's log dir is a tmpfs of its own when this process may mount one; if not, the cluster runs
 * on the ordinary disk and `log` says why (disk-full steps then inject ENOSPC instead).
 */
export async function startProcessTarget(options: { dataRoot: string; logDir: string; size?: number; smallDisks?: boolean; log?: (line: string) => void }): Promise<ProcessTarget> {
  const base = { size: options.size ?? 3, dataRoot: options.dataRoot, logDir: options.logDir, overrides: CHAOS_CLUSTER_CONFIG };
  if (options.smallDisks !== true) return ProcessTarget.start(base);
  try {
    return await ProcessTarget.start({ ...base, smallDiskMiB: SMALL_DISK_MIB });
  } catch (error) {
    if (!(error instanceof SmallDisksUnavailable)) throw error;
    options.log?.(`  small disks unavailable (${error.message}); disk-full steps inject ENOSPC through the storage interface instead`);
    return ProcessTarget.start(base);
  }
}

class SmallDisksUnavailable extends Error {}

export class ProcessTarget implements ChaosTarget {
  readonly kind = 'process';
  readonly capabilities: ReadonlySet<string>;
  readonly nodeIds: readonly number[];
  private readonly delayed = new Set<number>();
  private readonly listeners = new Set<(event: NodeEvent) => void>();
  /** Per node: the supervisor's pending restart, failed attempts in a row, and when it last started. */
  private readonly supervision = new Map<number, { timer?: NodeJS.Timeout; attempts: number; startedAt: number }>();
  private closed = false;

  private constructor(
    readonly cluster: ProcessCluster,
    /** Log dirs that are tmpfs mounts of their own (unmounted by destroy). */
    private readonly smallDisks: readonly string[],
  ) {
    this.nodeIds = [...cluster.nodes.keys()].sort((a, b) => a - b);
    this.capabilities = new Set(['signals', 'links', 'one-way-links', 'delays', 'data-dir', 'storage-faults', 'metadata-faults', ...(smallDisks.length > 0 ? ['small-disks'] : [])]);
    for (const id of this.nodeIds) this.supervision.set(id, { attempts: 0, startedAt: Date.now() });
  }

  static async start(options: ProcessTargetOptions): Promise<ProcessTarget> {
    await mkdir(options.logDir, { recursive: true });
    const nodeDirs = Array.from({ length: options.size }, (_, i) => join(options.dataRoot, `node-${i + 1}`));
    const smallDisks = options.smallDiskMiB === undefined ? [] : nodeDirs;
    if (options.smallDiskMiB !== undefined) {
      try {
        await mountSmallDisks(nodeDirs, options.smallDiskMiB);
      } catch (error) {
        throw new SmallDisksUnavailable((error as Error).message);
      }
    }
    // The cluster reports exits from its start on; the target exists only once it has started
    // (a node that exits before then fails the readiness wait below).
    const supervisor: { target?: ProcessTarget } = {};
    const cluster = await ProcessCluster.start({
      size: options.size,
      dataRoot: options.dataRoot,
      proxies: true,
      clientProxies: true,
      logDir: options.logDir,
      overrides: options.overrides,
      // The metadata log stays on the ordinary disk: filling a log dir takes only it offline.
      ...(smallDisks.length === 0 ? {} : { nodeOverrides: (id: number) => ({ 'metadata.log.dir': join(options.dataRoot, `metadata-${id}`) }) }),
      onUnexpectedExit: (id, exit) => supervisor.target?.nodeExited(id, exit),
    }).catch(async (error: unknown) => {
      await unmountSmallDisks(smallDisks);
      throw error;
    });
    try {
      await cluster.waitReady(undefined, 30_000);
    } catch (error) {
      await cluster.destroy();
      await unmountSmallDisks(smallDisks);
      throw error;
    }
    supervisor.target = new ProcessTarget(cluster, smallDisks);
    return supervisor.target;
  }

  watch(listener: (event: NodeEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The supervisor: a node that exited by itself starts again after a backoff, as under docker's restart policy. */
  private nodeExited(id: number, exit: { code: number | null; signal: NodeJS.Signals | null }): void {
    if (this.closed) return;
    const state = this.supervision.get(id);
    if (state === undefined) return;
    if (Date.now() - state.startedAt >= RESTART_RESET_MS) state.attempts = 0;
    const reason = exit.code === EXIT_METADATA_LOG_FAILED ? `exit code ${exit.code}: its metadata log failed` : exit.signal !== null ? `signal ${exit.signal}` : `exit code ${exit.code}`;
    this.emit({ node: id, kind: 'exited', code: exit.code, what: `node ${id} exited by itself (${reason})` });
    this.scheduleRestart(id);
  }

  private scheduleRestart(id: number): void {
    const state = this.supervision.get(id);
    if (state === undefined || state.timer !== undefined || this.closed) return;
    const delayMs = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** state.attempts);
    state.timer = setTimeout(() => {
      state.timer = undefined;
      if (this.closed || this.cluster.isRunning(id)) return;
      state.attempts += 1;
      state.startedAt = Date.now();
      this.cluster.startNode(id).then(
        () => this.emit({ node: id, kind: 'restarted', what: `supervisor restarted node ${id} (attempt ${state.attempts}, ${delayMs} ms after the last exit)` }),
        (error: unknown) => {
          this.emit({ node: id, kind: 'restart-failed', what: `supervisor could not restart node ${id} (attempt ${state.attempts}): ${(error as Error).message.split('\n').slice(0, 3).join(' | ')}` });
          this.scheduleRestart(id);
        },
      );
    }, delayMs);
  }

  private emit(event: NodeEvent): void {
    for (const listener of this.listeners) listener(event);
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

  async storageFault(id: number, errno: string | null, store: 'log' | 'metadata' = 'log'): Promise<void> {
    const response = await fetch(`${this.adminUrl(id)}/debug/storage-fault`, { method: 'POST', body: JSON.stringify({ errno, store }), signal: AbortSignal.timeout(5_000) });
    if (!response.ok) throw new KavkaError('UNKNOWN_SERVER_ERROR', `node ${id} refused the storage fault: ${await response.text()}`);
  }

  fillDisk(id: number): Promise<number> {
    if (this.smallDisks.length === 0) throw new KavkaError('UNKNOWN_SERVER_ERROR', 'this cluster runs without small disks');
    return fillDisk(this.cluster.dataDir(id));
  }

  freeDisk(id: number): Promise<void> {
    return freeDisk(this.cluster.dataDir(id));
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
    this.closed = true;
    for (const state of this.supervision.values()) clearTimeout(state.timer);
    await this.cluster.destroy();
    await unmountSmallDisks(this.smallDisks);
  }

  private mesh() {
    const mesh = this.cluster.mesh;
    if (mesh === undefined) throw new KavkaError('UNKNOWN_SERVER_ERROR', 'the process target runs with proxies');
    return mesh;
  }
}
