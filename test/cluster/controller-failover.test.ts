// A 3-node cluster in this process (every node a broker and a controller voter, real gRPC and
// storage): the active controller stopping (a survivor takes over, admin requests keep working,
// the node rejoins as a follower) and a crashed broker fenced once its session expires, its
// partitions led on by in-sync replicas.
import { afterEach, describe, expect, it } from 'vitest';
import {
  assignments,
  CLUSTER_TIMING,
  clusterClient,
  consumeAll,
  createTopic,
  others,
  partitionOf,
  produceToLeader,
  SETTLE_MS,
  startTestCluster,
  waitFor,
  type TestCluster,
} from '../helpers/cluster.js';

describe('controller failover and crashes', () => {
  let cluster: TestCluster | undefined;

  afterEach(async () => {
    await cluster?.destroy();
    cluster = undefined;
  });

  it('stopping the active controller: a survivor takes over, admin requests work through the survivors, the restarted node rejoins as a follower', async () => {
    cluster = await startTestCluster(3);
    const c = cluster;
    const first = await c.waitForActiveController();
    const survivors = others(c.ids, first);

    await c.stopNode(first);
    const second = await c.waitForActiveController(SETTLE_MS);
    expect(survivors).toContain(second);

    for (const via of survivors) {
      const created = await createTopic(c, via, { name: `after-failover-${via}`, numPartitions: 2, replicationFactor: 2 });
      expect(created).toMatchObject({ errorCode: 'NONE', numPartitions: 2, replicationFactor: 2 });
      const metadata = await c.metadata(via, [`after-failover-${via}`]);
      expect(metadata.controllerId).toBe(second);
      expect(metadata.topics[0].partitions.every((p) => p.errorCode === 'NONE' && survivors.includes(p.leaderId))).toBe(true);
    }
    const tooWide = await createTopic(c, survivors[0], { name: 'too-wide', numPartitions: 1, replicationFactor: 3 });
    expect(tooWide.errorCode).toBe('INVALID_REPLICATION_FACTOR');
    expect(tooWide.errorMessage).toMatch(/\b2 available broker/);
    // The TS admin client, bootstrapped from the survivors.
    const admin = clusterClient(c, survivors).admin();
    try {
      await admin.connect();
      expect(await admin.createTopics({ topics: [{ topic: 'by-admin', numPartitions: 1, replicationFactor: 2 }], waitForLeaders: true })).toBe(true);
      expect((await admin.listTopics()).sort()).toEqual(['after-failover-' + survivors[0], 'after-failover-' + survivors[1], 'by-admin'].sort());
    } finally {
      await admin.disconnect();
    }

    await c.restartNode(first);
    expect(c.activeControllerId()).toBe(second);
    expect(c.broker(first).controller.isActive).toBe(false);
    expect(c.broker(first).controller.controllerId).toBe(second);
    // It caught up on what happened while it was down.
    expect((await c.metadata(first, ['by-admin'])).topics[0].errorCode).toBe('NONE');
    // A rejoining voter does not disrupt the leader (PreVote): still the same controller a while later.
    await new Promise((resolve) => setTimeout(resolve, 4 * Number(CLUSTER_TIMING['controller.quorum.election.timeout.ms'])));
    expect(c.activeControllerId()).toBe(second);
    for (const id of c.ids) expect((await c.metadata(id)).controllerId).toBe(second);
  });

  it('fences a crashed broker once its session expires and moves the partitions it led to in-sync replicas, records included', async () => {
    cluster = await startTestCluster(3);
    const c = cluster;
    const controllerId = await c.waitForActiveController();
    const [crashing] = others(c.ids, controllerId);
    const [b, d] = others(c.ids, crashing);
    expect((await createTopic(c, controllerId, { name: 'crash', assignments: assignments([[crashing, b, d], [crashing, d, b]]) })).errorCode).toBe('NONE');
    expect(await produceToLeader(c, crashing, 'crash', 1, ['kept'])).toMatchObject({ errorCode: 'NONE' });
    const before = await partitionOf(c, controllerId, 'crash', 0);
    expect(before.leaderId).toBe(crashing);

    const crashedAt = Date.now();
    await c.crashNode(crashing);
    const controller = c.broker(controllerId).controller;
    await waitFor(() => controller.image.brokers.get(crashing)?.fenced === true, SETTLE_MS, `node ${crashing} to be fenced`);
    const fencedAfterMs = Date.now() - crashedAt;
    // Not before its session could have expired (last heartbeat at most one interval before the crash).
    const sessionMs = Number(CLUSTER_TIMING['broker.session.timeout.ms']);
    const intervalMs = Number(CLUSTER_TIMING['broker.heartbeat.interval.ms']);
    expect(fencedAfterMs).toBeGreaterThanOrEqual(sessionMs - 2 * intervalMs);
    expect(c.activeControllerId()).toBe(controllerId);

    for (const id of [b, d]) {
      const moved = await waitFor(async () => {
        const p = await partitionOf(c, id, 'crash', 0);
        return p.leaderId !== crashing ? p : undefined;
      }, SETTLE_MS, `node ${id} to see crash-0 change leader`);
      expect(moved).toMatchObject({ errorCode: 'NONE', leaderId: b, isr: [b, d] });
      expect(moved.leaderEpoch).toBeGreaterThan(before.leaderEpoch);
      const written = await waitFor(async () => {
        const p = await partitionOf(c, id, 'crash', 1);
        return p.leaderId !== crashing ? p : undefined;
      }, SETTLE_MS, `node ${id} to see crash-1 change leader`);
      expect(written).toMatchObject({ errorCode: 'NONE', leaderId: d, isr: [d, b] });
    }
    expect(await produceToLeader(c, b, 'crash', 0, ['after'])).toMatchObject({ errorCode: 'NONE', baseOffset: '0' });
    const read = await consumeAll(clusterClient(c, [b]), 'crash', 1, [1]);
    expect(read.map((r) => r.message.value?.toString())).toEqual(['kept']);
  });
});
