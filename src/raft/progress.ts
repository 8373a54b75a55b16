// A leader's view of one member's log (etcd-raft's Progress). Created when a server becomes leader
// or a member joins; dropped when it steps down. Owned by RaftCore.
//
// Invariant: 0 <= match < next. Entries <= match are known to be in the member's log and to
// match the leader's; next is the index of the next entry to send.
//
// Flow states:
//   probe:     the leader does not know where the logs diverge; one append at a time (`paused`
//              after sending, unpaused by a response or a heartbeat response).
//   replicate: the member is caught up to `match`; appends stream optimistically, advancing next,
//              with at most `maxInflight` unacknowledged.
//   snapshot:  an InstallSnapshot of `pendingSnapshot` is in flight; nothing else is sent. After
//              `snapshotTicks` reaches the election timeout without an answer, the leader probes
//              again (the snapshot or its answer was lost).
// Transitions: probe -> replicate (an acknowledgement), probe|replicate -> snapshot (next was
// compacted), replicate -> probe (a rejection: maybeDecreaseTo), snapshot -> probe (acknowledged or timed out).

import { assert } from '../util/assert.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** probe: an append is outstanding and no response or heartbeat response has come since. */
  paused = false;
  /** replicate: last indexes of unacknowledged appends, in send order. */
  inflight: number[] = [];
  /** snapshot: the index of the snapshot being installed, and ticks since it was sent. */
  pendingSnapshot = 0;
  snapshotTicks = 0;
  /** CheckQuorum: heard from since the last check. */
  recentActive = false;

  constructor(next: number) {
    assert(next >= 1, 'next index >= 1');
    this.next = next;
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      this.next = Math.max(this.match + 1, this.pendingSnapshot + 1);
    } else {
      this.next = this.match + 1;
    }
    this.reset('probe');
  }

  becomeReplicate(): void {
    this.next = this.match + 1;
    this.reset('replicate');
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.reset('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  private reset(state: ProgressState): void {
    this.state = state;
    this.paused = false;
    this.inflight = [];
    this.pendingSnapshot = 0;
    this.snapshotTicks = 0;
  }

  /**
   * The member's store was re-created (it is rejoining) and holds less than `match` says: forget
   * what it acknowledged and probe from `next`. Lowering match is safe: the commit index never
   * moves back, and a lower match only counts fewer acknowledgements.
   */
  resetAfterLoss(next: number): void {
    assert(next >= 1, 'next index >= 1');
    this.match = 0;
    this.reset('probe');
    this.next = next;
  }

  /** An acknowledgement of `index`. Returns true if match moved. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (index > this.match) {
      this.match = index;
      updated = true;
      this.paused = false;
    }
    this.next = Math.max(this.next, index + 1);
    this.inflight = this.inflight.filter((last) => last > index);
    return updated;
  }

  /**
   * A rejection of the append whose prevIndex was `rejected`; `hint` is where the leader should
   * try next (computed from the follower's conflict hint). Returns false if the rejection is stale.
   */
  maybeDecreaseTo(rejected: number, hint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      const next = Math.max(this.match + 1, Math.min(rejected, hint));
      this.reset('probe');
      this.next = next;
      return true;
    }
    if (this.state === 'snapshot') return false;
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(this.match + 1, Math.min(rejected, hint));
    this.paused = false;
    return true;
  }

  /** Records an append whose last entry is `last` (optimistically advancing next in replicate). */
  sentEntries(last: number, count: number, maxInflight: number): void {
    if (this.state === 'replicate') {
      if (count > 0) {
        this.next = last + 1;
        this.inflight.push(last);
        assert(this.inflight.length <= maxInflight, 'inflight appends stay within the limit');
      }
    } else if (this.state === 'probe') {
      this.paused = true;
    }
  }

  isPaused(maxInflight: number): boolean {
    switch (this.state) {
      case 'probe':
        return this.paused;
      case 'replicate':
        return this.inflight.length >= maxInflight;
      case 'snapshot':
        return true;
    }
  }

  checkInvariants(): void {
    assert(this.match >= 0, 'match >= 0');
    assert(this.match < this.next, `match ${this.match} < next ${this.next}`);
  }
}
