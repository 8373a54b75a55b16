// ReplicaManager: the partitions this node holds, their roles, produce (with acks) and fetch
// (with long-poll). The server adapters call it; it calls storage. Called from many concurrent
// gRPC handlers; each partition's appends are serialized inside its log.
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

export type Acks = -1 | 0 | 1;

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
  clock: Clock;
  logger: Logger;
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

export const LIST_OFFSETS_EARLIEST = -2n;
export const LIST_OFFSETS_LATEST = -1n;
export const LIST_OFFSETS_MAX_TIMESTAMP = -3n;

export class ReplicaManager {
  private readonly partitions = new Map<string, PartitionState>();
  /** Partitions this node should hold but could not open, with the reason. */
  private readonly offline = new Map<string, string>();
  private image: MetadataImage | undefined;
  private applying: Promise<void> = Promise.resolve();
  /** ISR shrinks in flight, by partition: concurrent produces wait for the same one. */
  private readonly isrShrinks = new Map<string, Promise<void>>();

  constructor(private readonly options: ReplicaManagerOptions) {}

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

  allPartitions(): PartitionState[] {
    return [...this.partitions.values()];
  }

  /** Partitions that could not be opened, with the reason (metrics, readiness). */
  offlinePartitions(): ReadonlyMap<string, string> {
    return this.offline;
  }

  /** The leader's partition state, or a KavkaError naming why this node cannot serve it. */
  leaderPartitionOrThrow(tp: TopicPartition): PartitionState {
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
    return state;
  }

  /** The partition's leader and leader epoch in this node's metadata ({-1, -1} when unknown). */
  currentLeader(tp: TopicPartition): CurrentLeader {
    const p = this.image?.topic(tp.topic)?.partitions[tp.partition];
    return { leaderId: p?.leader ?? -1, leaderEpoch: p?.leaderEpoch ?? -1 };
  }

  /** Appends batches as leader and waits as acks requires. */
  async appendRecords(tp: TopicPartition, batches: Buffer, acks: Acks): Promise<AppendResult> {
    // Metadata already delivered may still be opening partitions: serve only once it is applied,
    // so a node never refuses a partition that its own Metadata says it leads.
    await this.applying;
    let state = this.leaderPartitionOrThrow(tp);
    if (this.options.alterIsr !== undefined && !(state.image.isr.length === 1 && state.image.isr[0] === this.options.nodeId)) {
      // Followers do not copy data yet, so no other replica can stay in sync once this write
      // lands: the ISR shrinks to the leader first, and leadership can never move to a replica
      // that lacks acknowledged records.
      await this.shrinkIsrToLeader(state);
      state = this.leaderPartitionOrThrow(tp);
    }
    if (acks === -1) {
      const isrSize = state.image.isr.length;
      if (isrSize < state.minInsyncReplicas) {
        throw new KavkaError('NOT_ENOUGH_REPLICAS', `${topicPartitionName(tp)} has ${isrSize} in-sync replica(s); acks=all needs min.insync.replicas=${state.minInsyncReplicas}`);
      }
    }
    // With one replica, the append resolving under the flush policy is what acks=1 and acks=all
    // wait for: the high watermark is the durable log end.
    return state.log.appendAsLeader(batches, state.image.leaderEpoch);
  }

  private shrinkIsrToLeader(state: PartitionState): Promise<void> {
    const key = topicPartitionName(state.topicPartition);
    let shrink = this.isrShrinks.get(key);
    if (shrink === undefined) {
      const { image } = state;
      const request: AlterPartitionRequest = {
        topic: state.topicPartition.topic,
        topicId: state.topicId,
        partition: state.topicPartition.partition,
        leaderId: this.options.nodeId,
        leaderEpoch: image.leaderEpoch,
        partitionEpoch: image.partitionEpoch,
        newIsr: [this.options.nodeId],
      };
      this.options.logger.info({ topicPartition: key, isr: image.isr, leaderEpoch: image.leaderEpoch }, 'shrinking the ISR to the leader before the first write');
      shrink = (this.options.alterIsr?.(request) ?? Promise.resolve()).finally(() => this.isrShrinks.delete(key));
      this.isrShrinks.set(key, shrink);
    }
    return shrink;
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

  /** Resolves on the next durable append to any of the partitions, after timeoutMs, or on abort. */
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
        if (state !== undefined) cleanups.push(state.log.onAppend(done));
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
    await this.applying;
    this.partitions.clear();
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
      state.image = partitionImage;
      state.minInsyncReplicas = minInsync;
      state.log.updateConfig(config);
    }
  }
}
