// Three real `kavka broker` processes on 127.0.0.1 (every node a controller voter), with
// scaled-down timeouts. Faults: SIGKILL of the active controller, SIGSTOP/SIGCONT of it, and a
// link cut that isolates it through fault proxies on every inter-node link. Wall-clock bounds
// here are generous ceilings; exact bounds (in ticks) live in the Raft simulation.
//
import { describe, expect, it } from 'vitest';
import { FAST_CLUSTER_TIMING, ProcessCluster } from '../../src/harness/cluster-process.js';
import { processClusters } from '../helpers/process-clusters.js';
import { call, rawClient } from '../server/raw-client.js';
import type { ProduceResponse__Output } from '../../src/gen/kavka/v1/ProduceResponse.js';
import type { FetchResponse__Output } from '../../src/gen/kavka/v1/FetchResponse.js';

const CEILING_MS = 30_000;
const clusters = processClusters('kavka-cluster-');

async function startCluster(proxies = false, observers = 0): Promise<ProcessCluster> {
  const cluster = await clusters.start({ size: 3, observers, proxies, overrides: { ...FAST_CLUSTER_TIMING, 'default.replication.factor': '3' } });
  await cluster.waitReady();
  return cluster;
}

function controllerOf(c: ProcessCluster, excluding: number[] = []) {
  return ProcessCluster.waitFor('an agreed active controller', () => c.agreedController(excluding), CEILING_MS);
}

async function createTopic(c: ProcessCluster, via: number, name: string, partitions: number, replicationFactor = 3): Promise<void> {
  const client = rawClient(c.node(via).clientAddress);
  const result = await call<object, { topics: { errorCode: string; errorMessage: string }[] }>(client, 'CreateTopics', { topics: [{ name, numPartitions: partitions, replicationFactor }] });
  client.close();
  expect(result.ok && result.value.topics[0]).toMatchObject({ errorCode: 'NONE' });
}

/** Partition -> leader as node `id` sees it. */
async function leaders(c: ProcessCluster, id: number, topic: string): Promise<number[]> {
  const metadata = await c.metadata(id, [topic]);
  return metadata.topics[0].partitions.map((p) => p.leaderId);
}

/** "became the active controller" log lines of every node: term -> node ids. */
function activeTermsByNode(c: ProcessCluster, lines: Map<number, string[]>): Map<number, number[]> {
  const terms = new Map<number, number[]>();
  for (const [id, nodeLines] of lines) {
    for (const line of nodeLines) {
      if (!line.includes('"became the active controller"')) continue;
      const term = (JSON.parse(line) as { term: number }).term;
      terms.set(term, [...(terms.get(term) ?? []), id]);
    }
  }
  void c;
  return terms;
}

describe('a 3-node cluster of real processes', () => {
  it('elects a new controller when the active one is killed, moves partition leadership off the dead node, and takes the restarted node back as a follower', async () => {
    const c = await startCluster();
    const first = await controllerOf(c);
    await createTopic(c, first.controllerId, 'empty', 6);
    const survivor = [1, 2, 3].find((id) => id !== first.controllerId) ?? 1;
    expect(await leaders(c, survivor, 'empty')).toContain(first.controllerId);

    await c.signal(first.controllerId, 'SIGKILL');
    const second = await controllerOf(c, [first.controllerId]);
    expect(second.controllerId).not.toBe(first.controllerId);
    expect(second.epoch).toBeGreaterThan(first.epoch);
    // The dead node is fenced after its session times out; its empty partitions elect others.
    await ProcessCluster.waitFor('leaders off the killed node', async () => ((await leaders(c, survivor, 'empty')).includes(first.controllerId) ? undefined : true), CEILING_MS);
    expect((await leaders(c, survivor, 'empty')).every((leader) => leader !== -1)).toBe(true);

    await c.startNode(first.controllerId);
    await ProcessCluster.waitFor('the restarted node to report the controller', async () => ((await c.metadata(first.controllerId)).controllerId === second.controllerId ? true : undefined), CEILING_MS);
    // PreVote: the restarted node caught up without forcing an election.
    const after = await controllerOf(c);
    expect(after).toEqual(second);
  });

  it('a paused controller that resumes never acts as controller in the same epoch as another', async () => {
    const c = await startCluster();
    const first = await controllerOf(c);
    await c.signal(first.controllerId, 'SIGSTOP');
    const second = await controllerOf(c, [first.controllerId]);
    expect(second.epoch).toBeGreaterThan(first.epoch);
    // Admin requests work without it while it is paused.
    await createTopic(c, second.controllerId, 'while-paused', 3, 2);
    // Paused past its session timeout: on resume its stale timers see every broker as silent
    // and it may try to fence them all in its old term. None of that may commit.
    await new Promise((resolve) => setTimeout(resolve, 2 * Number(FAST_CLUSTER_TIMING['broker.session.timeout.ms'])));

    await c.signal(first.controllerId, 'SIGCONT');
    await ProcessCluster.waitFor('the resumed node to follow the new controller', async () => ((await c.metadata(first.controllerId)).controllerId === second.controllerId ? true : undefined), CEILING_MS);
    const resumedLines = c.node(first.controllerId).process?.lines ?? [];
    await ProcessCluster.waitFor('the resumed node to stop acting as controller', async () => (resumedLines.some((l) => l.includes('"no longer the active controller"')) ? true : undefined), CEILING_MS);

    const lines = new Map([...c.nodes.values()].map((n) => [n.nodeId, n.process?.lines ?? []]));
    for (const [term, nodes] of activeTermsByNode(c, lines)) expect(nodes, `term ${term}`).toHaveLength(1);
    // Every node serves again (the resumed one re-joined and was unfenced) and has the topic made while it slept.
    await c.waitReady([1, 2, 3]);
    // Metadata lists unfenced brokers only: every node ends up listing all three.
    for (const id of [1, 2, 3]) {
      await ProcessCluster.waitFor(`node ${id} to have the topic and all three brokers unfenced`, async () => {
        const m = await c.metadata(id, ['while-paused']);
        return m.topics[0].errorCode === 'NONE' && m.brokers.map((b) => b.nodeId).sort().join() === '1,2,3' ? m : undefined;
      }, CEILING_MS);
    }
    expect(await controllerOf(c)).toEqual(second);
  });

  it('a link cut that isolates the controller: the majority elects a new one and the isolated one stops acting', async () => {
    const c = await startCluster(true);
    const first = await controllerOf(c);
    c.mesh?.isolate(first.controllerId);
    const second = await controllerOf(c, [first.controllerId]);
    expect(second.controllerId).not.toBe(first.controllerId);
    const isolatedLines = c.node(first.controllerId).process?.lines ?? [];
    // CheckQuorum: without a majority, the old leader steps down by itself.
    await ProcessCluster.waitFor('the isolated node to step down', async () => (isolatedLines.some((l) => l.includes('"no longer the active controller"')) ? true : undefined), CEILING_MS);
    // Two live brokers now (the isolated one is fenced once its session times out).
    await createTopic(c, second.controllerId, 'during-cut', 2, 2);
    // A request to the isolated node cannot reach a controller: a retriable error, not a wrong answer.
    const isolated = rawClient(c.node(first.controllerId).clientAddress);
    const refused = await call<object, unknown>(isolated, 'CreateTopics', { topics: [{ name: 'from-isolated', numPartitions: 1, replicationFactor: 1 }] });
    isolated.close();
    expect(refused.ok).toBe(false);

    c.mesh?.heal();
    await ProcessCluster.waitFor('the healed node to see the topic', async () => ((await c.metadata(first.controllerId, ['during-cut'])).topics[0].errorCode === 'NONE' ? true : undefined), CEILING_MS);
    const lines = new Map([...c.nodes.values()].map((n) => [n.nodeId, n.process?.lines ?? []]));
    for (const [term, nodes] of activeTermsByNode(c, lines)) expect(nodes, `term ${term}`).toHaveLength(1);
  });

  it('a written partition fails over to an in-sync replica with every acknowledged record; the killed leader catches up and rejoins the ISR', async () => {
    const c = await startCluster();
    const ctrl = await controllerOf(c);
    await createTopic(c, ctrl.controllerId, 'written', 1);
    const leader = (await leaders(c, ctrl.controllerId, 'written'))[0];
    const produceTo = async (id: number, values: string[]) => {
      const client = rawClient(c.node(id).clientAddress);
      const produced = await call<object, ProduceResponse__Output>(client, 'Produce', { acks: -1, topics: [{ name: 'written', partitions: [{ partition: 0, records: values.map((v) => ({ value: Buffer.from(v) })) }] }] });
      client.close();
      return produced.ok ? produced.value.topics[0].partitions[0].errorCode : produced.details;
    };
    const before = Array.from({ length: 20 }, (_, i) => `r${i}`);
    expect(await produceTo(leader, before)).toBe('NONE');
    const other = [1, 2, 3].find((id) => id !== leader) ?? 1;

    await c.signal(leader, 'SIGKILL');
    const next = await ProcessCluster.waitFor('a new leader from the ISR', async () => {
      const l = (await leaders(c, other, 'written'))[0];
      return l !== leader && l !== -1 ? l : undefined;
    }, CEILING_MS);
    const after = ['a0', 'a1', 'a2'];
    expect(await ProcessCluster.waitFor('a write at the new leader', async () => ((await produceTo(next, after)) === 'NONE' ? true : undefined), CEILING_MS)).toBe(true);

    await c.startNode(leader);
    await ProcessCluster.waitFor('the restarted replica back in the ISR', async () => ((await c.metadata(other, ['written'])).topics[0].partitions[0].isr.length === 3 ? true : undefined), CEILING_MS);
    // Back in the ISR, the preferred replica (the restarted node) leads again: read from whoever leads.
    const records = await ProcessCluster.waitFor('a fetch from the current leader', async () => {
      const current = (await leaders(c, other, 'written'))[0];
      if (current < 0) return undefined;
      const reader = rawClient(c.node(current).clientAddress);
      const fetched = await call<object, FetchResponse__Output>(reader, 'Fetch', { maxWaitMs: 0, plainRecords: true, topics: [{ name: 'written', partitions: [{ partition: 0, fetchOffset: '0' }] }] });
      reader.close();
      const p = fetched.ok ? fetched.value.topics[0].partitions[0] : undefined;
      return p?.errorCode === 'NONE' && p.records.length === before.length + after.length ? p.records : undefined;
    }, CEILING_MS);
    expect(records.map((r) => r.value?.toString())).toEqual([...before, ...after]);
    expect(records.map((r) => Number(r.offset))).toEqual([...before, ...after].map((_, i) => i));
  });

  it('a broker-only node follows the metadata log as an observer, becomes a voter with add-voter (kept over a restart), and an observer again with remove-voter', async () => {
    const c = await startCluster(false, 1);
    const members = async (via: number) => {
      const q = await c.describeQuorum(via);
      return { voters: q.voters.map((v) => v.replicaId).sort(), observers: q.observers.map((o) => o.replicaId).sort() };
    };
    // Node 4 registered, so the controller made it an observer; any node answers (forwarded).
    expect(await members(4)).toEqual({ voters: [1, 2, 3], observers: [4] });
    const quorumCall = async (method: 'AddRaftVoter' | 'RemoveRaftVoter', via: number) => {
      const client = rawClient(c.node(via).clientAddress);
      const result = await call<object, object>(client, method, { voterId: 4 });
      client.close();
      return result;
    };
    expect((await quorumCall('AddRaftVoter', 2)).ok).toBe(true);
    expect(await members(1)).toEqual({ voters: [1, 2, 3, 4], observers: [] });

    // The committed configuration wins over controller.quorum.voters (which still lists 1..3).
    await c.signal(1, 'SIGTERM');
    await c.startNode(1);
    await c.waitReady([1, 2, 3, 4]);
    await ProcessCluster.waitFor('node 1 to see four voters', async () => ((await members(1)).voters.length === 4 ? true : undefined), CEILING_MS);

    expect((await quorumCall('RemoveRaftVoter', 3)).ok).toBe(true);
    await ProcessCluster.waitFor('node 4 to be an observer again', async () => {
      const m = await members(1);
      return m.voters.join() === '1,2,3' && m.observers.join() === '4' ? true : undefined;
    }, CEILING_MS);
  });
});
