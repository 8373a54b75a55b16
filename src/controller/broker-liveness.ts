// Broker sessions, as the active controller sees them (KIP-631): a broker heartbeats every
// broker.heartbeat.interval.ms; one silent for broker.session.timeout.ms is fenced, and the
// partitions it led elect new leaders in the same batch of records. Pure: time comes in as nowMs.
import { KavkaError } from '../util/errors.js';
import type { MetadataImage } from './metadata-image.js';
import type { MetadataRecord } from './metadata-records.js';
import { DEFAULT_LEADERSHIP_OPTIONS, electLeaders, type LeadershipOptions } from './partition-leadership.js';

/**
 * Last heartbeat time per broker. Kept only by the active controller, never replicated: a new
 * active controller starts every unfenced broker's session at its own start (startingAt), as
 * Kafka's does, so a failover never fences a healthy broker. Called from one async context.
 */
export class BrokerHeartbeatTracker {
  private readonly lastMs = new Map<number, number>();

  static startingAt(image: MetadataImage, nowMs: number): BrokerHeartbeatTracker {
    const tracker = new BrokerHeartbeatTracker();
    for (const id of image.unfencedBrokerIds()) tracker.recordHeartbeat(id, nowMs);
    return tracker;
  }

  /** Time only moves forward here: an older nowMs than the last recorded one is ignored. */
  recordHeartbeat(brokerId: number, nowMs: number): void {
    this.lastMs.set(brokerId, Math.max(nowMs, this.lastMs.get(brokerId) ?? nowMs));
  }

  forget(brokerId: number): void {
    this.lastMs.delete(brokerId);
  }

  get lastHeartbeatMs(): ReadonlyMap<number, number> {
    return this.lastMs;
  }
}

/** Broker records followed by the partition changes they cause, computed on the image after them. */
export function withLeadershipChanges(image: MetadataImage, brokerRecords: MetadataRecord[], options: LeadershipOptions): MetadataRecord[] {
  if (brokerRecords.length === 0) return [];
  const after = brokerRecords.reduce((img, r) => img.replay(r), image);
  return [...brokerRecords, ...electLeaders(after, options)];
}

/**
 * Fences every unfenced broker whose last heartbeat is more than sessionTimeoutMs before nowMs.
 * A broker with no recorded heartbeat is left alone (see BrokerHeartbeatTracker.startingAt).
 */
export function fenceStaleBrokers(
  image: MetadataImage,
  lastHeartbeatMs: ReadonlyMap<number, number>,
  nowMs: number,
  sessionTimeoutMs: number,
  options: LeadershipOptions = DEFAULT_LEADERSHIP_OPTIONS,
): MetadataRecord[] {
  const fence: MetadataRecord[] = [];
  for (const id of image.unfencedBrokerIds()) {
    const last = lastHeartbeatMs.get(id);
    if (last !== undefined && nowMs - last > sessionTimeoutMs) fence.push({ type: 'FenceBroker', nodeId: id });
  }
  return withLeadershipChanges(image, fence, options);
}

export interface BrokerHeartbeatRequest {
  brokerId: number;
  incarnationId: string;
  /** The broker asks to stay (or become) fenced, e.g. while it catches up on metadata. */
  wantFence: boolean;
  /** Controlled shutdown: move leadership away, then stop. */
  wantShutdown: boolean;
  /** The broker's Raft store: its directory id and whether it is rejoining (not used here). */
  raftStore?: { directoryId: string; rejoining: boolean };
  /**
   * Log dirs the broker reports offline (a write or fsync error, or a corrupt batch). While any is
   * listed it is fenced for data, like wantFence: leaders move to other ISR members and it leaves
   * the ISRs (LeadershipOptions.shrinkIsrOnFence). It stays a Raft voter (and may stay the active
   * controller): its metadata store is not in the failed dir's logs.
   */
  offlineLogDirs?: readonly string[];
}

export interface BrokerHeartbeatResponse {
  isFenced: boolean;
  shouldShutdown: boolean;
}

/**
 * Handles one heartbeat. Throws STALE_BROKER_EPOCH for an unregistered broker or another
 * incarnation (a process that has since restarted must register again). On success the caller
 * records `heartbeat` in its BrokerHeartbeatTracker. Controlled shutdown is simplified: the broker
 * is fenced at once (its partitions elect other leaders in the same records) and told to stop;
 * Kafka first keeps it unfenced while leadership moves.
 */
export function handleHeartbeat(
  image: MetadataImage,
  request: BrokerHeartbeatRequest,
  nowMs: number,
  options: LeadershipOptions = DEFAULT_LEADERSHIP_OPTIONS,
): { records: MetadataRecord[]; response: BrokerHeartbeatResponse; heartbeat: { brokerId: number; atMs: number } } {
  const broker = image.brokers.get(request.brokerId);
  if (broker === undefined) throw new KavkaError('STALE_BROKER_EPOCH', `broker ${request.brokerId} is not registered; register again`);
  if (broker.incarnationId !== request.incarnationId) {
    throw new KavkaError('STALE_BROKER_EPOCH', `heartbeat from incarnation ${request.incarnationId} of broker ${request.brokerId}, registered as ${broker.incarnationId ?? '(none)'}; register again`);
  }
  const wantFenced = request.wantShutdown || request.wantFence || (request.offlineLogDirs?.length ?? 0) > 0;
  const brokerRecords: MetadataRecord[] = [];
  if (wantFenced && !broker.fenced) brokerRecords.push({ type: 'FenceBroker', nodeId: broker.nodeId });
  if (!wantFenced && broker.fenced) brokerRecords.push({ type: 'UnfenceBroker', nodeId: broker.nodeId });
  return {
    records: withLeadershipChanges(image, brokerRecords, options),
    response: { isFenced: wantFenced, shouldShutdown: request.wantShutdown },
    heartbeat: { brokerId: broker.nodeId, atMs: nowMs },
  };
}
