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
import { validateConfigChange } from './membership.js';
import type {
  AppendMessage,
  AppendResponseMessage,
  HeartbeatMessage,
  HeartbeatResponseMessage,
  InstallSnapshotMessage,
  Message,
  VoteMessage,
} from './messages.js';
import { Progress, type ProgressState } from './progress.js';
import { RaftLog } from './raft-log.js';
import {
  isVoter,
  members,
  quorumSize,
  type ClusterConfig,
  type ConfigChange,
  type Entry,
  type EntryPayload,
  type HardState,
  type NodeId,
  type RoleKind,
  type Snapshot,
  type SoftState,
} from './types.js';

export interface RaftOptions {
  readonly id: NodeId;
  /** T: followers wait a random [T, 2T) ticks without a leader before campaigning. */
  readonly electionTimeoutTicks: number;
  /** A leader sends heartbeats every this many ticks. Must be < electionTimeoutTicks. */
  readonly heartbeatIntervalTicks: number;
  /** A seeded source of uniform numbers in [0, 1). */
  readonly random: () => number;
  /** Campaign with a PreVote round first (thesis §9.6). Default true. */
  readonly preVote?: boolean;
  /** Leaders step down without a quorum; followers keep a leader lease (thesis §6.2). Default true. */
  readonly checkQuorum?: boolean;
  /** At most this many entries in one append message. Default 64. */
  readonly maxEntriesPerAppend?: number;
  /** At most this many unacknowledged appends per member in the replicate state. Default 16. */
  readonly maxInflightAppends?: number;
  /**
   * This server's Raft store directory id (random per created store, KIP-853). A rejoining server
   * (HardState.rejoining) votes again once an add-voter naming this id is committed.
   */
  readonly directoryId?: string;
}

/** What the driver read back from its storage at start-up. Empty for a brand-new server. */
export interface DurableState {
  readonly hardState: HardState;
  /** The latest persisted snapshot, if any. */
  readonly snapshot?: Snapshot;
  /** Persisted entries after the snapshot, consecutive. */
  readonly entries: readonly Entry[];
}

export const EMPTY_HARD_STATE: HardState = { term: 0, votedFor: undefined, commit: 0 };

/**
 * The work the core hands to the driver. Process in field order: persist, then send, then apply;
 * then call advance(ready). See the file header for the exact steps.
 */
export interface Ready {
  /** Persist (step 1d) if set: it changed since the last Ready. */
  readonly hardState: HardState | undefined;
  /** Persist (step 1a) and later apply (step 3) if set: it replaces the whole log. */
  readonly snapshot: Snapshot | undefined;
  /** Delete persisted entries with index >= truncateFrom (step 1b), if set. */
  readonly truncateFrom: number | undefined;
  /** Persist (step 1c): entries not yet handed out, consecutive. */
  readonly entries: readonly Entry[];
  /** Send (step 2), only after step 1 is durable. Delivery is best effort. */
  readonly messages: readonly Message[];
  /** Apply (step 3) in order, after the snapshot. Every one is durable by then. */
  readonly committedEntries: readonly Entry[];
  /** Who leads now, for observers; not persisted. */
  readonly softState: SoftState;
}

export type ProposeRejection =
  | 'not-leader'
  | 'transfer-in-progress'
  | 'no-commit-in-term'
  | 'config-change-pending'
  | 'invalid-config-change'
  | 'invalid-transfer-target';

export type ProposeResult =
  | { readonly ok: true; readonly index: number; readonly term: number }
  | { readonly ok: false; readonly reason: ProposeRejection; readonly leaderId: NodeId | undefined; readonly detail: string };

export interface ProgressStatus {
  readonly match: number;
  readonly next: number;
  readonly state: ProgressState;
  /** Heard from within the current CheckQuorum window (one election timeout). */
  readonly recentActive: boolean;
}

/** A read-only view for tests, tools and metrics. */
export interface RaftStatus {
  readonly id: NodeId;
  readonly term: number;
  readonly votedFor: NodeId | undefined;
  readonly role: RoleKind;
  readonly leaderId: NodeId | undefined;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly committed: number;
  readonly applied: number;
  readonly config: ClusterConfig;
  /** Leader only: every other member's progress. */
  readonly progress: ReadonlyMap<NodeId, ProgressStatus> | undefined;
  readonly transferTarget: NodeId | undefined;
  /** This server's store directory id, if the driver gave one. */
  readonly directoryId: string | undefined;
  /** Rejoining after its data was deleted: no votes, no campaigns (see the file header). */
  readonly rejoining: boolean;
}

type Role =
  | { readonly kind: 'follower'; leaderId: NodeId | undefined }
  | { readonly kind: 'pre-candidate'; readonly votes: Map<NodeId, boolean> }
  | { readonly kind: 'candidate'; readonly votes: Map<NodeId, boolean> }
  | {
      readonly kind: 'leader';
      /** Every member but this server. */
      readonly progress: Map<NodeId, Progress>;
      /** Leadership transfer in progress: proposals are refused until it ends or times out. */
      transferTarget: NodeId | undefined;
    };

type LeaderRole = Extract<Role, { kind: 'leader' }>;

export class RaftCore {
  readonly id: NodeId;
  private readonly electionTimeoutTicks: number;
  private readonly heartbeatIntervalTicks: number;
  private readonly random: () => number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly maxEntriesPerAppend: number;
  private readonly maxInflightAppends: number;

  private readonly log: RaftLog;
  private term: number;
  private votedFor: NodeId | undefined;
  private role: Role = { kind: 'follower', leaderId: undefined };
  private readonly directoryId: string | undefined;
  /** See the file header. Goes true -> false only. */
  private rejoining: boolean;
  /** While rejoining: the commit index at which the committed configuration was last checked. */
  private rejoinCheckedIndex: number;
  /**
   * Follower: the last index an append (or snapshot) of the current term's leader proved to match
   * its log. A rejoining follower takes a heartbeat's commit only up to here, since the leader's
   * progress for it may predate its lost store.
   */
  private leaderVerifiedIndex = 0;

  /** Ticks since the last election timeout reset (followers: since they heard from a leader). */
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  /** Invariant: electionTimeoutTicks <= randomizedElectionTimeout < 2 * electionTimeoutTicks. */
  private randomizedElectionTimeout = 0;

  private outbox: Message[] = [];
  private persistedHardState: HardState;
  private outstanding: Ready | undefined;

  /**
   * @param bootstrap the configuration to start from when the durable state holds none (a
   *   brand-new cluster: `controller.quorum.voters`). Once a snapshot or a config entry exists,
   *   the log's configuration wins.
   */
  constructor(options: RaftOptions, durable: DurableState, bootstrap: ClusterConfig) {
    assert(options.electionTimeoutTicks >= 2, 'electionTimeoutTicks >= 2');
    assert(options.heartbeatIntervalTicks >= 1, 'heartbeatIntervalTicks >= 1');
    assert(options.heartbeatIntervalTicks < options.electionTimeoutTicks, 'heartbeat interval < election timeout');
    this.id = options.id;
    this.electionTimeoutTicks = options.electionTimeoutTicks;
    this.heartbeatIntervalTicks = options.heartbeatIntervalTicks;
    this.random = options.random;
    this.preVote = options.preVote ?? true;
    this.checkQuorum = options.checkQuorum ?? true;
    this.maxEntriesPerAppend = options.maxEntriesPerAppend ?? 64;
    this.maxInflightAppends = options.maxInflightAppends ?? 16;
    assert(this.maxEntriesPerAppend >= 1 && this.maxInflightAppends >= 1, 'append limits >= 1');

    const snapshot: Snapshot = durable.snapshot ?? { metadata: { index: 0, term: 0, config: bootstrap }, data: new Uint8Array() };
    this.log = new RaftLog(snapshot, durable.entries, durable.hardState.commit);
    this.term = durable.hardState.term;
    this.votedFor = durable.hardState.votedFor;
    this.directoryId = options.directoryId;
    this.rejoining = durable.hardState.rejoining === true;
    this.rejoinCheckedIndex = -1;
    assert(this.log.lastTerm() <= this.term, `persisted log term ${this.log.lastTerm()} <= persisted term ${this.term}`);
    this.persistedHardState = this.hardState();
    // After persistedHardState: if the re-add committed before a crash, the next Ready stores it.
    this.checkRejoinCommitted();
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
    if (this.log.term(this.log.committed) !== this.term) {
      return this.reject('no-commit-in-term', 'the leader has not yet committed an entry of its term');
    }
    if (this.log.lastConfigIndex() > this.log.committed) {
      return this.reject('config-change-pending', `config entry ${this.log.lastConfigIndex()} is not committed yet`);
    }
    const problem = validateConfigChange(this.log.config(), change);
    if (problem !== undefined) return this.reject('invalid-config-change', problem);
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
    const progress = this.progressOf(leader, target);
    if (progress.match === this.log.lastIndex()) this.send({ type: 'timeout-now', from: this.id, to: target, term: this.term });
    else this.sendAppend(leader, target, true);
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
    if (this.outstanding !== undefined) return false;
    return (
      this.outbox.length > 0 ||
      !sameHardState(this.hardState(), this.persistedHardState) ||
      this.log.pendingSnapshot !== undefined ||
      this.log.pendingTruncateFrom !== undefined ||
      this.log.lastIndex() > this.log.handedOutIndex ||
      this.log.committed > this.log.applying
    );
  }

  /** Hands out the pending work. Precondition: no Ready is outstanding (advance the last one). */
  ready(): Ready {
    assert(this.outstanding === undefined, 'ready() called again before advance()');
    const hardState = this.hardState();
    const snapshot = this.log.pendingSnapshot;
    const truncateFrom = this.log.pendingTruncateFrom;
    const entries = this.log.lastIndex() > this.log.handedOutIndex ? this.log.slice(this.log.handedOutIndex + 1, this.log.lastIndex()) : [];
    const committedEntries = this.log.nextCommittedEntries();
    const rd: Ready = {
      hardState: sameHardState(hardState, this.persistedHardState) ? undefined : hardState,
      snapshot,
      truncateFrom,
      entries,
      messages: this.outbox,
      committedEntries,
      softState: this.softState(),
    };
    this.outbox = [];
    this.log.pendingSnapshot = undefined;
    this.log.pendingTruncateFrom = undefined;
    this.log.handedOutIndex = this.log.lastIndex();
    if (committedEntries.length > 0) this.log.applying = committedEntries[committedEntries.length - 1].index;
    this.outstanding = rd;
    return rd;
  }

  /** The driver has persisted, sent and applied `rd`. */
  advance(rd: Ready): void {
    assert(this.outstanding === rd, 'advance() takes the outstanding Ready');
    this.outstanding = undefined;
    if (rd.hardState !== undefined) {
      assert(rd.hardState.commit >= this.persistedHardState.commit, 'the persisted commit never decreases');
      assert(rd.hardState.term >= this.persistedHardState.term, 'the persisted term never decreases');
      this.persistedHardState = rd.hardState;
    }
    if (rd.snapshot !== undefined) this.log.applied = Math.max(this.log.applied, rd.snapshot.metadata.index);
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1];
      // If the entry is still there, so is everything before it (Log Matching): all durable.
      if (last.index > this.log.stableIndex && this.log.matchTerm(last.index, last.term)) {
        const pending = this.log.pendingTruncateFrom;
        assert(pending === undefined || pending > last.index, 'persisted entries still in the log are not pending truncation');
        this.log.stableIndex = last.index;
      }
    }
    if (rd.committedEntries.length > 0) {
      this.log.applied = rd.committedEntries[rd.committedEntries.length - 1].index;
    }
    this.log.checkInvariants();
    // The leader counts itself towards a quorum only for entries it has persisted.
    if (this.role.kind === 'leader') this.maybeCommitAndBroadcast(this.role);
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
      directoryId: this.directoryId,
      rejoining: this.rejoining,
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
      this.leaderVerifiedIndex = 0;
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
    this.syncProgressWithConfig(leader);
    // Commit an entry of this term as soon as possible: it commits everything before it (§5.4.2)
    // and unlocks membership changes.
    this.appendAsLeader({ kind: 'noop' });
  }

  // ---------------------------------------------------------------------------------------------
  // Elections

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
    for (const voter of this.log.config().voters) {
      if (voter === this.id) continue;
      this.send({
        type: 'vote',
        from: this.id,
        to: voter,
        term: voteTerm,
        preVote,
        transfer,
        lastIndex: this.log.lastIndex(),
        lastTerm: this.log.lastTerm(),
      });
    }
  }

  /** Counts a (pre)vote; moves on if the election is decided. Returns true if it was. */
  private recordVote(from: NodeId, granted: boolean): boolean {
    const role = this.role;
    assert(role.kind === 'pre-candidate' || role.kind === 'candidate', 'only candidates count votes');
    const config = this.log.config();
    if (!isVoter(config, from)) return false;
    if (!role.votes.has(from)) role.votes.set(from, granted);
    let yes = 0;
    let no = 0;
    for (const [voter, vote] of role.votes) {
      if (!isVoter(config, voter)) continue;
      if (vote) yes++;
      else no++;
    }
    const quorum = quorumSize(config);
    if (yes >= quorum) {
      if (role.kind === 'pre-candidate') this.startElection(false);
      else this.becomeLeader();
      return true;
    }
    if (no > config.voters.length - quorum) {
      this.becomeFollower(this.term, undefined);
      return true;
    }
    return false;
  }

  private handleVote(m: VoteMessage): void {
    // A vote (not a PreVote) that got here is for our term: acceptHigherTerm moved us to it.
    assert(m.preVote || m.term === this.term, 'a vote request is handled in its own term');
    const leaderId = this.leaderId();
    const canVote =
      !this.rejoining &&
      (this.votedFor === m.from ||
      (this.votedFor === undefined && leaderId === undefined) ||
      (m.preVote && m.term > this.term));
    if (canVote && this.log.isUpToDate(m.lastIndex, m.lastTerm)) {
      this.send({ type: 'vote-response', from: this.id, to: m.from, term: m.term, preVote: m.preVote, granted: true });
      if (!m.preVote) {
        this.votedFor = m.from;
        this.electionElapsed = 0;
      }
    } else {
      this.send({ type: 'vote-response', from: this.id, to: m.from, term: this.term, preVote: m.preVote, granted: false });
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Term checks

  /** A message from a higher term. Returns false if it is to be ignored. */
  private acceptHigherTerm(m: Message): boolean {
    if (m.type === 'vote' && !m.transfer && this.inLease()) {
      // Leader lease (thesis §4.2.3): we heard from a leader within the election timeout, so a
      // server trying to replace it is disconnected or removed. Ignore it; do not adopt its term.
      return false;
    }
    if (m.type === 'vote' && m.preVote) return true; // a PreVote changes nothing
    if (m.type === 'vote-response' && m.preVote && m.granted) return true; // the term we would run in
    const fromLeader = m.type === 'append' || m.type === 'heartbeat' || m.type === 'install-snapshot';
    this.becomeFollower(m.term, fromLeader ? m.from : undefined);
    return true;
  }

  private handleStaleTerm(m: Message): void {
    if ((this.checkQuorum || this.preVote) && (m.type === 'append' || m.type === 'heartbeat')) {
      // A leader of an older term. We may have advanced our term while partitioned and now ignore
      // its votes (lease) while it ignores ours; tell it our term so it steps down.
      this.send({ type: 'heartbeat-response', from: this.id, to: m.from, term: this.term });
    } else if (m.type === 'vote') {
      // Reject with our term (§5.1: every reply carries the receiver's term) so a candidate from
      // an older term catches up. It matters after membership changes: a server whose stale
      // configuration still lists us may hear from no one else, since the others' configurations
      // no longer include it, and would otherwise campaign in old terms forever.
      this.send({ type: 'vote-response', from: this.id, to: m.from, term: this.term, preVote: m.preVote, granted: false });
    }
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
        this.handleAppendResponse(leader, m);
        return;
      case 'heartbeat-response':
        this.handleHeartbeatResponse(leader, m);
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
    switch (m.type) {
      case 'append':
        this.handleAppend(m);
        return;
      case 'heartbeat':
        if (!this.rejoining) {
          this.log.commitTo(m.commit);
        } else {
          this.log.commitTo(Math.min(m.commit, this.leaderVerifiedIndex));
          this.checkRejoinCommitted();
        }
        this.send({
          type: 'heartbeat-response',
          from: this.id,
          to: m.from,
          term: this.term,
          ...(this.rejoining ? { rejoining: { lastIndex: this.log.lastIndex() } } : {}),
        });
        return;
      case 'install-snapshot':
        this.handleInstallSnapshot(m);
        return;
      default:
        assertNever(m, 'leader message');
    }
  }

  private handleAppend(m: AppendMessage): void {
    const log = this.log;
    if (m.prevIndex < log.committed) {
      // Everything up to our commit matches the leader (Leader Completeness); resume from there.
      this.sendAppendResponse(m.from, false, log.committed);
      return;
    }
    if (log.matchTerm(m.prevIndex, m.prevTerm)) {
      const lastNew = log.appendAfterMatch(m.prevIndex, m.entries);
      this.leaderVerifiedIndex = Math.max(this.leaderVerifiedIndex, lastNew);
      log.commitTo(Math.min(m.commit, lastNew));
      this.checkRejoinCommitted();
      this.sendAppendResponse(m.from, false, lastNew);
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
    this.sendAppendResponse(m.from, true, m.prevIndex, conflictTerm, conflictIndex);
  }

  private handleInstallSnapshot(m: InstallSnapshotMessage): void {
    const { index, term } = m.snapshot.metadata;
    if (index <= this.log.committed) {
      this.sendAppendResponse(m.from, false, this.log.committed);
      return;
    }
    if (this.log.matchTerm(index, term)) {
      // We hold the snapshot's last entry, hence everything before it: just commit.
      this.log.commitTo(index);
    } else {
      this.log.restore(m.snapshot);
    }
    this.leaderVerifiedIndex = Math.max(this.leaderVerifiedIndex, index);
    this.checkRejoinCommitted();
    this.sendAppendResponse(m.from, false, index);
  }

  private sendAppendResponse(to: NodeId, reject: boolean, index: number, conflictTerm = 0, conflictIndex = 0): void {
    const rejoining = this.rejoining ? { rejoining: true } : {};
    this.send({ type: 'append-response', from: this.id, to, term: this.term, reject, index, conflictTerm, conflictIndex, ...rejoining });
  }

  // ---------------------------------------------------------------------------------------------
  // Leader

  private tickLeader(leader: LeaderRole): void {
    this.electionElapsed++;
    this.heartbeatElapsed++;
    if (this.electionElapsed >= this.electionTimeoutTicks) {
      this.electionElapsed = 0;
      if (this.checkQuorum && !this.quorumActive(leader)) {
        // CheckQuorum (thesis §6.2): we cannot reach a majority, so a new leader may exist.
        this.becomeFollower(this.term, undefined);
        return;
      }
      leader.transferTarget = undefined; // a transfer that took an election timeout has failed
    }
    for (const [id, progress] of leader.progress) {
      if (progress.state !== 'snapshot') continue;
      progress.snapshotTicks++;
      if (progress.snapshotTicks >= this.electionTimeoutTicks) {
        progress.becomeProbe();
        this.sendAppend(leader, id, true);
      }
    }
    if (this.heartbeatElapsed >= this.heartbeatIntervalTicks) {
      this.heartbeatElapsed = 0;
      for (const [id, progress] of leader.progress) {
        const commit = Math.min(progress.match, this.log.committed);
        this.send({ type: 'heartbeat', from: this.id, to: id, term: this.term, commit });
      }
    }
  }

  /** CheckQuorum: did a majority of voters (this server included) talk to us since the last check? */
  private quorumActive(leader: LeaderRole): boolean {
    const config = this.log.config();
    let active = 0;
    for (const voter of config.voters) {
      if (voter === this.id) active++;
      else if (leader.progress.get(voter)?.recentActive) active++;
    }
    for (const progress of leader.progress.values()) progress.recentActive = false;
    return active >= quorumSize(config);
  }

  private handleAppendResponse(leader: LeaderRole, m: AppendResponseMessage): void {
    const progress = leader.progress.get(m.from);
    if (progress === undefined) return; // no longer a member
    progress.recentActive = true;
    if (m.reject) {
      if (m.rejoining === true && m.index <= progress.match && m.conflictIndex <= progress.match) {
        // The member lost entries it acknowledged (its store was re-created): start over.
        progress.resetAfterLoss(Math.max(1, Math.min(m.conflictIndex, this.log.lastIndex() + 1)));
        this.sendAppend(leader, m.from, true);
      } else if (progress.maybeDecreaseTo(m.index, this.nextIndexFromHint(m))) {
        this.sendAppend(leader, m.from, true);
      }
      return;
    }
    assert(m.index <= this.log.lastIndex(), `member ${m.from} acknowledges ${m.index} beyond our log ${this.log.lastIndex()}`);
    const wasPaused = progress.isPaused(this.maxInflightAppends);
    const updated = progress.maybeUpdate(m.index);
    if (progress.state === 'snapshot' && progress.match >= progress.pendingSnapshot) progress.becomeProbe();
    if (progress.state === 'probe' && (updated || progress.match === m.index)) progress.becomeReplicate();
    if (updated && this.maybeCommitAndBroadcast(leader)) {
      if (this.role.kind !== 'leader') return; // stepped down: removed from the configuration
    } else if (wasPaused) {
      this.sendAppend(leader, m.from, true);
    }
    while (this.sendAppend(leader, m.from, false)) {
      // keep the member's pipeline full
    }
    if (leader.transferTarget === m.from && progress.match === this.log.lastIndex()) {
      this.send({ type: 'timeout-now', from: this.id, to: m.from, term: this.term });
    }
  }

  private handleHeartbeatResponse(leader: LeaderRole, m: HeartbeatResponseMessage): void {
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
    if (progress.match < this.log.lastIndex()) this.sendAppend(leader, from, true);
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

  /**
   * Sends the member what it lacks from `next`: entries, or the snapshot if they are compacted.
   * Returns true if a message went out. With sendIfEmpty it also sends an empty append (a probe,
   * or the news of a higher commit).
   */
  private sendAppend(leader: LeaderRole, to: NodeId, sendIfEmpty: boolean): boolean {
    const progress = this.progressOf(leader, to);
    if (progress.isPaused(this.maxInflightAppends)) return false;
    const prevIndex = progress.next - 1;
    assert(prevIndex <= this.log.lastIndex(), `next ${progress.next} for ${to} is within our log`);
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined) {
      const snapshot = this.log.currentSnapshot();
      progress.becomeSnapshot(snapshot.metadata.index);
      this.send({ type: 'install-snapshot', from: this.id, to, term: this.term, snapshot });
      return true;
    }
    const entries = this.log.slice(progress.next, this.log.lastIndex(), this.maxEntriesPerAppend);
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({ type: 'append', from: this.id, to, term: this.term, prevIndex, prevTerm, entries, commit: this.log.committed });
    progress.sentEntries(prevIndex + entries.length, entries.length, this.maxInflightAppends);
    return true;
  }

  private broadcastAppend(leader: LeaderRole): void {
    for (const id of leader.progress.keys()) this.sendAppend(leader, id, true);
  }

  /**
   * Commits the highest index a quorum of voters has persisted, if it is of this term (§5.4.2:
   * an older term's entry is committed only indirectly). Tells members; steps down if this
   * server's removal just committed. Returns true if the commit index moved.
   */
  private maybeCommitAndBroadcast(leader: LeaderRole): boolean {
    const config = this.log.config();
    const matches = config.voters.map((v) => (v === this.id ? this.log.stableIndex : this.progressOf(leader, v).match));
    matches.sort((a, b) => b - a);
    const candidate = matches[quorumSize(config) - 1];
    if (candidate <= this.log.committed || this.log.term(candidate) !== this.term) return false;
    this.log.commitTo(candidate);
    this.broadcastAppend(leader);
    if (!isVoter(config, this.id) && this.log.committed >= this.log.lastConfigIndex()) {
      // Our removal is committed (thesis §4.2.2): stop leading. The others elect a new leader.
      this.becomeFollower(this.term, undefined);
    }
    return true;
  }

  private appendAsLeader(payload: EntryPayload): ProposeResult {
    const leader = this.role;
    assert(leader.kind === 'leader', 'only a leader appends to its own log');
    const entry: Entry = { index: this.log.lastIndex() + 1, term: this.term, payload };
    this.log.append([entry]);
    if (payload.kind === 'config') this.syncProgressWithConfig(leader);
    this.broadcastAppend(leader);
    // A smaller voter set may already have a quorum (e.g. after removing an unreachable voter).
    if (payload.kind === 'config') this.maybeCommitAndBroadcast(leader);
    return { ok: true, index: entry.index, term: entry.term };
  }

  /** Tracks exactly the members of the latest configuration (a config applies when appended). */
  private syncProgressWithConfig(leader: LeaderRole): void {
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

  private progressOf(leader: LeaderRole, id: NodeId): Progress {
    const progress = leader.progress.get(id);
    assert(progress !== undefined, `the leader tracks member ${id}`);
    return progress;
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
    return !this.rejoining && isVoter(this.log.config(), this.id);
  }

  /**
   * While rejoining: does the committed configuration list this server as a voter added with its
   * own directory id (the add-voter seen as an entry, or inside a leader's snapshot)? Then the
   * server votes again (persisted with the next hard state). An add-voter without a directory id,
   * or with another one, is about an earlier store of this node and changes nothing.
   */
  private checkRejoinCommitted(): void {
    if (!this.rejoining || this.directoryId === undefined || this.rejoinCheckedIndex === this.log.committed) return;
    this.rejoinCheckedIndex = this.log.committed;
    // The committed configuration, from the entries or (after a snapshot) the snapshot's.
    const committed = this.log.configAt(this.log.committed);
    if (isVoter(committed, this.id) && committed.voterDirectories?.[String(this.id)] === this.directoryId) this.rejoining = false;
  }

  private hardState(): HardState {
    const base = { term: this.term, votedFor: this.votedFor, commit: this.log.committed };
    return this.rejoining ? { ...base, rejoining: true } : base;
  }

  private send(message: Message): void {
    assert(message.to !== this.id, 'a server never messages itself');
    this.outbox.push(message);
  }

  private resetRandomizedElectionTimeout(): void {
    const r = this.random();
    assert(r >= 0 && r < 1, `random() returns a number in [0, 1), not ${r}`);
    this.randomizedElectionTimeout = this.electionTimeoutTicks + Math.floor(r * this.electionTimeoutTicks);
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.votedFor === b.votedFor && a.commit === b.commit && (a.rejoining === true) === (b.rejoining === true);
}

