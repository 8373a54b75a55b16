// Elections and term checks (§5.1, §5.2, §5.4.1; PreVote, thesis §9.6; leader lease, thesis
// §4.2.3): the pure rules RaftCore follows when it campaigns, counts votes, answers a vote request
// and meets a message from another term. These functions decide and build messages; RaftCore
// changes roles, records its vote and sends.

import type { Message, VoteMessage, VoteResponseMessage } from './messages.js';
import { isVoter, quorumSize, type ClusterConfig, type NodeId } from './types.js';

/** What a (pre)candidate's log looks like, as its vote requests tell it. */
export interface CampaignLog {
  readonly lastIndex: number;
  readonly lastTerm: number;
}

/**
 * The (pre)vote requests to every other voter of `config`. `term` is the term to campaign in: for
 * a PreVote, the sender's term + 1, which it has not moved to.
 */
export function voteRequests(
  config: ClusterConfig,
  from: NodeId,
  term: number,
  preVote: boolean,
  transfer: boolean,
  log: CampaignLog,
): VoteMessage[] {
  const requests: VoteMessage[] = [];
  for (const voter of config.voters) {
    if (voter === from) continue;
    requests.push({
      type: 'vote',
      from,
      to: voter,
      term,
      preVote,
      transfer,
      lastIndex: log.lastIndex,
      lastTerm: log.lastTerm,
    });
  }
  return requests;
}

export type ElectionOutcome = 'won' | 'lost' | 'undecided';

/**
 * Counts `from`'s (pre)vote into `votes` (a voter's first answer is the one that counts) and says
 * whether the election is decided: won with a quorum of yes, lost once a quorum is out of reach.
 * Answers from servers that are not voters of `config` do not count.
 */
export function countVote(votes: Map<NodeId, boolean>, config: ClusterConfig, from: NodeId, granted: boolean): ElectionOutcome {
  if (!isVoter(config, from)) return 'undecided';
  if (!votes.has(from)) votes.set(from, granted);
  let yes = 0;
  let no = 0;
  for (const [voter, vote] of votes) {
    if (!isVoter(config, voter)) continue;
    if (vote) yes++;
    else no++;
  }
  const quorum = quorumSize(config);
  if (yes >= quorum) return 'won';
  if (no > config.voters.length - quorum) return 'lost';
  return 'undecided';
}

/** What a server that receives a vote request knows of itself. */
export interface Voter {
  readonly term: number;
  readonly votedFor: NodeId | undefined;
  /** The leader it follows in its term, or itself if it leads. */
  readonly leaderId: NodeId | undefined;
  /** Rejoining after its data was deleted: it grants no (pre)vote (see the raft-core.ts header). */
  readonly rejoining: boolean;
}

/**
 * Whether `voter` grants the (pre)vote request `m`: it is not rejoining, it may vote for the
 * candidate (it already did, or it has neither voted nor heard of a leader this term, or it is a
 * PreVote for a later term), and the candidate's log is at least as up to date as its own
 * (§5.4.1: `candidateUpToDate`).
 */
export function grantsVote(voter: Voter, m: VoteMessage, candidateUpToDate: boolean): boolean {
  const canVote =
    !voter.rejoining &&
    (voter.votedFor === m.from ||
    (voter.votedFor === undefined && voter.leaderId === undefined) ||
    (m.preVote && m.term > voter.term));
  return canVote && candidateUpToDate;
}

/**
 * The answer to the vote request `m`. A grant carries the request's term (for a PreVote, the term
 * the candidate would run in); a rejection carries the voter's own term.
 */
export function voteResponse(m: VoteMessage, voterTerm: number, granted: boolean): VoteResponseMessage {
  const term = granted ? m.term : voterTerm;
  return { type: 'vote-response', from: m.to, to: m.from, term, preVote: m.preVote, granted };
}

export type HigherTermReaction =
  /** Ignore the message; do not adopt its term. */
  | { readonly kind: 'ignore' }
  /** Handle the message in the current role and term. */
  | { readonly kind: 'keep-role' }
  /** Become a follower in the message's term, of `leaderId` if the message comes from a leader. */
  | { readonly kind: 'follow'; readonly leaderId: NodeId | undefined };

/** How a server reacts to `m` from a term higher than its own. `inLease`: see RaftCore.inLease. */
export function higherTermReaction(m: Message, inLease: boolean): HigherTermReaction {
  if (m.type === 'vote' && !m.transfer && inLease) {
    // Leader lease (thesis §4.2.3): we heard from a leader within the election timeout, so a
    // server trying to replace it is disconnected or removed. Ignore it; do not adopt its term.
    return { kind: 'ignore' };
  }
  if (m.type === 'vote' && m.preVote) return { kind: 'keep-role' }; // a PreVote changes nothing
  if (m.type === 'vote-response' && m.preVote && m.granted) return { kind: 'keep-role' }; // the term we would run in
  const fromLeader = m.type === 'append' || m.type === 'heartbeat' || m.type === 'install-snapshot';
  return { kind: 'follow', leaderId: fromLeader ? m.from : undefined };
}

/**
 * The reply, if any, to `m` from a term lower than `term`; without one the message is dropped.
 * `answerStaleLeaders`: CheckQuorum or PreVote is on.
 */
export function staleTermReply(m: Message, term: number, answerStaleLeaders: boolean): Message | undefined {
  if (answerStaleLeaders && (m.type === 'append' || m.type === 'heartbeat')) {
    // A leader of an older term. We may have advanced our term while partitioned and now ignore
    // its votes (lease) while it ignores ours; tell it our term so it steps down.
    return { type: 'heartbeat-response', from: m.to, to: m.from, term };
  }
  if (m.type === 'vote') {
    // Reject with our term (§5.1: every reply carries the receiver's term) so a candidate from
    // an older term catches up. It matters after membership changes: a server whose stale
    // configuration still lists us may hear from no one else, since the others' configurations
    // no longer include it, and would otherwise campaign in old terms forever.
    return voteResponse(m, term, false);
  }
  return undefined;
}
