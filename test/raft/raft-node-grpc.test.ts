// RaftNode over real gRPC on 127.0.0.1 (OS-assigned ports) with level stores: the kavka.v1.Raft
// service end to end, including a node whose server is shut down and that later rejoins.
import { afterEach, describe, expect, it } from 'vitest';
import { GrpcRaftTransport } from '../../src/raft/index.js';
import { NodeCluster } from './node-cluster.js';

describe('RaftNode over gRPC', () => {
  let cluster: NodeCluster | undefined;
  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
  });

  it('elects a leader and commits proposals on every node', async () => {
    cluster = await NodeCluster.start({ ids: [1, 2, 3], transport: 'grpc' });
    const leader = await cluster.until('an agreed leader', (c) => c.agreedLeader());
    expect(leader.raft.isLeader).toBe(true);
    for (const value of ['a', 'b', 'c']) await cluster.propose(value);
    await cluster.until('every node applied c', (c) => c.up().every((n) => n.values().length === 3));
    for (const node of cluster.up()) expect(node.values()).toEqual(['a', 'b', 'c']);
    for (const node of cluster.up()) {
      const transport = node.transport as GrpcRaftTransport;
      expect(transport.receiveStats.received).toBeGreaterThan(0);
      expect(transport.receiveStats.dropped).toBe(0);
    }
  });

  it('lets a killed node (server shut down) rejoin and catch up', async () => {
    cluster = await NodeCluster.start({ ids: [1, 2, 3], transport: 'grpc' });
    await cluster.propose('a');
    const leader = await cluster.until('an agreed leader', (c) => c.agreedLeader());
    const victim = cluster.up().find((n) => n.id !== leader.id);
    if (victim === undefined) throw new Error('no follower');
    await victim.crash();
    // The two survivors still form a majority.
    for (const value of ['b', 'c']) await cluster.propose(value);
    await victim.start();
    await cluster.until('the rejoined node caught up', () => victim.values().length === 3);
    expect(victim.values()).toEqual(['a', 'b', 'c']);
    await cluster.propose('d');
    await cluster.until('every node applied d', (c) => c.up().every((n) => n.values().length === 4));
  });

  it('elects a new leader over gRPC when the leader is killed, and the old one rejoins as a follower', async () => {
    cluster = await NodeCluster.start({ ids: [1, 2, 3], transport: 'grpc' });
    await cluster.propose('a');
    const old = await cluster.until('an agreed leader', (c) => c.agreedLeader());
    await old.crash();
    const next = await cluster.until('a new leader', (c) => c.agreedLeader());
    expect(next.id).not.toBe(old.id);
    await cluster.propose('b');
    await old.start();
    await cluster.until('the old leader follows and applied b', () => old.values().length === 2 && old.raft.leaderId !== undefined);
    expect(old.values()).toEqual(['a', 'b']);
  });
});
