// RaftCore's configuration: what its driver passes in, the defaults, and the bounds, checked once
// when a RaftCore is built. A value out of bounds is a bug in the driver, so it fails an assertion.

import { assert } from '../util/assert.js';
import type { NodeId } from './types.js';

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

/** RaftOptions with every default filled in and every bound checked. */
export type ResolvedRaftOptions = Required<Omit<RaftOptions, 'directoryId'>> & Pick<RaftOptions, 'directoryId'>;

export function resolveRaftOptions(options: RaftOptions): ResolvedRaftOptions {
  assert(options.electionTimeoutTicks >= 2, 'electionTimeoutTicks >= 2');
  assert(options.heartbeatIntervalTicks >= 1, 'heartbeatIntervalTicks >= 1');
  assert(options.heartbeatIntervalTicks < options.electionTimeoutTicks, 'heartbeat interval < election timeout');
  const resolved: ResolvedRaftOptions = {
    id: options.id,
    electionTimeoutTicks: options.electionTimeoutTicks,
    heartbeatIntervalTicks: options.heartbeatIntervalTicks,
    random: options.random,
    preVote: options.preVote ?? true,
    checkQuorum: options.checkQuorum ?? true,
    maxEntriesPerAppend: options.maxEntriesPerAppend ?? 64,
    maxInflightAppends: options.maxInflightAppends ?? 16,
    directoryId: options.directoryId,
  };
  assert(resolved.maxEntriesPerAppend >= 1 && resolved.maxInflightAppends >= 1, 'append limits >= 1');
  return resolved;
}
