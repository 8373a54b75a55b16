// The messages Raft servers exchange. A plain discriminated union on `type`, with only numbers,
// booleans, Uint8Array and nested plain objects, so the driver can map it 1:1 onto protobuf
// messages of the `kavka.v1.Raft` service (one oneof per type, `undefined` as an absent field).
//
// Every message carries the sender's `term`; a receiver first compares it with its own (§5.1):
// a higher term makes the receiver a follower of that term (except for the PreVote cases noted
// below and for vote requests received inside a leader lease), and a lower term marks the message
// stale. Delivery may lose, duplicate, delay and reorder messages; the core tolerates all four.

import type { Entry, NodeId, Snapshot } from './types.js';

interface Envelope {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

/**
 * AppendEntries (§5.3), leader -> follower/learner. `entries` follow (prevIndex, prevTerm) and may
 * be empty (a probe, or news of a higher commit). `commit` is the leader's commit index.
 */
export interface AppendMessage extends Envelope {
  readonly type: 'append';
  readonly prevIndex: number;
  readonly prevTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}

/**
 * Answer to `append` or `install-snapshot`, follower -> leader.
 * - reject = false: the follower's log matches the leader's through `index` (its match index).
 * - reject = true: the entry at `index` (the request's prevIndex) did not match. The fast back-off
 *   hint (thesis §3.5 / the "accelerated log backtracking" optimization): if the follower's log is
 *   shorter than `index`, conflictTerm = 0 and conflictIndex = its last index + 1; otherwise
 *   conflictTerm is the term the follower has at `index` and conflictIndex the first index of that
 *   term in its log (not below its commit + 1). The leader skips past the whole conflicting term.
 */
export interface AppendResponseMessage extends Envelope {
  readonly type: 'append-response';
  readonly reject: boolean;
  readonly index: number;
  readonly conflictTerm: number;
  readonly conflictIndex: number;
  /** The member's store was re-created (HardState.rejoining); absent means false. */
  readonly rejoining?: boolean;
}

/** Leader -> member, every heartbeat interval. `commit` is min(the member's match, leader commit). */
export interface HeartbeatMessage extends Envelope {
  readonly type: 'heartbeat';
  readonly commit: number;
}

/** Member -> leader. Proves the member is alive (CheckQuorum) and lets the leader resume a probe. */
export interface HeartbeatResponseMessage extends Envelope {
  readonly type: 'heartbeat-response';
  /**
   * Only from a rejoining member: its last index. Its store was re-created, so the leader's
   * progress for it may claim entries it no longer holds; the leader resets it when it does.
   */
  readonly rejoining?: { readonly lastIndex: number };
}

/**
 * RequestVote (§5.2) or, with preVote = true, PreVote (thesis §9.6). A PreVote carries the term
 * the sender *would* campaign in (its term + 1) without the sender having moved to that term;
 * receivers neither change their term nor record a vote for it. `transfer` is set by a candidate
 * campaigning because of TimeoutNow: it overrides the receivers' leader lease (thesis §3.10).
 */
export interface VoteMessage extends Envelope {
  readonly type: 'vote';
  readonly preVote: boolean;
  readonly transfer: boolean;
  readonly lastIndex: number;
  readonly lastTerm: number;
}

/**
 * Answer to `vote`. For a granted PreVote, `term` is the request's term (the sender has not moved
 * to it); a rejection carries the rejecter's own term.
 */
export interface VoteResponseMessage extends Envelope {
  readonly type: 'vote-response';
  readonly preVote: boolean;
  readonly granted: boolean;
}

/**
 * InstallSnapshot (§7), leader -> member whose next index the leader has compacted away. Sent
 * whole; a driver may chunk it on the wire. Answered by `append-response` with index =
 * the snapshot's index (or the member's commit, if already past it).
 */
export interface InstallSnapshotMessage extends Envelope {
  readonly type: 'install-snapshot';
  readonly snapshot: Snapshot;
}

/** Leadership transfer (thesis §3.10): leader -> an up-to-date voter, "campaign now". */
export interface TimeoutNowMessage extends Envelope {
  readonly type: 'timeout-now';
}

export type Message =
  | AppendMessage
  | AppendResponseMessage
  | HeartbeatMessage
  | HeartbeatResponseMessage
  | VoteMessage
  | VoteResponseMessage
  | InstallSnapshotMessage
  | TimeoutNowMessage;

export type MessageType = Message['type'];
