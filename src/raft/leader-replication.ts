// The leader's side of log replication (§5.3, §7), for RaftCore's `leader` role: one Progress per
// member (progress.ts), kept in step with the latest configuration; appends, snapshots and
// heartbeats; the members' answers; and the commit rule. It also carries out the two steps of a
// leadership transfer (thesis §3.10) that follow from replication: TimeoutNow once the target holds
// the whole log, and the end of the transfer when the target stops being a voter.
//
// Owned by RaftCore and called from one logical thread; nothing awaits. It sends through the
// callback RaftCore gives it and never changes role: when a commit includes this server's own
// removal it returns 'removed' and RaftCore steps down. Methods take the leader's state and term.

import { assert } from '../util/assert.js';
import type { AppendResponseMessage, HeartbeatResponseMessage, Message } from './messages.js';
import { Progress } from './progress.js';
import type { RaftLog } from './raft-log.js';
import { isVoter, members, quorumSize, type Entry, type EntryPayload, type NodeId } from './types.js';

/** What a leader tracks while it leads (RaftCore's `leader` role). Made anew on every election won. */
export interface LeaderState {
  /** Every member but this server. */
  readonly progress: Map<NodeId, Progress>;
  /** Leadership transfer in progress: proposals are refused until it ends or times out. */
  transferTarget: NodeId | undefined;
}

/**
 * What a leader's commit attempt did: nothing, moved the commit index, or moved it past this
 * server's own removal from the configuration (the leader must step down).
 */
export type CommitOutcome = 'unchanged' | 'committed' | 'removed';

export interface LeaderReplicationOptions {
  readonly id: NodeId;
  readonly log: RaftLog;
  /** At most this many entries in one append message. */
  readonly maxEntriesPerAppend: number;
  /** At most this many unacknowledged appends per member in the replicate state. */
  readonly maxInflightAppends: number;
  /** Queues a message for the next Ready. */
  readonly send: (message: Message) => void;
}

export class LeaderReplication {
  private readonly id: NodeId;
  private readonly log: RaftLog;
  private readonly maxEntriesPerAppend: number;
  private readonly maxInflightAppends: number;
  private readonly send: (message: Message) => void;

  constructor(options: LeaderReplicationOptions) {
    this.id = options.id;
    this.log = options.log;
    this.maxEntriesPerAppend = options.maxEntriesPerAppend;
    this.maxInflightAppends = options.maxInflightAppends;
    this.send = options.send;
  }

  /**
   * Appends an entry of the leader's term and sends it. A config entry applies at once: the
   * members tracked follow it, and a smaller voter set may already have a quorum.
   */
  append(leader: LeaderState, payload: EntryPayload, term: number): { readonly entry: Entry; readonly commit: CommitOutcome } {
    const entry: Entry = { index: this.log.lastIndex() + 1, term, payload };
    this.log.append([entry]);
    if (payload.kind === 'config') this.syncWithConfig(leader);
    this.broadcastAppend(leader, term);
    // A smaller voter set may already have a quorum (e.g. after removing an unreachable voter).
    const commit = payload.kind === 'config' ? this.maybeCommit(leader, term) : 'unchanged';
    return { entry, commit };
  }

  /** Tracks exactly the members of the latest configuration (a config applies when appended). */
  syncWithConfig(leader: LeaderState): void {
    const config = this.log.config();
    const wanted = new Set(members(config).filter((id) => id !== this.id));
    for (const id of [...leader.progress.keys()]) {
      if (!wanted.has(id)) leader.progress.delete(id);
    }
    for (const id of wanted) {
      if (leader.progress.has(id)) continue;
      const progress = new Progress(this.log.lastIndex() + 1);
      progress.recentActive = true;
      leader.progress.set(id, progress);
    }
    if (leader.transferTarget !== undefined && !isVoter(config, leader.transferTarget)) leader.transferTarget = undefined;
  }

  /**
   * Sends the member what it lacks from `next`: entries, or the snapshot if they are compacted.
   * Returns true if a message went out. With sendIfEmpty it also sends an empty append (a probe,
   * or the news of a higher commit).
   */
  sendAppend(leader: LeaderState, to: NodeId, term: number, sendIfEmpty: boolean): boolean {
    const progress = progressOf(leader, to);
    if (progress.isPaused(this.maxInflightAppends)) return false;
    const prevIndex = progress.next - 1;
    assert(prevIndex <= this.log.lastIndex(), `next ${progress.next} for ${to} is within our log`);
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined) {
      const snapshot = this.log.currentSnapshot();
      progress.becomeSnapshot(snapshot.metadata.index);
      this.send({ type: 'install-snapshot', from: this.id, to, term, snapshot });
      return true;
    }
    const entries = this.log.slice(progress.next, this.log.lastIndex(), this.maxEntriesPerAppend);
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({ type: 'append', from: this.id, to, term, prevIndex, prevTerm, entries, commit: this.log.committed });
    progress.sentEntries(prevIndex + entries.length, entries.length, this.maxInflightAppends);
    return true;
  }

  broadcastAppend(leader: LeaderState, term: number): void {
    for (const id of leader.progress.keys()) this.sendAppend(leader, id, term, true);
  }

  /** Every heartbeat interval: each member learns the commit, up to what it is known to hold. */
  broadcastHeartbeat(leader: LeaderState, term: number): void {
    for (const [id, progress] of leader.progress) {
      const commit = Math.min(progress.match, this.log.committed);
      this.send({ type: 'heartbeat', from: this.id, to: id, term, commit });
    }
  }

  /**
   * Every leader tick: a member whose snapshot went unanswered for `timeoutTicks` is probed again
   * (the snapshot or its answer was lost).
   */
  retryStalledSnapshots(leader: LeaderState, term: number, timeoutTicks: number): void {
    for (const [id, progress] of leader.progress) {
      if (progress.state !== 'snapshot') continue;
      progress.snapshotTicks++;
      if (progress.snapshotTicks >= timeoutTicks) {
        progress.becomeProbe();
        this.sendAppend(leader, id, term, true);
      }
    }
  }

  /** CheckQuorum: did a majority of voters (this server included) talk to us since the last check? */
  quorumActive(leader: LeaderState): boolean {
    const config = this.log.config();
    let active = 0;
    for (const voter of config.voters) {
      if (voter === this.id) active++;
      else if (leader.progress.get(voter)?.recentActive) active++;
    }
    for (const progress of leader.progress.values()) progress.recentActive = false;
    return active >= quorumSize(config);
  }

  /**
   * Commits the highest index a quorum of voters has persisted, if it is of this term (§5.4.2:
   * an older term's entry is committed only indirectly), and tells members. The leader counts
   * itself only for entries it has persisted (stableIndex).
   */
  maybeCommit(leader: LeaderState, term: number): CommitOutcome {
    const config = this.log.config();
    const matches = config.voters.map((v) => (v === this.id ? this.log.stableIndex : progressOf(leader, v).match));
    matches.sort((a, b) => b - a);
    const candidate = matches[quorumSize(config) - 1];
    if (candidate <= this.log.committed || this.log.term(candidate) !== term) return 'unchanged';
    this.log.commitTo(candidate);
    this.broadcastAppend(leader, term);
    // Our removal is committed (thesis §4.2.2): stop leading. The others elect a new leader.
    if (!isVoter(config, this.id) && this.log.committed >= this.log.lastConfigIndex()) return 'removed';
    return 'committed';
  }

  /**
   * A member's answer to an append or a snapshot. When it commits this server's removal, returns
   * 'removed' and sends nothing more: the caller steps down.
   */
  handleAppendResponse(leader: LeaderState, m: AppendResponseMessage, term: number): 'removed' | undefined {
    const progress = leader.progress.get(m.from);
    if (progress === undefined) return undefined; // no longer a member
    progress.recentActive = true;
    if (m.reject) {
      if (m.rejoining === true && m.index <= progress.match && m.conflictIndex <= progress.match) {
        // The member lost entries it acknowledged (its store was re-created): start over.
        progress.resetAfterLoss(Math.max(1, Math.min(m.conflictIndex, this.log.lastIndex() + 1)));
        this.sendAppend(leader, m.from, term, true);
      } else if (progress.maybeDecreaseTo(m.index, this.nextIndexFromHint(m))) {
        this.sendAppend(leader, m.from, term, true);
      }
      return undefined;
    }
    assert(m.index <= this.log.lastIndex(), `member ${m.from} acknowledges ${m.index} beyond our log ${this.log.lastIndex()}`);
    const wasPaused = progress.isPaused(this.maxInflightAppends);
    const updated = progress.maybeUpdate(m.index);
    if (progress.state === 'snapshot' && progress.match >= progress.pendingSnapshot) progress.becomeProbe();
    if (progress.state === 'probe' && (updated || progress.match === m.index)) progress.becomeReplicate();
    const commit = updated ? this.maybeCommit(leader, term) : 'unchanged';
    if (commit === 'removed') return 'removed';
    if (commit === 'unchanged' && wasPaused) this.sendAppend(leader, m.from, term, true);
    while (this.sendAppend(leader, m.from, term, false)) {
      // keep the member's pipeline full
    }
    if (leader.transferTarget === m.from && progress.match === this.log.lastIndex()) {
      this.send({ type: 'timeout-now', from: this.id, to: m.from, term });
    }
    return undefined;
  }

  handleHeartbeatResponse(leader: LeaderState, m: HeartbeatResponseMessage, term: number): void {
    const from = m.from;
    const progress = leader.progress.get(from);
    if (progress === undefined) return;
    progress.recentActive = true;
    if (m.rejoining !== undefined && m.rejoining.lastIndex < progress.match) {
      // A rejoining member holds less than it once acknowledged: probe from its log end.
      progress.resetAfterLoss(Math.min(m.rejoining.lastIndex, this.log.lastIndex()) + 1);
    }
    progress.paused = false;
    // An append or its answer may be lost: free one slot so the pipeline cannot stall forever.
    if (progress.state === 'replicate' && progress.inflight.length >= this.maxInflightAppends) progress.inflight.shift();
    if (progress.match < this.log.lastIndex()) this.sendAppend(leader, from, term, true);
  }

  /** Where to resume after a rejection, from the member's conflict hint. */
  private nextIndexFromHint(m: AppendResponseMessage): number {
    if (m.conflictTerm === 0) return m.conflictIndex;
    // If we have entries of the conflicting term, the logs agree through our last one of them.
    for (let i = Math.min(m.index, this.log.lastIndex()); i >= this.log.firstIndex() - 1; i--) {
      const term = this.log.term(i) as number;
      if (term === m.conflictTerm) return i + 1;
      if (term < m.conflictTerm) break;
    }
    return m.conflictIndex;
  }
}

export function progressOf(leader: LeaderState, id: NodeId): Progress {
  const progress = leader.progress.get(id);
  assert(progress !== undefined, `the leader tracks member ${id}`);
  return progress;
}
