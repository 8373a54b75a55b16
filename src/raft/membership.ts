// Single-server membership changes (Ongaro's thesis §4.1). Pure functions over ClusterConfig (and,
// for the leader's proposal rule, a read-only view of its log).
//
// Kavka applies a configuration entry as soon as it is appended to a server's log, committed or
// not (the thesis' rule), and reverts it if the entry is truncated. The leader proposes a change
// only after it has committed an entry of its own term (the fix to the single-server algorithm
// published on raft-dev in 2015) and only when no other change is uncommitted, so at most one
// uncommitted configuration exists and consecutive configurations differ by one voter.

import { assert } from '../util/assert.js';
import type { ClusterConfig, ConfigChange, NodeId } from './types.js';

/** What the leader's proposal rule reads from its log (RaftLog). */
export interface ConfigChangeLog {
  readonly committed: number;
  term(index: number): number | undefined;
  lastConfigIndex(): number;
  config(): ClusterConfig;
}

/** Why the leader refuses a membership change now (a subset of RaftCore's ProposeRejection). */
export interface RejectedConfigChange {
  readonly reason: 'no-commit-in-term' | 'config-change-pending' | 'invalid-config-change';
  readonly detail: string;
}

/**
 * Why the leader of `term` may not propose `change` now; undefined when it may. It must have
 * committed an entry of its term, no other change may be uncommitted (see the file header), and
 * the change must apply to the latest configuration.
 */
export function configChangeRejection(log: ConfigChangeLog, term: number, change: ConfigChange): RejectedConfigChange | undefined {
  if (log.term(log.committed) !== term) {
    return { reason: 'no-commit-in-term', detail: 'the leader has not yet committed an entry of its term' };
  }
  if (log.lastConfigIndex() > log.committed) {
    return { reason: 'config-change-pending', detail: `config entry ${log.lastConfigIndex()} is not committed yet` };
  }
  const problem = validateConfigChange(log.config(), change);
  if (problem !== undefined) return { reason: 'invalid-config-change', detail: problem };
  return undefined;
}

/** Why a change cannot apply to a configuration; undefined when it can. */
export function validateConfigChange(config: ClusterConfig, change: ConfigChange): string | undefined {
  const voter = config.voters.includes(change.nodeId);
  const learner = config.learners.includes(change.nodeId);
  switch (change.type) {
    case 'add-voter':
      return voter ? `node ${change.nodeId} is already a voter` : undefined;
    case 'remove-voter':
      if (!voter) return `node ${change.nodeId} is not a voter`;
      return config.voters.length === 1 ? 'cannot remove the last voter' : undefined;
    case 'add-learner':
      if (voter) return `node ${change.nodeId} is a voter`;
      return learner ? `node ${change.nodeId} is already a learner` : undefined;
    case 'remove-learner':
      return learner ? undefined : `node ${change.nodeId} is not a learner`;
  }
}

/** The configuration after `change`. Precondition: validateConfigChange returned undefined. */
export function applyConfigChange(config: ClusterConfig, change: ConfigChange): ClusterConfig {
  const problem = validateConfigChange(config, change);
  assert(problem === undefined, `config change ${change.type} ${change.nodeId}: ${problem}`);
  const without = (ids: readonly NodeId[]) => ids.filter((id) => id !== change.nodeId);
  const sorted = (ids: NodeId[]) => ids.sort((a, b) => a - b);
  switch (change.type) {
    case 'add-voter':
      return withDirectories(makeConfig(sorted([...config.voters, change.nodeId]), without(config.learners)), config, change.nodeId, change.directoryId);
    case 'remove-voter':
      return withDirectories(makeConfig(without(config.voters), config.learners), config, change.nodeId, undefined);
    case 'add-learner':
      return withDirectories(makeConfig(config.voters, sorted([...config.learners, change.nodeId])), config, undefined, undefined);
    case 'remove-learner':
      return withDirectories(makeConfig(config.voters, without(config.learners)), config, undefined, undefined);
  }
}

/** `next` with `previous`'s voter directories, the one of `nodeId` set to `directoryId` (or dropped). */
function withDirectories(next: ClusterConfig, previous: ClusterConfig, nodeId: NodeId | undefined, directoryId: string | undefined): ClusterConfig {
  const directories: Record<string, string> = { ...(previous.voterDirectories ?? {}) };
  if (nodeId !== undefined) delete directories[String(nodeId)];
  if (nodeId !== undefined && directoryId !== undefined) directories[String(nodeId)] = directoryId;
  return Object.keys(directories).length === 0 ? next : { ...next, voterDirectories: directories };
}

/** A checked configuration: sorted, duplicate-free, disjoint, at least one voter. */
export function makeConfig(voters: readonly NodeId[], learners: readonly NodeId[] = []): ClusterConfig {
  const v = [...new Set(voters)].sort((a, b) => a - b);
  const l = [...new Set(learners)].sort((a, b) => a - b);
  assert(v.length > 0, 'a configuration has at least one voter');
  assert(v.length === voters.length && l.length === learners.length, 'configuration lists hold no duplicates');
  assert(!l.some((id) => v.includes(id)), 'voters and learners are disjoint');
  return { voters: v, learners: l };
}

export function formatConfig(config: ClusterConfig): string {
  const learners = config.learners.length > 0 ? ` learners=(${config.learners.join(',')})` : '';
  return `voters=(${config.voters.join(',')})${learners}`;
}
