// QuorumController on three (or one) real RaftNodes over the in-memory network, driven by a
// ManualClock: election of one active controller, broker registration and fencing, topic
// placement, AlterPartition, failover, snapshots and restart, and the quorum admin calls.
import { afterEach, describe, expect, it } from 'vitest';
import type { MetadataImage, PartitionImage } from '../../src/controller/index.js';
import { KavkaError } from '../../src/util/errors.js';
import { ControllerQuorum, assignedTopicRequest, imageView, topicRequest, type QuorumOptions } from './quorum-fixture.js';

const VOTERS = [1, 2, 3];
/** For scenarios about something else: brokers that stop heartbeating are never fenced. */
const LONG_SESSION_MS = 3_600_000;

let quorum: ControllerQuorum | undefined;

afterEach(async () => {
  await quorum?.close();
  quorum = undefined;
});

async function startQuorum(options: Partial<QuorumOptions> = {}): Promise<ControllerQuorum> {
  quorum = await ControllerQuorum.start({ voters: VOTERS, seed: 7, ...options });
  return quorum;
}

function incarnation(brokerId: number, generation = 1): string {
  return `broker-${brokerId}-incarnation-${generation}`;
}

function endpoints(brokerId: number): { name: string; host: string; port: number }[] {
  return [{ name: 'INTERNAL', host: '127.0.0.1', port: 9190 + brokerId }];
}

async function rejection(promise: Promise<unknown>): Promise<KavkaError> {
  const outcome = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(outcome).toBeInstanceOf(KavkaError);
  return outcome as KavkaError;
}

async function register(q: ControllerQuorum, brokerId: number, generation = 1): Promise<number> {
  const { registeredOffset } = await q.settle(q.active().registerBroker({ brokerId, incarnationId: incarnation(brokerId, generation), endpoints: endpoints(brokerId), rack: undefined }));
  return registeredOffset;
}

async function heartbeat(q: ControllerQuorum, brokerId: number, generation = 1, wantFence = false): Promise<{ isFenced: boolean; shouldShutdown: boolean }> {
  return q.settle(q.active().brokerHeartbeat({ brokerId, incarnationId: incarnation(brokerId, generation), wantFence, wantShutdown: false }));
}

/** Registers and unfences every broker, and waits until every node's image shows them unfenced. */
async function registerAndUnfence(q: ControllerQuorum, brokers: readonly number[] = VOTERS): Promise<void> {
  for (const id of brokers) await register(q, id);
  for (const id of brokers) expect(await heartbeat(q, id)).toEqual({ isFenced: false, shouldShutdown: false });
  await q.until('every node sees every broker unfenced', () => q.controllers().every((c) => brokers.every((id) => c.image.isUnfenced(id))));
}

function partitionOf(image: MetadataImage, topic: string, partition: number): PartitionImage {
  const p = image.topic(topic)?.partitions[partition];
  if (p === undefined) throw new Error(`${topic}-${partition} is not in the image`);
  return p;
}

async function createTopic(q: ControllerQuorum, name: string, partitions: number, replicationFactor: number): Promise<number> {
  const decided = await q.settle(q.active().createTopics([topicRequest(name, partitions, replicationFactor)], false));
  expect(decided.results).toEqual([{ name, errorCode: 'NONE', errorMessage: '', numPartitions: partitions, replicationFactor }]);
  return decided.metadataOffset;
}

/** addVoter, retried while it is refused as retriable (an observer not yet seen caught up). */
async function addVoterWhenCaughtUp(q: ControllerQuorum, nodeId: number, attempts = 100): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await q.settle(q.active().addVoter(nodeId));
      return;
    } catch (error) {
      if (!(error instanceof KavkaError) || !error.retriable || attempt >= attempts) throw error;
      await q.step();
    }
  }
}

async function converged(q: ControllerQuorum, ids?: readonly number[]): Promise<void> {
  await q.until('every node applied the same log', () => q.converged(ids));
}

describe('QuorumController: election', () => {
  it('makes exactly one node active; the others refuse requests with NOT_CONTROLLER and the active id as hint', async () => {
    const q = await startQuorum();
    const activeId = await q.agreedActive();
    expect(q.activeIds()).toEqual([activeId]);
    const active = q.controller(activeId);
    expect(active.controllerId).toBe(activeId);
    expect(active.controllerEpoch).toBeGreaterThan(0);

    for (const id of VOTERS.filter((n) => n !== activeId)) {
      const follower = q.controller(id);
      expect(follower.isActive).toBe(false);
      expect(follower.controllerId).toBe(activeId);
      expect(follower.controllerEpoch).toBe(active.controllerEpoch);
      const error = await rejection(follower.createTopics([topicRequest('t', 1, 1)], false));
      expect(error.code).toBe('NOT_CONTROLLER');
      expect(error.retriable).toBe(true);
      expect(error.leaderHint).toBe(activeId);
      expect((await rejection(follower.registerBroker({ brokerId: 1, incarnationId: 'x', endpoints: [], rack: undefined }))).code).toBe('NOT_CONTROLLER');
      expect(() => follower.describeQuorum()).toThrow(expect.objectContaining({ code: 'NOT_CONTROLLER', leaderHint: activeId }));
    }

    // It stays that way while time passes: no spurious elections on a healthy network.
    const term = active.controllerEpoch;
    await q.runFor(2000);
    expect(q.activeIds()).toEqual([activeId]);
    expect(active.controllerEpoch).toBe(term);
  });

  it('is active only after committing an entry of its own term, so its image already holds everything before', async () => {
    const q = await startQuorum();
    const activeId = await q.agreedActive();
    const status = q.raft(activeId).status();
    // The leader's no-op and the controller's empty batch of its term are committed and applied.
    expect(status.committed).toBeGreaterThanOrEqual(2);
    expect(status.applied).toBe(status.committed);
    expect(q.controller(activeId).metadataOffset).toBe(status.committed);
  });
});

describe('QuorumController: brokers and topics', () => {
  it('registers and unfences three brokers, places RF 3 replicas on all of them, and every node converges', async () => {
    const q = await startQuorum();
    await q.agreedActive();
    for (const id of VOTERS) await register(q, id);
    // Registered but not yet heartbeating: fenced on every node.
    await q.until('every node sees the registrations', () => q.controllers().every((c) => c.image.brokers.size === 3));
    for (const c of q.controllers()) expect(c.image.unfencedBrokerIds()).toEqual([]);
    for (const id of VOTERS) expect(await heartbeat(q, id)).toEqual({ isFenced: false, shouldShutdown: false });
    await q.until('every node sees every broker unfenced', () => q.controllers().every((c) => c.image.unfencedBrokerIds().length === 3));
    for (const c of q.controllers()) {
      expect(c.image.brokers.get(2)).toMatchObject({ incarnationId: incarnation(2), fenced: false });
      expect(c.image.brokers.get(2)?.endpoints.get('INTERNAL')).toEqual({ host: '127.0.0.1', port: 9192 });
    }

    const offset = await createTopic(q, 'orders', 3, 3);
    const active = q.active();
    expect(active.metadataOffset).toBeGreaterThanOrEqual(offset);
    const topic = active.image.topic('orders');
    expect(topic?.topicId).toMatch(/^topic-id-/);
    expect(topic?.partitions).toHaveLength(3);
    const leaders = new Set<number>();
    for (const p of topic?.partitions ?? []) {
      expect([...p.replicas].sort()).toEqual([1, 2, 3]);
      expect(p.isr).toEqual(p.replicas);
      expect(p.leader).toBe(p.replicas[0]);
      expect(p).toMatchObject({ leaderEpoch: 0, partitionEpoch: 0 });
      leaders.add(p.leader);
    }
    // Round-robin: each broker leads one of the three partitions.
    expect([...leaders].sort()).toEqual([1, 2, 3]);

    await converged(q);
    const offsets = q.controllers().map((c) => c.metadataOffset);
    expect(new Set(offsets).size).toBe(1);
    expect(offsets[0]).toBeGreaterThanOrEqual(offset);
    for (const c of q.controllers()) {
      expect(imageView(c.image)).toEqual(imageView(active.image));
      expect(c.image.topic('orders')?.partitions.map((p) => p.leader)).toEqual(topic?.partitions.map((p) => p.leader));
    }
  });

  it('registering the same incarnation again changes nothing', async () => {
    const q = await startQuorum();
    await q.agreedActive();
    await registerAndUnfence(q);
    const before = q.active().metadataOffset;
    const offset = await register(q, 2);
    expect(offset).toBe(before);
    expect(q.active().metadataOffset).toBe(before);
    expect(q.active().image.isUnfenced(2)).toBe(true);
  });

  it('refuses replication factor 4 with three live brokers (INVALID_REPLICATION_FACTOR) and commits nothing', async () => {
    const q = await startQuorum();
    await q.agreedActive();
    await registerAndUnfence(q);
    const before = q.active().metadataOffset;
    const decided = await q.settle(q.active().createTopics([topicRequest('wide', 1, 4)], false));
    expect(decided.results).toHaveLength(1);
    expect(decided.results[0]).toMatchObject({ name: 'wide', errorCode: 'INVALID_REPLICATION_FACTOR' });
    expect(decided.metadataOffset).toBe(before);
    await q.runFor(100);
    for (const c of q.controllers()) expect(c.image.topic('wide')).toBeUndefined();
  });

  it('counts only unfenced brokers as live for placement', async () => {
    const q = await startQuorum();
    await q.agreedActive();
    for (const id of VOTERS) await register(q, id);
    expect(await heartbeat(q, 1)).toEqual({ isFenced: false, shouldShutdown: false });
    const decided = await q.settle(q.active().createTopics([topicRequest('two', 1, 2), topicRequest('one', 2, 1)], false));
    expect(decided.results.map((r) => [r.name, r.errorCode])).toEqual([
      ['two', 'INVALID_REPLICATION_FACTOR'],
      ['one', 'NONE'],
    ]);
    expect(q.active().image.topic('one')?.partitions.map((p) => p.replicas)).toEqual([[1], [1]]);
  });

  it('validateOnly decides without committing', async () => {
    const q = await startQuorum();
    await q.agreedActive();
    await registerAndUnfence(q);
    const before = q.active().metadataOffset;
    const decided = await q.settle(q.active().createTopics([topicRequest('dry', 2, 3)], true));
    expect(decided.results[0]).toMatchObject({ name: 'dry', errorCode: 'NONE', numPartitions: 2, replicationFactor: 3 });
    expect(decided.metadataOffset).toBe(before);
    await q.runFor(100);
    for (const c of q.controllers()) expect(c.image.topic('dry')).toBeUndefined();
  });
});

describe('QuorumController: broker sessions', () => {
  /**
   * Runs heartbeats for `live` every 100 ms (through whichever node is active) until `probe`
   * holds, checking it every step. Returns the probe's value.
   */
  async function withHeartbeats<T>(q: ControllerQuorum, live: ReadonlyMap<number, number>, what: string, probe: () => T | undefined | false, maxMs = 5000): Promise<T> {
    let nextHeartbeat = q.clock.monotonicMs();
    const deadline = q.clock.monotonicMs() + maxMs;
    for (;;) {
      const value = probe();
      if (value !== undefined && value !== false) return value;
      if (q.clock.monotonicMs() > deadline) throw new Error(`${what}: not reached within ${maxMs} virtual ms`);
      if (q.clock.monotonicMs() >= nextHeartbeat) {
        for (const [id, generation] of live) expect((await heartbeat(q, id, generation)).isFenced).toBe(false);
        nextHeartbeat = q.clock.monotonicMs() + 100;
      }
      await q.step();
    }
  }

  it('fences a silent broker after the session timeout, moves its leadership within the ISR, and brings it back', async () => {
    const q = await startQuorum({ controller: { sessionTimeoutMs: 900, autoLeaderRebalance: true, leaderImbalanceCheckIntervalMs: 300 } });
    await q.agreedActive();
    await registerAndUnfence(q);
    await createTopic(q, 'spread', 3, 3);
    const victim = 2;
    const solo = await q.settle(q.active().createTopics([assignedTopicRequest('solo', [[victim]])], false));
    expect(solo.results[0].errorCode).toBe('NONE');
    await converged(q);
    const before = q.active().image;
    const led = before.topic('spread')?.partitions.filter((p) => p.leader === victim) ?? [];
    expect(led).toHaveLength(1);

    // The victim's last heartbeat; the others keep theirs going.
    await heartbeat(q, victim);
    const lastHeartbeatAt = q.clock.monotonicMs();
    const others = new Map(VOTERS.filter((id) => id !== victim).map((id) => [id, 1]));
    const fencedAt = await withHeartbeats(q, others, 'the victim fenced', () => (q.active().image.brokers.get(victim)?.fenced === true ? q.clock.monotonicMs() : undefined));
    // Not before the session timeout, and within one fence check (timeout / 8) and a commit after.
    expect(fencedAt - lastHeartbeatAt).toBeGreaterThan(900);
    expect(fencedAt - lastHeartbeatAt).toBeLessThanOrEqual(900 + 112 + 50);
    await converged(q);

    for (const c of q.controllers()) {
      const image = c.image;
      expect(image.unfencedBrokerIds()).toEqual(VOTERS.filter((id) => id !== victim));
      for (const p of before.topic('spread')?.partitions ?? []) {
        const now = partitionOf(image, 'spread', p.partition);
        // The fenced broker leaves every ISR; partitions it led elect the first live ISR replica.
        expect(now.isr).toEqual(p.isr.filter((id) => id !== victim));
        expect(now.partitionEpoch).toBe(p.partitionEpoch + 1);
        if (p.leader === victim) {
          expect(now.leader).toBe(p.replicas.find((id) => id !== victim));
          expect(now.leaderEpoch).toBe(p.leaderEpoch + 1);
        } else {
          expect(now.leader).toBe(p.leader);
          expect(now.leaderEpoch).toBe(p.leaderEpoch);
        }
        expect(now.isr).toContain(now.leader);
      }
      // Its only ISR member is fenced: offline, and the ISR keeps the broker that has the data.
      expect(partitionOf(image, 'solo', 0)).toEqual({ partition: 0, replicas: [victim], isr: [victim], leader: -1, leaderEpoch: 1, partitionEpoch: 1 });
    }

    // The restarted process registers a new incarnation; the old one is stale now.
    await register(q, victim, 2);
    expect((await rejection(q.active().brokerHeartbeat({ brokerId: victim, incarnationId: incarnation(victim, 1), wantFence: false, wantShutdown: false }))).code).toBe('STALE_BROKER_EPOCH');
    expect(q.active().image.brokers.get(victim)).toMatchObject({ fenced: true, incarnationId: incarnation(victim, 2) });
    expect(await heartbeat(q, victim, 2)).toEqual({ isFenced: false, shouldShutdown: false });
    let image = q.active().image;
    expect(image.isUnfenced(victim)).toBe(true);
    // Back in service: its single-replica partition has its leader again.
    expect(partitionOf(image, 'solo', 0)).toMatchObject({ leader: victim, isr: [victim], leaderEpoch: 2 });

    // The partition it prefers to lead: the current leader lets it back into the ISR, then the
    // rebalance moves leadership back to it.
    const preferred = led[0].partition;
    const current = partitionOf(image, 'spread', preferred);
    expect(current.replicas[0]).toBe(victim);
    const expanded = await q.settle(
      q.active().alterPartition({ topic: 'spread', partition: preferred, leaderId: current.leader, leaderEpoch: current.leaderEpoch, partitionEpoch: current.partitionEpoch, newIsr: [...current.isr, victim] }),
    );
    expect(expanded).toMatchObject({ errorCode: 'NONE', leader: current.leader, partitionEpoch: current.partitionEpoch + 1 });
    const all = new Map([...others, [victim, 2]]);
    await withHeartbeats(q, all, 'leadership back on the preferred replica', () => partitionOf(q.active().image, 'spread', preferred).leader === victim);
    image = q.active().image;
    expect(partitionOf(image, 'spread', preferred)).toMatchObject({ leader: victim, leaderEpoch: current.leaderEpoch + 1 });
    // No broker was fenced on the way.
    expect(image.unfencedBrokerIds()).toEqual(VOTERS);
    await converged(q);
  });

  it('moves leadership back to the preferred replica on its first heartbeat when it stayed in the ISR', async () => {
    const q = await startQuorum({ controller: { sessionTimeoutMs: 900, autoLeaderRebalance: true, leadership: { shrinkIsrOnFence: false } } });
    await q.agreedActive();
    await registerAndUnfence(q);
    await createTopic(q, 'spread', 3, 3);
    const victim = 3;
    const preferred = q.active().image.topic('spread')?.partitions.find((p) => p.replicas[0] === victim);
    if (preferred === undefined) throw new Error('no partition prefers the victim');

    // A controlled shutdown fences it at once and moves its leadership away.
    expect(await q.settle(q.active().brokerHeartbeat({ brokerId: victim, incarnationId: incarnation(victim), wantFence: false, wantShutdown: true }))).toEqual({ isFenced: true, shouldShutdown: true });
    let p = partitionOf(q.active().image, 'spread', preferred.partition);
    expect(p.leader).not.toBe(victim);
    expect(p.isr).toEqual(preferred.isr);
    expect(p.leaderEpoch).toBe(preferred.leaderEpoch + 1);

    expect(await heartbeat(q, victim)).toEqual({ isFenced: false, shouldShutdown: false });
    p = partitionOf(q.active().image, 'spread', preferred.partition);
    expect(p.leader).toBe(victim);
    expect(p.leaderEpoch).toBe(preferred.leaderEpoch + 2);
    await converged(q);
  });

  it('keeps leadership where it is after an unfence when auto leader rebalance is off', async () => {
    const q = await startQuorum({ controller: { autoLeaderRebalance: false, leadership: { shrinkIsrOnFence: false } } });
    await q.agreedActive();
    await registerAndUnfence(q);
    await createTopic(q, 'spread', 3, 3);
    const victim = 1;
    const preferred = q.active().image.topic('spread')?.partitions.find((p) => p.replicas[0] === victim);
    if (preferred === undefined) throw new Error('no partition prefers the victim');
    expect(await heartbeat(q, victim, 1, true)).toEqual({ isFenced: true, shouldShutdown: false });
    const moved = partitionOf(q.active().image, 'spread', preferred.partition);
    expect(moved.leader).not.toBe(victim);
    expect(await heartbeat(q, victim)).toEqual({ isFenced: false, shouldShutdown: false });
    await q.runFor(500);
    expect(partitionOf(q.active().image, 'spread', preferred.partition)).toMatchObject({ leader: moved.leader, leaderEpoch: moved.leaderEpoch });
  });

  it('rejects a heartbeat from another incarnation, or from an unregistered broker, with STALE_BROKER_EPOCH', async () => {
    const q = await startQuorum();
    await q.agreedActive();
    await registerAndUnfence(q);
    const before = q.active().metadataOffset;
    const stale = await rejection(q.active().brokerHeartbeat({ brokerId: 2, incarnationId: 'some-other-process', wantFence: false, wantShutdown: false }));
    expect(stale.code).toBe('STALE_BROKER_EPOCH');
    expect(stale.message).toContain('some-other-process');
    const unknown = await rejection(q.active().brokerHeartbeat({ brokerId: 9, incarnationId: incarnation(9), wantFence: false, wantShutdown: false }));
    expect(unknown.code).toBe('STALE_BROKER_EPOCH');
    expect(q.active().metadataOffset).toBe(before);
    // The rejected heartbeat neither fenced the registered incarnation nor broke the queue.
    expect(q.active().image.isUnfenced(2)).toBe(true);
    expect(await heartbeat(q, 2)).toEqual({ isFenced: false, shouldShutdown: false });
  });

  it('does not fence brokers that keep heartbeating', async () => {
    const q = await startQuorum({ controller: { sessionTimeoutMs: 900 } });
    await q.agreedActive();
    await registerAndUnfence(q);
    const offset = q.active().metadataOffset;
    const start = q.clock.monotonicMs();
    await withHeartbeats(q, new Map(VOTERS.map((id) => [id, 1])), 'three session timeouts', () => q.clock.monotonicMs() - start > 3 * 900);
    expect(q.active().image.unfencedBrokerIds()).toEqual(VOTERS);
    expect(q.active().metadataOffset).toBe(offset);
  });
});

describe('QuorumController: unclean leader election', () => {
  it('elects a replica outside the ISR only where the topic enables unclean election', async () => {
    const q = await startQuorum();
    await q.agreedActive();
    await registerAndUnfence(q);
    const victim = 1;
    const other = 2;
    const decided = await q.settle(
      q.active().createTopics([assignedTopicRequest('unclean', [[victim, other]], { 'unclean.leader.election.enable': 'true' }), assignedTopicRequest('clean', [[victim, other]])], false),
    );
    expect(decided.results.map((r) => r.errorCode)).toEqual(['NONE', 'NONE']);
    // The follower falls behind: the leader shrinks both ISRs to itself.
    for (const topic of ['unclean', 'clean']) {
      const p = partitionOf(q.active().image, topic, 0);
      const shrunk = await q.settle(q.active().alterPartition({ topic, partition: 0, leaderId: victim, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch, newIsr: [victim] }));
      expect(shrunk.errorCode).toBe('NONE');
    }
    expect(await heartbeat(q, victim, 1, true)).toEqual({ isFenced: true, shouldShutdown: false });
    await converged(q);
    for (const c of q.controllers()) {
      expect(partitionOf(c.image, 'unclean', 0)).toMatchObject({ leader: other, isr: [other], leaderEpoch: 1 });
      expect(partitionOf(c.image, 'clean', 0)).toMatchObject({ leader: -1, isr: [victim], leaderEpoch: 1 });
    }
  });
});

describe('QuorumController: a broker whose log dir was deleted (issue 6)', () => {
  async function registerWithDirectory(q: ControllerQuorum, brokerId: number, generation: number, directoryId: string): Promise<void> {
    await q.settle(q.active().registerBroker({ brokerId, incarnationId: incarnation(brokerId, generation), endpoints: endpoints(brokerId), rack: undefined, directoryId }));
  }

  it('takes a broker that registers with a re-created log dir out of every ISR, and never elects it where it was the last ISR member', async () => {
    const q = await startQuorum();
    await q.agreedActive();
    for (const id of VOTERS) await registerWithDirectory(q, id, 1, `dir-${id}-a`);
    for (const id of VOTERS) await heartbeat(q, id);
    const decided = await q.settle(q.active().createTopics([assignedTopicRequest('shared', [[1, 2, 3]]), assignedTopicRequest('alone', [[1, 2]])], false));
    expect(decided.results.map((r) => r.errorCode)).toEqual(['NONE', 'NONE']);
    // 'alone': broker 2 fell behind, so broker 1 is its only in-sync replica.
    const alone = partitionOf(q.active().image, 'alone', 0);
    await q.settle(q.active().alterPartition({ topic: 'alone', partition: 0, leaderId: 1, leaderEpoch: alone.leaderEpoch, partitionEpoch: alone.partitionEpoch, newIsr: [1] }));
    // The same log dir registering again (a plain restart) keeps it in the ISRs.
    await registerWithDirectory(q, 1, 2, 'dir-1-a');
    expect(partitionOf(q.active().image, 'shared', 0).isr).toEqual([2, 3]); // fenced on registration (shrinkIsrOnFence)
    expect(partitionOf(q.active().image, 'alone', 0)).toMatchObject({ leader: -1, isr: [1] });
    // Now broker 1 comes back with its log dir re-created.
    await registerWithDirectory(q, 1, 3, 'dir-1-b');
    expect(await heartbeat(q, 1, 3)).toEqual({ isFenced: false, shouldShutdown: false });
    await converged(q);
    for (const c of q.controllers()) {
      expect(c.image.brokers.get(1)?.directoryId).toBe('dir-1-b');
      expect(partitionOf(c.image, 'shared', 0)).toMatchObject({ leader: 2, isr: [2, 3] });
      // Its last in-sync replica lost the data: offline, not led by the empty replica.
      expect(partitionOf(c.image, 'alone', 0)).toMatchObject({ leader: -1, isr: [] });
    }
  });

  it('elects a surviving replica of a partition whose last in-sync replica lost its data only with unclean leader election', async () => {
    const q = await startQuorum();
    await q.agreedActive();
    for (const id of VOTERS) await registerWithDirectory(q, id, 1, `dir-${id}-a`);
    for (const id of VOTERS) await heartbeat(q, id);
    await q.settle(q.active().createTopics([assignedTopicRequest('lossy', [[1, 2]], { 'unclean.leader.election.enable': 'true' })], false));
    const p = partitionOf(q.active().image, 'lossy', 0);
    await q.settle(q.active().alterPartition({ topic: 'lossy', partition: 0, leaderId: 1, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch, newIsr: [1] }));
    await registerWithDirectory(q, 1, 2, 'dir-1-b');
    // Broker 1 is fenced (new registration) and empty: broker 2, which kept its data, leads.
    expect(partitionOf(q.active().image, 'lossy', 0)).toMatchObject({ leader: 2, isr: [2] });
  });
});

describe('QuorumController: topic admin', () => {
  it('deletes topics on every node, and refuses when deletion is disabled', async () => {
    const q = await startQuorum();
    await q.agreedActive();
    await registerAndUnfence(q);
    await createTopic(q, 'doomed', 2, 3);
    const deleted = await q.settle(q.active().deleteTopics(['doomed', 'missing']));
    expect(deleted.results.map((r) => [r.name, r.errorCode])).toEqual([
      ['doomed', 'NONE'],
      ['missing', 'UNKNOWN_TOPIC_OR_PARTITION'],
    ]);
    await converged(q);
    for (const c of q.controllers()) expect(c.image.topic('doomed')).toBeUndefined();
    await q.close();

    const locked = await startQuorum({ controller: { deleteTopicEnable: false } });
    await locked.agreedActive();
    await registerAndUnfence(locked);
    await createTopic(locked, 'kept', 1, 1);
    const refused = await locked.settle(locked.active().deleteTopics(['kept']));
    expect(refused.results[0].errorCode).toBe('TOPIC_DELETION_DISABLED');
    expect(locked.active().image.topic('kept')).toBeDefined();
  });

  it('refuses a topic named twice in one CreatePartitions request', async () => {
    const q = await startQuorum();
    await q.agreedActive();
    await registerAndUnfence(q);
    await createTopic(q, 't', 1, 2);
    const decided = await q.settle(
      q.active().createPartitions(
        [
          { name: 't', count: 5, assignments: new Map() },
          { name: 't', count: 3, assignments: new Map() },
        ],
        false,
      ),
    );
    expect(decided.results.map((r) => r.errorCode)).toEqual(['NONE', 'INVALID_REQUEST']);
    expect(q.active().image.topic('t')?.partitions).toHaveLength(5);
  });

  it('adds partitions and alters configs through the log', async () => {
    const q = await startQuorum();
    await q.agreedActive();
    await registerAndUnfence(q);
    await createTopic(q, 'grow', 1, 2);
    const grown = await q.settle(q.active().createPartitions([{ name: 'grow', count: 3, assignments: new Map() }], false));
    expect(grown.results[0].errorCode).toBe('NONE');
    const altered = await q.settle(q.active().alterTopicConfigs([{ name: 'grow', changes: [{ key: 'retention.ms', value: '5000' }] }], false));
    expect(altered.results[0].errorCode).toBe('NONE');
    const bad = await q.settle(q.active().alterTopicConfigs([{ name: 'grow', changes: [{ key: 'no.such.key', value: '1' }] }], false));
    expect(bad.results[0].errorCode).toBe('INVALID_CONFIG');
    await converged(q);
    for (const c of q.controllers()) {
      expect(c.image.topic('grow')?.partitions.map((p) => p.replicas.length)).toEqual([2, 2, 2]);
      expect(c.image.topic('grow')?.configs.get('retention.ms')).toBe('5000');
    }
  });
});

describe('QuorumController: AlterPartition', () => {
  it('accepts an ISR change with the current epochs, then refuses a stale partition epoch and a wrong leader epoch', async () => {
    const q = await startQuorum();
    await q.agreedActive();
    await registerAndUnfence(q);
    await createTopic(q, 'orders', 1, 3);
    const p = partitionOf(q.active().image, 'orders', 0);
    const follower = p.replicas[2];
    const shrunk = p.isr.filter((id) => id !== follower);

    const accepted = await q.settle(q.active().alterPartition({ topic: 'orders', partition: 0, leaderId: p.leader, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch, newIsr: shrunk }));
    expect(accepted).toMatchObject({ errorCode: 'NONE', leader: p.leader, leaderEpoch: p.leaderEpoch, isr: shrunk, partitionEpoch: p.partitionEpoch + 1 });
    expect(q.active().metadataOffset).toBeGreaterThanOrEqual(accepted.metadataOffset);
    expect(partitionOf(q.active().image, 'orders', 0)).toMatchObject({ isr: shrunk, leader: p.leader, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch + 1 });

    // The same request again carries the old partition epoch.
    const stale = await q.settle(q.active().alterPartition({ topic: 'orders', partition: 0, leaderId: p.leader, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch, newIsr: p.isr as number[] }));
    expect(stale).toMatchObject({ errorCode: 'INVALID_UPDATE_VERSION', isr: shrunk, partitionEpoch: p.partitionEpoch + 1 });

    const fenced = await q.settle(q.active().alterPartition({ topic: 'orders', partition: 0, leaderId: p.leader, leaderEpoch: p.leaderEpoch + 5, partitionEpoch: p.partitionEpoch + 1, newIsr: p.isr as number[] }));
    expect(fenced).toMatchObject({ errorCode: 'FENCED_LEADER_EPOCH', leaderEpoch: p.leaderEpoch });

    const notLeader = await q.settle(q.active().alterPartition({ topic: 'orders', partition: 0, leaderId: follower, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch + 1, newIsr: p.isr as number[] }));
    expect(notLeader.errorCode).toBe('NOT_LEADER_OR_FOLLOWER');

    const unknown = await q.settle(q.active().alterPartition({ topic: 'orders', partition: 7, leaderId: p.leader, leaderEpoch: 0, partitionEpoch: 0, newIsr: [p.leader] }));
    expect(unknown.errorCode).toBe('UNKNOWN_TOPIC_OR_PARTITION');

    // The refused requests changed nothing anywhere; the ISR expands again with the right epochs.
    const expanded = await q.settle(q.active().alterPartition({ topic: 'orders', partition: 0, leaderId: p.leader, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch + 1, newIsr: p.isr as number[] }));
    expect(expanded).toMatchObject({ errorCode: 'NONE', isr: p.isr, partitionEpoch: p.partitionEpoch + 2 });
    await converged(q);
    for (const c of q.controllers()) expect(partitionOf(c.image, 'orders', 0)).toMatchObject({ isr: p.isr, partitionEpoch: p.partitionEpoch + 2, leaderEpoch: p.leaderEpoch });
  });
});

describe('QuorumController: failover', () => {
  it('elects another active controller in a higher term when the active one is cut off; the isolated one commits nothing', async () => {
    const q = await startQuorum({ controller: { sessionTimeoutMs: LONG_SESSION_MS } });
    const oldId = await q.agreedActive();
    await registerAndUnfence(q);
    for (const name of ['a', 'b', 'c']) await createTopic(q, name, 2, 3);
    await converged(q);
    const old = q.controller(oldId);
    const oldTerm = old.controllerEpoch;
    const committedBefore = old.metadataOffset;

    q.network.disconnect(oldId);
    // Still believes it is active: it decides, proposes, and waits for a commit that cannot come.
    expect(old.isActive).toBe(true);
    const lostCreate = old.createTopics([topicRequest('lost', 1, 1)], false);
    const lostFence = old.brokerHeartbeat({ brokerId: 1, incarnationId: incarnation(1), wantFence: true, wantShutdown: false });
    const lostOutcomes = Promise.allSettled([lostCreate, lostFence]);

    const rest = VOTERS.filter((id) => id !== oldId);
    const newId = await q.until('another active controller', () => {
      const active = rest.filter((id) => q.controller(id).isActive);
      return active.length === 1 ? active[0] : undefined;
    });
    const fresh = q.controller(newId);
    expect(fresh.controllerEpoch).toBeGreaterThan(oldTerm);
    for (const name of ['a', 'b', 'c']) expect(fresh.image.topic(name)?.partitions).toHaveLength(2);
    expect(fresh.image.topic('lost')).toBeUndefined();
    expect(fresh.image.isUnfenced(1)).toBe(true);

    // CheckQuorum: the isolated node steps down, and its proposals fail.
    await q.until('the old controller steps down', () => !old.isActive && !q.raft(oldId).isLeader);
    const [created, fenced] = await q.settle(lostOutcomes);
    expect(created.status).toBe('rejected');
    expect(fenced.status).toBe('rejected');
    expect(((created as PromiseRejectedResult).reason as KavkaError).code).toBe('NOT_CONTROLLER');
    expect(old.image.topic('lost')).toBeUndefined();
    expect(old.metadataOffset).toBe(committedBefore);
    expect((await rejection(old.createTopics([topicRequest('late', 1, 1)], false))).code).toBe('NOT_CONTROLLER');

    // The new controller serves requests; the old node rejoins as a follower and converges.
    await createTopic(q, 'after', 1, 3);
    q.network.connect(oldId);
    await q.agreedActive();
    expect(q.activeId()).toBe(newId);
    await converged(q);
    for (const c of q.controllers()) {
      expect(c.image.topic('lost')).toBeUndefined();
      expect([...c.image.topics.keys()].sort()).toEqual(['a', 'after', 'b', 'c']);
      expect(c.image.isUnfenced(1)).toBe(true);
    }
    expect(old.controllerId).toBe(newId);
  });

  it('moves the active controller with a leadership transfer', async () => {
    const q = await startQuorum({ controller: { sessionTimeoutMs: LONG_SESSION_MS } });
    const from = await q.agreedActive();
    await registerAndUnfence(q);
    const target = VOTERS.find((id) => id !== from) ?? 1;
    await q.settle(q.controller(from).transferLeadership(target));
    expect(await q.agreedActive()).toBe(target);
    expect(q.controller(from).isActive).toBe(false);
    expect((await rejection(q.controller(from).createTopics([topicRequest('x', 1, 1)], false))).leaderHint).toBe(target);
    await createTopic(q, 'x', 1, 3);
    await converged(q);
    for (const c of q.controllers()) expect(c.image.topic('x')).toBeDefined();
  });

  it('does not fence healthy brokers after a failover (every session restarts at activation)', async () => {
    const q = await startQuorum({ controller: { sessionTimeoutMs: 900 } });
    const oldId = await q.agreedActive();
    await registerAndUnfence(q);
    // Brokers went quiet a while ago on the old controller's clock, just below the timeout.
    await q.runFor(700);
    q.network.disconnect(oldId);
    const rest = VOTERS.filter((id) => id !== oldId);
    const newId = await q.until('another active controller', () => rest.find((id) => q.controller(id).isActive));
    const activatedAt = q.clock.monotonicMs();
    // Heartbeats resume at the new controller right away.
    for (const id of VOTERS) {
      const response = await q.settle(q.controller(newId).brokerHeartbeat({ brokerId: id, incarnationId: incarnation(id), wantFence: false, wantShutdown: false }));
      expect(response.isFenced).toBe(false);
    }
    expect(q.clock.monotonicMs() - activatedAt).toBeLessThan(900);
    expect(q.controller(newId).image.unfencedBrokerIds()).toEqual(VOTERS);
  });
});

describe('QuorumController: snapshots', () => {
  it('compacts the metadata log and rebuilds the same image after a restart from storage', async () => {
    const q = await startQuorum({ controller: { snapshotBytes: 512, sessionTimeoutMs: LONG_SESSION_MS } });
    await q.agreedActive();
    await registerAndUnfence(q);
    for (let i = 0; i < 24; i++) await createTopic(q, `topic-${String(i).padStart(2, '0')}`, 2, 3);
    await q.settle(q.active().alterTopicConfigs([{ name: 'topic-03', changes: [{ key: 'retention.ms', value: '1000' }] }], false));
    await converged(q);
    for (const id of VOTERS) {
      expect(q.raft(id).status().firstIndex).toBeGreaterThan(1);
      const durable = await q.storages.get(id)?.load();
      expect(durable?.snapshot?.metadata.index ?? 0).toBeGreaterThan(0);
    }

    const restarted = VOTERS.find((id) => id !== q.activeId()) ?? 1;
    const imageBefore = imageView(q.controller(restarted).image);
    const offsetBefore = q.controller(restarted).metadataOffset;
    const snapshotIndex = (await q.storages.get(restarted)?.load())?.snapshot?.metadata.index ?? 0;
    await q.stopNode(restarted);
    const reopened = await q.startNode(restarted);
    // The snapshot was loaded at start: the image at its index before any entry is applied.
    expect(reopened.metadataOffset).toBeGreaterThanOrEqual(snapshotIndex);
    expect(reopened.image.topics.size).toBeGreaterThan(0);
    await q.until('the restarted node caught up', () => reopened.metadataOffset >= offsetBefore);
    expect(imageView(reopened.image)).toEqual(imageBefore);
    expect(Object.fromEntries(reopened.image.topic('topic-03')?.configs ?? [])).toEqual({ 'retention.ms': '1000' });
    await converged(q);

    // It keeps following: a change after the restart reaches it too.
    await createTopic(q, 'after-restart', 1, 3);
    await converged(q);
    expect(reopened.image.topic('after-restart')).toBeDefined();
  });

  it('rebuilds the image on every node after the whole quorum restarts from storage', async () => {
    const q = await startQuorum({ controller: { snapshotBytes: 400, sessionTimeoutMs: LONG_SESSION_MS } });
    await q.agreedActive();
    await registerAndUnfence(q);
    for (let i = 0; i < 12; i++) await createTopic(q, `t${i}`, 1, 3);
    await converged(q);
    const before = imageView(q.active().image);
    for (const id of VOTERS) await q.stopNode(id);
    for (const id of VOTERS) await q.startNode(id);
    await q.agreedActive();
    await converged(q);
    for (const c of q.controllers()) expect(imageView(c.image)).toEqual(before);
  });

  it('brings a node that missed compacted entries up to date with the leader\'s snapshot', async () => {
    const q = await startQuorum({ controller: { snapshotBytes: 400, sessionTimeoutMs: LONG_SESSION_MS } });
    const activeId = await q.agreedActive();
    await registerAndUnfence(q);
    const lagging = VOTERS.find((id) => id !== activeId) ?? 1;
    await q.stopNode(lagging);
    for (let i = 0; i < 16; i++) await createTopic(q, `t${i}`, 1, 2);
    const leaderFirst = q.raft(activeId).status().firstIndex;
    expect(leaderFirst).toBeGreaterThan((await q.storages.get(lagging)?.load())?.entries.at(-1)?.index ?? 0);
    await q.startNode(lagging);
    await converged(q);
    expect(q.controller(lagging).image.topics.size).toBe(16);
  });
});

describe('QuorumController: quorum admin', () => {
  it('describes the quorum on the active node: three voters, the leader, a high watermark', async () => {
    const q = await startQuorum();
    const activeId = await q.agreedActive();
    await registerAndUnfence(q);
    await converged(q);
    await q.runFor(50);
    const description = q.controller(activeId).describeQuorum();
    expect(description.leaderId).toBe(activeId);
    expect(description.leaderEpoch).toBe(q.controller(activeId).controllerEpoch);
    expect(description.highWatermark).toBeGreaterThanOrEqual(1);
    expect(description.highWatermark).toBe(q.raft(activeId).status().committed);
    expect(description.voters.map((v) => v.nodeId).sort()).toEqual(VOTERS);
    expect(description.observers).toEqual([]);
    for (const voter of description.voters) {
      expect(voter.logEndOffset).toBe(q.raft(activeId).status().lastIndex);
      expect(voter.lag).toBe(0);
    }
  });

  it('refuses to add a voter that does not follow the log, or one that already votes (INVALID_REQUEST)', async () => {
    const q = await startQuorum();
    const activeId = await q.agreedActive();
    const active = q.controller(activeId);
    const stranger = await rejection(q.settle(active.addVoter(7)));
    expect(stranger.code).toBe('INVALID_REQUEST');
    expect(stranger.message).toContain('7');
    expect((await rejection(q.settle(active.addVoter(2)))).code).toBe('INVALID_REQUEST');
    expect((await rejection(q.settle(active.removeVoter(7)))).code).toBe('INVALID_REQUEST');
    expect(q.raft(activeId).status().config.voters).toEqual(VOTERS);
  });

  it('keeps a removed follower voter as an observer that still receives the metadata log', async () => {
    const q = await startQuorum({ controller: { sessionTimeoutMs: LONG_SESSION_MS } });
    const activeId = await q.agreedActive();
    await registerAndUnfence(q);
    const removed = VOTERS.find((id) => id !== activeId) ?? 1;
    await q.settle(q.active().removeVoter(removed));
    expect(q.raft(activeId).status().config.voters).toEqual(VOTERS.filter((id) => id !== removed));
    expect((await rejection(q.settle(q.active().removeVoter(removed)))).code).toBe('INVALID_REQUEST');
    // Still a registered broker: it keeps heartbeating, and stays (or becomes again) an observer.
    expect(await heartbeat(q, removed)).toEqual({ isFenced: false, shouldShutdown: false });
    await q.until('the removed voter is an observer', () => q.raft(activeId).status().config.learners.includes(removed));
    expect(q.active().describeQuorum().observers.map((o) => o.nodeId)).toEqual([removed]);
    await createTopic(q, 'after-removal', 1, 3);
    await converged(q);
    expect(q.controller(removed).image.topic('after-removal')).toBeDefined();
    expect(q.controller(removed).isVoter(removed)).toBe(false);
    // And back: the observer becomes a voter again.
    await addVoterWhenCaughtUp(q, removed);
    expect(q.raft(activeId).status().config.voters).toEqual(VOTERS);
  });

  it('hands the controller to another voter before removing itself; the retry there removes it, and it stays an observer', async () => {
    const q = await startQuorum({ controller: { sessionTimeoutMs: LONG_SESSION_MS } });
    const oldId = await q.agreedActive();
    await registerAndUnfence(q);
    const handedOff = await rejection(q.settle(q.controller(oldId).removeVoter(oldId)));
    expect(handedOff.code).toBe('NOT_CONTROLLER');
    expect(handedOff.retriable).toBe(true);
    const newId = await q.agreedActive();
    expect(newId).not.toBe(oldId);
    expect(handedOff.leaderHint).toBe(newId);
    // Nothing was removed yet: the caller retries at the new controller.
    expect(q.raft(newId).status().config.voters).toEqual(VOTERS);
    await q.settle(q.controller(newId).removeVoter(oldId));
    const rest = VOTERS.filter((id) => id !== oldId);
    expect(q.raft(newId).status().config.voters).toEqual(rest);
    await q.until('the removed node is an observer', () => q.raft(newId).status().config.learners.includes(oldId));
    await createTopic(q, 'after-removal', 1, 3);
    await converged(q);
    expect(q.controller(oldId).image.topic('after-removal')).toBeDefined();
    expect(q.controller(oldId).isActive).toBe(false);
  });

  it('refuses to make a stopped observer a voter, and the one-voter quorum keeps committing', async () => {
    const q = await startQuorum({ voters: [1], controller: { sessionTimeoutMs: LONG_SESSION_MS } });
    await q.agreedActive();
    const single = q.controller(1);
    await registerAndUnfence(q, [1]);
    await q.startNode(2);
    await q.settle(single.registerBroker({ brokerId: 2, incarnationId: incarnation(2), endpoints: endpoints(2), rack: undefined }));
    await q.until('the observer caught up', () => q.controller(2).metadataOffset === single.metadataOffset);
    await q.stopNode(2);
    await q.runFor(1000);
    expect((await rejection(q.settle(single.addVoter(2), 1000))).code).toBe('INVALID_REQUEST');
    expect(q.raft(1).status().config.voters).toEqual([1]);
    await q.runFor(1000);
    expect(single.isActive).toBe(true);
    await createTopic(q, 'still-works', 1, 1);
  });

  it('restarts a one-node quorum from storage and becomes active again with the same image', async () => {
    const q = await startQuorum({ voters: [1], controller: { snapshotBytes: 300, sessionTimeoutMs: LONG_SESSION_MS } });
    await q.agreedActive();
    await registerAndUnfence(q, [1]);
    for (let i = 0; i < 6; i++) await createTopic(q, `t${i}`, 2, 1);
    expect(q.raft(1).status().firstIndex).toBeGreaterThan(1);
    const before = imageView(q.controller(1).image);
    const offset = q.controller(1).metadataOffset;
    await q.stopNode(1);
    await q.startNode(1);
    expect(await q.agreedActive()).toBe(1);
    expect(q.controller(1).metadataOffset).toBeGreaterThan(offset);
    expect(imageView(q.controller(1).image)).toEqual(before);
  });

  it('refuses to remove the last voter of a one-node quorum', async () => {
    const q = await startQuorum({ voters: [1] });
    const activeId = await q.agreedActive();
    expect(activeId).toBe(1);
    const only = q.controller(1);
    const error = await rejection(q.settle(only.removeVoter(1)));
    expect(error.code).toBe('INVALID_REQUEST');
    expect(error.message).toContain('last voter');
    expect(q.raft(1).status().config.voters).toEqual([1]);
    expect(only.describeQuorum()).toMatchObject({ leaderId: 1, voters: [{ nodeId: 1, lag: 0 }], observers: [] });
  });

  it('adds a registered broker that is not a voter as an observer (learner), then makes it a voter', async () => {
    const q = await startQuorum({ voters: [1] });
    await q.agreedActive();
    const single = q.controller(1);
    await q.settle(single.registerBroker({ brokerId: 1, incarnationId: incarnation(1), endpoints: endpoints(1), rack: undefined }));
    expect(q.raft(1).status().config.learners).toEqual([]);
    // A second node joins with its own (empty) storage, bootstrapped with the same voters.
    const second = await q.startNode(2);
    await q.settle(single.registerBroker({ brokerId: 2, incarnationId: incarnation(2), endpoints: endpoints(2), rack: undefined }));
    expect(q.raft(1).status().config.learners).toEqual([2]);
    expect(single.describeQuorum().observers.map((o) => o.nodeId)).toEqual([2]);
    await q.until('the observer caught up', () => second.metadataOffset === single.metadataOffset && second.image.brokers.size === 2);
    expect(second.isActive).toBe(false);
    await addVoterWhenCaughtUp(q, 2);
    expect(q.raft(1).status().config.voters).toEqual([1, 2]);
    // The two-voter quorum still commits.
    await q.settle(single.brokerHeartbeat({ brokerId: 1, incarnationId: incarnation(1), wantFence: false, wantShutdown: false }));
    await q.until('both applied the unfence', () => q.controllers().every((c) => c.image.isUnfenced(1)));
  });
});

describe('QuorumController: waiting for offsets and listeners', () => {
  it('resolves waitForOffset once applied, or false after the timeout, and tells image listeners', async () => {
    const q = await startQuorum();
    const activeId = await q.agreedActive();
    const follower = q.controller(VOTERS.find((id) => id !== activeId) ?? 1);
    const seen: number[] = [];
    const unsubscribe = follower.onImage((image) => seen.push(image.offset));
    const target = q.active().metadataOffset + 1;
    const reached = follower.waitForOffset(target, 10_000);
    await register(q, 1);
    expect(await q.settle(reached)).toBe(true);
    expect(follower.metadataOffset).toBeGreaterThanOrEqual(target);
    expect(seen.at(-1)).toBe(follower.metadataOffset);
    unsubscribe();
    expect(await q.settle(follower.waitForOffset(follower.metadataOffset, 1))).toBe(true);
    const never = follower.waitForOffset(follower.metadataOffset + 1000, 200);
    expect(await q.settle(never)).toBe(false);
  });

  it('answers a pending waitForOffset with false when the controller closes before reaching it', async () => {
    const q = await startQuorum();
    const activeId = await q.agreedActive();
    const followerId = VOTERS.find((id) => id !== activeId) ?? 1;
    const follower = q.controller(followerId);
    const target = follower.metadataOffset + 1000;
    const waiting = follower.waitForOffset(target, 60_000);
    await q.stopNode(followerId);
    expect(follower.metadataOffset).toBeLessThan(target);
    expect(await waiting).toBe(false);
  });
});
