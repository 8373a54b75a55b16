// The metadata controller over Raft (KRaft's QuorumController). Every node runs one: it applies
// the committed metadata log to an immutable MetadataImage and tells listeners, so every node can
// answer Metadata. The node whose Raft leads is the active controller: it decides admin requests,
// broker registrations, heartbeats and AlterPartition against the image (the pure functions in
// topic-operations.ts, broker-liveness.ts and partition-leadership.ts), proposes the resulting
// records, and answers once they are committed and applied here.
//
// Active means more than "Raft leader": a new leader first commits an entry of its own term (an
// empty record batch) and applies everything before it, so it never decides on a stale image.
// Until then, and on every other node, requests fail with NOT_CONTROLLER and the leader hint.
// A deposed leader's proposals never commit (Raft), so two controllers can never both change the
// metadata: at most one leader per term, and each change commits under exactly one term.
//
// Decisions are serialized (one queue): each decides on the image its predecessor left.
// The active controller also runs two timers: fencing brokers whose heartbeats stopped
// (broker.session.timeout.ms) and moving leadership back to preferred replicas.
//
// Snapshots: every `snapshotBytes` of applied records, the image is written as the records that
// rebuild it (imageToRecords) and handed to Raft, which drops the log before it.
//
// Called from gRPC handlers and timers on the event loop; every public method is safe to call
// concurrently.
import { KavkaError, toKavkaError } from '../util/errors.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { ApplyEvent, RaftNode } from '../raft/index.js';
import { MetadataImage } from './metadata-image.js';
import type { MetadataRecord } from './metadata-records.js';
import {
  alterTopicConfigs,
  createPartitions,
  createTopics,
  deleteTopics,
  placementBrokers,
  type AlterTopicConfigRequest,
  type ControllerResult,
  type CreatedTopicResult,
  type CreatePartitionsRequest,
  type CreateTopicRequest,
  type PlacementContext,
  type TopicResult,
} from './topic-operations.js';
import { BrokerHeartbeatTracker, fenceStaleBrokers, handleHeartbeat, withLeadershipChanges, type BrokerHeartbeatRequest, type BrokerHeartbeatResponse } from './broker-liveness.js';
import { alterPartition, electPreferredLeaders, leaveIsrsAfterDataLoss, type AlterPartitionRequest, type AlterPartitionResponse, type LeadershipOptions } from './partition-leadership.js';
import { decodeMetadataBatch, decodeMetadataSnapshot, encodeMetadataBatch, encodeMetadataSnapshot } from './metadata-codec.js';

/** Producer ids per block a broker gets (Kafka's is 1000). */
export const PRODUCER_ID_BLOCK_SIZE = 1000;

export interface QuorumControllerOptions {
  nodeId: number;
  /** Opened, not started: the controller installs its apply handler, then starts it. */
  raft: RaftNode;
  defaultPartitions: number;
  defaultReplicationFactor: number;
  deleteTopicEnable: boolean;
  sessionTimeoutMs: number;
  leadership: LeadershipOptions;
  autoLeaderRebalance: boolean;
  leaderImbalanceCheckIntervalMs: number;
  /**
   * controller.quorum.voters: a rejoining node among them is re-added as a voter automatically
   * (so is one this controller removed as a voter). Default: none.
   */
  bootstrapVoters?: readonly number[];
  /** Snapshot after this many bytes of applied record batches. */
  snapshotBytes: number;
  random: () => number;
  newTopicId: () => string;
  clock: Clock;
  logger: Logger;
}

export interface RegisterBrokerRequest {
  brokerId: number;
  incarnationId: string;
  endpoints: { name: string; host: string; port: number }[];
  rack: string | undefined;
  /** The id of the broker's log dir contents (its Raft store's directory id); undefined if not sent. */
  directoryId?: string;
}

/** A decision's results plus the metadata offset (Raft index) at which its records are applied. */
export interface Decided<R> {
  results: R[];
  metadataOffset: number;
}

export interface QuorumMember {
  nodeId: number;
  /** The last index the leader knows this member holds; -1 when unknown. */
  logEndOffset: number;
  lag: number;
  /** Its Raft store's directory id as last reported ('' when unknown). */
  directoryId: string;
  /** Its store was re-created after its data was deleted and it does not vote yet. */
  rejoining: boolean;
}

export interface QuorumDescription {
  leaderId: number;
  leaderEpoch: number;
  highWatermark: number;
  voters: QuorumMember[];
  observers: QuorumMember[];
}

export class QuorumController {
  private imageValue = MetadataImage.EMPTY;
  private appliedIndex = 0;
  private bytesSinceSnapshot = 0;
  private snapshotting = false;
  private readonly imageListeners = new Set<(image: MetadataImage) => void>();
  private readonly offsetWaiters = new Set<{ offset: number; resolve: (reached: boolean) => void }>();
  private queue: Promise<unknown> = Promise.resolve();
  /** The term this node is active in; undefined when not active. */
  private activeTerm: number | undefined;
  private tracker = new BrokerHeartbeatTracker();
  /** Each broker's Raft store as its last heartbeat reported it (active controller; not replicated). */
  private readonly raftStores = new Map<number, { directoryId: string; rejoining: boolean }>();
  /** Brokers with a rejoining-voter configuration change in flight. */
  private readonly reconciling = new Set<number>();
  /** Rejoining voters whose removal waits for a silent voter (logged once). */
  private readonly waitingRejoiners = new Set<number>();
  /** Rejoining nodes this controller saw as voters: they are added back as voters. */
  private readonly removedRejoiningVoters = new Set<number>();
  private readonly cancelTimers: (() => void)[] = [];
  private closed = false;
  private readonly logger: Logger;

  private constructor(private readonly options: QuorumControllerOptions) {
    this.logger = options.logger;
  }

  /** Installs the state machine on the Raft node and starts it (replaying its snapshot and log). */
  static async start(options: QuorumControllerOptions): Promise<QuorumController> {
    const controller = new QuorumController(options);
    options.raft.onApply((event) => controller.apply(event));
    options.raft.onLeaderChange((change) => controller.onLeaderChange(change.role === 'leader', change.term));
    await options.raft.start();
    // A voter alone needs no election timeout to learn it can lead.
    const config = options.raft.status().config;
    if (config.voters.length === 1 && config.voters[0] === options.nodeId && !options.raft.isLeader) options.raft.campaign();
    return controller;
  }

  get image(): MetadataImage {
    return this.imageValue;
  }

  /** The Raft index of the last applied entry: the metadata offset this node has reached. */
  get metadataOffset(): number {
    return this.appliedIndex;
  }

  /** The active controller's node id as this node knows it, or -1. */
  get controllerId(): number {
    return this.options.raft.leaderId ?? -1;
  }

  get isActive(): boolean {
    return this.activeTerm !== undefined && this.activeTerm === this.options.raft.term && this.options.raft.isLeader;
  }

  /** The controller voters in the current (latest appended) quorum configuration. */
  voters(): readonly number[] {
    return this.options.raft.status().config.voters;
  }

  /** True when the node is a voter in the current (latest appended) quorum configuration. */
  isVoter(nodeId: number): boolean {
    return this.options.raft.status().config.voters.includes(nodeId);
  }

  /** The Raft term of the current leader (Kafka's controller epoch). */
  get controllerEpoch(): number {
    return this.options.raft.term;
  }

  onImage(listener: (image: MetadataImage) => void): () => void {
    this.imageListeners.add(listener);
    return () => this.imageListeners.delete(listener);
  }

  /** Resolves once this node has applied the metadata offset, or false after timeoutMs. */
  waitForOffset(offset: number, timeoutMs: number): Promise<boolean> {
    if (this.appliedIndex >= offset) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = {
        offset,
        resolve: (reached: boolean) => {
          cancel();
          resolve(reached);
        },
      };
      const cancel = this.options.clock.schedule(timeoutMs, () => {
        this.offsetWaiters.delete(waiter);
        resolve(false);
      });
      this.offsetWaiters.add(waiter);
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Requests (active controller only)

  createTopics(requests: CreateTopicRequest[], validateOnly: boolean): Promise<Decided<CreatedTopicResult>> {
    return this.decide((image) => createTopics(requests, image, this.placementContext(image)), validateOnly);
  }

  deleteTopics(names: string[]): Promise<Decided<TopicResult>> {
    return this.decide((image) => deleteTopics(names, image, this.options.deleteTopicEnable), false);
  }

  createPartitions(requests: CreatePartitionsRequest[], validateOnly: boolean): Promise<Decided<TopicResult>> {
    return this.decide((image) => createPartitions(requests, image, this.placementContext(image)), validateOnly);
  }

  alterTopicConfigs(requests: AlterTopicConfigRequest[], validateOnly: boolean): Promise<Decided<TopicResult>> {
    return this.decide((image) => alterTopicConfigs(requests, image), validateOnly);
  }

  /**
   * A broker process announces itself. A new incarnation (or new endpoints) is a new
   * registration: it starts fenced, so partitions it led elect other leaders from their ISRs in
   * the same records, and it is unfenced once its heartbeats say it has caught up. The same
   * incarnation registering again (a retry, or after a controller failover) changes nothing.
   * A node that is not yet a Raft member is added as a learner so it receives the metadata log.
   */
  async registerBroker(request: RegisterBrokerRequest): Promise<{ registeredOffset: number }> {
    const decided = await this.decide<number>((image) => {
      const existing = image.brokers.get(request.brokerId);
      const same =
        existing !== undefined &&
        existing.incarnationId === request.incarnationId &&
        existing.rack === request.rack &&
        existing.directoryId === request.directoryId &&
        sameEndpoints(existing.endpoints, request.endpoints);
      if (same) return { records: [], results: [] };
      const registration: MetadataRecord = {
        type: 'RegisterBroker',
        nodeId: request.brokerId,
        endpoints: request.endpoints,
        rack: request.rack,
        incarnationId: request.incarnationId,
        ...(request.directoryId === undefined ? {} : { directoryId: request.directoryId }),
      };
      const replaced = existing?.directoryId !== undefined && request.directoryId !== undefined && existing.directoryId !== request.directoryId;
      if (!replaced) return { records: withLeadershipChanges(image, [registration], this.options.leadership), results: [] };
      const lost = leaveIsrsAfterDataLoss(image, request.brokerId);
      this.logger.warn(
        { brokerId: request.brokerId, previousDirectoryId: existing?.directoryId, directoryId: request.directoryId, isrsLeft: lost.records.length },
        'broker registered with a re-created log dir: its data is gone, so it leaves every ISR and re-fetches its partitions before it can rejoin them',
      );
      for (const tp of lost.offline) {
        this.logger.error(
          { brokerId: request.brokerId, topicPartition: tp },
          'the only in-sync replica of this partition lost its data: the partition stays offline (leader -1) because no replica is known to hold every acknowledged record; set unclean.leader.election.enable=true on the topic to elect a surviving replica and accept the loss',
        );
      }
      return { records: withLeadershipChanges(image, [registration, ...lost.records], this.options.leadership), results: [] };
    }, false);
    this.tracker.recordHeartbeat(request.brokerId, this.options.clock.monotonicMs());
    const config = this.options.raft.status().config;
    if (!config.voters.includes(request.brokerId) && !config.learners.includes(request.brokerId)) {
      this.logger.info({ brokerId: request.brokerId }, 'adding broker to the metadata quorum as an observer (learner)');
      await this.options.raft.addLearner(request.brokerId).catch((error: unknown) => {
        // It retries its registration; the next attempt adds it again.
        throw toKavkaError(error);
      });
    }
    return { registeredOffset: decided.metadataOffset };
  }

  async brokerHeartbeat(request: BrokerHeartbeatRequest): Promise<BrokerHeartbeatResponse> {
    let response: BrokerHeartbeatResponse | undefined;
    await this.decide<never>((image) => {
      const nowMs = this.options.clock.monotonicMs();
      const handled = handleHeartbeat(image, request, nowMs, this.options.leadership);
      this.tracker.recordHeartbeat(handled.heartbeat.brokerId, handled.heartbeat.atMs);
      response = handled.response;
      let records = handled.records;
      const offlineLogDirs = request.offlineLogDirs ?? [];
      if (offlineLogDirs.length > 0 && records.some((r) => r.type === 'FenceBroker')) {
        this.logger.warn({ brokerId: request.brokerId, offlineLogDirs }, 'broker reports an offline log dir; fencing it for data and moving its partitions');
      }
      // A broker back in service leads its preferred partitions again once it is in their ISR.
      if (this.options.autoLeaderRebalance && records.some((r) => r.type === 'UnfenceBroker')) {
        const after = records.reduce((img, r) => img.replay(r), image);
        records = [...records, ...electPreferredLeaders(after)];
      }
      return { records, results: [] };
    }, false);
    this.ensureMember(request.brokerId);
    if (request.raftStore !== undefined) {
      this.raftStores.set(request.brokerId, request.raftStore);
      if (request.raftStore.rejoining) this.reconcileRejoiningVoter(request.brokerId, request.raftStore.directoryId);
    }
    return response ?? { isFenced: true, shouldShutdown: false };
  }

  /**
   * A broker whose Raft store is rejoining (its data was deleted; raft-core.ts "Rejoining") votes
   * again only after its old voter identity is removed and it is added back with its new
   * directory id. Called on each of its heartbeats; moves one step per call, never two changes at
   * once (Raft refuses a change while another is uncommitted):
   *   voter   -> remove-voter, only if the other voters all answer the leader (the smaller set's
   *              majority must be live; e.g. of 3 voters, the 2 left must both be up)
   *   absent  -> ensureMember adds it as a learner (the next heartbeat)
   *   learner -> add-voter naming its directory id, once it holds every committed entry
   * Only a node that was a voter (seen here as one, or a bootstrap voter) is re-added as one; a
   * broker-only node stays an observer.
   */
  private reconcileRejoiningVoter(brokerId: number, directoryId: string): void {
    if (!this.isActive || this.reconciling.has(brokerId)) return;
    const status = this.options.raft.status();
    const config = status.config;
    if (config.voters.includes(brokerId)) this.removedRejoiningVoters.add(brokerId);
    if (!this.removedRejoiningVoters.has(brokerId) && !(this.options.bootstrapVoters ?? []).includes(brokerId)) return;
    let step: Promise<unknown> | undefined;
    if (config.voters.includes(brokerId)) {
      const others = config.voters.filter((id) => id !== brokerId);
      const silent = others.filter((id) => id !== this.options.nodeId && status.progress?.get(id)?.recentActive !== true);
      if (others.length === 0 || silent.length > 0) {
        // Once per wait, not per heartbeat.
        if (!this.waitingRejoiners.has(brokerId)) this.logger.warn({ brokerId, silent }, 'a rejoining voter waits to be removed and re-added until every other voter answers');
        this.waitingRejoiners.add(brokerId);
        return;
      }
      this.waitingRejoiners.delete(brokerId);
      this.logger.info({ brokerId, directoryId }, 'removing the old voter identity of a node whose data was deleted; it is added back once it has caught up');
      step = this.options.raft.removeVoter(brokerId);
    } else if (config.learners.includes(brokerId)) {
      const progress = status.progress?.get(brokerId);
      if (progress === undefined || !progress.recentActive || progress.match < status.committed) return;
      this.logger.info({ brokerId, directoryId }, 'adding a rejoined node back as a controller voter with its new directory id');
      step = this.options.raft.changeConfig({ type: 'add-voter', nodeId: brokerId, directoryId }).then(() => this.removedRejoiningVoters.delete(brokerId));
    }
    if (step === undefined) return;
    this.reconciling.add(brokerId);
    step.then(
      () => this.logger.info({ brokerId }, 'rejoining voter: configuration change committed'),
      (error: unknown) => this.logger.warn({ err: error, brokerId }, 'rejoining voter: configuration change failed; the next heartbeat retries'),
    ).finally(() => this.reconciling.delete(brokerId));
  }

  /** A registered broker outside the quorum (e.g. a removed voter) is added back as a learner. */
  private ensureMember(brokerId: number): void {
    const config = this.options.raft.status().config;
    if (config.voters.includes(brokerId) || config.learners.includes(brokerId) || !this.isActive) return;
    this.options.raft.addLearner(brokerId).then(
      () => this.logger.info({ brokerId }, 'added broker to the metadata quorum as an observer (learner)'),
      (error: unknown) => this.logger.debug({ err: error, brokerId }, 'adding a learner failed; the next heartbeat retries'),
    );
  }

  async alterPartition(request: AlterPartitionRequest): Promise<AlterPartitionResponse & { metadataOffset: number }> {
    let response: AlterPartitionResponse | undefined;
    const decided = await this.decide<never>((image) => {
      const result = alterPartition(image, request);
      response = result.response;
      let records: MetadataRecord[] = result.records;
      // The preferred replica back in the ISR leads again at once (auto.leader.rebalance.enable).
      if (this.options.autoLeaderRebalance && records.length > 0) {
        const after = records.reduce((img, r) => img.replay(r), image);
        const moves = electPreferredLeaders(after).filter((r) => r.topic === request.topic && r.partition === request.partition);
        records = [...records, ...moves];
      }
      return { records, results: [] };
    }, false);
    if (response === undefined) throw new KavkaError('UNKNOWN_SERVER_ERROR', 'AlterPartition produced no response');
    return { ...response, metadataOffset: decided.metadataOffset };
  }

  /**
   * Hands a broker the next block of producer ids (KIP-730). The block is committed before it is
   * returned, so a controller failover never hands out the same ids again.
   */
  async allocateProducerIds(brokerId: number): Promise<{ start: bigint; length: number }> {
    let start = 0;
    await this.decide<never>((image) => {
      start = image.nextProducerId;
      const next = start + PRODUCER_ID_BLOCK_SIZE;
      if (!Number.isSafeInteger(next)) throw new KavkaError('UNKNOWN_SERVER_ERROR', 'producer ids are exhausted');
      return { records: [{ type: 'ProducerIds', brokerId, nextProducerId: next }], results: [] };
    }, false);
    return { start: BigInt(start), length: PRODUCER_ID_BLOCK_SIZE };
  }

  /** The quorum as the active controller sees it (KIP-595 DescribeQuorum). */
  describeQuorum(): QuorumDescription {
    this.requireActive();
    const status = this.options.raft.status();
    const member = (id: number): QuorumMember => {
      if (id === this.options.nodeId) return { nodeId: id, logEndOffset: status.lastIndex, lag: 0, directoryId: status.directoryId ?? '', rejoining: status.rejoining };
      const progress = status.progress?.get(id);
      const match = progress?.match ?? -1;
      const store = this.raftStores.get(id);
      return {
        nodeId: id,
        logEndOffset: match,
        lag: match < 0 ? status.lastIndex : Math.max(0, status.lastIndex - match),
        directoryId: store?.directoryId ?? status.config.voterDirectories?.[String(id)] ?? '',
        rejoining: store?.rejoining ?? false,
      };
    };
    return {
      leaderId: this.options.nodeId,
      leaderEpoch: status.term,
      highWatermark: status.committed,
      voters: status.config.voters.map(member),
      observers: status.config.learners.map(member),
    };
  }

  /**
   * Makes a node a voter (KIP-853 AddRaftVoter). It must be registered and following the log as
   * an observer, so it has the log before it counts toward a majority.
   */
  async addVoter(nodeId: number): Promise<void> {
    this.requireActive();
    const status = this.options.raft.status();
    const config = status.config;
    if (config.voters.includes(nodeId)) throw new KavkaError('INVALID_REQUEST', `node ${nodeId} is already a voter (voters: ${config.voters.join(',')})`);
    if (!config.learners.includes(nodeId)) {
      throw new KavkaError('INVALID_REQUEST', `node ${nodeId} does not follow the metadata log yet; start it (process.roles=broker works) and wait until it is an observer in \`kavka controller describe\``);
    }
    // A voter that cannot answer counts against the majority at once: refuse one that is silent
    // or behind (KIP-853 asks the same of a new voter).
    const progress = status.progress?.get(nodeId);
    if (progress === undefined || !progress.recentActive || progress.match < status.committed) {
      throw new KavkaError(
        'INVALID_REQUEST',
        `node ${nodeId} is not caught up with the metadata log (it holds ${progress?.match ?? 0} of ${status.committed} committed entries${progress?.recentActive === true ? '' : ' and has not answered recently'}); make sure it runs, then retry`,
        { retriable: true },
      );
    }
    // With the directory id its heartbeats report, so a rejoining node (data deleted) votes again.
    const directoryId = this.raftStores.get(nodeId)?.directoryId;
    await this.options.raft.changeConfig({ type: 'add-voter', nodeId, ...(directoryId === undefined ? {} : { directoryId }) });
    this.removedRejoiningVoters.delete(nodeId);
    this.logger.info({ voterId: nodeId, directoryId }, 'added a controller voter');
  }

  /**
   * Removes a voter (KIP-853 RemoveRaftVoter); a node still registered stays an observer (the
   * next heartbeat adds it back as a learner). The active controller does not remove itself: it
   * hands leadership to another voter and answers NOT_CONTROLLER, so the caller's retry reaches
   * the new controller, which removes it.
   */
  async removeVoter(nodeId: number): Promise<void> {
    this.requireActive();
    const config = this.options.raft.status().config;
    if (!config.voters.includes(nodeId)) throw new KavkaError('INVALID_REQUEST', `node ${nodeId} is not a voter (voters: ${config.voters.join(',')})`);
    if (config.voters.length === 1) throw new KavkaError('INVALID_REQUEST', `node ${nodeId} is the last voter; add another voter first`);
    if (nodeId === this.options.nodeId) {
      const target = config.voters.find((id) => id !== nodeId && this.options.raft.status().progress?.get(id)?.recentActive === true);
      if (target === undefined) throw new KavkaError('NOT_CONTROLLER', `node ${nodeId} is the active controller and no other voter is reachable to take over; retry`, { retriable: true });
      await this.options.raft.transferLeadership(target);
      throw new KavkaError('NOT_CONTROLLER', `node ${nodeId} handed the controller to node ${target} before leaving the voters; retry there`, { retriable: true, leaderHint: target });
    }
    await this.options.raft.removeVoter(nodeId);
    this.logger.info({ voterId: nodeId }, 'removed a controller voter');
    if (this.imageValue.brokers.has(nodeId)) this.ensureMember(nodeId);
  }

  /** Moves controller leadership to another voter (tests and controlled shutdown). */
  transferLeadership(target: number): Promise<void> {
    return this.options.raft.transferLeadership(target);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.deactivate();
    for (const waiter of this.offsetWaiters) waiter.resolve(false);
    this.offsetWaiters.clear();
    await this.options.raft.close();
  }

  // ---------------------------------------------------------------------------------------------
  // Internals

  private placementContext(image: MetadataImage): PlacementContext {
    const { liveBrokers, brokerRacks } = placementBrokers(image);
    return {
      defaultPartitions: this.options.defaultPartitions,
      defaultReplicationFactor: this.options.defaultReplicationFactor,
      liveBrokers,
      brokerRacks,
      startIndex: Math.floor(this.options.random() * Math.max(1, liveBrokers.length)),
      newTopicId: this.options.newTopicId,
    };
  }

  private requireActive(): void {
    if (this.isActive) return;
    const leader = this.options.raft.leaderId;
    const where = leader === undefined ? 'no controller is elected yet' : leader === this.options.nodeId ? 'this node was just elected and is catching up' : `node ${leader} is`;
    throw new KavkaError('NOT_CONTROLLER', `node ${this.options.nodeId} is not the active controller; ${where}`, {
      retriable: true,
      leaderHint: leader !== undefined && leader !== this.options.nodeId ? leader : undefined,
    });
  }

  /** Runs one decision on the current image and commits its records, one at a time. */
  private decide<R>(decide: (image: MetadataImage) => ControllerResult<R>, validateOnly: boolean): Promise<Decided<R>> {
    const next = this.queue.then(async () => {
      this.requireActive();
      const { records, results } = decide(this.imageValue);
      if (validateOnly || records.length === 0) return { results, metadataOffset: this.appliedIndex };
      const committed = await this.options.raft.propose(encodeMetadataBatch(records));
      this.logger.info({ records: summarize(records), metadataOffset: committed.index, term: committed.term }, 'metadata committed');
      return { results, metadataOffset: committed.index };
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async apply(event: ApplyEvent): Promise<void> {
    if (event.kind === 'snapshot') {
      const records = decodeMetadataSnapshot(event.snapshot.data);
      this.appliedIndex = event.snapshot.metadata.index;
      this.imageValue = records.reduce((img, r) => img.replay(r), MetadataImage.EMPTY).atOffset(this.appliedIndex);
      this.bytesSinceSnapshot = 0;
      this.logger.info({ metadataOffset: this.appliedIndex, records: records.length }, 'metadata image loaded from a snapshot');
    } else {
      const { entry } = event;
      if (entry.payload.kind === 'normal') {
        const records = decodeMetadataBatch(entry.payload.data);
        this.imageValue = records.reduce((img, r) => img.replay(r), this.imageValue);
        this.bytesSinceSnapshot += entry.payload.data.byteLength;
      }
      this.appliedIndex = entry.index;
      this.imageValue = this.imageValue.atOffset(entry.index);
    }
    for (const listener of this.imageListeners) {
      try {
        listener(this.imageValue);
      } catch (error) {
        // A listener's bug must not stop the metadata log.
        this.logger.error({ err: error, metadataOffset: this.appliedIndex }, 'a metadata image listener failed');
      }
    }
    for (const waiter of [...this.offsetWaiters]) {
      if (waiter.offset <= this.appliedIndex) {
        this.offsetWaiters.delete(waiter);
        waiter.resolve(true);
      }
    }
    this.maybeSnapshot();
  }

  private maybeSnapshot(): void {
    if (this.snapshotting || this.bytesSinceSnapshot < this.options.snapshotBytes) return;
    this.snapshotting = true;
    const index = this.appliedIndex;
    const data = encodeMetadataSnapshot(this.imageValue);
    this.bytesSinceSnapshot = 0;
    this.options.raft
      .snapshot(index, data)
      .then((taken) => {
        if (taken) this.logger.info({ metadataOffset: index, bytes: data.byteLength }, 'metadata snapshot taken');
      })
      .catch((error: unknown) => this.logger.warn({ err: error, metadataOffset: index }, 'metadata snapshot failed'))
      .finally(() => {
        this.snapshotting = false;
      });
  }

  private onLeaderChange(isLeader: boolean, term: number): void {
    if (this.closed) return;
    if (!isLeader) {
      if (this.activeTerm !== undefined) this.logger.info({ term }, 'no longer the active controller');
      this.deactivate();
      return;
    }
    if (this.activeTerm === term) return;
    this.deactivate();
    // Commit an entry of this term and apply everything before it before deciding anything.
    this.options.raft
      .propose(encodeMetadataBatch([]))
      .then(() => {
        if (this.closed || !this.options.raft.isLeader || this.options.raft.term !== term) return;
        this.activate(term);
      })
      .catch((error: unknown) => this.logger.debug({ err: error, term }, 'lost leadership before becoming the active controller'));
  }

  private activate(term: number): void {
    this.activeTerm = term;
    // Every broker's session starts now: a failover never fences a healthy broker.
    this.tracker = BrokerHeartbeatTracker.startingAt(this.imageValue, this.options.clock.monotonicMs());
    this.logger.info({ term, metadataOffset: this.appliedIndex }, 'became the active controller');
    const fenceCheckMs = Math.max(10, Math.floor(this.options.sessionTimeoutMs / 8));
    this.every(term, fenceCheckMs, () => this.fenceStaleBrokers());
    if (this.options.autoLeaderRebalance) this.every(term, this.options.leaderImbalanceCheckIntervalMs, () => this.rebalance());
  }

  private deactivate(): void {
    this.activeTerm = undefined;
    for (const cancel of this.cancelTimers.splice(0)) cancel();
  }

  /** Runs `task` every intervalMs while active in `term`; a run still going delays the next. */
  private every(term: number, intervalMs: number, task: () => Promise<unknown>): void {
    const stillActive = () => this.isActive && this.activeTerm === term;
    let cancel: () => void = () => undefined;
    const schedule = () => {
      cancel = this.options.clock.schedule(intervalMs, () => {
        if (!stillActive()) return;
        void task()
          .catch((error: unknown) => this.logger.warn({ err: error }, 'controller task failed'))
          .finally(() => {
            if (stillActive()) schedule();
          });
      });
    };
    schedule();
    this.cancelTimers.push(() => cancel());
  }

  private fenceStaleBrokers(): Promise<unknown> {
    return this.decide<never>((image) => {
      const records = fenceStaleBrokers(image, this.tracker.lastHeartbeatMs, this.options.clock.monotonicMs(), this.options.sessionTimeoutMs, this.options.leadership);
      for (const r of records) {
        if (r.type === 'FenceBroker') {
          this.logger.warn({ brokerId: r.nodeId, sessionTimeoutMs: this.options.sessionTimeoutMs }, 'broker heartbeats stopped; fencing it and moving its partitions');
          this.tracker.forget(r.nodeId);
        }
      }
      return { records, results: [] };
    }, false);
  }

  private rebalance(): Promise<unknown> {
    return this.decide<never>((image) => ({ records: electPreferredLeaders(image), results: [] }), false);
  }
}

function sameEndpoints(current: ReadonlyMap<string, { host: string; port: number }>, wanted: RegisterBrokerRequest['endpoints']): boolean {
  if (current.size !== wanted.length) return false;
  return wanted.every((e) => {
    const c = current.get(e.name);
    return c !== undefined && c.host === e.host && c.port === e.port;
  });
}

function summarize(records: MetadataRecord[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of records) counts[r.type] = (counts[r.type] ?? 0) + 1;
  return counts;
}
