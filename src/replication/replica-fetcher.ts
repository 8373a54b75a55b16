// The follower side of replication: one fetcher per leader broker, each a loop that sends
// ReplicaFetch for every partition this node follows under that leader, appends what comes back
// byte for byte (PartitionLog.appendAsFollower, which resolves once fsynced under the batch flush
// policy, so the next fetch offset is durable), takes the leader's high watermark, and truncates
// where the leader says the logs diverge (KIP-320: the fetch carries the epoch of the last batch
// held; the answer names the leader's end offset for it).
//
// A fetch is a long poll on the leader, so a fetcher has at most one request in flight: a slow
// follower only slows itself, and the leader holds nothing for it beyond one response (bounded
// by max bytes). Errors back off; partitions whose leader changed wait for the next metadata.
//
// The replica manager tells the manager which partitions to follow (`assign`) after each
// metadata image, and waits (`quiesce`) before it makes a followed partition a leader, so no
// follower append can land after the first leader append.
import type { ErrorName } from '../util/errors.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { topicPartitionName, type TopicPartition } from '../storage/index.js';
import type { PartitionState } from './partition-state.js';

export interface ReplicaFetchPartitionRequest {
  topicPartition: TopicPartition;
  topicId: string;
  currentLeaderEpoch: number;
  fetchOffset: bigint;
  /** Epoch of the last batch the follower holds; -1 when its log is empty. */
  lastFetchedEpoch: number;
  logStartOffset: bigint;
  maxBytes: number;
}

export interface ReplicaFetchRequest {
  replicaId: number;
  maxWaitMs: number;
  minBytes: number;
  maxBytes: number;
  partitions: ReplicaFetchPartitionRequest[];
}

export interface EpochEndOffset {
  epoch: number;
  endOffset: bigint;
}

export interface ReplicaFetchPartitionResult {
  topicPartition: TopicPartition;
  errorCode: ErrorName;
  errorMessage: string;
  highWatermark: bigint;
  logStartOffset: bigint;
  batches: Buffer;
  /** The follower's log diverges from the leader's: truncate, then fetch again. */
  divergingEpoch?: EpochEndOffset;
}

/** Sends one ReplicaFetch to a leader broker (gRPC in production). */
export type ReplicaFetchTransport = (leaderId: number, request: ReplicaFetchRequest, signal: AbortSignal) => Promise<ReplicaFetchPartitionResult[]>;

export interface ReplicaFetcherOptions {
  nodeId: number;
  transport: ReplicaFetchTransport;
  clock: Clock;
  logger: Logger;
  maxWaitMs: number;
  minBytes: number;
  partitionMaxBytes: number;
  responseMaxBytes: number;
  backoffMs: number;
}

/** Followed partitions by leader broker id. */
export class ReplicaFetcherManager {
  private readonly fetchers = new Map<number, LeaderFetcher>();
  private closed = false;

  constructor(private readonly options: ReplicaFetcherOptions) {}

  /** Follows exactly these partitions (leader id per partition); stops fetchers left idle. */
  assign(followed: ReadonlyMap<string, { state: PartitionState; leaderId: number }>): void {
    if (this.closed) return;
    const byLeader = new Map<number, Map<string, PartitionState>>();
    for (const [key, { state, leaderId }] of followed) {
      let group = byLeader.get(leaderId);
      if (group === undefined) byLeader.set(leaderId, (group = new Map()));
      group.set(key, state);
    }
    for (const [leaderId, fetcher] of this.fetchers) {
      if (!byLeader.has(leaderId)) {
        fetcher.stop();
        this.fetchers.delete(leaderId);
      }
    }
    for (const [leaderId, partitions] of byLeader) {
      let fetcher = this.fetchers.get(leaderId);
      if (fetcher === undefined) {
        fetcher = new LeaderFetcher(leaderId, this.options);
        this.fetchers.set(leaderId, fetcher);
      }
      fetcher.setPartitions(partitions);
    }
  }

  /** Stops following a partition and waits until no response for it is being applied. */
  async quiesce(key: string): Promise<void> {
    await Promise.all([...this.fetchers.values()].map((f) => f.remove(key)));
  }

  async close(): Promise<void> {
    this.closed = true;
    const stopping = [...this.fetchers.values()].map((f) => f.stop());
    this.fetchers.clear();
    await Promise.all(stopping);
  }
}

class LeaderFetcher {
  private partitions = new Map<string, PartitionState>();
  private stopped = false;
  private readonly abort = new AbortController();
  /** The response being applied, if any. */
  private applying: Promise<void> = Promise.resolve();
  private readonly loop: Promise<void>;
  private wake: (() => void) | undefined;
  private readonly logger: Logger;

  constructor(
    private readonly leaderId: number,
    private readonly options: ReplicaFetcherOptions,
  ) {
    this.logger = options.logger.child({ leaderId });
    this.loop = this.run();
  }

  setPartitions(partitions: Map<string, PartitionState>): void {
    this.partitions = partitions;
    this.wake?.();
  }

  async remove(key: string): Promise<void> {
    if (!this.partitions.has(key)) return;
    const next = new Map(this.partitions);
    next.delete(key);
    this.partitions = next;
    await this.applying;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const partitions = [...this.partitions.entries()];
      if (partitions.length === 0) {
        await this.sleep(60_000);
        continue;
      }
      const request: ReplicaFetchRequest = {
        replicaId: this.options.nodeId,
        maxWaitMs: this.options.maxWaitMs,
        minBytes: this.options.minBytes,
        maxBytes: this.options.responseMaxBytes,
        partitions: partitions.map(([, state]) => ({
          topicPartition: state.topicPartition,
          topicId: state.topicId,
          currentLeaderEpoch: state.image.leaderEpoch,
          fetchOffset: state.log.logEndOffset,
          lastFetchedEpoch: state.log.latestEpoch() ?? -1,
          logStartOffset: state.log.logStartOffset,
          maxBytes: this.options.partitionMaxBytes,
        })),
      };
      let results: ReplicaFetchPartitionResult[];
      try {
        results = await this.options.transport(this.leaderId, request, this.abort.signal);
      } catch (error) {
        if (this.stopped) break;
        this.logger.debug({ err: error }, 'replica fetch failed; backing off');
        await this.sleep(this.options.backoffMs);
        continue;
      }
      let backoff = false;
      const sent = new Map(request.partitions.map((p) => [topicPartitionName(p.topicPartition), p]));
      const applied = (async () => {
        for (const result of results) {
          const key = topicPartitionName(result.topicPartition);
          const state = this.partitions.get(key);
          const asked = sent.get(key);
          // Unfollowed meanwhile, or a new leader epoch: this answer is stale.
          if (state === undefined || asked === undefined || state.image.leaderEpoch !== asked.currentLeaderEpoch || state.isLeader) continue;
          try {
            if (!(await this.applyResult(state, asked, result))) backoff = true;
          } catch (error) {
            backoff = true;
            this.logger.warn({ err: error, topicPartition: key }, 'applying a replica fetch response failed');
          }
        }
      })();
      this.applying = applied;
      await applied;
      if (backoff) await this.sleep(this.options.backoffMs);
    }
  }

  /** Applies one partition's answer. Returns false when the partition should back off. */
  private async applyResult(state: PartitionState, asked: ReplicaFetchPartitionRequest, result: ReplicaFetchPartitionResult): Promise<boolean> {
    const { log } = state;
    const tp = topicPartitionName(state.topicPartition);
    if (result.errorCode === 'NONE' && result.divergingEpoch !== undefined) {
      const target = truncationOffset(log.endOffsetForEpoch(result.divergingEpoch.epoch), result.divergingEpoch, log.logEndOffset, log.logStartOffset);
      this.logger.info({ topicPartition: tp, divergingEpoch: result.divergingEpoch.epoch, leaderEndOffset: result.divergingEpoch.endOffset.toString(), truncateTo: target.toString(), logEndOffset: log.logEndOffset.toString() }, 'follower log diverges from the leader; truncating');
      await log.truncateTo(target);
      state.clampHighWatermark();
      return true;
    }
    switch (result.errorCode) {
      case 'NONE':
        if (result.batches.length > 0) {
          if (log.logEndOffset !== asked.fetchOffset) return true; // the log moved (truncation); refetch
          await log.appendAsFollower(result.batches);
        }
        state.setFollowerHighWatermark(result.highWatermark);
        // A replica repaired after corruption has everything it dropped again once it reaches its
        // leader's high watermark (the same test as joining the ISR): it may lead again.
        if (log.refetchRequired !== undefined && log.logEndOffset >= result.highWatermark && result.highWatermark >= log.refetchRequired) {
          const truncatedTo = log.refetchRequired;
          await log.clearRefetchRequired();
          this.logger.info({ topicPartition: tp, truncatedToOffset: truncatedTo.toString(), logEndOffset: log.logEndOffset.toString(), leaderHighWatermark: result.highWatermark.toString() }, 'repaired replica caught up with its leader; it may lead again');
        }
        return true;
      case 'OFFSET_OUT_OF_RANGE':
        if (asked.fetchOffset < result.logStartOffset) {
          // The leader no longer has what this replica would fetch next: start over at its log start.
          this.logger.warn({ topicPartition: tp, fetchOffset: asked.fetchOffset.toString(), leaderLogStartOffset: result.logStartOffset.toString() }, 'follower is below the leader log start; restarting its log there');
          await log.truncateFullyAndStartAt(result.logStartOffset);
          state.clampHighWatermark();
          return true;
        }
        // Ahead of the leader without a divergence answer: keep only what is committed.
        this.logger.warn({ topicPartition: tp, fetchOffset: asked.fetchOffset.toString(), leaderHighWatermark: result.highWatermark.toString() }, 'follower is ahead of the leader; truncating to the leader high watermark');
        await log.truncateTo(result.highWatermark < log.logStartOffset ? log.logStartOffset : result.highWatermark);
        state.clampHighWatermark();
        return true;
      default:
        // NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH, ...: wait for metadata.
        this.logger.debug({ topicPartition: tp, code: result.errorCode, message: result.errorMessage }, 'replica fetch refused for a partition');
        return false;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const cancel = this.options.clock.schedule(ms, () => {
        this.wake = undefined;
        resolve();
      });
      this.wake = () => {
        cancel();
        this.wake = undefined;
        resolve();
      };
    });
  }
}

/**
 * Where a follower truncates when the leader names a divergence (Kafka's
 * getOffsetTruncationState): with the leader's epoch in the follower's log, at the smaller of
 * the two end offsets for it; without it, at the follower's own end of the largest epoch below
 * (the next fetch asks again from there); never above the follower's log end nor below its start.
 */
export function truncationOffset(local: EpochEndOffset, leader: EpochEndOffset, logEndOffset: bigint, logStartOffset: bigint): bigint {
  let target: bigint;
  if (leader.endOffset < 0n) target = logStartOffset;
  else if (local.epoch === leader.epoch) target = local.endOffset < leader.endOffset ? local.endOffset : leader.endOffset;
  else target = local.endOffset < 0n ? logStartOffset : local.endOffset < leader.endOffset ? local.endOffset : leader.endOffset;
  if (target > logEndOffset) target = logEndOffset;
  if (target < logStartOffset) target = logStartOffset;
  return target;
}

