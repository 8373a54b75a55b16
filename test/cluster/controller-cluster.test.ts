// A 3-node cluster in this process (every node a broker and a controller voter, real gRPC and
// storage): what users depend on from the metadata quorum — one controller every node names,
// admin requests forwarded to it, produce routed to partition leaders, writes replicated to the
// whole ISR, and leadership moving to an in-sync replica on a controlled shutdown. Controller failover and a
// crashed broker are in controller-failover.test.ts (one file per ~10 s of wall time).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  assignments,
  clusterClient,
  consumeAll,
  createTopic,
  others,
  partitionOf,
  produce,
  produceToLeader,
  SETTLE_MS,
  startTestCluster,
  waitFor,
  type TestCluster,
} from '../helpers/cluster.js';

describe('a healthy 3-node cluster', () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await startTestCluster(3);
  });
  afterAll(async () => {
    await cluster?.destroy();
  });

  it('lists every broker from every node, and every node names the same, active, controller', async () => {
    const controllerId = await cluster.waitForActiveController();
    for (const id of cluster.ids) {
      const metadata = await cluster.metadata(id);
      expect(metadata.nodeId).toBe(id);
      expect(metadata.brokers.map((b) => b.nodeId).sort()).toEqual([1, 2, 3]);
      // Each broker is advertised at the CLIENT listener the request arrived on.
      for (const b of metadata.brokers) expect(`${b.host}:${b.port}`).toBe(cluster.clientAddress(b.nodeId));
      expect(metadata.controllerId).toBe(controllerId);
    }
    expect(cluster.broker(controllerId).controller.isActive).toBe(true);
    for (const id of others(cluster.ids, controllerId)) expect(cluster.broker(id).controller.isActive).toBe(false);
  });

  it('forwards CreateTopics from a non-controller, which then shows the topic at once; refuses a replication factor above the broker count', async () => {
    const controllerId = await cluster.waitForActiveController();
    const via = others(cluster.ids, controllerId)[0];

    const created = await createTopic(cluster, via, { name: 'forwarded', numPartitions: 3, replicationFactor: 3 });
    expect(created).toMatchObject({ name: 'forwarded', errorCode: 'NONE', numPartitions: 3, replicationFactor: 3 });
    // No wait: the forwarding node answers only once its own metadata holds the change.
    const metadata = await cluster.metadata(via, ['forwarded']);
    expect(metadata.topics).toHaveLength(1);
    expect(metadata.topics[0].errorCode).toBe('NONE');
    expect(metadata.topics[0].partitions.map((p) => p.partition).sort()).toEqual([0, 1, 2]);
    for (const p of metadata.topics[0].partitions) {
      expect(p.errorCode).toBe('NONE');
      expect([...p.replicas].sort()).toEqual([1, 2, 3]);
      expect(p.isr).toEqual(p.replicas);
      expect(p.leaderId).toBe(p.replicas[0]);
    }
    // Round-robin placement: three partitions, three different leaders.
    expect(new Set(metadata.topics[0].partitions.map((p) => p.leaderId)).size).toBe(3);

    const tooWide = await createTopic(cluster, via, { name: 'too-wide', numPartitions: 1, replicationFactor: 4 });
    expect(tooWide.errorCode).toBe('INVALID_REPLICATION_FACTOR');
    expect(tooWide.errorMessage).toMatch(/\b3 available broker/);
    const after = await cluster.metadata(controllerId, ['too-wide']);
    expect(after.topics[0].errorCode).toBe('UNKNOWN_TOPIC_OR_PARTITION');
  });

  it('refuses a produce sent to a non-leader with NOT_LEADER_OR_FOLLOWER naming the leader; the client finds the leaders from any bootstrap broker', async () => {
    // Partition 0 on nodes 2 and 3 only, led by 2: node 3 is a follower, node 1 no replica at all.
    const created = await createTopic(cluster, 1, { name: 'routed', assignments: assignments([[2, 3]]) });
    expect(created.errorCode).toBe('NONE');
    await waitFor(async () => (await partitionOf(cluster, 1, 'routed', 0)).leaderId === 2 && (await partitionOf(cluster, 3, 'routed', 0)).leaderId === 2, SETTLE_MS, 'routed-0 led by 2 on nodes 1 and 3');
    for (const via of [3, 1]) {
      const answer = await produce(cluster, via, 'routed', 0, ['misrouted']);
      expect(answer.errorCode).toBe('NOT_LEADER_OR_FOLLOWER');
      // The only leader hint a Produce answer carries is its message (the proto has no field for it).
      expect(answer.errorMessage).toMatch(/led by node 2\b/);
      expect(answer.baseOffset).toBe('-1');
    }
    const ok = await produceToLeader(cluster, 2, 'routed', 0, ['routed']);
    expect(ok).toMatchObject({ errorCode: 'NONE', baseOffset: '0' });

    // The TS client: three partitions led by three different nodes, whichever node it bootstraps from.
    expect((await createTopic(cluster, 1, { name: 'client-routed', numPartitions: 3, replicationFactor: 3 })).errorCode).toBe('NONE');
    const sent: string[] = [];
    for (const bootstrap of cluster.ids) {
      const producer = clusterClient(cluster, [bootstrap]).producer({ lingerMs: 0 });
      try {
        for (let partition = 0; partition < 3; partition++) {
          const values = Array.from({ length: 5 }, (_, i) => `from-${bootstrap}-p${partition}-${i}`);
          const [meta] = await producer.send({ topic: 'client-routed', messages: values.map((value) => ({ value, partition })) });
          expect(meta).toMatchObject({ topicName: 'client-routed', partition, errorCode: 0 });
          sent.push(...values);
        }
      } finally {
        await producer.disconnect();
      }
    }
    const read = await consumeAll(clusterClient(cluster, [3]), 'client-routed', sent.length);
    expect(read.map((r) => r.message.value?.toString()).sort()).toEqual([...sent].sort());
    for (let partition = 0; partition < 3; partition++) {
      const mine = read.filter((r) => r.partition === partition);
      expect(mine.map((r) => Number(r.message.offset))).toEqual(mine.map((_, i) => i));
      expect(mine.every((r) => r.message.value?.toString().includes(`-p${partition}-`))).toBe(true);
    }
    // Only the leader's own answer wrote anything: the misrouted records are nowhere.
    const routed = await consumeAll(clusterClient(cluster, [1]), 'routed', 1);
    expect(routed.map((r) => r.message.value?.toString())).toEqual(['routed']);
  });

  it('keeps the ISR whole through writes: acks=all returns once every in-sync replica holds the record; no epoch moves', async () => {
    expect((await createTopic(cluster, 1, { name: 'isr', assignments: assignments([[3, 1, 2]]) })).errorCode).toBe('NONE');
    const leader = 3;
    await waitFor(() => cluster.ids.every((id) => cluster.broker(id).controller.image.topic('isr') !== undefined), SETTLE_MS, 'every node to know topic isr');
    const before = await partitionOf(cluster, leader, 'isr', 0);
    expect(before).toMatchObject({ leaderId: leader, isr: [3, 1, 2], errorCode: 'NONE' });
    const epochBefore = cluster.broker(leader).controller.image.topic('isr')?.partitions[0].partitionEpoch;

    expect(await produceToLeader(cluster, leader, 'isr', 0, ['first'])).toMatchObject({ errorCode: 'NONE', baseOffset: '0' });
    expect(await produce(cluster, leader, 'isr', 0, ['second'])).toMatchObject({ errorCode: 'NONE', baseOffset: '1' });
    // acks=all answered: each follower already holds both records.
    for (const id of [1, 2]) expect(cluster.broker(id).logManager.getLog({ topic: 'isr', partition: 0 })?.logEndOffset).toBe(2n);
    const after = await partitionOf(cluster, leader, 'isr', 0);
    expect(after).toMatchObject({ leaderId: leader, isr: [3, 1, 2], leaderEpoch: before.leaderEpoch });
    expect(cluster.broker(leader).controller.image.topic('isr')?.partitions[0].partitionEpoch).toBe(epochBefore);
  });
});

describe('controlled shutdown', () => {
  let cluster: TestCluster | undefined;

  afterEach(async () => {
    await cluster?.destroy();
    cluster = undefined;
  });

  it('controlled shutdown moves leadership to an in-sync replica that has every record; the restarted node catches up, rejoins the ISR and leads again', async () => {
    // A long session: whatever moves within seconds moved because of the controlled shutdown.
    cluster = await startTestCluster(3, { 'broker.session.timeout.ms': '30000' });
    const c = cluster;
    const controllerId = await c.waitForActiveController();
    const [leaving] = others(c.ids, controllerId);
    const [b, d] = others(c.ids, leaving);
    expect((await createTopic(c, controllerId, { name: 'moves', assignments: assignments([[leaving, b, d]]) })).errorCode).toBe('NONE');
    const values = Array.from({ length: 50 }, (_, i) => `record-${i}`);
    for (let i = 0; i < values.length; i += 10) {
      expect(await produceToLeader(c, leaving, 'moves', 0, values.slice(i, i + 10))).toMatchObject({ errorCode: 'NONE', baseOffset: String(i) });
    }
    const before = await partitionOf(c, controllerId, 'moves', 0);
    expect(before).toMatchObject({ leaderId: leaving, isr: [leaving, b, d] });

    await c.stopNode(leaving);
    for (const id of [b, d]) {
      const moved = await waitFor(async () => {
        const p = await partitionOf(c, id, 'moves', 0);
        return p.leaderId !== leaving ? p : undefined;
      }, 5_000, `node ${id} to see moves-0 change leader`);
      expect(moved).toMatchObject({ errorCode: 'NONE', leaderId: b, isr: [b, d] });
      expect(moved.leaderEpoch).toBeGreaterThan(before.leaderEpoch);
    }
    // Writes continue at the new leader, after the old records.
    expect(await produceToLeader(c, b, 'moves', 0, ['after'])).toMatchObject({ errorCode: 'NONE', baseOffset: String(values.length) });

    await c.restartNode(leaving);
    // It re-fetches what it missed, rejoins the ISR, and the preferred replica leads again.
    const back = await waitFor(async () => {
      const p = await partitionOf(c, b, 'moves', 0);
      return p.leaderId === leaving && p.isr.length === 3 ? p : undefined;
    }, SETTLE_MS, `moves-0 led by ${leaving} again with a full ISR`);
    expect(back.leaderEpoch).toBeGreaterThan(before.leaderEpoch);
    const read = await consumeAll(clusterClient(c, [b]), 'moves', values.length + 1, [0]);
    expect(read.map((r) => r.message.value?.toString())).toEqual([...values, 'after']);
    expect(read.map((r) => r.message.offset)).toEqual([...values, 'after'].map((_, i) => String(i)));
  });

});
