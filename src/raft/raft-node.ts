// RaftNode: the driver around one RaftCore (etcd-raft's node.go). It owns what the core must not:
// the real timer (a tick every tickMs), the durable store (RaftStorage), the network
// (RaftTransport), promises for proposals, and the application's callbacks.
//
// The Ready loop runs strictly in the contract's order (raft-core.ts header):
//   1. storage.persist(rd)  — one atomic, fsynced write; nothing is sent before it resolves
//   2. transport.send(each message)
//   3. apply rd.snapshot, then rd.committedEntries, in order, awaiting the apply handler
//   4. core.advance(rd)
// One Ready is outstanding at a time. tick/step/propose may run while the loop awaits (the core
// allows it); whatever they produce goes into the next Ready.
//
// Lifecycle: open() (load from storage, build the core) -> start() (replay the persisted snapshot
// to the apply handler, start ticking and receiving) -> close(). A storage or apply failure, or a
// broken invariant, moves the node to `failed`: it stops ticking, fails every pending call, and
// notifies onFailure. The owner then closes it (and should exit: the disk is not trustworthy).
//
// Who calls it: one owner (the controller) and the transport's receive path, all on the Node
// event loop. Every public method is safe to call across awaits; none blocks the loop.
import { assert, assertNever } from '../util/assert.js';
import type { Clock } from '../util/clock.js';
import { KavkaError, toKavkaError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { Message } from './messages.js';
import { RaftCore } from './raft-core.js';
import type { RaftStorage } from './raft-storage.js';
import type { RaftTransport } from './raft-transport.js';
import type { Ready } from './ready.js';
import type { ClusterConfig, ConfigChange, Entry, NodeId, ProposeResult, RaftStatus, RoleKind, Snapshot } from './types.js';

export interface RaftNodeOptions {
  readonly nodeId: NodeId;
  /** The configuration of a brand-new cluster (controller.quorum.voters); the log's wins later. */
  readonly bootstrap: ClusterConfig;
  /** Wall-clock length of one tick. */
  readonly tickMs: number;
  readonly electionTimeoutTicks: number;
  readonly heartbeatIntervalTicks: number;
  readonly preVote?: boolean;
  readonly checkQuorum?: boolean;
  readonly maxEntriesPerAppend?: number;
  readonly maxInflightAppends?: number;
  /** This node's Raft store directory id (KIP-853; see raft-core.ts, "Rejoining"). */
  readonly directoryId?: string;
  /** Bound on proposals (and config changes) awaiting their commit. Default 1024. */
  readonly maxPendingProposals?: number;
  readonly storage: RaftStorage;
  readonly transport: RaftTransport;
  readonly clock: Clock;
  /** Uniform in [0, 1): randomized election timeouts. */
  readonly random: () => number;
  /** The node's logger; RaftNode adds { nodeId, component: 'raft' }. */
  readonly logger: Logger;
}

/** What the state machine applies, in log order. */
export type ApplyEvent =
  /** Replace the whole state with the snapshot's (at start-up, or sent by the leader). */
  | { readonly kind: 'snapshot'; readonly snapshot: Snapshot }
  /** A committed entry. Noop and config entries come too (a state machine skips them). */
  | { readonly kind: 'entry'; readonly entry: Entry };

export type ApplyHandler = (event: ApplyEvent) => void | Promise<void>;

export interface LeaderChange {
  readonly leaderId: NodeId | undefined;
  readonly term: number;
  readonly role: RoleKind;
}

export interface Committed {
  readonly index: number;
  readonly term: number;
}

interface ProposalWaiter {
  readonly term: number;
  readonly resolve: (committed: Committed) => void;
  readonly reject: (error: Error) => void;
}

interface TransferWaiter {
  readonly target: NodeId;
  ticksLeft: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

interface SnapshotRequest {
  readonly index: number;
  readonly data: Uint8Array;
  readonly resolve: (taken: boolean) => void;
  readonly reject: (error: Error) => void;
}

// opened -> running -> closed; opened | running -> failed -> closed.
type NodeState = 'opened' | 'running' | 'failed' | 'closed';

export class RaftNode {
  readonly id: NodeId;
  private readonly core: RaftCore;
  private readonly options: RaftNodeOptions;
  private readonly logger: Logger;
  private readonly maxPendingProposals: number;
  private state: NodeState = 'opened';
  private failure: KavkaError | undefined;

  private applyHandler: ApplyHandler = () => undefined;
  private readonly leaderListeners = new Set<(change: LeaderChange) => void>();
  private readonly failureListeners = new Set<(error: KavkaError) => void>();
  private lastSoft: LeaderChange;

  /** Pending proposals by log index. Invariant: every key > the applied index. */
  private readonly proposals = new Map<number, ProposalWaiter>();
  private transfer: TransferWaiter | undefined;
  private snapshotRequests: SnapshotRequest[] = [];

  private cancelTick: (() => void) | undefined;
  /** The last persisted hard state said rejoining (for the log line when it ends). */
  private rejoiningLogged: boolean;
  private loopRunning = false;
  private loopDone: Promise<void> = Promise.resolve();
  private readonly startSnapshot: Snapshot | undefined;

  private constructor(options: RaftNodeOptions, core: RaftCore, startSnapshot: Snapshot | undefined) {
    this.id = options.nodeId;
    this.options = options;
    this.core = core;
    this.startSnapshot = startSnapshot;
    this.logger = options.logger.child({ nodeId: options.nodeId, component: 'raft' });
    this.maxPendingProposals = options.maxPendingProposals ?? 1024;
    assert(options.tickMs >= 1, 'tickMs >= 1');
    assert(this.maxPendingProposals >= 1, 'maxPendingProposals >= 1');
    const soft = core.softState();
    this.lastSoft = { leaderId: soft.leaderId, term: soft.term, role: soft.role };
    this.rejoiningLogged = core.status().rejoining;
  }

  /** Loads the durable state and builds the core. Nothing runs until start(). */
  static async open(options: RaftNodeOptions): Promise<RaftNode> {
    const durable = await options.storage.load();
    const core = new RaftCore(
      {
        id: options.nodeId,
        electionTimeoutTicks: options.electionTimeoutTicks,
        heartbeatIntervalTicks: options.heartbeatIntervalTicks,
        random: options.random,
        preVote: options.preVote,
        checkQuorum: options.checkQuorum,
        maxEntriesPerAppend: options.maxEntriesPerAppend,
        maxInflightAppends: options.maxInflightAppends,
        directoryId: options.directoryId,
      },
      durable,
      options.bootstrap,
    );
    const node = new RaftNode(options, core, durable.snapshot);
    node.logger.info(
      { term: durable.hardState.term, votedFor: durable.hardState.votedFor, commit: durable.hardState.commit, snapshotIndex: durable.snapshot?.metadata.index ?? 0, entries: durable.entries.length, directoryId: options.directoryId },
      'Raft state loaded',
    );
    if (durable.hardState.rejoining === true) {
      node.logger.warn(
        { directoryId: options.directoryId },
        'this Raft store replaces one whose data was deleted: the node follows the metadata log but neither votes nor stands for election until the controller removes its old voter identity and adds it back with this directory id',
      );
    }
    return node;
  }

  // ---------------------------------------------------------------------------------------------
  // Lifecycle

  /** Hands the persisted snapshot (if any) to the apply handler, then starts ticking and receiving. */
  async start(): Promise<void> {
    assert(this.state === 'opened', `start() an opened node, not a ${this.state} one`);
    this.options.transport.listen((message) => this.receive(message));
    if (this.startSnapshot !== undefined && this.startSnapshot.metadata.index > 0) {
      try {
        await this.applyHandler({ kind: 'snapshot', snapshot: this.startSnapshot });
      } catch (error) {
        this.fail(error);
        throw this.failure;
      }
    }
    if (this.state !== 'opened') return; // closed while the snapshot was applied
    this.state = 'running';
    this.scheduleTick();
    this.kick();
  }

  /** Stops the timer, finishes the Ready in progress, fails pending calls, closes transport and storage. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.cancelTick?.();
    await this.loopDone;
    this.rejectAll(new KavkaError('NOT_CONTROLLER', `Raft node ${this.id} is closed`));
    await this.options.transport.close();
    await this.options.storage.close();
    this.logger.info('Raft node closed');
  }

  // ---------------------------------------------------------------------------------------------
  // Callbacks

  /** The state machine. Set before start(); it is awaited, so apply order is log order. */
  onApply(handler: ApplyHandler): void {
    this.applyHandler = handler;
  }

  /** Called whenever the leader, term or role changes. Returns an unsubscribe function. */
  onLeaderChange(listener: (change: LeaderChange) => void): () => void {
    this.leaderListeners.add(listener);
    return () => this.leaderListeners.delete(listener);
  }

  /** Called once if the node fails (storage error, apply error, broken invariant). */
  onFailure(listener: (error: KavkaError) => void): () => void {
    this.failureListeners.add(listener);
    return () => this.failureListeners.delete(listener);
  }

  // ---------------------------------------------------------------------------------------------
  // Observers

  get leaderId(): NodeId | undefined {
    return this.lastSoft.leaderId;
  }

  get term(): number {
    return this.lastSoft.term;
  }

  get role(): RoleKind {
    return this.lastSoft.role;
  }

  get isLeader(): boolean {
    return this.lastSoft.role === 'leader';
  }

  get isRunning(): boolean {
    return this.state === 'running';
  }

  status(): RaftStatus {
    return this.core.status();
  }

  // ---------------------------------------------------------------------------------------------
  // Inputs

  /** An inbound message from the transport. Misrouted messages are dropped. */
  receive(message: Message): void {
    if (this.state !== 'running') return;
    if (message.to !== this.id || message.from === this.id) {
      this.logger.debug({ from: message.from, to: message.to }, 'dropped a misrouted Raft message');
      return;
    }
    this.guard(() => this.core.step(message));
  }

  /**
   * Proposes application data. Resolves once the entry is committed and applied here; rejects
   * with NOT_CONTROLLER (leaderHint = the known leader) if this node does not lead, or if it
   * loses leadership before the entry is applied (the entry may still commit: callers retry
   * idempotent operations only).
   */
  propose(data: Uint8Array): Promise<Committed> {
    return this.proposeWith(() => this.core.propose(data));
  }

  addVoter(nodeId: NodeId): Promise<Committed> {
    return this.changeConfig({ type: 'add-voter', nodeId });
  }

  removeVoter(nodeId: NodeId): Promise<Committed> {
    return this.changeConfig({ type: 'remove-voter', nodeId });
  }

  addLearner(nodeId: NodeId): Promise<Committed> {
    return this.changeConfig({ type: 'add-learner', nodeId });
  }

  removeLearner(nodeId: NodeId): Promise<Committed> {
    return this.changeConfig({ type: 'remove-learner', nodeId });
  }

  /** A single-server membership change; resolves when it is committed and applied. */
  changeConfig(change: ConfigChange): Promise<Committed> {
    return this.proposeWith(() => this.core.proposeConfigChange(change));
  }

  /**
   * Moves leadership to `target` (thesis §3.10). Resolves when `target` leads; rejects with
   * REQUEST_TIMED_OUT after two election timeouts, or NOT_CONTROLLER if another node leads.
   */
  transferLeadership(target: NodeId): Promise<void> {
    const unavailable = this.unavailableError();
    if (unavailable !== undefined) return Promise.reject(unavailable);
    if (this.transfer !== undefined) {
      return Promise.reject(new KavkaError('NOT_CONTROLLER', `a transfer to ${this.transfer.target} is in progress`, { retriable: true }));
    }
    const result = this.guardValue(() => this.core.transferLeadership(target));
    if (result === undefined) return Promise.reject(this.failure);
    if (!result.ok) return Promise.reject(rejectionError(result));
    const promise = new Promise<void>((resolve, reject) => {
      this.transfer = { target, ticksLeft: 2 * this.options.electionTimeoutTicks, resolve, reject };
    });
    this.afterInput();
    return promise;
  }

  /** Starts an election now (tools and tests; an election timeout does the same). */
  campaign(): void {
    if (this.state !== 'running') return;
    this.guard(() => this.core.campaign());
  }

  /**
   * The state machine hands in a snapshot of its state after applying entries 1..index. The log
   * drops those entries (in memory and on disk) and the snapshot goes to members that need it.
   * Resolves true once it is durable, false if the log was already compacted that far.
   * May be called from inside the apply handler: it then runs once the current Ready is advanced.
   */
  snapshot(index: number, data: Uint8Array): Promise<boolean> {
    const unavailable = this.unavailableError();
    if (unavailable !== undefined) return Promise.reject(unavailable);
    return new Promise<boolean>((resolve, reject) => {
      this.snapshotRequests.push({ index, data, resolve, reject });
      if (!this.loopRunning) this.takeSnapshots();
    });
  }

  // ---------------------------------------------------------------------------------------------
  // The Ready loop

  /** Starts the loop unless it runs; it runs until the core has no Ready. */
  private kick(): void {
    if (this.loopRunning || this.state !== 'running' || !this.core.hasReady()) return;
    this.loopRunning = true;
    this.loopDone = this.runReadyLoop();
  }

  private async runReadyLoop(): Promise<void> {
    try {
      while (this.state === 'running' && this.core.hasReady()) {
        await this.processReady(this.core.ready());
        this.takeSnapshots();
      }
    } catch (error) {
      this.fail(error);
    } finally {
      // Synchronously after the last hasReady() check, so no wake-up is lost.
      this.loopRunning = false;
    }
  }

  private async processReady(rd: Ready): Promise<void> {
    if (rd.hardState !== undefined || rd.snapshot !== undefined || rd.truncateFrom !== undefined || rd.entries.length > 0) {
      await this.options.storage.persist(rd);
    }
    // Durable now: messages that depend on it (votes, acknowledgements) may go.
    for (const message of rd.messages) this.options.transport.send(message);
    if (rd.snapshot !== undefined) {
      await this.applyHandler({ kind: 'snapshot', snapshot: rd.snapshot });
      this.settleCoveredBySnapshot(rd.snapshot.metadata.index);
    }
    for (const entry of rd.committedEntries) {
      await this.applyHandler({ kind: 'entry', entry });
      this.settleApplied(entry);
    }
    const wasRejoining = rd.hardState === undefined ? false : this.rejoiningLogged;
    this.core.advance(rd);
    if (rd.hardState !== undefined) {
      this.rejoiningLogged = rd.hardState.rejoining === true;
      if (wasRejoining && !this.rejoiningLogged) this.logger.info({ directoryId: this.options.directoryId }, 'rejoined the metadata quorum as a voter with this store; it votes again');
    }
    this.checkSoftState();
  }

  private takeSnapshots(): void {
    const requests = this.snapshotRequests;
    this.snapshotRequests = [];
    for (const request of requests) this.takeSnapshot(request);
  }

  private takeSnapshot(request: SnapshotRequest): void {
    const applied = this.core.status().applied;
    if (request.index > applied) {
      request.reject(new KavkaError('INVALID_REQUEST', `snapshot at ${request.index} is past the applied index ${applied}`));
      return;
    }
    let compacted: boolean;
    try {
      compacted = this.core.compact(request.index, request.data);
    } catch (error) {
      request.reject(toKavkaError(error));
      return;
    }
    if (!compacted) {
      request.resolve(false);
      return;
    }
    const snapshot = this.core.currentSnapshot();
    this.options.storage.compact(snapshot).then(
      () => {
        this.logger.info({ index: snapshot.metadata.index, term: snapshot.metadata.term, bytes: snapshot.data.length }, 'Raft snapshot taken');
        request.resolve(true);
      },
      (error: unknown) => {
        request.reject(toKavkaError(error, 'KAFKA_STORAGE_ERROR'));
        this.fail(error);
      },
    );
  }

  // ---------------------------------------------------------------------------------------------
  // Proposals

  private proposeWith(propose: () => ProposeResult): Promise<Committed> {
    const unavailable = this.unavailableError();
    if (unavailable !== undefined) return Promise.reject(unavailable);
    if (this.proposals.size >= this.maxPendingProposals) {
      return Promise.reject(new KavkaError('REQUEST_TIMED_OUT', `${this.proposals.size} proposals are pending (maxPendingProposals)`, { retriable: true }));
    }
    const result = this.guardValue(propose);
    if (result === undefined) return Promise.reject(this.failure);
    if (!result.ok) return Promise.reject(rejectionError(result));
    const { index, term } = result;
    const promise = new Promise<Committed>((resolve, reject) => {
      assert(!this.proposals.has(index), `one proposal per index (${index})`);
      this.proposals.set(index, { term, resolve, reject });
    });
    this.afterInput();
    return promise;
  }

  private settleApplied(entry: Entry): void {
    const waiter = this.proposals.get(entry.index);
    if (waiter === undefined) return;
    this.proposals.delete(entry.index);
    if (entry.term === waiter.term) waiter.resolve({ index: entry.index, term: entry.term });
    else waiter.reject(this.notControllerError(`the entry at ${entry.index} was replaced by term ${entry.term}'s leader`));
  }

  private settleCoveredBySnapshot(index: number): void {
    for (const [at, waiter] of this.proposals) {
      if (at > index) continue;
      this.proposals.delete(at);
      waiter.reject(this.notControllerError(`a leader's snapshot covers index ${at}; the proposal's outcome is unknown`));
    }
  }

  private rejectAll(error: Error): void {
    for (const waiter of this.proposals.values()) waiter.reject(error);
    this.proposals.clear();
    this.transfer?.reject(error);
    this.transfer = undefined;
    for (const request of this.snapshotRequests) request.reject(error);
    this.snapshotRequests = [];
  }

  private notControllerError(detail: string): KavkaError {
    const leaderId = this.lastSoft.leaderId;
    return new KavkaError('NOT_CONTROLLER', `${detail}; leader is ${leaderId ?? 'unknown'}`, { retriable: true, leaderHint: leaderId });
  }

  private unavailableError(): KavkaError | undefined {
    if (this.state === 'failed') return this.failure;
    if (this.state !== 'running') return new KavkaError('NOT_CONTROLLER', `Raft node ${this.id} is ${this.state}`, { retriable: true });
    return undefined;
  }

  // ---------------------------------------------------------------------------------------------
  // Time, soft state, failure

  private scheduleTick(): void {
    this.cancelTick = this.options.clock.schedule(this.options.tickMs, () => {
      if (this.state !== 'running') return;
      this.guard(() => this.core.tick());
      this.tickTransfer();
      if (this.state === 'running') this.scheduleTick();
    });
  }

  private tickTransfer(): void {
    const transfer = this.transfer;
    if (transfer === undefined) return;
    transfer.ticksLeft--;
    if (transfer.ticksLeft > 0) return;
    this.transfer = undefined;
    transfer.reject(new KavkaError('REQUEST_TIMED_OUT', `leadership did not move to ${transfer.target} within two election timeouts`, { retriable: true }));
  }

  /** Runs a core input; a thrown error (a broken invariant) fails the node. */
  private guard(input: () => void): void {
    try {
      input();
    } catch (error) {
      this.fail(error);
      return;
    }
    this.afterInput();
  }

  private guardValue<T>(input: () => T): T | undefined {
    try {
      return input();
    } catch (error) {
      this.fail(error);
      return undefined;
    }
  }

  private afterInput(): void {
    this.checkSoftState();
    this.kick();
  }

  private checkSoftState(): void {
    const soft = this.core.softState();
    const last = this.lastSoft;
    if (soft.leaderId === last.leaderId && soft.term === last.term && soft.role === last.role) return;
    const change: LeaderChange = { leaderId: soft.leaderId, term: soft.term, role: soft.role };
    this.lastSoft = change;
    if (last.role === 'leader' && soft.role !== 'leader') {
      const error = this.notControllerError(`node ${this.id} lost leadership in term ${soft.term}`);
      for (const waiter of this.proposals.values()) waiter.reject(error);
      this.proposals.clear();
    }
    this.settleTransfer(change);
    if (soft.leaderId !== last.leaderId || soft.term !== last.term) {
      this.logger.info({ leaderId: soft.leaderId, term: soft.term, role: soft.role }, 'Raft leader changed');
    }
    for (const listener of this.leaderListeners) this.notify(() => listener(change));
  }

  /** A listener's exception is its own bug: log it, never let it stop Raft. */
  private notify(call: () => void): void {
    try {
      call();
    } catch (error) {
      this.logger.error({ err: error }, 'a Raft listener threw');
    }
  }

  private settleTransfer(change: LeaderChange): void {
    const transfer = this.transfer;
    if (transfer === undefined || change.leaderId === undefined || change.leaderId === this.id) return;
    this.transfer = undefined;
    if (change.leaderId === transfer.target) transfer.resolve();
    else transfer.reject(this.notControllerError(`node ${change.leaderId} took over instead of ${transfer.target}`));
  }

  private fail(error: unknown): void {
    if (this.state === 'failed' || this.state === 'closed') return;
    const failure = toKavkaError(error); // storage errors already are KAFKA_STORAGE_ERROR
    this.failure = failure;
    this.state = 'failed';
    this.cancelTick?.();
    this.logger.error({ err: error }, 'Raft node failed; it must be restarted');
    this.rejectAll(failure);
    for (const listener of this.failureListeners) this.notify(() => listener(failure));
  }
}

function rejectionError(result: Extract<ProposeResult, { ok: false }>): KavkaError {
  switch (result.reason) {
    case 'not-leader':
      return new KavkaError('NOT_CONTROLLER', `${result.detail}; leader is ${result.leaderId ?? 'unknown'}`, { retriable: true, leaderHint: result.leaderId });
    case 'transfer-in-progress':
    case 'no-commit-in-term':
    case 'config-change-pending':
      // Transient on the leader: retry later (here, or at the new leader after a transfer).
      return new KavkaError('NOT_CONTROLLER', result.detail, { retriable: true, leaderHint: result.leaderId });
    case 'invalid-config-change':
    case 'invalid-transfer-target':
      return new KavkaError('INVALID_REQUEST', result.detail);
    default:
      return assertNever(result.reason, 'proposal rejection');
  }
}
