// RaftCore: one Raft server as a pure, deterministic state machine (etcd-raft's `raft` + RawNode).
// No sockets, disks, timers, promises, wall clock or Math.random: time is `tick()`, randomness is
// the injected `random`, input is `step(message)` / `propose(...)`, and output is a `Ready`.
//
// Who calls it: exactly one driver (RaftNode in production, the transcript runner and the
// simulator in tests), from one logical thread. Nothing here awaits, so every call is atomic with
// respect to the others; the driver may call tick/step/propose while a Ready is outstanding
// (e.g. while level is syncing), but holds at most one Ready at a time.
//
// The driver loop:
//   if (core.hasReady()) {
//     const rd = core.ready();
//     1. persist, atomically and durably (one level batch with sync: true):
//        rd.snapshot     -> store it and delete EVERY persisted entry (the snapshot replaces the log)
//        rd.truncateFrom -> delete persisted entries with index >= truncateFrom
//        rd.entries      -> store them (they follow the snapshot / the remaining persisted log)
//        rd.hardState    -> store it
//     2. send rd.messages (they may depend on step 1: a vote, an acknowledgement, a commit)
//     3. apply rd.snapshot to the state machine (if set), then rd.committedEntries in order
//     4. core.advance(rd)
//   }
// On restart the driver builds a new RaftCore from what it persisted (DurableState); entries it
// never persisted are simply gone, which Raft tolerates because nothing that depended on them was
// sent. The state machine restarts from the persisted snapshot; committed entries after it are
// delivered again through committedEntries.
//
// Role transitions (each one function that asserts its edge):
//   follower      -> pre-candidate (election timeout, PreVote on) | candidate (timeout with PreVote
//                    off, or TimeoutNow) | follower (new term or new leader)
//   pre-candidate -> candidate (a quorum granted the PreVote) | pre-candidate (timeout) | follower
//   candidate     -> leader (a quorum voted) | pre-candidate | candidate (timeout) | follower
//   leader        -> follower (higher term, CheckQuorum failure, removed from the configuration)
// Only voters of the server's latest configuration ever leave `follower`.
//
// Rejoining (a node restarted with its data deleted; HardState.rejoining): the server forgot its
// term, its votes and its log, so as a voter it could vote twice in one term or help elect a
// leader that lacks committed entries. While rejoining it never leaves `follower` and grants no
// (pre)vote; it still appends, acknowledges and learns commits, so it catches up like a learner
// (its acknowledgements are real: what it acknowledges is durable). Elections meanwhile need a
// majority among the other voters. It stops rejoining when an add-voter naming its own
// directoryId is committed: that change was proposed after this store existed, while the node was
// not a voter in the committed configuration, so its old identity's removal had committed first
// (a fresh server added by a single-server change, thesis §4.1). The flag is persisted with the
// hard state, so a vote it grants afterwards is never sent before rejoining=false is durable.

import { assert, assertNever } from '../util/assert.js';
import { countVote, grantsVote, higherTermReaction, staleTermReply, voteRequests, voteResponse } from './election.js';
import { FollowerReplication } from './follower-replication.js';
import { LeaderReplication, progressOf, type LeaderState } from './leader-replication.js';
import { configChangeRejection } from './membership.js';
import type { AppendMessage, HeartbeatMessage, InstallSnapshotMessage, Message, VoteMessage } from './messages.js';
import { resolveRaftOptions, type RaftOptions } from './raft-options.js';
import { RaftLog } from './raft-log.js';
import { ReadyTracker, type DurableState, type Ready } from './ready.js';
import { RejoinState } from './rejoining.js';
import {
  isVoter,
  type ClusterConfig,
  type ConfigChange,
  type Entry,
  type EntryPayload,
  type HardState,
  type NodeId,
  type ProgressStatus,
  type ProposeRejection,
  type ProposeResult,
  type RaftStatus,
  type Snapshot,
  type SoftState,
} from './types.js';

// Transitions: see the file header. The leader's state is in leader-replication.ts.
type Role =
  | { readonly kind: 'follower'; leaderId: NodeId | undefined }
  | { readonly kind: 'pre-candidate'; readonly votes: Map<NodeId, boolean> }
  | { readonly kind: 'candidate'; readonly votes: Map<NodeId, boolean> }
  | ({ readonly kind: 'leader' } & LeaderState);

type LeaderRole = Extract<Role, { kind: 'leader' }>;

export class RaftCore {
  readonly id: NodeId;
  private readonly electionTimeoutTicks: number;
  private readonly heartbeatIntervalTicks: number;
  private readonly random: () => number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;

  private readonly log: RaftLog;
  private term: number;
  private votedFor: NodeId | undefined;
  private role: Role = { kind: 'follower', leaderId: undefined };
  /** Rejoining after its data was deleted (see the file header), and what the leader verified. */
  private readonly rejoin: RejoinState;
  private readonly leaderReplication: LeaderReplication;
  private readonly followerReplication: FollowerReplication;
  /** What the driver holds, has persisted, and is yet to be handed. */
  private readonly pending: ReadyTracker;

  /** Ticks since the last election timeout reset (followers: since they heard from a leader). */
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  /** Invariant: electionTimeoutTicks <= randomizedElectionTimeout < 2 * electionTimeoutTicks. */
  private randomizedElectionTimeout = 0;

  /**
   * @param bootstrap the configuration to start from when the durable state holds none (a
   *   brand-new cluster: `controller.quorum.voters`). Once a snapshot or a config entry exists,
   *   the log's configuration wins.
   */
  constructor(options: RaftOptions, durable: DurableState, bootstrap: ClusterConfig) {
    const resolved = resolveRaftOptions(options);
    this.id = resolved.id;
    this.electionTimeoutTicks = resolved.electionTimeoutTicks;
    this.heartbeatIntervalTicks = resolved.heartbeatIntervalTicks;
    this.random = resolved.random;
    this.preVote = resolved.preVote;
    this.checkQuorum = resolved.checkQuorum;

    const snapshot: Snapshot = durable.snapshot ?? { metadata: { index: 0, term: 0, config: bootstrap }, data: new Uint8Array() };
    this.log = new RaftLog(snapshot, durable.entries, durable.hardState.commit);
    this.term = durable.hardState.term;
    this.votedFor = durable.hardState.votedFor;
    this.rejoin = new RejoinState(this.id, resolved.directoryId, durable.hardState.rejoining === true);
    assert(this.log.lastTerm() <= this.term, `persisted log term ${this.log.lastTerm()} <= persisted term ${this.term}`);
    this.pending = new ReadyTracker(this.log, this.hardState());
    const send = (message: Message): void => this.send(message);
    const { maxEntriesPerAppend, maxInflightAppends } = resolved;
    this.leaderReplication = new LeaderReplication({ id: this.id, log: this.log, maxEntriesPerAppend, maxInflightAppends, send });
    this.followerReplication = new FollowerReplication({ id: this.id, log: this.log, rejoin: this.rejoin, send });
    // After the persisted hard state is taken: if the re-add committed before a crash, the next
    // Ready stores it.
    this.rejoin.checkCommitted(this.log);
    this.resetRandomizedElectionTimeout();
  }

  // ---------------------------------------------------------------------------------------------
  // Inputs

  /** Advances logical time by one tick. */
  tick(): void {
    switch (this.role.kind) {
      case 'leader':
        this.tickLeader(this.role);
        return;
      case 'follower':
      case 'pre-candidate':
      case 'candidate':
        this.electionElapsed++;
        if (this.electionElapsed >= this.randomizedElectionTimeout) this.campaign();
        return;
      default:
        assertNever(this.role, 'role');
    }
  }

  /**
   * Starts an election now, as an election timeout would (PreVote first if enabled). Does nothing
   * on a leader or on a server that is not a voter in its latest configuration.
   */
  campaign(): void {
    this.electionElapsed = 0;
    this.resetRandomizedElectionTimeout();
    if (this.role.kind === 'leader' || !this.promotable()) return;
    if (this.preVote) this.startPreVote();
    else this.startElection(false);
  }

  /** Handles one message from a peer. Messages may be stale, duplicated or reordered. */
  step(message: Message): void {
    assert(message.to === this.id, `message for ${message.to} delivered to ${this.id}`);
    assert(message.from !== this.id, 'a server never messages itself');
    if (message.term > this.term) {
      if (!this.acceptHigherTerm(message)) return;
    } else if (message.term < this.term) {
      this.handleStaleTerm(message);
      return;
    }
    if (message.type === 'vote') {
      this.handleVote(message);
      return;
    }
    switch (this.role.kind) {
      case 'leader':
        this.stepLeader(this.role, message);
        return;
      case 'pre-candidate':
      case 'candidate':
        this.stepCandidate(message);
        return;
      case 'follower':
        this.stepFollower(message);
        return;
      default:
        assertNever(this.role, 'role');
    }
  }

  /** Proposes application data. Accepted only by a leader with no transfer in progress. */
  propose(data: Uint8Array): ProposeResult {
    const rejection = this.checkCanPropose();
    if (rejection !== undefined) return rejection;
    return this.appendAsLeader({ kind: 'normal', data });
  }

  /**
   * Proposes a single-server membership change. Accepted only when the leader has committed an
   * entry of its current term and no other change is uncommitted (so at most one is pending).
   */
  proposeConfigChange(change: ConfigChange): ProposeResult {
    const rejection = this.checkCanPropose();
    if (rejection !== undefined) return rejection;
    const refused = configChangeRejection(this.log, this.term, change);
    if (refused !== undefined) return this.reject(refused.reason, refused.detail);
    return this.appendAsLeader({ kind: 'config', change });
  }

  /**
   * Starts moving leadership to `target` (thesis §3.10): once the target's log is up to date it
   * gets TimeoutNow and campaigns at once. Proposals are refused meanwhile; the transfer is
   * abandoned after an election timeout.
   */
  transferLeadership(target: NodeId): ProposeResult {
    if (this.role.kind !== 'leader') return this.reject('not-leader', 'only the leader transfers leadership');
    if (target === this.id || !isVoter(this.log.config(), target)) {
      return this.reject('invalid-transfer-target', `node ${target} is not another voter`);
    }
    const leader = this.role;
    leader.transferTarget = target;
    this.electionElapsed = 0;
    const progress = progressOf(leader, target);
    if (progress.match === this.log.lastIndex()) this.send({ type: 'timeout-now', from: this.id, to: target, term: this.term });
    else this.leaderReplication.sendAppend(leader, target, this.term, true);
    return { ok: true, index: this.log.lastIndex(), term: this.term };
  }

  /**
   * The application has durably stored a snapshot of its state after applying entries up to
   * `index` (<= applied). The log drops those entries; the snapshot is sent to members that need
   * them. The driver may delete persisted entries <= index afterwards. Returns false if the log is
   * already compacted that far.
   */
  compact(index: number, data: Uint8Array): boolean {
    return this.log.compact(index, data);
  }

  // ---------------------------------------------------------------------------------------------
  // Outputs

  /** True when no Ready is outstanding and ready() would return work. */
  hasReady(): boolean {
    return this.pending.hasReady(this.hardState());
  }

  /** Hands out the pending work. Precondition: no Ready is outstanding (advance the last one). */
  ready(): Ready {
    return this.pending.ready(this.hardState(), this.softState());
  }

  /** The driver has persisted, sent and applied `rd`. */
  advance(rd: Ready): void {
    this.pending.advance(rd);
    // The leader counts itself towards a quorum only for entries it has persisted.
    if (this.role.kind === 'leader') this.maybeCommit(this.role);
  }

  softState(): SoftState {
    return { role: this.role.kind, leaderId: this.leaderId(), term: this.term };
  }

  status(): RaftStatus {
    let progress: Map<NodeId, ProgressStatus> | undefined;
    let transferTarget: NodeId | undefined;
    if (this.role.kind === 'leader') {
      progress = new Map();
      for (const [id, p] of this.role.progress) progress.set(id, { match: p.match, next: p.next, state: p.state, recentActive: p.recentActive });
      transferTarget = this.role.transferTarget;
    }
    return {
      id: this.id,
      term: this.term,
      votedFor: this.votedFor,
      role: this.role.kind,
      leaderId: this.leaderId(),
      firstIndex: this.log.firstIndex(),
      lastIndex: this.log.lastIndex(),
      committed: this.log.committed,
      applied: this.log.applied,
      config: this.log.config(),
      progress,
      transferTarget,
      directoryId: this.rejoin.directoryId,
      rejoining: this.rejoin.isRejoining(),
    };
  }

  /** Entries in [from, to] still in the log (for tests and tools). */
  entries(from: number, to: number): Entry[] {
    return this.log.slice(Math.max(from, this.log.firstIndex()), to);
  }

  currentSnapshot(): Snapshot {
    return this.log.currentSnapshot();
  }

  // ---------------------------------------------------------------------------------------------
  // Role transitions

  private becomeFollower(term: number, leaderId: NodeId | undefined): void {
    assert(term >= this.term, `becomeFollower(${term}) does not lower term ${this.term}`);
    if (term > this.term) {
      this.term = term;
      this.votedFor = undefined;
      this.rejoin.startTerm();
    } else if (this.role.kind === 'leader') {
      assert(leaderId === undefined, 'a leader that steps down within its term knows no other leader');
    }
    this.role = { kind: 'follower', leaderId };
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
  }

  private becomePreCandidate(): void {
    assert(this.role.kind !== 'leader', 'a leader never becomes a pre-candidate');
    assert(this.promotable(), 'only a voter campaigns');
    // Neither the term nor the vote changes: a PreVote that fails leaves no trace (thesis §9.6).
    this.role = { kind: 'pre-candidate', votes: new Map() };
  }

  private becomeCandidate(): void {
    assert(this.role.kind !== 'leader', 'a leader never becomes a candidate');
    assert(this.promotable(), 'only a voter campaigns');
    this.term++;
    this.votedFor = this.id;
    this.role = { kind: 'candidate', votes: new Map() };
    this.electionElapsed = 0;
    this.resetRandomizedElectionTimeout();
  }

  private becomeLeader(): void {
    assert(this.role.kind === 'candidate', `only a candidate becomes leader, not a ${this.role.kind}`);
    assert(this.votedFor === this.id, 'a leader voted for itself');
    const leader: LeaderRole = { kind: 'leader', progress: new Map(), transferTarget: undefined };
    this.role = leader;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.leaderReplication.syncWithConfig(leader);
    // Commit an entry of this term as soon as possible: it commits everything before it (§5.4.2)
    // and unlocks membership changes.
    this.appendAsLeader({ kind: 'noop' });
  }

  // ---------------------------------------------------------------------------------------------
  // Elections (the rules are in election.ts)

  private startPreVote(): void {
    this.becomePreCandidate();
    this.requestVotes(true, false);
  }

  private startElection(transfer: boolean): void {
    this.becomeCandidate();
    this.requestVotes(false, transfer);
  }

  private requestVotes(preVote: boolean, transfer: boolean): void {
    if (this.recordVote(this.id, true)) return;
    const voteTerm = preVote ? this.term + 1 : this.term;
    const log = { lastIndex: this.log.lastIndex(), lastTerm: this.log.lastTerm() };
    for (const request of voteRequests(this.log.config(), this.id, voteTerm, preVote, transfer, log)) this.send(request);
  }

  /** Counts a (pre)vote; moves on if the election is decided. Returns true if it was. */
  private recordVote(from: NodeId, granted: boolean): boolean {
    const role = this.role;
    assert(role.kind === 'pre-candidate' || role.kind === 'candidate', 'only candidates count votes');
    const outcome = countVote(role.votes, this.log.config(), from, granted);
    switch (outcome) {
      case 'won':
        if (role.kind === 'pre-candidate') this.startElection(false);
        else this.becomeLeader();
        return true;
      case 'lost':
        this.becomeFollower(this.term, undefined);
        return true;
      case 'undecided':
        return false;
      default:
        return assertNever(outcome, 'election outcome');
    }
  }

  private handleVote(m: VoteMessage): void {
    // A vote (not a PreVote) that got here is for our term: acceptHigherTerm moved us to it.
    assert(m.preVote || m.term === this.term, 'a vote request is handled in its own term');
    const voter = { term: this.term, votedFor: this.votedFor, leaderId: this.leaderId(), rejoining: this.rejoin.isRejoining() };
    const granted = grantsVote(voter, m, this.log.isUpToDate(m.lastIndex, m.lastTerm));
    this.send(voteResponse(m, this.term, granted));
    if (granted && !m.preVote) {
      this.votedFor = m.from;
      this.electionElapsed = 0;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Term checks

  /** A message from a higher term. Returns false if it is to be ignored. */
  private acceptHigherTerm(m: Message): boolean {
    const reaction = higherTermReaction(m, this.inLease());
    if (reaction.kind === 'follow') this.becomeFollower(m.term, reaction.leaderId);
    return reaction.kind !== 'ignore';
  }

  private handleStaleTerm(m: Message): void {
    const reply = staleTermReply(m, this.term, this.checkQuorum || this.preVote);
    if (reply !== undefined) this.send(reply);
  }

  /** A leader, or a follower that heard from its leader within the election timeout. */
  private inLease(): boolean {
    if (!this.checkQuorum) return false;
    if (this.role.kind === 'leader') return true; // CheckQuorum bounds how long it stays leader
    return this.role.kind === 'follower' && this.role.leaderId !== undefined && this.electionElapsed < this.electionTimeoutTicks;
  }

  // ---------------------------------------------------------------------------------------------
  // Per-role message handling

  private stepFollower(m: Message): void {
    assert(this.role.kind === 'follower', 'stepFollower on a follower');
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'install-snapshot':
        this.hearFromLeader(m);
        return;
      case 'timeout-now':
        // Campaign at once, skipping PreVote: the leader asked, so its lease does not apply.
        if (this.promotable()) {
          this.electionElapsed = 0;
          this.startElection(true);
        }
        return;
      case 'append-response':
      case 'heartbeat-response':
      case 'vote-response':
      case 'vote':
        return; // stale answers to a role we no longer hold
      default:
        assertNever(m, 'message');
    }
  }

  private stepCandidate(m: Message): void {
    const role = this.role;
    assert(role.kind === 'pre-candidate' || role.kind === 'candidate', 'stepCandidate on a candidate');
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'install-snapshot':
        // A leader exists in our term (for a candidate: it won this term's election).
        this.becomeFollower(m.term, m.from);
        this.hearFromLeader(m);
        return;
      case 'vote-response':
        if (m.preVote === (role.kind === 'pre-candidate')) this.recordVote(m.from, m.granted);
        return;
      case 'timeout-now':
      case 'append-response':
      case 'heartbeat-response':
      case 'vote':
        return;
      default:
        assertNever(m, 'message');
    }
  }

  private stepLeader(leader: LeaderRole, m: Message): void {
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'install-snapshot':
        assert(false, `election safety: node ${m.from} acts as leader in term ${m.term} led by ${this.id}`);
        return;
      case 'append-response':
        if (this.leaderReplication.handleAppendResponse(leader, m, this.term) === 'removed') this.stepDownRemoved();
        return;
      case 'heartbeat-response':
        this.leaderReplication.handleHeartbeatResponse(leader, m, this.term);
        return;
      case 'vote-response':
      case 'timeout-now':
      case 'vote':
        return;
      default:
        assertNever(m, 'message');
    }
  }

  private hearFromLeader(m: AppendMessage | HeartbeatMessage | InstallSnapshotMessage): void {
    const role = this.role;
    assert(role.kind === 'follower', 'only a follower hears from a leader');
    assert(role.leaderId === undefined || role.leaderId === m.from, `election safety: two leaders in term ${this.term}`);
    role.leaderId = m.from;
    this.electionElapsed = 0;
    this.followerReplication.handleLeaderMessage(m, this.term);
  }

  // ---------------------------------------------------------------------------------------------
  // Leader (replication and the commit rule are in leader-replication.ts)

  private tickLeader(leader: LeaderRole): void {
    this.electionElapsed++;
    this.heartbeatElapsed++;
    if (this.electionElapsed >= this.electionTimeoutTicks) {
      this.electionElapsed = 0;
      if (this.checkQuorum && !this.leaderReplication.quorumActive(leader)) {
        // CheckQuorum (thesis §6.2): we cannot reach a majority, so a new leader may exist.
        this.becomeFollower(this.term, undefined);
        return;
      }
      leader.transferTarget = undefined; // a transfer that took an election timeout has failed
    }
    this.leaderReplication.retryStalledSnapshots(leader, this.term, this.electionTimeoutTicks);
    if (this.heartbeatElapsed >= this.heartbeatIntervalTicks) {
      this.heartbeatElapsed = 0;
      this.leaderReplication.broadcastHeartbeat(leader, this.term);
    }
  }

  /** Commits what a quorum has persisted; steps down if that commits this server's removal. */
  private maybeCommit(leader: LeaderRole): void {
    if (this.leaderReplication.maybeCommit(leader, this.term) === 'removed') this.stepDownRemoved();
  }

  /** This server's removal is committed (thesis §4.2.2): it stops leading. */
  private stepDownRemoved(): void {
    this.becomeFollower(this.term, undefined);
  }

  private appendAsLeader(payload: EntryPayload): ProposeResult {
    const leader = this.role;
    assert(leader.kind === 'leader', 'only a leader appends to its own log');
    const { entry, commit } = this.leaderReplication.append(leader, payload, this.term);
    if (commit === 'removed') this.stepDownRemoved();
    return { ok: true, index: entry.index, term: entry.term };
  }

  // ---------------------------------------------------------------------------------------------
  // Helpers

  private checkCanPropose(): ProposeResult | undefined {
    if (this.role.kind !== 'leader') return this.reject('not-leader', `node ${this.id} is a ${this.role.kind}`);
    if (this.role.transferTarget !== undefined) {
      return this.reject('transfer-in-progress', `leadership is moving to ${this.role.transferTarget}`);
    }
    return undefined;
  }

  private reject(reason: ProposeRejection, detail: string): ProposeResult {
    return { ok: false, reason, leaderId: this.leaderId(), detail };
  }

  private leaderId(): NodeId | undefined {
    switch (this.role.kind) {
      case 'leader':
        return this.id;
      case 'follower':
        return this.role.leaderId;
      case 'pre-candidate':
      case 'candidate':
        return undefined;
      default:
        return assertNever(this.role, 'role');
    }
  }

  /** A server may campaign only if it is a voter in its latest configuration. */
  private promotable(): boolean {
    return !this.rejoin.isRejoining() && isVoter(this.log.config(), this.id);
  }

  private hardState(): HardState {
    const base = { term: this.term, votedFor: this.votedFor, commit: this.log.committed };
    return this.rejoin.isRejoining() ? { ...base, rejoining: true } : base;
  }

  private send(message: Message): void {
    assert(message.to !== this.id, 'a server never messages itself');
    this.pending.send(message);
  }

  private resetRandomizedElectionTimeout(): void {
    const r = this.random();
    assert(r >= 0 && r < 1, `random() returns a number in [0, 1), not ${r}`);
    this.randomizedElectionTimeout = this.electionTimeoutTicks + Math.floor(r * this.electionTimeoutTicks);
  }
}
