// The rejoining state of one Raft server (KIP-853 style directory ids). A node restarted with its
// data deleted formats its new store as rejoining (HardState.rejoining): until an add-voter naming
// the store's own directory id is committed it grants no (pre)vote and never campaigns, and a
// heartbeat moves its commit index only as far as its current leader has verified its log. The
// raft-core.ts header ("Rejoining") states the whole rule and why it is safe.
//
// Owned by RaftCore, which asks it whether the server is rejoining and tells it what the leader
// verified; it only reads the log. Pure: no I/O, nothing awaits.

import type { RaftLog } from './raft-log.js';
import { isVoter, type NodeId } from './types.js';

export class RejoinState {
  /** This server's Raft store directory id, if the driver gave one. */
  readonly directoryId: string | undefined;
  private readonly id: NodeId;
  /** See the raft-core.ts header. Goes true -> false only. */
  private active: boolean;
  /** While rejoining: the commit index at which the committed configuration was last checked. */
  private checkedIndex = -1;
  /**
   * Follower: the last index an append (or snapshot) of the current term's leader proved to match
   * its log. A rejoining follower takes a heartbeat's commit only up to here, since the leader's
   * progress for it may predate its lost store.
   */
  private leaderVerifiedIndex = 0;

  constructor(id: NodeId, directoryId: string | undefined, rejoining: boolean) {
    this.id = id;
    this.directoryId = directoryId;
    this.active = rejoining;
  }

  /** Rejoining after its data was deleted: no votes, no campaigns (see the raft-core.ts header). */
  isRejoining(): boolean {
    return this.active;
  }

  /** The server moved to a new term: no leader of that term has verified its log yet. */
  startTerm(): void {
    this.leaderVerifiedIndex = 0;
  }

  /** An append or snapshot of the current term's leader proved the log matches through `index`. */
  leaderVerified(index: number): void {
    this.leaderVerifiedIndex = Math.max(this.leaderVerifiedIndex, index);
  }

  /** How far a heartbeat carrying the leader's `commit` may move the commit index. */
  heartbeatCommit(commit: number): number {
    return this.active ? Math.min(commit, this.leaderVerifiedIndex) : commit;
  }

  /**
   * While rejoining: does the committed configuration list this server as a voter added with its
   * own directory id (the add-voter seen as an entry, or inside a leader's snapshot)? Then the
   * server votes again (persisted with the next hard state). An add-voter without a directory id,
   * or with another one, is about an earlier store of this node and changes nothing.
   */
  checkCommitted(log: RaftLog): void {
    if (!this.active || this.directoryId === undefined || this.checkedIndex === log.committed) return;
    this.checkedIndex = log.committed;
    // The committed configuration, from the entries or (after a snapshot) the snapshot's.
    const committed = log.configAt(log.committed);
    if (isVoter(committed, this.id) && committed.voterDirectories?.[String(this.id)] === this.directoryId) this.active = false;
  }
}
