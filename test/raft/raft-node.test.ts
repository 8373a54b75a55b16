// RaftNode over the in-memory network with real level stores in temp dirs and real (fast) timers:
// election, replication, a leader crash and restart from disk, snapshots and restart from one.
import { afterEach, describe, expect, it } from 'vitest';
import { LevelRaftStorage } from '../../src/raft/index.js';
import { KavkaError } from '../../src/util/errors.js';
import { CLUSTER_ID, NodeCluster } from './node-cluster.js';

const encoder = new TextEncoder();

describe('RaftNode (in-memory network, level storage)', () => {
  let cluster: NodeCluster | undefined;
  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
  });

  it('elects one leader that every node follows (§5.2)', async () => {
    cluster = await NodeCluster.start({ ids: [1, 2, 3], transport: 'memory' });
    const leader = await cluster.until('an agreed leader', (c) => c.agreedLeader());
    expect(leader.raft.isLeader).toBe(true);
    for (const node of cluster.up()) expect(node.raft.leaderId).toBe(leader.id);
  });

  it('replicates proposals and applies them in the same order on every node (§5.3)', async () => {
    cluster = await NodeCluster.start({ ids: [1, 2, 3], transport: 'memory' });
    const results = [];
    for (const value of ['a', 'b', 'c', 'd', 'e']) results.push(await cluster.propose(value));
    expect(results.map((r) => r.index)).toEqual([...results.map((r) => r.index)].sort((x, y) => x - y));
    await cluster.until('every node applied e', (c) => c.up().every((n) => n.values().length === 5));
    for (const node of cluster.up()) expect(node.values()).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('rejects a proposal on a follower with NOT_CONTROLLER and a leader hint', async () => {
    cluster = await NodeCluster.start({ ids: [1, 2, 3], transport: 'memory' });
    const leader = await cluster.until('an agreed leader', (c) => c.agreedLeader());
    const follower = cluster.up().find((n) => n.id !== leader.id);
    const error = await follower?.raft.propose(encoder.encode('x')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KavkaError);
    expect((error as KavkaError).code).toBe('NOT_CONTROLLER');
    expect((error as KavkaError).retriable).toBe(true);
    expect((error as KavkaError).leaderHint).toBe(leader.id);
  });

  it('survives a leader crash, and the old leader restarts from disk with its log and vote', async () => {
    cluster = await NodeCluster.start({ ids: [1, 2, 3], transport: 'memory' });
    for (const value of ['a', 'b', 'c']) await cluster.propose(value);
    const old = await cluster.until('an agreed leader', (c) => c.agreedLeader());
    const oldTerm = old.raft.term;
    const committed = old.raft.status().committed;
    await old.crash();

    // What the old leader made durable: its term, its vote for itself, every committed entry.
    const store = await LevelRaftStorage.open({ directory: old.directory, clusterId: CLUSTER_ID, nodeId: old.id });
    const durable = await store.load();
    await store.close();
    expect(durable.hardState.term).toBe(oldTerm);
    expect(durable.hardState.votedFor).toBe(old.id);
    expect(durable.entries.at(-1)?.index ?? 0).toBeGreaterThanOrEqual(committed);

    const next = await cluster.until('a new leader', (c) => c.agreedLeader());
    expect(next.id).not.toBe(old.id);
    expect(next.raft.term).toBeGreaterThan(oldTerm);
    await cluster.propose('d');

    await old.start();
    await cluster.until('the old leader caught up', () => old.values().length === 4);
    expect(old.values()).toEqual(['a', 'b', 'c', 'd']);
    for (const node of cluster.up()) expect(node.values()).toEqual(['a', 'b', 'c', 'd']);
  });

  it('restarts a node from its own snapshot plus the entries after it', async () => {
    cluster = await NodeCluster.start({ ids: [1, 2, 3], transport: 'memory' });
    for (const value of ['a', 'b', 'c']) await cluster.propose(value);
    await cluster.until('every node applied c', (c) => c.up().every((n) => n.values().length === 3));
    const node = cluster.node(1);
    const applied = node.machine.appliedIndex;
    expect(await node.raft.snapshot(applied, node.machine.snapshotData())).toBe(true);
    expect(node.raft.status().firstIndex).toBe(applied + 1);
    await cluster.propose('d');
    await cluster.until('node 1 applied d', () => node.values().length === 4);

    await node.restart();
    // The snapshot was replayed at start; d came again as a committed entry after it.
    await cluster.until('node 1 reapplied d', () => node.values().length === 4);
    expect(node.values()).toEqual(['a', 'b', 'c', 'd']);
    expect(node.raft.status().firstIndex).toBe(applied + 1);
  });

  it('brings a node that missed compacted entries up to date with the leader\'s snapshot (§7)', async () => {
    cluster = await NodeCluster.start({ ids: [1, 2, 3], transport: 'memory' });
    await cluster.propose('a');
    const leader = await cluster.until('an agreed leader', (c) => c.agreedLeader());
    const lagging = cluster.up().find((n) => n.id !== leader.id);
    if (lagging === undefined) throw new Error('no follower');
    await lagging.crash();
    for (const value of ['b', 'c', 'd']) await cluster.propose(value);
    await cluster.until('the leader applied d', () => leader.values().length === 4);
    expect(await leader.raft.snapshot(leader.machine.appliedIndex, leader.machine.snapshotData())).toBe(true);

    await lagging.start();
    await cluster.until('the lagging node caught up', () => lagging.values().length === 4);
    expect(lagging.values()).toEqual(['a', 'b', 'c', 'd']);
    // It installed the snapshot: its log starts after the leader's snapshot index.
    expect(lagging.raft.status().firstIndex).toBeGreaterThan(2);
  });

  it('transfers leadership to a chosen voter (thesis §3.10)', async () => {
    cluster = await NodeCluster.start({ ids: [1, 2, 3], transport: 'memory' });
    await cluster.propose('a');
    const leader = await cluster.until('an agreed leader', (c) => c.agreedLeader());
    const target = cluster.up().find((n) => n.id !== leader.id);
    if (target === undefined) throw new Error('no follower');
    await leader.raft.transferLeadership(target.id);
    const next = await cluster.until('the target leads', (c) => c.agreedLeader());
    expect(next.id).toBe(target.id);
  });

  it('keeps a partitioned old leader from committing; it steps down and converges once healed (§6.2 CheckQuorum)', async () => {
    cluster = await NodeCluster.start({ ids: [1, 2, 3], transport: 'memory' });
    await cluster.propose('a');
    const leader = await cluster.until('an agreed leader', (c) => c.agreedLeader());
    const others = cluster.up().filter((n) => n.id !== leader.id).map((n) => n.id);
    cluster.network.partition([[leader.id], others]);
    const lost = leader.raft.propose(encoder.encode('lost')).catch((e: unknown) => e);
    const majorityLeader = await cluster.until('a majority-side leader', (c) => c.up().find((n) => n.id !== leader.id && n.raft.isLeader));
    await majorityLeader.raft.propose(encoder.encode('b'));
    const error = await lost;
    expect((error as KavkaError).code).toBe('NOT_CONTROLLER');
    expect(leader.raft.isLeader).toBe(false);
    cluster.network.heal();
    await cluster.until('every node applied b', (c) => c.up().every((n) => n.values().length === 2));
    for (const node of cluster.up()) expect(node.values()).toEqual(['a', 'b']);
  });

  it('removes a voter; the remaining two commit on their own (thesis §4.1)', async () => {
    cluster = await NodeCluster.start({ ids: [1, 2, 3], transport: 'memory' });
    await cluster.propose('a');
    const leader = await cluster.until('an agreed leader', (c) => c.agreedLeader());
    const removed = cluster.up().find((n) => n.id !== leader.id);
    if (removed === undefined) throw new Error('no follower');
    await leader.raft.removeVoter(removed.id);
    expect(leader.raft.status().config.voters).not.toContain(removed.id);
    await removed.crash();
    await leader.raft.propose(encoder.encode('b'));
    const remaining = cluster.up();
    await cluster.until('the remaining voters applied b', () => remaining.every((n) => n.values().length === 2));
    for (const node of remaining) expect(node.values()).toEqual(['a', 'b']);
  });
});
