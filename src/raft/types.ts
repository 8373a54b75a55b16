// Plain data shared by the Raft core, its driver and its tests. Nothing here has behaviour beyond
// small pure helpers: every value is a plain object so the driver can encode it to protobuf and
// to `level` without knowing the core's internals.

import type { ProgressState } from './progress.js';

/** A Raft server's id (Kafka's node.id). Any integer; absence is `undefined`, never a sentinel. */
export type NodeId = number;

/**
 * One membership change. Changes are single-server (Ongaro's thesis §4.1): each changes the voter
 * set by at most one member, so any two consecutive configurations have overlapping majorities.
 * - add-voter: a learner or a new server becomes a voter.
 * - remove-voter: a voter leaves the configuration entirely (the last voter cannot be removed).
 * - add-learner: a new server receives the log without voting (Kafka's observer, a broker-only node).
 * - remove-learner: a learner leaves.
 */
export type ConfigChange =
  /**
   * directoryId (KIP-853): the Raft store the new voter must have. A store formatted as
   * rejoining (its node's data was deleted) starts voting only once an add-voter naming its own
   * directory id is committed; it was proposed after the store existed, hence after the old
   * identity's removal committed.
   */
  | { readonly type: 'add-voter'; readonly nodeId: NodeId; readonly directoryId?: string }
  | { readonly type: 'remove-voter'; readonly nodeId: NodeId }
  | { readonly type: 'add-learner'; readonly nodeId: NodeId }
  | { readonly type: 'remove-learner'; readonly nodeId: NodeId };

/** A membership configuration. Invariant: voters and learners are disjoint, sorted, non-empty voters. */
export interface ClusterConfig {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /**
   * Voter -> the Raft store directory id it was added with (KIP-853), for voters added by an
   * add-voter naming one. Absent when no voter has one. Carried into snapshots with the rest.
   */
  readonly voterDirectories?: Readonly<Record<string, string>>;
}

/**
 * What an entry carries.
 * - normal: application data (a metadata record batch), opaque to Raft.
 * - noop: appended by every new leader so it can commit an entry of its own term (§5.4.2, §8);
 *   the application skips it.
 * - config: a membership change; it takes effect on every server as soon as it is appended to that
 *   server's log, committed or not (thesis §4.1), and is undone if the entry is truncated.
 */
export type EntryPayload =
  | { readonly kind: 'normal'; readonly data: Uint8Array }
  | { readonly kind: 'noop' }
  | { readonly kind: 'config'; readonly change: ConfigChange };

/** A log entry. Indexes start at 1; terms start at 1 (term 0 is "before any entry"). */
export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly payload: EntryPayload;
}

/**
 * The state that must be durable before any message that depends on it is sent.
 * Invariant (across Readies): term never decreases; commit never decreases; within one term,
 * votedFor never changes once set.
 */
export interface HardState {
  readonly term: number;
  readonly votedFor: NodeId | undefined;
  readonly commit: number;
  /**
   * The store was created after this node's data was deleted, in a cluster that already existed:
   * the node may have voted in terms it no longer remembers, so it grants no vote and never
   * campaigns until an add-voter naming its own directory id commits. Goes true -> false only.
   */
  readonly rejoining?: boolean;
}

/** Which entries a snapshot covers: every entry up to and including `index`, which had `term`. */
export interface SnapshotMetadata {
  readonly index: number;
  readonly term: number;
  /** The configuration as of `index` (the latest config entry at or before it). */
  readonly config: ClusterConfig;
}

/** An application snapshot: the state machine after applying entries 1..metadata.index. */
export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  readonly data: Uint8Array;
}

export type RoleKind = 'follower' | 'pre-candidate' | 'candidate' | 'leader';

/** Volatile state, for observers (the controller asks "who leads?"). Never persisted. */
export interface SoftState {
  readonly role: RoleKind;
  readonly leaderId: NodeId | undefined;
  readonly term: number;
}

// What RaftCore's proposals and status() return.

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
  /** Rejoining after its data was deleted: no votes, no campaigns (see the raft-core.ts header). */
  readonly rejoining: boolean;
}

export function isVoter(config: ClusterConfig, id: NodeId): boolean {
  return config.voters.includes(id);
}

export function isMember(config: ClusterConfig, id: NodeId): boolean {
  return config.voters.includes(id) || config.learners.includes(id);
}

/** Every member, voters first; the leader replicates to all of them. */
export function members(config: ClusterConfig): NodeId[] {
  return [...config.voters, ...config.learners];
}

/** A majority of the voters. */
export function quorumSize(config: ClusterConfig): number {
  return Math.floor(config.voters.length / 2) + 1;
}
