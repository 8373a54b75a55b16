// Availability, stated and shown with real `kavka broker` processes:
// - with more brokers than controller voters (3 voters + 2 broker-only nodes), a partition with
//   replication factor N keeps serving through N-1 replica failures while a voter majority lives,
//   and Metadata's failures-tolerated figures say so before and after;
// - a rolling restart (SIGTERM = controlled shutdown, then wait until no partition is
//   under-replicated before the next node) loses no write, and a retrying idempotent client sees
//   no failed acks=all produce and no duplicate.
import { describe, expect, it } from 'vitest';
import { FAST_CLUSTER_TIMING, ProcessCluster } from '../../src/harness/cluster-process.js';
import { processClusters } from '../helpers/process-clusters.js';
import { Kavka } from '../../src/client/index.js';
import { call, rawClient } from '../server/raw-client.js';
import type { ProduceResponse__Output } from '../../src/gen/kavka/v1/ProduceResponse.js';

const CEILING_MS = 30_000;
const clusters = processClusters('kavka-avail-');

const TIMING = { ...FAST_CLUSTER_TIMING, 'replica.lag.time.max.ms': '2000', 'replica.fetch.wait.max.ms': '100' };

async function createTopic(c: ProcessCluster, via: number, topic: object): Promise<void> {
  const client = rawClient(c.node(via).clientAddress);
  const result = await call<object, { topics: { errorCode: string; errorMessage: string }[] }>(client, 'CreateTopics', { topics: [{ configs: {}, assignments: [], ...topic }] });
  client.close();
  expect(result.ok && result.value.topics[0]).toMatchObject({ errorCode: 'NONE' });
}

describe('availability with real processes', () => {
  it('3 voters + 2 broker-only nodes: a partition with replication factor 3 keeps taking acks=all writes through 2 replica failures', async () => {
    const c = await clusters.start({ size: 3, observers: 2, overrides: TIMING });
    await c.waitReady([1, 2, 3, 4, 5]);
    // Replicas on both broker-only nodes and one voter; acks=all needs one in-sync replica.
    await createTopic(c, 1, { name: 'spread', assignments: [{ partition: 0, brokerIds: [4, 5, 1] }], configs: { 'min.insync.replicas': '1' } });
    const partition = async (via: number) => (await c.metadata(via, ['spread'])).topics[0].partitions[0];
    await ProcessCluster.waitFor('a full ISR', async () => ((await partition(2)).isr.length === 3 ? true : undefined), CEILING_MS);
    const before = await partition(2);
    // |ISR| 3 - min.insync 1 = 2 for writes, capped by the voters: 3 live - quorum 2 = 1.
    expect(before).toMatchObject({ leaderId: 4, writeFailuresTolerated: 1, dataFailuresTolerated: 1 });

    const produce = async (via: number, value: string) => {
      const client = rawClient(c.node(via).clientAddress);
      const result = await call<object, ProduceResponse__Output>(client, 'Produce', { acks: -1, timeoutMs: 3000, topics: [{ name: 'spread', partitions: [{ partition: 0, records: [{ value: Buffer.from(value) }] }] }] });
      client.close();
      return result.ok ? result.value.topics[0].partitions[0] : undefined;
    };
    expect((await produce(4, 'first'))?.errorCode).toBe('NONE');

    // Two of the three replicas fail: both broker-only nodes, the leader among them.
    await c.signal(4, 'SIGKILL');
    await c.signal(5, 'SIGKILL');
    const after = await ProcessCluster.waitFor('node 1 to lead with an ISR of one', async () => {
      const p = await partition(2);
      return p.leaderId === 1 && p.isr.length === 1 ? p : undefined;
    }, CEILING_MS);
    // Data now rests on one replica; the voters still have one failure of slack.
    expect(after).toMatchObject({ writeFailuresTolerated: 0, dataFailuresTolerated: 0 });
    const written = await produce(1, 'second');
    expect(written).toMatchObject({ errorCode: 'NONE', baseOffset: '1' });
  });

  it('a rolling restart that waits for no under-replicated partition between nodes: no failed acks=all produce, nothing lost, nothing duplicated', async () => {
    const c = await clusters.start({ size: 3, overrides: { ...TIMING, 'default.replication.factor': '3', 'min.insync.replicas': '2' } });
    await c.waitReady([1, 2, 3]);
    await createTopic(c, 1, { name: 'rolling', numPartitions: 3, replicationFactor: 3 });
    const fullyReplicated = async () => {
      const m = await c.metadata(1, ['rolling']).catch(() => c.metadata(2, ['rolling']));
      return m.topics[0].partitions.every((p) => p.isr.length === 3 && p.leaderId >= 0) ? true : undefined;
    };
    await ProcessCluster.waitFor('no under-replicated partition', fullyReplicated, CEILING_MS);

    const kavka = new Kavka({ clientId: 'rolling', brokers: [1, 2, 3].map((id) => c.node(id).clientAddress), retry: { retries: 60, initialRetryTimeMs: 50, maxRetryTimeMs: 250 }, requestTimeoutMs: 5000 });
    const producer = kavka.producer({ acks: -1, lingerMs: 1 });
    await producer.connect();
    const sent: string[] = [];
    const failures: string[] = [];
    let stop = false;
    const workload = (async () => {
      for (let i = 0; i < 100_000 && !stop; i++) {
        const value = `r${i}`;
        try {
          await producer.send({ topic: 'rolling', messages: [{ key: String(i % 7), value }] });
          sent.push(value);
        } catch (error) {
          failures.push(`${value}: ${String(error)}`);
        }
      }
    })();

    for (const id of [1, 2, 3]) {
      await c.signal(id, 'SIGTERM');
      await c.startNode(id);
      await c.waitReady([1, 2, 3]);
      await ProcessCluster.waitFor('no under-replicated partition', fullyReplicated, CEILING_MS);
    }
    stop = true;
    await workload;
    await producer.disconnect();
    expect(failures).toEqual([]);
    expect(sent.length).toBeGreaterThan(50);

    const consumer = kavka.consumer({ maxWaitTimeMs: 50 });
    const seen: string[] = [];
    consumer.assign([{ topic: 'rolling', partitions: [0, 1, 2], fromBeginning: true }]);
    await consumer.run({
      eachMessage: async ({ message }) => {
        seen.push(message.value?.toString() ?? '');
      },
    });
    await ProcessCluster.waitFor('every acknowledged record', async () => (seen.length >= sent.length ? true : undefined), CEILING_MS, 50);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await consumer.disconnect();
    expect([...seen].sort()).toEqual([...sent].sort());
  });
});
