// A partition this node holds a replica of: its log, the latest metadata about it, and the
// replication state of its role.
//
// As leader it tracks each follower's log end (learned from the fetch offsets of its
// ReplicaFetch requests) and when the follower was last caught up, and computes the high
// watermark: the smallest log end over the maximal ISR (the ISR of the image plus the members of
// an ISR change sent to the controller and not yet seen in an image, Kafka's maximalIsr), where
// the leader's own counts only once fsynced (durableEndOffset), so an offset below the HW is on
// stable storage of every member of the ISR the controller may have committed.
// As follower it takes the HW from the leader's fetch responses (capped by its own log end).
//
// Called from the replica manager, the fetcher and gRPC handlers on the event loop; no method
// awaits, so each runs to completion.
import { assert } from '../util/assert.js';
import type { PartitionLog, TopicPartition } from '../storage/index.js';
import type { PartitionImage } from '../controller/index.js';

export interface FollowerState {
  /** The follower's log end as its last fetch showed it; -1 until it has fetched in this leader epoch. */
  logEndOffset: bigint;
  logStartOffset: bigint;
  /** When its log end last reached the leader's (Kafka's lastCaughtUpTimeMs). */
  lastCaughtUpTimeMs: number;
  lastFetchTimeMs: number;
  /** The leader's log end at the follower's previous fetch. */
  leaderEndOffsetAtLastFetch: bigint;
  /** Fetches received from it in this leader epoch, each counted once, when it arrives (see confirmLeadership). */
  fetchCount: number;
}

export class PartitionState {
  private hw: bigint;
  /** Set while this node leads the partition: the followers, by broker id. */
  readonly followers = new Map<number, FollowerState>();
  /** The leader epoch this node leads in, or undefined when it follows. */
  leaderEpochLed: number | undefined;
  /** This node's log end when it became leader in the current epoch. */
  leaderEpochStartOffset = 0n;
  /**
   * Leader: the ISR this node asked the controller for (AlterPartition) that no image has shown
   * yet, and the partition epoch of the image it was based on (Kafka's PendingExpandIsr /
   * PendingShrinkIsr). The controller may have committed it already, and may even have made a
   * member just added leader at once (preferred-replica election commits with the expansion), so
   * until an image with a newer partition epoch arrives the HW counts these members too: it never
   * passes an offset a member of the committed ISR lacks. Cleared by a newer image, a role change,
   * or (clearPendingIsr) when a member only it names stops fetching.
   */
  pendingIsr: { readonly isr: readonly number[]; readonly partitionEpoch: number } | undefined;
  private readonly hwListeners = new Set<() => void>();
  private readonly fetchListeners = new Set<() => void>();
  private readonly fetchWantedListeners = new Set<() => void>();
  /**
   * Leadership confirmations under way (ReplicaManager.confirmLeadership). While any runs, follower
   * fetches of this partition are answered at once instead of long-polling, so the confirming
   * fetches come one network round trip apart.
   */
  leadershipChecks = 0;

  constructor(
    readonly topicPartition: TopicPartition,
    /** The topic incarnation this replica belongs to; a re-created topic has a new id. */
    readonly topicId: string,
    readonly log: PartitionLog,
    public image: PartitionImage,
    public minInsyncReplicas: number,
  ) {
    // Nothing is known committed yet; a leader learns it from its ISR, a follower from its leader.
    this.hw = log.logStartOffset;
  }

  /**
   * Offsets below this are committed: consumers see them. Invariant: logStartOffset <= HW <=
   * logEndOffset, and on the leader HW <= durableEndOffset. Never moves backward while this node
   * leads.
   */
  get highWatermark(): bigint {
    const start = this.log.logStartOffset;
    return this.hw < start ? start : this.hw;
  }

  get isLeader(): boolean {
    return this.leaderEpochLed !== undefined;
  }

  /** Calls the listener whenever the high watermark moves. Returns the unsubscribe function. */
  onHighWatermark(listener: () => void): () => void {
    this.hwListeners.add(listener);
    return () => this.hwListeners.delete(listener);
  }

  /** Calls the listener after each follower fetch this leader records. Returns the unsubscribe function. */
  onFollowerFetch(listener: () => void): () => void {
    this.fetchListeners.add(listener);
    return () => this.fetchListeners.delete(listener);
  }

  /** Calls the listener when a leadership check wants the followers' long-polling fetches answered now. */
  onFetchWanted(listener: () => void): () => void {
    this.fetchWantedListeners.add(listener);
    return () => this.fetchWantedListeners.delete(listener);
  }

  /** Ends the long-polls of fetches waiting on this partition (they answer with what they have). */
  wantFollowerFetches(): void {
    for (const listener of [...this.fetchWantedListeners]) listener();
  }

  /**
   * Starts leading in image.leaderEpoch. Followers start unknown; ISR members are counted as
   * caught up now (Kafka does the same), so a slow one leaves the ISR only after the lag time.
   */
  becomeLeader(nodeId: number, nowMs: number): void {
    this.leaderEpochLed = this.image.leaderEpoch;
    this.pendingIsr = undefined;
    this.leaderEpochStartOffset = this.log.logEndOffset;
    this.followers.clear();
    for (const id of this.image.replicas) {
      if (id === nodeId) continue;
      this.followers.set(id, { logEndOffset: -1n, logStartOffset: -1n, lastCaughtUpTimeMs: nowMs, lastFetchTimeMs: 0, leaderEndOffsetAtLastFetch: -1n, fetchCount: 0 });
    }
    // A new leader's log may end below the HW it learned as follower (never above what is
    // committed: it was in the ISR); keep the HW within the log.
    if (this.hw > this.log.logEndOffset) this.hw = this.log.logEndOffset;
  }

  becomeFollower(): void {
    this.leaderEpochLed = undefined;
    this.pendingIsr = undefined;
    this.followers.clear();
  }

  /**
   * Records a follower's fetch (leader only): its fetch offset is its log end. Kafka's rule for
   * "caught up": the fetch reached the leader's log end now, or the leader's log end as of the
   * follower's previous fetch (then it was caught up at that previous fetch).
   */
  recordFollowerFetch(replicaId: number, fetchOffset: bigint, logStartOffset: bigint, nowMs: number): FollowerState | undefined {
    const follower = this.followers.get(replicaId);
    if (follower === undefined) return undefined;
    const leaderEnd = this.log.logEndOffset;
    if (fetchOffset >= leaderEnd) follower.lastCaughtUpTimeMs = nowMs;
    else if (follower.leaderEndOffsetAtLastFetch >= 0n && fetchOffset >= follower.leaderEndOffsetAtLastFetch) follower.lastCaughtUpTimeMs = Math.max(follower.lastCaughtUpTimeMs, follower.lastFetchTimeMs);
    follower.logEndOffset = fetchOffset;
    follower.logStartOffset = logStartOffset;
    follower.leaderEndOffsetAtLastFetch = leaderEnd;
    follower.lastFetchTimeMs = nowMs;
    follower.fetchCount += 1;
    for (const listener of [...this.fetchListeners]) listener();
    return follower;
  }

  /** A new image of this partition; an ISR change it supersedes is no longer pending. */
  setImage(image: PartitionImage): void {
    this.image = image;
    if (this.pendingIsr !== undefined && image.partitionEpoch > this.pendingIsr.partitionEpoch) this.pendingIsr = undefined;
  }

  /** Leader: an AlterPartition to `isr` is about to go out (merged with one still pending on the same image). */
  setPendingIsr(isr: readonly number[]): void {
    const { partitionEpoch } = this.image;
    const earlier = this.pendingIsr?.partitionEpoch === partitionEpoch ? this.pendingIsr.isr : [];
    this.pendingIsr = { isr: [...new Set([...earlier, ...isr])], partitionEpoch };
  }

  clearPendingIsr(): void {
    this.pendingIsr = undefined;
  }

  /** The image's ISR plus the members of a pending ISR change (Kafka's maximalIsr). */
  get maximalIsr(): readonly number[] {
    if (this.pendingIsr === undefined) return this.image.isr;
    return [...new Set([...this.image.isr, ...this.pendingIsr.isr])];
  }

  /**
   * Leader only: HW = min over the maximal ISR of each member's log end (this node's durable
   * end). A member whose log end is unknown holds the HW where it is. Returns true if it moved.
   */
  maybeAdvanceHighWatermark(nodeId: number): boolean {
    if (!this.isLeader) return false;
    let candidate = this.log.durableEndOffset;
    for (const id of this.maximalIsr) {
      if (id === nodeId) continue;
      const follower = this.followers.get(id);
      if (follower === undefined || follower.logEndOffset < 0n) return false;
      if (follower.logEndOffset < candidate) candidate = follower.logEndOffset;
    }
    if (candidate <= this.hw) return false;
    this.hw = candidate;
    this.notifyHighWatermark();
    return true;
  }

  /** Follower only: the leader's HW, capped by this replica's log end. */
  setFollowerHighWatermark(leaderHighWatermark: bigint): void {
    assert(!this.isLeader, 'a leader computes its own high watermark');
    const next = leaderHighWatermark < this.log.logEndOffset ? leaderHighWatermark : this.log.logEndOffset;
    if (next === this.hw) return;
    this.hw = next;
    this.notifyHighWatermark();
  }

  /** After truncation of a follower's log: the HW never exceeds the log end. */
  clampHighWatermark(): void {
    if (this.hw > this.log.logEndOffset) this.hw = this.log.logEndOffset;
  }

  private notifyHighWatermark(): void {
    for (const listener of [...this.hwListeners]) listener();
  }
}
