// The follower's side of log replication (§5.3, §7), for RaftCore's `follower` role: it appends,
// commits and installs snapshots from the leader of its current term, and answers each message.
// A rejoining server (rejoining.ts) does the same, except that a heartbeat moves its commit index
// only as far as the leader has verified its log, and its answers say it is rejoining.
//
// Owned by RaftCore, which has already checked the message's term, made this server a follower of
// its sender and reset the election timer. Called from one logical thread; nothing awaits. It
// sends through the callback RaftCore gives it.

import { assertNever } from '../util/assert.js';
import type { AppendMessage, HeartbeatMessage, InstallSnapshotMessage, Message } from './messages.js';
import type { RaftLog } from './raft-log.js';
import type { RejoinState } from './rejoining.js';
import type { NodeId } from './types.js';

export interface FollowerReplicationOptions {
  readonly id: NodeId;
  readonly log: RaftLog;
  readonly rejoin: RejoinState;
  /** Queues a message for the next Ready. */
  readonly send: (message: Message) => void;
}

export class FollowerReplication {
  private readonly id: NodeId;
  private readonly log: RaftLog;
  private readonly rejoin: RejoinState;
  private readonly send: (message: Message) => void;

  constructor(options: FollowerReplicationOptions) {
    this.id = options.id;
    this.log = options.log;
    this.rejoin = options.rejoin;
    this.send = options.send;
  }

  /** A message from the leader of the current term, `term`. */
  handleLeaderMessage(m: AppendMessage | HeartbeatMessage | InstallSnapshotMessage, term: number): void {
    switch (m.type) {
      case 'append':
        this.handleAppend(m, term);
        return;
      case 'heartbeat':
        this.handleHeartbeat(m, term);
        return;
      case 'install-snapshot':
        this.handleInstallSnapshot(m, term);
        return;
      default:
        assertNever(m, 'leader message');
    }
  }

  private handleAppend(m: AppendMessage, term: number): void {
    const log = this.log;
    if (m.prevIndex < log.committed) {
      // Everything up to our commit matches the leader (Leader Completeness); resume from there.
      this.sendAppendResponse(m.from, term, false, log.committed);
      return;
    }
    if (log.matchTerm(m.prevIndex, m.prevTerm)) {
      const lastNew = log.appendAfterMatch(m.prevIndex, m.entries);
      this.rejoin.leaderVerified(lastNew);
      log.commitTo(Math.min(m.commit, lastNew));
      this.rejoin.checkCommitted(log);
      this.sendAppendResponse(m.from, term, false, lastNew);
      return;
    }
    // Fast back-off hint (see AppendResponseMessage).
    let conflictTerm = 0;
    let conflictIndex = log.lastIndex() + 1;
    if (m.prevIndex <= log.lastIndex()) {
      conflictTerm = log.term(m.prevIndex) as number;
      conflictIndex = m.prevIndex;
      while (conflictIndex - 1 > log.committed && log.term(conflictIndex - 1) === conflictTerm) conflictIndex--;
    }
    this.sendAppendResponse(m.from, term, true, m.prevIndex, conflictTerm, conflictIndex);
  }

  private handleHeartbeat(m: HeartbeatMessage, term: number): void {
    this.log.commitTo(this.rejoin.heartbeatCommit(m.commit));
    this.rejoin.checkCommitted(this.log);
    this.send({
      type: 'heartbeat-response',
      from: this.id,
      to: m.from,
      term,
      ...(this.rejoin.isRejoining() ? { rejoining: { lastIndex: this.log.lastIndex() } } : {}),
    });
  }

  private handleInstallSnapshot(m: InstallSnapshotMessage, term: number): void {
    const { index, term: snapshotTerm } = m.snapshot.metadata;
    if (index <= this.log.committed) {
      this.sendAppendResponse(m.from, term, false, this.log.committed);
      return;
    }
    if (this.log.matchTerm(index, snapshotTerm)) {
      // We hold the snapshot's last entry, hence everything before it: just commit.
      this.log.commitTo(index);
    } else {
      this.log.restore(m.snapshot);
    }
    this.rejoin.leaderVerified(index);
    this.rejoin.checkCommitted(this.log);
    this.sendAppendResponse(m.from, term, false, index);
  }

  private sendAppendResponse(to: NodeId, term: number, reject: boolean, index: number, conflictTerm = 0, conflictIndex = 0): void {
    const rejoining = this.rejoin.isRejoining() ? { rejoining: true } : {};
    this.send({ type: 'append-response', from: this.id, to, term, reject, index, conflictTerm, conflictIndex, ...rejoining });
  }
}
