// Partition replication between three in-process brokers over real gRPC: followers copy the
// leader's batches byte for byte, acks=all waits for the ISR, a crashed leader's ISR member takes
// over with every acknowledged record, a restarted replica catches up and rejoins the ISR, and a
// crashed follower leaves it (then acks=all fails retriably below min.insync.replicas).
import { afterEach, expect, it } from 'vitest';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Kavka } from '../../src/client/index.js';
import { call } from '../server/raw-client.js';
import type { ProduceResponse__Output } from '../../src/gen/kavka/v1/ProduceResponse.js';
import { assignments, consumeAll, createTopic, partitionOf, produce, SETTLE_MS, startTestCluster, type TestCluster } from '../helpers/cluster.js';

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.destroy();
  cluster = undefined;
});

const REPLICATION = { 'replica.lag.time.max.ms': '1500', 'replica.fetch.wait.max.ms': '100', 'replica.fetch.backoff.ms': '50', 'min.insync.replicas': '2' };

/** Every batch of a replica's log, concatenated, from its log start to `end`. */
async function logBytes(c: TestCluster, id: number, topic: string, end: bigint): Promise<Buffer> {
  const log = c.broker(id).logManager.getLog({ topic, partition: 0 });
  if (log === undefined) throw new Error(`node ${id} has no log for ${topic}-0`);
  const parts: Buffer[] = [];
  let offset = log.logStartOffset;
  for (let i = 0; i < 10_000 && offset < end; i++) {
    const read = await log.read(offset, 1 << 20, { maxOffset: end, minOneBatch: true });
    if (read.batches.length === 0) break;
    parts.push(read.batches);
    offset = read.nextOffset;
  }
  return Buffer.concat(parts);
}

async function waitIsr(c: TestCluster, via: number, topic: string, isr: number[]): Promise<void> {
  await c.waitFor(async () => {
    const p = await partitionOf(c, via, topic, 0);
    return [...p.isr].sort().join() === [...isr].sort().join() ? true : undefined;
  }, SETTLE_MS, `ISR of ${topic}-0 to be ${isr.join(',')}`);
}

it('copies the leader log byte for byte to every follower, and acks=all returns once the ISR has it', async () => {
  const c = (cluster = await startTestCluster(3, REPLICATION));
  expect((await createTopic(c, 1, { name: 'copied', assignments: assignments([[1, 2, 3]]) })).errorCode).toBe('NONE');
  const values = Array.from({ length: 50 }, (_, i) => `v${i}`);
  for (let i = 0; i < values.length; i += 10) {
    const answer = await produce(c, 1, 'copied', 0, values.slice(i, i + 10));
    expect(answer.errorCode).toBe('NONE');
  }
  // acks=all answered: every ISR member already holds the records, and the ISR is all three.
  const p = await partitionOf(c, 1, 'copied', 0);
  expect([...p.isr].sort()).toEqual([1, 2, 3]);
  const leaderLog = await logBytes(c, 1, 'copied', 50n);
  expect(leaderLog.length).toBeGreaterThan(0);
  for (const id of [2, 3]) expect((await logBytes(c, id, 'copied', 50n)).equals(leaderLog)).toBe(true);
  // The leader reports the partition's replication state on /metrics; followers do not.
  const metrics = await (await fetch(`http://${c.broker(1).adminAddress}/metrics`)).text();
  const series = (name: string) => metrics.split('\n').find((line) => line.startsWith(`${name}{`) && line.includes('topic="copied"'));
  expect(series('kavka_partition_in_sync_replicas')).toMatch(/ 3$/);
  expect(series('kavka_partition_under_replicated')).toMatch(/ 0$/);
  // RF 3, min.insync.replicas 2, 3 live voters: one more failure for writes, one for data (quorum-capped).
  expect(series('kavka_partition_write_failures_tolerated')).toMatch(/ 1$/);
  expect(series('kavka_partition_data_failures_tolerated')).toMatch(/ 1$/);
  const followerMetrics = await (await fetch(`http://${c.broker(2).adminAddress}/metrics`)).text();
  expect(followerMetrics.split('\n').some((line) => line.startsWith('kavka_partition_in_sync_replicas{') && line.includes('topic="copied"'))).toBe(false);
});

it('a crashed leader is replaced by an ISR member that has every acknowledged record; the old leader catches up and rejoins the ISR', async () => {
  const c = (cluster = await startTestCluster(3, REPLICATION));
  expect((await createTopic(c, 2, { name: 'failover', assignments: assignments([[1, 2, 3]]) })).errorCode).toBe('NONE');
  // Retries that outlast a session timeout and an election.
  const client = new Kavka({ clientId: 'replication-test', brokers: [c.clientAddress(2), c.clientAddress(3)], retry: { retries: 40, initialRetryTimeMs: 50, maxRetryTimeMs: 250 }, requestTimeoutMs: 5_000 });
  const producer = client.producer({ acks: -1 });
  await producer.connect();
  const acked: string[] = [];
  for (let i = 0; i < 30; i++) {
    await producer.send({ topic: 'failover', messages: [{ value: `before-${i}` }] });
    acked.push(`before-${i}`);
  }
  await c.crashNode(1);
  // The survivors elect a new leader from the ISR; the producer's retries reach it.
  for (let i = 0; i < 30; i++) {
    await producer.send({ topic: 'failover', messages: [{ value: `after-${i}` }] });
    acked.push(`after-${i}`);
  }
  const leader = (await partitionOf(c, 2, 'failover', 0)).leaderId;
  expect([2, 3]).toContain(leader);

  await c.restartNode(1);
  await waitIsr(c, 2, 'failover', [1, 2, 3]);
  const end = BigInt(acked.length);
  const reference = await logBytes(c, leader, 'failover', end);
  for (const id of [1, 2, 3]) expect((await logBytes(c, id, 'failover', end)).equals(reference), `node ${id}`).toBe(true);

  await producer.disconnect();
  const seen = (await consumeAll(client, 'failover', acked.length, [0])).map((r) => r.message.value?.toString() ?? '');
  expect(seen).toEqual(acked);
});

it('a crashed follower leaves the ISR; below min.insync.replicas acks=all fails retriably, acks=1 still works, and the restarted follower rejoins', async () => {
  const c = (cluster = await startTestCluster(3, REPLICATION));
  expect((await createTopic(c, 1, { name: 'lagging', assignments: assignments([[1, 2, 3]]), configs: { 'min.insync.replicas': '3' } })).errorCode).toBe('NONE');
  expect((await produce(c, 1, 'lagging', 0, ['a'])).errorCode).toBe('NONE');
  await c.crashNode(3);
  await waitIsr(c, 1, 'lagging', [1, 2]);
  const metric = async (name: string) => Number((await (await fetch(`http://${c.broker(1).adminAddress}/metrics`)).text()).split('\n').find((line) => line.startsWith(`${name}{`))?.split(' ')[1]);
  expect(await metric('kavka_under_replicated_partitions')).toBe(1);
  expect(await metric('kavka_leader_elections_total')).toBe(1);
  expect((await produce(c, 1, 'lagging', 0, ['b'])).errorCode).toBe('NOT_ENOUGH_REPLICAS');
  const acksOne = await call<object, ProduceResponse__Output>(c.raw(1), 'Produce', { acks: 1, topics: [{ name: 'lagging', partitions: [{ partition: 0, records: [{ value: Buffer.from('c') }] }] }] });
  expect(acksOne.ok && acksOne.value.topics[0].partitions[0].errorCode).toBe('NONE');

  await c.restartNode(3);
  await waitIsr(c, 1, 'lagging', [1, 2, 3]);
  // The leader took node 3 back in through its own AlterPartition (the controller removed it when it fenced it).
  expect(await metric('kavka_isr_expands_total')).toBe(1);
  expect(await metric('kavka_under_replicated_partitions')).toBe(0);
  expect((await produce(c, 1, 'lagging', 0, ['d'])).errorCode).toBe('NONE');
  const end = c.broker(1).logManager.getLog({ topic: 'lagging', partition: 0 })?.logEndOffset ?? 0n;
  expect(end).toBe(3n);
  for (const id of [2, 3]) expect((await logBytes(c, id, 'lagging', end)).equals(await logBytes(c, 1, 'lagging', end)), `node ${id}`).toBe(true);
});

it('a replica restarted without its partition data re-fetches the whole log before it counts in the ISR again', async () => {
  const c = (cluster = await startTestCluster(3, REPLICATION));
  expect((await createTopic(c, 1, { name: 'lost-head', assignments: assignments([[1, 2, 3]]) })).errorCode).toBe('NONE');
  for (let i = 0; i < 20; i++) expect((await produce(c, 1, 'lost-head', 0, Array.from({ length: 50 }, (_, j) => `v${i}-${j}`))).errorCode).toBe('NONE');
  const dataDir = c.nodes.get(3)?.dataDir ?? '';
  await c.stopNode(3);
  await waitIsr(c, 1, 'lost-head', [1, 2]);
  await rm(join(dataDir, 'lost-head-0'), { recursive: true, force: true });
  await c.restartNode(3);
  // Writes go on while it catches up; it only rejoins with a log that reaches the HW.
  expect((await produce(c, 1, 'lost-head', 0, ['while-catching-up'])).errorCode).toBe('NONE');
  await waitIsr(c, 1, 'lost-head', [1, 2, 3]);
  const log3 = c.broker(3).logManager.getLog({ topic: 'lost-head', partition: 0 });
  const end = c.broker(1).logManager.getLog({ topic: 'lost-head', partition: 0 })?.logEndOffset ?? 0n;
  expect(log3?.logStartOffset).toBe(0n);
  expect((await logBytes(c, 3, 'lost-head', end)).equals(await logBytes(c, 1, 'lost-head', end))).toBe(true);
});
