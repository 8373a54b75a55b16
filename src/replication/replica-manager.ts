// ReplicaManager: the partitions this node holds and their roles (leader or follower, from the
// metadata image), produce with acks, consumer fetch (long-poll, below the high watermark), and
// replication: the leader side of ReplicaFetch (followers' log ends, the high watermark, ISR
// shrink and expand through AlterPartition) and the follower side (ReplicaFetcherManager).
// The server adapters call it; it calls storage. Called from many concurrent gRPC handlers; each
// partition's appends are serialized inside its log.
//
// Log dir offline (DESIGN.md section 2): suspendForOfflineLogDir stops every fetcher and every
// partition answers KAFKA_STORAGE_ERROR (retriable: clients refresh metadata and go to the new
// leader). Once the broker has reopened the dir, reopenLogDir forgets the closed logs and applies
// the current image again: each partition opens through recovery as a follower (the controller
// fenced this broker, so others lead) and re-enters the ISR through fetch + AlterPartition.
// A partition whose recovery repaired corruption (log.refetchRequired) never leads: it follows
// until a leader has taken it back into the ISR, then the marker goes.
import { KavkaError, toKavkaError, type ErrorName } from '../util/errors.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import {
  topicPartitionName,
  type AppendResult,
  type LogConfig,
  type LogManager,
  type TopicPartition,
  type TimestampOffset,
} from '../storage/index.js';
import { validateTopicName, type AlterPartitionRequest, type MetadataImage, type TopicImage } from '../controller/index.js';
import { PartitionState } from './partition-state.js';
import {
  ReplicaFetcherManager,
  type ReplicaFetchPartitionRequest,
  type ReplicaFetchPartitionResult,
  type ReplicaFetchRequest,
  type ReplicaFetchTransport,
} from './replica-fetcher.js';

export type Acks = -1 | 0 | 1;

/**
 * Errors of a leader's append that come from its idempotent-producer state, which a deposed
 * leader still holding produce requests answers from a stale log (see confirmLeadership).
 */
const PRODUCER_STATE_ERRORS: ReadonlySet<ErrorName> = new Set<ErrorName>(['OUT_OF_ORDER_SEQUENCE_NUMBER', 'UNKNOWN_PRODUCER_ID', 'INVALID_PRODUCER_EPOCH']);

export interface ReplicaManagerOptions {
  nodeId: number;
  logManager: LogManager;
  /** Effective log config of a topic: its overrides over the broker defaults. */
  logConfigFor: (topicConfigs: ReadonlyMap<string, string>) => LogConfig;
  minInsyncReplicasFor: (topicConfigs: ReadonlyMap<string, string>) => number;
  /**
   * AlterPartition through the active controller; resolves once this node's image has the
   * change (or rejects with the controller's error). Absent: ISRs are never changed here.
   */
  alterIsr?: (request: AlterPartitionRequest) => Promise<void>;
  /** Follower fetching; absent: this node never follows (a single-node setup in tests). */
  replication?: ReplicationOptions;
  clock: Clock;
  logger: Logger;
}

export interface ReplicationOptions {
  transport: ReplicaFetchTransport;
  /** A follower not caught up for this long leaves the ISR (replica.lag.time.max.ms). */
  replicaLagTimeMaxMs: number;
  fetchMaxWaitMs: number;
  fetchMinBytes: number;
  partitionMaxBytes: number;
  responseMaxBytes: number;
  fetchBackoffMs: number;
}

export interface FetchPartitionRequest {
  topicPartition: TopicPartition;
  fetchOffset: bigint;
  maxBytes: number;
}

export interface FetchPartitionResult {
  topicPartition: TopicPartition;
  errorCode: ErrorName;
  errorMessage: string;
  highWatermark: bigint;
  logStartOffset: bigint;
  batches: Buffer;
  nextFetchOffset: bigint;
  /** With NOT_LEADER_OR_FOLLOWER: the leader this node's metadata names. */
  currentLeader?: CurrentLeader;
}

export interface CurrentLeader {
  leaderId: number;
  leaderEpoch: number;
}

export interface FetchOptions {
  maxBytes: number;
  minBytes: number;
  maxWaitMs: number;
  signal?: AbortSignal;
}

/** The controller answered an AlterPartition with an error: the ISR did not change. */
export class AlterPartitionRefused extends KavkaError {}

/** Why a repaired replica elected leader does not serve, and what the operator can do. */
function refetchRequiredError(tp: TopicPartition, nodeId: number, truncatedTo: bigint): KavkaError {
  return new KavkaError(
    'KAFKA_STORAGE_ERROR',
    `${topicPartitionName(tp)} on node ${nodeId} was repaired after a corrupt batch (truncated to offset ${truncatedTo}) and has not re-fetched from another replica since, ` +
      'so it may lack acknowledged records and does not lead. It re-fetches as soon as another ISR member leads; if none is left, restore the data or set unclean.leader.election.enable on the topic (which may lose records)',
  );
}

export const LIST_OFFSETS_EARLIEST = -2n;
export const LIST_OFFSETS_LATEST = -1n;
export const LIST_OFFSETS_MAX_TIMESTAMP = -3n;

export class ReplicaManager {
  private readonly partitions = new Map<string, PartitionState>();
  /** Partitions this node should hold but could not open, with the reason. */
  private readonly offline = new Map<string, string>();
  private image: MetadataImage | undefined;
  private applying: Promise<void> = Promise.resolve();
  /** AlterPartition requests in flight, by partition: one at a time per partition. */
  private readonly isrChanges = new Map<string, Promise<void>>();
  private readonly fetchers: ReplicaFetcherManager | undefined;
  private cancelIsrCheck: (() => void) | undefined;
  private closed = false;
  /** Set while the log dir is offline: nothing is followed or served until reopenLogDir. */
  private logDirOfflineReason: string | undefined;
  /** Partitions whose refetch-required marker is being removed. */
  private readonly clearingRefetch = new Set<string>();

  constructor(private readonly options: ReplicaManagerOptions) {
    const replication = options.replication;
    if (replication !== undefined) {
      this.fetchers = new ReplicaFetcherManager({
        nodeId: options.nodeId,
        transport: replication.transport,
        clock: options.clock,
        logger: options.logger.child({ component: 'replica-fetcher' }),
        maxWaitMs: replication.fetchMaxWaitMs,
        minBytes: replication.fetchMinBytes,
        partitionMaxBytes: replication.partitionMaxBytes,
        responseMaxBytes: replication.responseMaxBytes,
        backoffMs: replication.fetchBackoffMs,
      });
      this.scheduleIsrCheck(Math.max(10, Math.floor(replication.replicaLagTimeMaxMs / 2)));
    }
  }

  /**
   * Brings local partitions in line with a metadata image: opens logs for partitions this node
   * replicates, deletes logs of removed topics, applies config changes. Images are applied in
   * order, one at a time.
   */
  applyImage(image: MetadataImage): Promise<void> {
    const next = this.applying.then(() => this.reconcile(image));
    this.applying = next.catch((error) => this.options.logger.error({ err: error }, 'applying metadata image failed'));
    return next;
  }

  partition(tp: TopicPartition): PartitionState | undefined {
    return this.partitions.get(topicPartitionName(tp));
  }

  /** Counts since start, for /metrics: partitions this node took the lead of, and its ISR changes. */
  readonly counts = { leaderships: 0, isrShrinks: 0, isrExpands: 0 };

  allPartitions(): PartitionState[] {
    return [...this.partitions.values()];
  }

  /** Partitions that could not be opened, with the reason (metrics, readiness). */
  offlinePartitions(): ReadonlyMap<string, string> {
    return this.offline;
  }

  /**
   * The log dir went offline: stop following (every fetcher stops) and serve nothing; produce and
   * fetch answer KAFKA_STORAGE_ERROR. Safe to call more than once.
   */
  suspendForOfflineLogDir(reason: string): void {
    if (this.logDirOfflineReason !== undefined) return;
    this.logDirOfflineReason = reason;
    this.fetchers?.assign(new Map());
    for (const state of this.partitions.values()) state.becomeFollower();
    this.options.logger.warn({ partitions: this.partitions.size, reason }, 'log dir offline: stopped leading and following every partition');
    // Producers waiting for acks=all learn at once that leadership is gone here.
    for (const listener of [...this.roleListeners]) listener();
  }

  /**
   * After LogManager.reopen: forgets the partitions (their logs are closed) and applies `image`
   * as if it were the first, so each partition opens again through recovery and takes its role
   * from the image (a follower, since the controller fenced this broker), and partition
   * directories of topics deleted meanwhile are removed.
   */
  async reopenLogDir(image: MetadataImage): Promise<void> {
    // In the image queue, so no reconcile runs on the forgotten partitions meanwhile.
    const reset = this.applying.then(async () => {
      for (const key of this.partitions.keys()) await this.fetchers?.quiesce(key);
      const count = this.partitions.size;
      this.partitions.clear();
      this.offline.clear();
      this.image = undefined;
      this.logDirOfflineReason = undefined;
      this.options.logger.info({ partitions: count, metadataOffset: image.offset }, 'log dir reopened: reopening partitions from the current metadata');
    });
    this.applying = reset.catch((error) => this.options.logger.error({ err: error }, 'resetting partitions after a log dir reopen failed'));
    await reset;
    // A partition that does not open is in offlinePartitions(); anything else failing here must
    // not keep the whole node from reporting its dir back: it was logged, and the next image retries.
    await this.applyImage(image).catch(() => undefined);
    this.options.logger.info({ partitions: this.partitions.size, offline: this.offline.size }, 'partitions reopened; they follow their leaders and rejoin the ISR once caught up');
  }

  /** The leader's partition state, or a KavkaError naming why this node cannot serve it. */
  leaderPartitionOrThrow(tp: TopicPartition): PartitionState {
    if (this.logDirOfflineReason !== undefined) {
      throw new KavkaError('KAFKA_STORAGE_ERROR', `the log dir of node ${this.options.nodeId} is offline (${this.logDirOfflineReason}); ${topicPartitionName(tp)} is served by another replica: refresh metadata and retry`);
    }
    const topic = this.image?.topic(tp.topic);
    const partitionImage = topic?.partitions[tp.partition];
    if (topic === undefined) validateTopicName(tp.topic);
    if (topic === undefined || partitionImage === undefined) {
      throw new KavkaError('UNKNOWN_TOPIC_OR_PARTITION', `${topicPartitionName(tp)} does not exist${topic === undefined ? '' : `; topic ${tp.topic} has partitions 0..${topic.partitions.length - 1}`}`);
    }
    const offlineReason = this.offline.get(topicPartitionName(tp));
    if (offlineReason !== undefined) {
      throw new KavkaError('KAFKA_STORAGE_ERROR', `${topicPartitionName(tp)} is offline on node ${this.options.nodeId}: ${offlineReason}`);
    }
    const state = this.partitions.get(topicPartitionName(tp));
    if (state === undefined || partitionImage.leader !== this.options.nodeId) {
      throw new KavkaError('NOT_LEADER_OR_FOLLOWER', `${topicPartitionName(tp)} is led by node ${partitionImage.leader}, not by node ${this.options.nodeId}`, {
        leaderHint: partitionImage.leader,
      });
    }
    if (this.options.logManager.state.kind === 'offline') {
      throw new KavkaError('KAFKA_STORAGE_ERROR', `the log dir of node ${this.options.nodeId} is offline: ${this.options.logManager.state.reason}`);
    }
    const refetchFrom = state.log.refetchRequired;
    if (refetchFrom !== undefined) throw refetchRequiredError(tp, this.options.nodeId, refetchFrom);
    return state;
  }

  /** The partition's leader and leader epoch in this node's metadata ({-1, -1} when unknown). */
  currentLeader(tp: TopicPartition): CurrentLeader {
    const p = this.image?.topic(tp.topic)?.partitions[tp.partition];
    return { leaderId: p?.leader ?? -1, leaderEpoch: p?.leaderEpoch ?? -1 };
  }

  /**
   * Appends batches as leader and waits as acks requires: acks=1 once the leader's append is
   * durable under its flush policy, acks=all once the high watermark has passed the batch (every
   * ISR member has it on stable storage). acks=all fails with NOT_ENOUGH_REPLICAS when the ISR is
   * smaller than min.insync.replicas before the append, and with NOT_ENOUGH_REPLICAS_AFTER_APPEND
   * when it shrinks below it while waiting (the record may survive; the client retries).
   */
  async appendRecords(tp: TopicPartition, batches: Buffer, acks: Acks): Promise<AppendResult> {
    // Metadata already delivered may still be opening partitions: serve only once it is applied,
    // so a node never refuses a partition that its own Metadata says it leads.
    await this.applying;
    const state = this.leaderPartitionOrThrow(tp);
    if (acks === -1) this.checkMinInsync(state, 'NOT_ENOUGH_REPLICAS');
    const leaderEpoch = state.image.leaderEpoch;
    let result: AppendResult;
    try {
      result = await state.log.appendAsLeader(batches, leaderEpoch);
    } catch (error) {
      if (error instanceof KavkaError && PRODUCER_STATE_ERRORS.has(error.code)) await this.confirmLeadership(state, leaderEpoch, error);
      throw error;
    }
    state.maybeAdvanceHighWatermark(this.options.nodeId);
    if (acks === -1) await this.waitForHighWatermark(state, result.lastOffset + 1n, leaderEpoch);
    return result;
  }

  /**
   * Before a leader answers a producer-state error (PRODUCER_STATE_ERRORS): resolves once the ISR
   * confirms this node still leads `state` in `leaderEpoch`, and rejects with
   * NOT_LEADER_OR_FOLLOWER (retriable) when it cannot confirm it within replica.lag.time.max.ms or
   * leadership moves meanwhile.
   *
   * Why: such an error is final for the producer's view of the partition (the client bumps its
   * epoch for OUT_OF_ORDER_SEQUENCE_NUMBER on its oldest unacknowledged batch and rewrites that
   * partition's sequences), but a deposed leader that has not applied the metadata moving
   * leadership away (isolated, then healed, while the Raft quorum it must learn it from is busy)
   * still takes produce requests, and its log lacks what the new leader has acknowledged since:
   * it answers "expected sequence 100" to a producer whose sequences up to 112 the new leader
   * acknowledged. A producer that trusts it re-sends under a new epoch records the new leader
   * already holds: duplicates. A successful append needs no check (acks=all waits for the ISR to
   * reach the high watermark, which a deposed leader's followers never do), so only errors wait.
   *
   * Confirmation: min.insync.replicas - 1 followers of the ISR (at least one, at most all of
   * them) each send TWO fetches in this leader epoch after the error was decided. The first may
   * have been in flight since before; the second was sent after the first was answered, so the
   * follower still followed this node in this epoch after the check, and a follower that knows a
   * newer epoch never fetches from this node in an older one. An ISR of this node alone cannot
   * confirm anything and is answered as is, as Kafka does for every case.
   */
  private confirmLeadership(state: PartitionState, leaderEpoch: number, cause: KavkaError): Promise<void> {
    const { nodeId, clock } = this.options;
    const timeoutMs = this.options.replication?.replicaLagTimeMaxMs;
    if (timeoutMs === undefined) return Promise.resolve(); // this node never replicates: nobody can confirm or depose it
    const name = topicPartitionName(state.topicPartition);
    const baseline = new Map([...state.followers].map(([id, follower]) => [id, follower.fetchCount]));
    return new Promise((resolve, reject) => {
      let settled = false;
      const cleanups: (() => void)[] = [];
      const settle = (error?: KavkaError) => {
        if (settled) return;
        settled = true;
        for (const cleanup of cleanups) cleanup();
        if (error === undefined) resolve();
        else reject(error);
      };
      const notLeader = (why: string) =>
        new KavkaError(
          'NOT_LEADER_OR_FOLLOWER',
          `${name}: ${why}, so this node does not answer ${cause.code} (${cause.message}); refresh metadata and retry`,
          { retriable: true, leaderHint: state.image.leader },
        );
      const check = () => {
        if (this.closed || state.leaderEpochLed !== leaderEpoch || this.partitions.get(name) !== state) {
          settle(notLeader(`leadership moved from leader epoch ${leaderEpoch} before the ISR confirmed it`));
          return;
        }
        const followers = state.image.isr.filter((id) => id !== nodeId);
        const required = Math.min(followers.length, Math.max(1, state.minInsyncReplicas - 1));
        const confirmed = followers.filter((id) => (state.followers.get(id)?.fetchCount ?? 0) >= (baseline.get(id) ?? 0) + 2).length;
        if (confirmed >= required) settle();
      };
      check();
      if (settled) return;
      state.leadershipChecks += 1;
      cleanups.push(
        () => (state.leadershipChecks -= 1),
        state.onFollowerFetch(check),
        this.onRoleChange(check),
        clock.schedule(timeoutMs, () => settle(notLeader(`the in-sync followers did not fetch in leader epoch ${leaderEpoch} for ${timeoutMs} ms`))),
      );
      state.wantFollowerFetches();
    });
  }

  private checkMinInsync(state: PartitionState, code: 'NOT_ENOUGH_REPLICAS' | 'NOT_ENOUGH_REPLICAS_AFTER_APPEND'): void {
    const isrSize = state.image.isr.length;
    if (isrSize >= state.minInsyncReplicas) return;
    const what = code === 'NOT_ENOUGH_REPLICAS' ? '' : ' after the append (it may still be kept; retry)';
    throw new KavkaError(code, `${topicPartitionName(state.topicPartition)} has ${isrSize} in-sync replica(s) (${state.image.isr.join(',')})${what}; acks=all needs min.insync.replicas=${state.minInsyncReplicas}`);
  }

  /** Resolves once the HW reaches `offset` in this leader epoch; rejects when leadership moves or the ISR gets too small. */
  private waitForHighWatermark(state: PartitionState, offset: bigint, leaderEpoch: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        if (state.leaderEpochLed !== leaderEpoch || this.partitions.get(topicPartitionName(state.topicPartition)) !== state) {
          reject(new KavkaError('NOT_LEADER_OR_FOLLOWER', `${topicPartitionName(state.topicPartition)}: leadership moved while acks=all waited; the record may or may not be kept, retry`, { leaderHint: state.image.leader }));
          return true;
        }
        // As Kafka's DelayedProduce: the ISR must still have min.insync.replicas members, also
        // when the HW has passed the batch (an ISR shrunk to the leader moves the HW alone).
        try {
          this.checkMinInsync(state, 'NOT_ENOUGH_REPLICAS_AFTER_APPEND');
        } catch (error) {
          reject(error);
          return true;
        }
        if (state.highWatermark >= offset) {
          resolve();
          return true;
        }
        return false;
      };
      if (check()) return;
      const stopHw = state.onHighWatermark(() => {
        if (check()) cleanup();
      });
      const stopRole = this.onRoleChange(() => {
        if (check()) cleanup();
      });
      const cleanup = () => {
        stopHw();
        stopRole();
      };
    });
  }

  private readonly roleListeners = new Set<() => void>();

  /** Called after each metadata image is applied (leadership and ISR may have changed). */
  private onRoleChange(listener: () => void): () => void {
    this.roleListeners.add(listener);
    return () => this.roleListeners.delete(listener);
  }

  // ------------------------------------------------------------------ leader side of replication

  /**
   * A follower's ReplicaFetch (leader side): checks leadership, epochs and divergence, records
   * the follower's log end (its fetch offset), moves the HW and the ISR, and returns batches as
   * stored, up to the log end. Long-polls like a consumer fetch.
   */
  async replicaFetch(request: ReplicaFetchRequest, signal?: AbortSignal): Promise<ReplicaFetchPartitionResult[]> {
    await this.applying;
    const deadline = this.options.clock.monotonicMs() + request.maxWaitMs;
    for (let first = true; ; first = false) {
      const results: ReplicaFetchPartitionResult[] = [];
      let remaining = request.maxBytes;
      for (const p of request.partitions) {
        const result = await this.replicaFetchPartition(request.replicaId, p, remaining, first);
        remaining -= result.batches.length;
        results.push(result);
      }
      const bytes = results.reduce((sum, r) => sum + r.batches.length, 0);
      // A leadership check (confirmLeadership) waits for the followers' next fetches: no long-poll.
      const answerNow = results.some((r) => r.errorCode !== 'NONE' || r.divergingEpoch !== undefined || (this.partitions.get(topicPartitionName(r.topicPartition))?.leadershipChecks ?? 0) > 0);
      const remainingMs = deadline - this.options.clock.monotonicMs();
      if (bytes >= Math.max(1, request.minBytes) || answerNow || remainingMs <= 0 || signal?.aborted === true || this.closed) return results;
      await this.waitForAppend(request.partitions.map((p) => ({ topicPartition: p.topicPartition, fetchOffset: p.fetchOffset, maxBytes: p.maxBytes })), remainingMs, signal);
    }
  }

  private async replicaFetchPartition(replicaId: number, p: ReplicaFetchPartitionRequest, maxBytes: number, recordFetch: boolean): Promise<ReplicaFetchPartitionResult> {
    const tp = p.topicPartition;
    const answer = (errorCode: ErrorName, errorMessage: string, state?: PartitionState): ReplicaFetchPartitionResult => ({
      topicPartition: tp,
      errorCode,
      errorMessage,
      highWatermark: state?.highWatermark ?? -1n,
      logStartOffset: state?.log.logStartOffset ?? -1n,
      batches: Buffer.alloc(0),
    });
    let state: PartitionState;
    try {
      state = this.leaderPartitionOrThrow(tp);
    } catch (error) {
      const e = toKavkaError(error);
      return answer(e.code, e.message);
    }
    const name = topicPartitionName(tp);
    if (!state.image.replicas.includes(replicaId)) return answer('REPLICA_NOT_AVAILABLE', `broker ${replicaId} is not a replica of ${name} (${state.image.replicas.join(',')})`, state);
    if (p.topicId !== '' && p.topicId !== state.topicId) return answer('UNKNOWN_TOPIC_ID', `${name} is topic id ${state.topicId}, not ${p.topicId}`, state);
    const epoch = state.image.leaderEpoch;
    if (p.currentLeaderEpoch < epoch) return answer('FENCED_LEADER_EPOCH', `${name}: the follower's leader epoch ${p.currentLeaderEpoch} is older than ${epoch}`, state);
    if (p.currentLeaderEpoch > epoch) return answer('UNKNOWN_LEADER_EPOCH', `${name}: leader epoch ${p.currentLeaderEpoch} is newer than this leader's ${epoch}`, state);
    const { log } = state;
    if (p.lastFetchedEpoch >= 0) {
      let end;
      try {
        end = log.endOffsetForEpoch(p.lastFetchedEpoch);
      } catch (error) {
        const e = toKavkaError(error);
        return answer(e.code, e.message, state);
      }
      if (end.epoch < p.lastFetchedEpoch || end.endOffset < p.fetchOffset) {
        return { ...answer('NONE', '', state), divergingEpoch: { epoch: end.epoch, endOffset: end.endOffset } };
      }
    }
    if (p.fetchOffset < log.logStartOffset || p.fetchOffset > log.logEndOffset) {
      return answer('OFFSET_OUT_OF_RANGE', `${name}: fetch offset ${p.fetchOffset} is outside ${log.logStartOffset}..${log.logEndOffset}`, state);
    }
    if (recordFetch) this.recordFollowerFetch(state, replicaId, p.fetchOffset, p.logStartOffset);
    try {
      // A batch that fails its CRC is never sent: the read fails and this node's log dir goes offline.
      const read = await log.read(p.fetchOffset, Math.max(0, Math.min(p.maxBytes, maxBytes)), { maxOffset: log.logEndOffset, minOneBatch: maxBytes > 0 });
      return { ...answer('NONE', '', state), batches: read.batches };
    } catch (error) {
      const e = toKavkaError(error);
      return answer(e.code, e.message, state);
    }
  }

  private recordFollowerFetch(state: PartitionState, replicaId: number, fetchOffset: bigint, logStartOffset: bigint): void {
    const follower = state.recordFollowerFetch(replicaId, fetchOffset, logStartOffset, this.options.clock.monotonicMs());
    if (follower === undefined) return;
    state.maybeAdvanceHighWatermark(this.options.nodeId);
    // Back in sync: its log reaches the HW, and this leader's first offset of the epoch (so it
    // holds nothing from an older epoch that this leader lacks), and it is not missing the head
    // of the log (a replica restarted empty re-fetched it first).
    const { image } = state;
    if (
      !image.isr.includes(replicaId) &&
      follower.logEndOffset >= state.highWatermark &&
      follower.logEndOffset >= state.leaderEpochStartOffset &&
      follower.logStartOffset <= state.log.logStartOffset
    ) {
      this.changeIsr(state, [...image.isr, replicaId], `broker ${replicaId} caught up (log end ${follower.logEndOffset}, HW ${state.highWatermark})`);
    }
  }

  /** AlterPartition to `newIsr`, one request at a time per partition; failures are logged and retried by later checks. */
  private changeIsr(state: PartitionState, newIsr: number[], reason: string): void {
    const alterIsr = this.options.alterIsr;
    const key = topicPartitionName(state.topicPartition);
    if (alterIsr === undefined || this.isrChanges.has(key) || !state.isLeader) return;
    const { image } = state;
    const request: AlterPartitionRequest = {
      topic: state.topicPartition.topic,
      topicId: state.topicId,
      partition: state.topicPartition.partition,
      leaderId: this.options.nodeId,
      leaderEpoch: image.leaderEpoch,
      partitionEpoch: image.partitionEpoch,
      newIsr,
    };
    this.options.logger.info({ topicPartition: key, isr: image.isr, newIsr, reason }, 'changing the ISR');
    // Until an image shows the outcome, the HW counts the new members too (PartitionState.pendingIsr).
    state.setPendingIsr(newIsr);
    const expands = newIsr.length > image.isr.length;
    const change = alterIsr(request)
      .then(() => {
        if (expands) this.counts.isrExpands++;
        else this.counts.isrShrinks++;
      })
      .catch((error: unknown) => {
        // The controller answered and refused: nothing was committed, so the members this change
        // would have added must not hold the HW back (e.g. a broker shutting down that fetched
        // once more). An unknown outcome (no answer) keeps them until a newer image or the lag check.
        if (error instanceof AlterPartitionRefused && state.pendingIsr?.partitionEpoch === request.partitionEpoch) state.clearPendingIsr();
        this.options.logger.warn({ topicPartition: key, err: error }, 'changing the ISR failed; a later check retries');
      })
      .finally(() => this.isrChanges.delete(key));
    this.isrChanges.set(key, change);
  }

  /** Leader: followers in the ISR that have not caught up within replica.lag.time.max.ms leave it. */
  private shrinkLaggingIsrs(): void {
    const lagMaxMs = this.options.replication?.replicaLagTimeMaxMs;
    if (lagMaxMs === undefined) return;
    const nowMs = this.options.clock.monotonicMs();
    for (const state of this.partitions.values()) {
      if (!state.isLeader) continue;
      const isLagging = (id: number) => {
        if (id === this.options.nodeId) return false;
        const follower = state.followers.get(id);
        return follower === undefined || nowMs - follower.lastCaughtUpTimeMs > lagMaxMs;
      };
      // A member only a pending ISR change names (no image has it; the change failed or its outcome
      // is unknown) that stopped fetching must not hold the HW back forever.
      if (state.pendingIsr?.isr.some((id) => !state.image.isr.includes(id) && isLagging(id)) === true && !this.isrChanges.has(topicPartitionName(state.topicPartition))) {
        state.clearPendingIsr();
      }
      const lagging = state.image.isr.filter(isLagging);
      if (lagging.length === 0) continue;
      const newIsr = state.image.isr.filter((id) => !lagging.includes(id));
      this.changeIsr(state, newIsr, `broker(s) ${lagging.join(',')} not caught up for ${lagMaxMs} ms`);
    }
  }

  private scheduleIsrCheck(intervalMs: number): void {
    if (this.closed) return;
    this.cancelIsrCheck = this.options.clock.schedule(intervalMs, () => {
      this.shrinkLaggingIsrs();
      this.scheduleIsrCheck(intervalMs);
    });
  }

  /**
   * Reads from many partitions. Returns once minBytes are available, maxWaitMs has passed, a
   * partition has an error, or the signal aborts. Per KIP-74 the first partition with data
   * returns at least one whole batch even if it is larger than the byte limits.
   */
  async fetch(requests: FetchPartitionRequest[], options: FetchOptions): Promise<FetchPartitionResult[]> {
    await this.applying;
    const deadline = this.options.clock.monotonicMs() + options.maxWaitMs;
    for (;;) {
      const results = await this.readOnce(requests, options.maxBytes);
      const bytes = results.reduce((sum, r) => sum + r.batches.length, 0);
      const hasError = results.some((r) => r.errorCode !== 'NONE');
      const remainingMs = deadline - this.options.clock.monotonicMs();
      if (bytes >= options.minBytes || hasError || remainingMs <= 0 || options.signal?.aborted) return results;
      await this.waitForAppend(requests, remainingMs, options.signal);
    }
  }

  /** Resolves on the next durable append or HW move of any of the partitions, after timeoutMs, or on abort. */
  waitForAppend(requests: FetchPartitionRequest[], timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      // An abort that came while the caller was reading must not wait out the timeout.
      if (signal?.aborted) {
        resolve();
        return;
      }
      const cleanups: (() => void)[] = [];
      const done = () => {
        for (const cleanup of cleanups) cleanup();
        resolve();
      };
      for (const request of requests) {
        const state = this.partitions.get(topicPartitionName(request.topicPartition));
        if (state !== undefined) cleanups.push(state.log.onAppend(done), state.onHighWatermark(done), state.onFetchWanted(done));
      }
      cleanups.push(this.options.clock.schedule(timeoutMs, done));
      if (signal !== undefined) {
        signal.addEventListener('abort', done, { once: true });
        cleanups.push(() => signal.removeEventListener('abort', done));
      }
    });
  }

  async listOffset(tp: TopicPartition, timestamp: bigint): Promise<TimestampOffset & { leaderEpoch: number }> {
    const state = this.leaderPartitionOrThrow(tp);
    const leaderEpoch = state.image.leaderEpoch;
    if (timestamp === LIST_OFFSETS_EARLIEST) return { offset: state.log.logStartOffset, timestamp: -1n, leaderEpoch };
    if (timestamp === LIST_OFFSETS_LATEST) return { offset: state.highWatermark, timestamp: -1n, leaderEpoch };
    let found: TimestampOffset | undefined;
    if (timestamp === LIST_OFFSETS_MAX_TIMESTAMP) found = await state.log.maxTimestampOffset();
    else if (timestamp >= 0n) found = await state.log.offsetForTimestamp(timestamp);
    else throw new KavkaError('INVALID_REQUEST', `timestamp ${timestamp} is not valid; use -2 (earliest), -1 (latest), -3 (max timestamp) or milliseconds since the epoch`);
    if (found === undefined || found.offset >= state.highWatermark) return { offset: -1n, timestamp: -1n, leaderEpoch };
    return { ...found, leaderEpoch };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.cancelIsrCheck?.();
    await this.fetchers?.close();
    await this.applying;
    this.partitions.clear();
    for (const listener of [...this.roleListeners]) listener();
  }

  private async readOnce(requests: FetchPartitionRequest[], maxBytes: number): Promise<FetchPartitionResult[]> {
    const results: FetchPartitionResult[] = [];
    let remaining = maxBytes;
    let returnedAny = false;
    for (const request of requests) {
      const tp = request.topicPartition;
      try {
        const state = this.leaderPartitionOrThrow(tp);
        const highWatermark = state.highWatermark;
        const limit = Math.min(request.maxBytes, Math.max(0, remaining));
        const read = await state.log.read(request.fetchOffset, limit, { maxOffset: highWatermark, minOneBatch: !returnedAny });
        if (read.batches.length > 0) returnedAny = true;
        remaining -= read.batches.length;
        results.push({
          topicPartition: tp,
          errorCode: 'NONE',
          errorMessage: '',
          highWatermark,
          logStartOffset: read.logStartOffset,
          batches: read.batches,
          nextFetchOffset: read.nextOffset,
        });
      } catch (error) {
        const kavkaError = toKavkaError(error);
        const state = this.partitions.get(topicPartitionName(tp));
        results.push({
          topicPartition: tp,
          errorCode: kavkaError.code,
          errorMessage: kavkaError.message,
          highWatermark: state?.highWatermark ?? -1n,
          logStartOffset: state?.log.logStartOffset ?? -1n,
          batches: Buffer.alloc(0),
          nextFetchOffset: request.fetchOffset,
          ...(kavkaError.code === 'NOT_LEADER_OR_FOLLOWER' ? { currentLeader: this.currentLeader(tp) } : {}),
        });
      }
    }
    return results;
  }

  private async reconcile(image: MetadataImage): Promise<void> {
    const { nodeId, logManager, logger } = this.options;
    if (this.image !== undefined && this.image.offset >= image.offset) return;
    const firstImage = this.image === undefined;
    this.image = image;
    const wanted = (tp: TopicPartition, topicId?: string) => {
      const topic = image.topic(tp.topic);
      const partition = topic?.partitions[tp.partition];
      return partition !== undefined && partition.replicas.includes(nodeId) && (topicId === undefined || topicId === topic?.topicId);
    };
    // Partitions the image no longer gives this node: deleted, or re-created under a new topic id.
    for (const [key, state] of this.partitions) {
      if (wanted(state.topicPartition, state.topicId)) continue;
      this.partitions.delete(key);
      await this.fetchers?.quiesce(key);
      await logManager.deleteLog(state.topicPartition);
      logger.info({ topicPartition: key, topicId: state.topicId }, 'partition deleted');
    }
    if (firstImage) {
      // Directories of topics deleted while this node was down (or just before it crashed).
      for (const tp of logManager.partitionDirectories()) {
        if (wanted(tp)) continue;
        logger.warn({ topicPartition: topicPartitionName(tp) }, 'deleting a partition directory the metadata no longer has (a deleted topic)');
        await logManager.deleteLog(tp);
      }
    }
    for (const topic of image.topics.values()) {
      for (const partitionImage of topic.partitions) {
        if (!partitionImage.replicas.includes(nodeId)) continue;
        const key = topicPartitionName({ topic: topic.name, partition: partitionImage.partition });
        try {
          await this.reconcilePartition(topic, partitionImage.partition);
          this.offline.delete(key);
        } catch (error) {
          // One partition that will not open must not take the others down with it.
          const reason = toKavkaError(error).message;
          if (this.offline.get(key) !== reason) logger.error({ topicPartition: key, err: error }, 'partition cannot be opened; it is not served until repaired');
          this.offline.set(key, reason);
        }
      }
    }
    await this.applyRoles();
  }

  /** Leader or follower per partition, as the image says; the fetchers follow the rest. */
  private async applyRoles(): Promise<void> {
    const { nodeId } = this.options;
    const followed = new Map<string, { state: PartitionState; leaderId: number }>();
    if (this.logDirOfflineReason !== undefined) return;
    for (const [key, state] of this.partitions) {
      const { image } = state;
      if (image.leader === nodeId && state.log.refetchRequired !== undefined) {
        // Elected (it was the last ISR member), but its repair may have dropped acknowledged records.
        if (state.isLeader) state.becomeFollower();
        this.options.logger.error(
          { topicPartition: key, leaderEpoch: image.leaderEpoch, isr: image.isr, truncatedToOffset: state.log.refetchRequired.toString() },
          'elected leader of a partition this replica repaired after corruption; refusing to lead it (see the KAFKA_STORAGE_ERROR answers for what to do)',
        );
        continue;
      }
      if (image.leader === nodeId) {
        if (state.leaderEpochLed !== image.leaderEpoch) {
          await this.fetchers?.quiesce(key);
          // Record where this epoch starts, so a follower with records of an epoch this leader
          // never saw is told to truncate here (Kafka's maybeAssignEpochStartOffset).
          await state.log.assignEpochStartOffset(image.leaderEpoch);
          state.becomeLeader(nodeId, this.options.clock.monotonicMs());
          this.counts.leaderships++;
          this.options.logger.info({ topicPartition: key, leaderEpoch: image.leaderEpoch, isr: image.isr, logEndOffset: state.log.logEndOffset.toString() }, 'leading the partition');
        }
        state.maybeAdvanceHighWatermark(nodeId);
      } else {
        if (state.isLeader) {
          state.becomeFollower();
          this.options.logger.info({ topicPartition: key, leader: image.leader, leaderEpoch: image.leaderEpoch }, 'no longer leading the partition');
        }
        if (image.leader >= 0 && !this.offline.has(key)) followed.set(key, { state, leaderId: image.leader });
        // Back in another leader's ISR: that leader saw this replica catch up after its repair.
        if (image.leader >= 0 && image.isr.includes(nodeId) && state.log.refetchRequired !== undefined) this.clearRefetchRequired(key, state);
      }
    }
    this.fetchers?.assign(followed);
    for (const listener of [...this.roleListeners]) listener();
  }

  private clearRefetchRequired(key: string, state: PartitionState): void {
    if (this.clearingRefetch.has(key)) return;
    this.clearingRefetch.add(key);
    state.log.clearRefetchRequired().then(
      () => this.options.logger.info({ topicPartition: key, leader: state.image.leader, isr: state.image.isr }, 'repaired replica is back in the ISR; it may lead again'),
      (error: unknown) => this.options.logger.warn({ topicPartition: key, err: error }, 'removing the refetch-required marker failed; the next metadata retries'),
    ).finally(() => this.clearingRefetch.delete(key));
  }

  private async reconcilePartition(topic: TopicImage, partition: number): Promise<void> {
    const tp: TopicPartition = { topic: topic.name, partition };
    const key = topicPartitionName(tp);
    const partitionImage = topic.partitions[partition];
    const config = this.options.logConfigFor(topic.configs);
    const minInsync = this.options.minInsyncReplicasFor(topic.configs);
    let state = this.partitions.get(key);
    if (state === undefined) {
      const log = this.options.logManager.getLog(tp) ?? (await this.options.logManager.createLog(tp, config, topic.topicId));
      state = new PartitionState(tp, topic.topicId, log, partitionImage, minInsync);
      this.partitions.set(key, state);
      this.options.logger.info({ topicPartition: key, leader: partitionImage.leader, leaderEpoch: partitionImage.leaderEpoch }, 'partition opened');
    } else {
      state.setImage(partitionImage);
      state.minInsyncReplicas = minInsync;
      state.log.updateConfig(config);
    }
  }
}
