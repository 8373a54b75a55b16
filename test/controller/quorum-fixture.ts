// In-process controller quorums for the QuorumController tests: real RaftNodes over the
// in-memory network with in-memory storage, each wrapped by a QuorumController, all driven by one
// ManualClock. Nothing here reads the wall clock or opens a socket: time moves only in step(),
// and between steps the network is drained (zero-delay deliveries) and every microtask and
// setImmediate callback has run. A run is a function of the seed.
//
// Scenarios wait with `await q.until('what', probe)` (bounded by a step count) and drive a
// request to completion with `await q.settle(promise)`.
import { QuorumController, type BrokerImage, type MetadataImage, type QuorumControllerOptions } from '../../src/controller/index.js';
import type { CreateTopicRequest } from '../../src/controller/topic-operations.js';
import { MemoryRaftNetwork, MemoryRaftStorage, RaftNode, type NodeId } from '../../src/raft/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { Prng } from '../raft/prng.js';

export const TICK_MS = 10;
export const ELECTION_TIMEOUT_TICKS = 10;
export const HEARTBEAT_INTERVAL_TICKS = 2;
/** Virtual milliseconds per step: half a Raft tick. */
export const STEP_MS = 5;
export const DEFAULT_MAX_STEPS = 4000;

export type ControllerTuning = Partial<Omit<QuorumControllerOptions, 'nodeId' | 'raft' | 'clock' | 'logger' | 'random' | 'newTopicId'>>;

export interface QuorumOptions {
  readonly voters: readonly NodeId[];
  readonly seed?: number;
  readonly controller?: ControllerTuning;
}

const DEFAULT_TUNING: Omit<QuorumControllerOptions, 'nodeId' | 'raft' | 'clock' | 'logger' | 'random' | 'newTopicId'> = {
  defaultPartitions: 1,
  defaultReplicationFactor: 1,
  deleteTopicEnable: true,
  sessionTimeoutMs: 900,
  leadership: { shrinkIsrOnFence: true, uncleanLeaderElectionDefault: false },
  autoLeaderRebalance: true,
  leaderImbalanceCheckIntervalMs: 3_600_000,
  snapshotBytes: 1 << 30,
};

export class ControllerQuorum {
  readonly clock = new ManualClock();
  readonly network = new MemoryRaftNetwork(this.clock);
  readonly prng: Prng;
  /** Each node's durable Raft state; it survives stopNode so startNode restarts from it. */
  readonly storages = new Map<NodeId, MemoryRaftStorage>();
  private readonly running = new Map<NodeId, QuorumController>();
  private readonly rafts = new Map<NodeId, RaftNode>();
  private readonly tuning: typeof DEFAULT_TUNING;
  private topicIds = 0;
  /** Steps taken so far (for bounds in messages). */
  steps = 0;

  private constructor(readonly options: QuorumOptions) {
    this.prng = new Prng(options.seed ?? 1);
    this.tuning = { ...DEFAULT_TUNING, ...options.controller };
  }

  static async start(options: QuorumOptions): Promise<ControllerQuorum> {
    const quorum = new ControllerQuorum(options);
    for (const id of options.voters) await quorum.startNode(id);
    return quorum;
  }

  /** Opens a RaftNode on the node's storage (fresh, or what it left) and starts a controller on it. */
  async startNode(id: NodeId): Promise<QuorumController> {
    if (this.running.has(id)) throw new Error(`node ${id} is already running`);
    let storage = this.storages.get(id);
    if (storage === undefined) {
      storage = new MemoryRaftStorage();
      this.storages.set(id, storage);
    }
    const raftRandom = this.prng.fork();
    const raft = await RaftNode.open({
      nodeId: id,
      bootstrap: { voters: [...this.options.voters], learners: [] },
      tickMs: TICK_MS,
      electionTimeoutTicks: ELECTION_TIMEOUT_TICKS,
      heartbeatIntervalTicks: HEARTBEAT_INTERVAL_TICKS,
      preVote: true,
      checkQuorum: true,
      storage,
      transport: this.network.endpoint(id),
      clock: this.clock,
      random: () => raftRandom.next(),
      logger: silentLogger(),
    });
    const controllerRandom = this.prng.fork();
    const controller = await QuorumController.start({
      ...this.tuning,
      nodeId: id,
      raft,
      random: () => controllerRandom.next(),
      newTopicId: () => `topic-id-${++this.topicIds}`,
      clock: this.clock,
      logger: silentLogger(),
    });
    this.running.set(id, controller);
    this.rafts.set(id, raft);
    await this.flush();
    return controller;
  }

  /** Closes the node's controller and Raft node; its storage stays for a restart. */
  async stopNode(id: NodeId): Promise<void> {
    const controller = this.running.get(id);
    if (controller === undefined) return;
    this.running.delete(id);
    this.rafts.delete(id);
    await controller.close();
    await this.flush();
  }

  controller(id: NodeId): QuorumController {
    const controller = this.running.get(id);
    if (controller === undefined) throw new Error(`node ${id} is not running`);
    return controller;
  }

  raft(id: NodeId): RaftNode {
    const raft = this.rafts.get(id);
    if (raft === undefined) throw new Error(`node ${id} is not running`);
    return raft;
  }

  ids(): NodeId[] {
    return [...this.running.keys()].sort((a, b) => a - b);
  }

  controllers(): QuorumController[] {
    return this.ids().map((id) => this.controller(id));
  }

  /** The ids of the running nodes that consider themselves the active controller. */
  activeIds(): NodeId[] {
    return this.ids().filter((id) => this.controller(id).isActive);
  }

  /** The single active controller's id, if exactly one running node is active. */
  activeId(): NodeId | undefined {
    const active = this.activeIds();
    return active.length === 1 ? active[0] : undefined;
  }

  /** The active controller, or a thrown error naming how many nodes think they are active. */
  active(): QuorumController {
    const id = this.activeId();
    if (id === undefined) throw new Error(`expected one active controller, found [${this.activeIds().join(',')}]`);
    return this.controller(id);
  }

  /** Waits until one node is active and every node among `among` follows it in its term. */
  async agreedActive(among: readonly NodeId[] = this.ids(), maxSteps = DEFAULT_MAX_STEPS): Promise<NodeId> {
    return this.until(
      'an active controller every node follows',
      () => {
        const id = this.activeId();
        if (id === undefined) return undefined;
        const term = this.raft(id).term;
        return among.every((n) => this.controller(n).controllerId === id && this.raft(n).term === term) ? id : undefined;
      },
      maxSteps,
    );
  }

  /**
   * Delivers every in-flight message without moving time, letting each delivery's work (persist,
   * send, apply: all promise chains on in-memory storage) finish before the next round.
   */
  async flush(): Promise<void> {
    for (let round = 0; round < 1000; round++) {
      const before = this.network.delivered + this.network.dropped;
      this.clock.advance(0);
      await drainMicrotasks();
      if (this.network.delivered + this.network.dropped === before) return;
    }
    throw new Error('the network did not go quiet within 1000 delivery rounds');
  }

  /** Moves time by `ms`, then drains; checks the one-active-controller-per-term invariant. */
  async step(ms = STEP_MS): Promise<void> {
    this.steps++;
    this.clock.advance(ms);
    await drainMicrotasks();
    await this.flush();
    this.checkOneActivePerTerm();
  }

  /** Two nodes active in the same term would let two controllers decide at once. */
  checkOneActivePerTerm(): void {
    const byTerm = new Map<number, NodeId[]>();
    for (const id of this.activeIds()) {
      const term = this.raft(id).term;
      byTerm.set(term, [...(byTerm.get(term) ?? []), id]);
    }
    for (const [term, ids] of byTerm) {
      if (ids.length > 1) throw new Error(`nodes ${ids.join(',')} are all active controllers in term ${term}`);
    }
  }

  /** Runs for `ms` of virtual time in steps. */
  async runFor(ms: number): Promise<void> {
    for (let t = 0; t < ms; t += STEP_MS) await this.step();
  }

  /** Steps until `probe` returns a value other than undefined/false; fails after maxSteps. */
  async until<T>(what: string, probe: () => T | undefined | false, maxSteps = DEFAULT_MAX_STEPS): Promise<T> {
    for (let i = 0; i <= maxSteps; i++) {
      const value = probe();
      if (value !== undefined && value !== false) return value;
      if (i < maxSteps) await this.step();
    }
    throw new Error(`${what}: not reached within ${maxSteps} steps (${maxSteps * STEP_MS} virtual ms)`);
  }

  /** Steps until `promise` settles, then returns its outcome (rethrowing a rejection). */
  async settle<T>(promise: Promise<T>, maxSteps = DEFAULT_MAX_STEPS): Promise<T> {
    let settled = false;
    const observed = promise.then(
      (value) => {
        settled = true;
        return value;
      },
      (error: unknown) => {
        settled = true;
        throw error;
      },
    );
    observed.catch(() => undefined);
    await drainMicrotasks();
    await this.until('the request to settle', () => settled, maxSteps);
    return observed;
  }

  /** Every running node has applied the same offset and holds the same image. */
  converged(ids: readonly NodeId[] = this.ids()): boolean {
    const [first, ...rest] = ids.map((id) => this.controller(id));
    return rest.every((c) => c.metadataOffset === first.metadataOffset && sameImage(c.image, first.image));
  }

  async close(): Promise<void> {
    for (const id of this.ids()) await this.stopNode(id);
  }
}

/** Lets every queued microtask, and anything they queue, run (one macrotask turn). */
export function drainMicrotasks(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}

// -------------------------------------------------------------------------------------------------
// Image comparison and request builders

export function topicRequest(name: string, numPartitions: number, replicationFactor: number, configs: Record<string, string> = {}): CreateTopicRequest {
  return { name, numPartitions, replicationFactor, configs, assignments: new Map() };
}

export function assignedTopicRequest(name: string, assignments: number[][], configs: Record<string, string> = {}): CreateTopicRequest {
  return { name, configs, assignments: new Map(assignments.map((replicas, p) => [p, replicas])) };
}

function brokerView(b: BrokerImage): unknown {
  return {
    nodeId: b.nodeId,
    endpoints: [...b.endpoints.entries()].sort(([a], [c]) => (a < c ? -1 : a > c ? 1 : 0)),
    rack: b.rack,
    incarnationId: b.incarnationId,
    fenced: b.fenced,
  };
}

/** A plain value holding everything in an image but its offset, for toEqual. */
export function imageView(image: MetadataImage): unknown {
  return {
    brokers: [...image.brokers.values()].sort((a, b) => a.nodeId - b.nodeId).map(brokerView),
    topics: [...image.topics.values()]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((t) => ({
        name: t.name,
        topicId: t.topicId,
        configs: [...t.configs.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        partitions: t.partitions.map((p) => ({ ...p, replicas: [...p.replicas], isr: [...p.isr] })),
      })),
    nextProducerId: image.nextProducerId,
  };
}

export function sameImage(a: MetadataImage, b: MetadataImage): boolean {
  return JSON.stringify(imageView(a)) === JSON.stringify(imageView(b));
}
