// Replication with real `kavka broker` processes: 3 nodes, a topic with replication factor 3 and
// min.insync.replicas=2, an acks=all workload that records every acknowledged write (value ->
// offset). Faults: SIGKILL of the partition leader mid-stream, and SIGKILL of two of the three
// nodes. Wall-clock bounds are generous ceilings.
import { describe, expect, it } from 'vitest';
import { FAST_CLUSTER_TIMING, ProcessCluster } from '../../src/harness/cluster-process.js';
import { processClusters } from '../helpers/process-clusters.js';
import { call, rawClient } from '../server/raw-client.js';
import type { ProduceResponse__Output } from '../../src/gen/kavka/v1/ProduceResponse.js';
import type { FetchResponse__Output } from '../../src/gen/kavka/v1/FetchResponse.js';

const CEILING_MS = 30_000;
const TOPIC = 'replicated';
const clusters = processClusters('kavka-repl-');

async function start(): Promise<ProcessCluster> {
  const cluster = await clusters.start({
    size: 3,
    overrides: { ...FAST_CLUSTER_TIMING, 'default.replication.factor': '3', 'min.insync.replicas': '2', 'replica.lag.time.max.ms': '2000', 'replica.fetch.wait.max.ms': '100' },
  });
  await cluster.waitReady();
  const c = cluster;
  const controller = await ProcessCluster.waitFor('a controller', () => c.agreedController(), CEILING_MS);
  const client = rawClient(c.node(controller.controllerId).clientAddress);
  const created = await call<object, { topics: { errorCode: string }[] }>(client, 'CreateTopics', { topics: [{ name: TOPIC, numPartitions: 1, replicationFactor: 3 }] });
  client.close();
  expect(created.ok && created.value.topics[0].errorCode).toBe('NONE');
  await ProcessCluster.waitFor('a full ISR', async () => ((await c.metadata(1, [TOPIC])).topics[0].partitions[0].isr.length === 3 ? true : undefined), CEILING_MS);
  return c;
}

async function leaderOf(c: ProcessCluster, excluding: number[] = []): Promise<number | undefined> {
  for (const id of [1, 2, 3]) {
    if (!c.isRunning(id) || excluding.includes(id)) continue;
    const leader = await c.metadata(id, [TOPIC], 1000).then((m) => m.topics[0]?.partitions[0]?.leaderId, () => undefined);
    if (leader !== undefined && leader >= 0 && c.isRunning(leader)) return leader;
  }
  return undefined;
}

type Outcome = { ok: true; offset: bigint } | { ok: false; code: string };

async function produceOne(c: ProcessCluster, to: number, value: string, timeoutMs = 3000): Promise<Outcome> {
  const client = rawClient(c.node(to).clientAddress);
  try {
    const result = await call<object, ProduceResponse__Output>(client, 'Produce', { acks: -1, timeoutMs, topics: [{ name: TOPIC, partitions: [{ partition: 0, records: [{ value: Buffer.from(value) }] }] }] });
    if (!result.ok) return { ok: false, code: result.details };
    const p = result.value.topics[0].partitions[0];
    return p.errorCode === 'NONE' ? { ok: true, offset: BigInt(p.baseOffset) } : { ok: false, code: p.errorCode };
  } finally {
    client.close();
  }
}

async function readAll(c: ProcessCluster, from: number): Promise<Map<bigint, string>> {
  const client = rawClient(c.node(from).clientAddress);
  const out = new Map<bigint, string>();
  let offset = '0';
  try {
    for (let round = 0; round < 10_000; round++) {
      const result = await call<object, FetchResponse__Output>(client, 'Fetch', { maxWaitMs: 0, plainRecords: true, topics: [{ name: TOPIC, partitions: [{ partition: 0, fetchOffset: offset }] }] });
      if (!result.ok) throw new Error(`fetch failed: ${result.details}`);
      const p = result.value.topics[0].partitions[0];
      if (p.errorCode !== 'NONE') throw new Error(`fetch failed: ${p.errorCode} ${p.errorMessage}`);
      for (const r of p.records) out.set(BigInt(r.offset), r.value?.toString() ?? '');
      if (p.records.length === 0 || p.nextFetchOffset === p.highWatermark) break;
      offset = p.nextFetchOffset;
    }
  } finally {
    client.close();
  }
  return out;
}

/** Every acknowledged write is at its acknowledged offset, offsets are contiguous, and no value appears twice. */
function checkAcked(acked: Map<string, bigint>, log: Map<bigint, string>): void {
  for (const [value, offset] of acked) expect(log.get(offset), `acknowledged ${value} at offset ${offset}`).toBe(value);
  const offsets = [...log.keys()].sort((a, b) => (a < b ? -1 : 1));
  expect(offsets).toEqual(offsets.map((_, i) => BigInt(i)));
  const values = [...log.values()];
  expect(new Set(values).size).toBe(values.length);
}

describe('replication with real processes', () => {
  it('SIGKILL of the partition leader mid-stream: writes continue on the new leader, the old leader truncates and catches up, no acknowledged write is lost', async () => {
    const c = await start();
    const acked = new Map<string, bigint>();
    const firstLeader = (await leaderOf(c)) ?? 1;
    let killed = false;
    for (let i = 0; i < 200 && acked.size < 120; i++) {
      if (!killed && acked.size === 60) {
        await c.signal(firstLeader, 'SIGKILL');
        killed = true;
      }
      const leader = await ProcessCluster.waitFor('a live leader', () => leaderOf(c), CEILING_MS);
      const value = `v${i}`;
      // An unknown outcome (timeout, leader gone) is not counted as acknowledged; each value is sent once.
      const outcome = await produceOne(c, leader, value);
      if (outcome.ok) acked.set(value, outcome.offset);
    }
    expect(killed).toBe(true);
    expect(acked.size).toBe(120);
    await c.startNode(firstLeader);
    await ProcessCluster.waitFor('the restarted node back in the ISR', async () => ((await c.metadata(1, [TOPIC])).topics[0].partitions[0].isr.length === 3 ? true : undefined), CEILING_MS);
    const leader = await ProcessCluster.waitFor('a live leader', () => leaderOf(c), CEILING_MS);
    checkAcked(acked, await readAll(c, leader));
  });

  it('SIGKILL of two of three: no acks=all write succeeds, the survivor serves reads below its high watermark, and every acknowledged write is there after the restarts', async () => {
    const c = await start();
    const acked = new Map<string, bigint>();
    const leader = (await leaderOf(c)) ?? 1;
    for (let i = 0; i < 30; i++) {
      const outcome = await produceOne(c, leader, `before-${i}`);
      expect(outcome.ok).toBe(true);
      if (outcome.ok) acked.set(`before-${i}`, outcome.offset);
    }
    const others = [1, 2, 3].filter((id) => id !== leader);
    await Promise.all(others.map((id) => c.signal(id, 'SIGKILL')));
    // No controller majority: the ISR cannot shrink, so the HW cannot pass new records.
    for (let i = 0; i < 3; i++) {
      const outcome = await produceOne(c, leader, `during-${i}`, 1500);
      expect(outcome.ok, `acks=all write ${i} with two of three down`).toBe(false);
    }
    const readable = await readAll(c, leader);
    checkAcked(acked, new Map([...readable].filter(([offset]) => offset < 30n)));
    expect(readable.size).toBe(30);

    for (const id of others) await c.startNode(id);
    await c.waitReady([1, 2, 3]);
    await ProcessCluster.waitFor('a full ISR again', async () => ((await c.metadata(leader, [TOPIC])).topics[0].partitions[0].isr.length === 3 ? true : undefined), CEILING_MS);
    const after = await ProcessCluster.waitFor('a write after the restarts', async () => {
      const l = await leaderOf(c);
      if (l === undefined) return undefined;
      const outcome = await produceOne(c, l, 'after');
      return outcome.ok ? { leader: l, offset: outcome.offset } : undefined;
    }, CEILING_MS);
    acked.set('after', after.offset);
    const log = await readAll(c, after.leader);
    // The writes refused while two were down may or may not be in the log (they were never
    // acknowledged); every acknowledged one is, at its offset.
    for (const [value, offset] of acked) expect(log.get(offset), `acknowledged ${value}`).toBe(value);
  });
});
