// Kavka issue 6: a server whose store was re-created after its data was deleted (HardState
// rejoining) neither votes nor campaigns until an add-voter naming its own directory id commits.
// The seeded simulation (`npm run sim -- --wipes`) checks the same rule against the safety checkers.
import { describe, expect, it } from 'vitest';
import { EMPTY_HARD_STATE, RaftCore, makeConfig, type DurableState, type Entry, type Message, type RaftOptions } from '../../src/raft/index.js';

const options = (directoryId: string): RaftOptions => ({ id: 3, electionTimeoutTicks: 10, heartbeatIntervalTicks: 2, random: () => 0.5, directoryId });
const rejoining: DurableState = { hardState: { ...EMPTY_HARD_STATE, rejoining: true }, entries: [] };

function drain(core: RaftCore): Message[] {
  const messages: Message[] = [];
  while (core.hasReady()) {
    const rd = core.ready();
    messages.push(...rd.messages);
    core.advance(rd);
  }
  return messages;
}

describe('a rejoining server (issue 6)', () => {
  it('grants no vote and no PreVote, even in a term it never saw', () => {
    const core = new RaftCore(options('new'), rejoining, makeConfig([1, 2, 3]));
    core.step({ type: 'vote', from: 1, to: 3, term: 1, preVote: true, transfer: false, lastIndex: 0, lastTerm: 0 });
    core.step({ type: 'vote', from: 1, to: 3, term: 1, preVote: false, transfer: false, lastIndex: 0, lastTerm: 0 });
    const answers = drain(core).filter((m) => m.type === 'vote-response');
    expect(answers).toHaveLength(2);
    expect(answers.every((m) => m.type === 'vote-response' && !m.granted)).toBe(true);
    expect(core.status().votedFor).toBeUndefined();
  });

  it('never campaigns, on timeouts or when asked to take over', () => {
    const core = new RaftCore(options('new'), rejoining, makeConfig([1, 2, 3]));
    for (let i = 0; i < 100; i++) core.tick();
    core.step({ type: 'timeout-now', from: 1, to: 3, term: 1 });
    expect(core.status().role).toBe('follower');
    expect(drain(core).filter((m) => m.type === 'vote')).toEqual([]);
  });

  it('votes again once an add-voter naming its own directory id is committed, not one naming another', () => {
    const readd: Entry = { index: 1, term: 1, payload: { kind: 'config', change: { type: 'add-voter', nodeId: 3, directoryId: 'new' } } };
    const durable: DurableState = { hardState: { term: 1, votedFor: undefined, commit: 1, rejoining: true }, entries: [readd] };
    const stale = new RaftCore(options('other'), durable, makeConfig([1, 2], [3]));
    expect(stale.status().rejoining).toBe(true);
    const current = new RaftCore(options('new'), durable, makeConfig([1, 2], [3]));
    expect(current.status().rejoining).toBe(false);
    // Persisted before anything that depends on it is sent.
    const rd = current.ready();
    expect(rd.hardState).toMatchObject({ term: 1, commit: 1 });
    expect(rd.hardState?.rejoining).toBeUndefined();
  });

  it('stays rejoining while that add-voter is appended but not committed', () => {
    const readd: Entry = { index: 1, term: 1, payload: { kind: 'config', change: { type: 'add-voter', nodeId: 3, directoryId: 'new' } } };
    const core = new RaftCore(options('new'), { hardState: { term: 1, votedFor: undefined, commit: 0, rejoining: true }, entries: [readd] }, makeConfig([1, 2], [3]));
    expect(core.status().config.voters).toContain(3);
    expect(core.status().rejoining).toBe(true);
    core.step({ type: 'heartbeat', from: 1, to: 3, term: 1, commit: 1 });
    // A heartbeat's commit is not enough: no append of this leader proved entry 1 matches.
    expect(core.status().rejoining).toBe(true);
    core.step({ type: 'append', from: 1, to: 3, term: 1, prevIndex: 1, prevTerm: 1, entries: [], commit: 1 });
    expect(core.status().rejoining).toBe(false);
  });
});
