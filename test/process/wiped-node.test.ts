// Kavka issue 6: a node is killed with SIGKILL, its whole log.dirs is deleted (meta.properties,
// the Raft store, every partition directory), and it is started again with the same node.id and
// config. Three real `kavka broker` processes, every node a controller voter, an RF-3 topic with
// min.insync.replicas=2 and acks=all writes before, during and after.
//
// What must hold: the wiped node formats its Raft store as rejoining (the cluster knows it), is
// removed and re-added as a voter by the controller, and votes again; its registration (new log
// dir id) takes it out of every ISR; it never leads a partition before it holds every record
// acknowledged before it was killed; every acknowledged record is there afterwards, at its
// offset; and its partition logs end byte-identical to the leader's. Wall-clock bounds are
// generous ceilings.
import { describe, expect, it } from 'vitest';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FAST_CLUSTER_TIMING, ProcessCluster } from '../../src/harness/cluster-process.js';
import { processClusters } from '../helpers/process-clusters.js';
import { call, rawClient } from '../server/raw-client.js';
import type { ProduceResponse__Output } from '../../src/gen/kavka/v1/ProduceResponse.js';
import type { FetchResponse__Output } from '../../src/gen/kavka/v1/FetchResponse.js';

const CEILING_MS = 45_000;
const TOPIC = 'wiped';
const PARTITIONS = 3;
const clusters = processClusters('kavka-wiped-');

type Acknowledged = Map<bigint, string>[];

/** Produces acks=all through whichever node answers, recording every acknowledged record. */
class Workload {
  readonly acknowledged: Acknowledged = Array.from({ length: PARTITIONS }, () => new Map<bigint, string>());
  private stopped = false;
  private sequence = 0;
  private running: Promise<void> = Promise.resolve();

  constructor(private readonly c: ProcessCluster) {}

  start(): void {
    this.stopped = false;
    this.running = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
    for (const id of [...this.clients.keys()]) this.dropClient(id);
  }

  count(): number {
    return this.acknowledged.reduce((n, m) => n + m.size, 0);
  }

  // One connection per node: a connection per request would use up ephemeral ports, one of which
  // may be the port a restarted node must bind again.
  private readonly clients = new Map<number, ReturnType<typeof rawClient>>();

  private clientOf(id: number): ReturnType<typeof rawClient> {
    let client = this.clients.get(id);
    if (client === undefined) {
      client = rawClient(this.c.node(id).clientAddress);
      this.clients.set(id, client);
    }
    return client;
  }

  private dropClient(id: number): void {
    this.clients.get(id)?.close();
    this.clients.delete(id);
  }

  private async loop(): Promise<void> {
    for (let i = 0; !this.stopped; i++) {
      const partition = i % PARTITIONS;
      const metadata = await this.c.metadata([1, 2, 3].find((id) => this.c.isRunning(id)) ?? 1, [TOPIC], 1000).catch(() => undefined);
      const leader = metadata?.topics[0]?.partitions.find((p) => p.partition === partition)?.leaderId ?? -1;
      if (leader < 0 || !this.c.isRunning(leader)) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        continue;
      }
      const values = Array.from({ length: 1 + (i % 4) }, () => `r${this.sequence++}`);
      const client = this.clientOf(leader);
      const result = await call<object, ProduceResponse__Output>(client, 'Produce', {
        acks: -1,
        timeoutMs: 2000,
        topics: [{ name: TOPIC, partitions: [{ partition, records: values.map((v) => ({ key: Buffer.from(v), value: Buffer.from(v) })) }] }],
      });
      if (!result.ok) {
        this.dropClient(leader);
        continue; // unknown outcome: not acknowledged
      }
      const response = result.value.topics[0].partitions[0];
      if (response.errorCode !== 'NONE') continue;
      const base = BigInt(response.baseOffset);
      values.forEach((v, k) => this.acknowledged[partition].set(base + BigInt(k), v));
    }
  }
}

async function readPartition(address: string, partition: number): Promise<Map<bigint, string>> {
  const client = rawClient(address);
  const out = new Map<bigint, string>();
  let offset = '0';
  for (let round = 0; round < 10_000; round++) {
    const result = await call<object, FetchResponse__Output>(client, 'Fetch', { maxWaitMs: 0, plainRecords: true, topics: [{ name: TOPIC, partitions: [{ partition, fetchOffset: offset }] }] });
    if (!result.ok) throw new Error(`fetch failed: ${result.details}`);
    const p = result.value.topics[0].partitions[0];
    expect(p.errorCode).toBe('NONE');
    for (const r of p.records) out.set(BigInt(r.offset), r.value?.toString() ?? '');
    if (p.records.length === 0 || p.nextFetchOffset === p.highWatermark) break;
    offset = p.nextFetchOffset;
  }
  client.close();
  return out;
}

/** The partition's segment files (.log) concatenated in base-offset order. */
async function logBytes(nodeId: number, partition: number): Promise<Buffer> {
  const dir = join(clusters.dataRoot, `node-${nodeId}`, `${TOPIC}-${partition}`);
  const names = (await readdir(dir)).filter((n) => n.endsWith('.log')).sort();
  return Buffer.concat(await Promise.all(names.map((n) => readFile(join(dir, n)))));
}

describe('a node restarted with its log.dirs deleted (issue 6)', () => {
  it('rejoins without voting or leading on an empty log, is re-added as a voter, and ends with every acknowledged record and byte-identical partition logs', async () => {
    const c = await clusters.start({
      size: 3,
      overrides: { ...FAST_CLUSTER_TIMING, 'default.replication.factor': '3', 'min.insync.replicas': '2' },
    });
    await c.waitReady();
    const controller = await ProcessCluster.waitFor('an agreed active controller', () => c.agreedController(), CEILING_MS);
    const admin = rawClient(c.node(controller.controllerId).clientAddress);
    const created = await call<object, { topics: { errorCode: string }[] }>(admin, 'CreateTopics', {
      topics: [{ name: TOPIC, numPartitions: PARTITIONS, replicationFactor: 3, configs: { 'min.insync.replicas': '2' } }],
    });
    admin.close();
    expect(created.ok && created.value.topics[0].errorCode).toBe('NONE');

    const workload = new Workload(c);
    workload.start();
    await ProcessCluster.waitFor('acknowledged writes', async () => (workload.count() >= 300 ? true : undefined), CEILING_MS);

    // The victim leads partition 0, so it was a leader and in every ISR.
    const before = await c.metadata(controller.controllerId, [TOPIC]);
    const victim = before.topics[0].partitions.find((p) => p.partition === 0)?.leaderId ?? 1;
    const others = [1, 2, 3].filter((id) => id !== victim);
    await c.signal(victim, 'SIGKILL');
    // Everything acknowledged while the victim held it: its replacement must hold it before leading.
    const ackedAtKill = workload.acknowledged.map((m) => (m.size === 0 ? 0n : [...m.keys()].reduce((a, b) => (a > b ? a : b)) + 1n));
    await rm(join(clusters.dataRoot, `node-${victim}`), { recursive: true, force: true });
    await new Promise((resolve) => setTimeout(resolve, 500)); // writes go on without it
    await c.startNode(victim);
    const lines = c.node(victim).process?.lines ?? [];

    // Raft: formatted as rejoining, then re-added as a voter with its new directory id.
    await ProcessCluster.waitFor('the wiped node to format its store as rejoining', async () => (lines.some((l) => l.includes('the cluster already knows this node')) ? true : undefined), CEILING_MS);
    await ProcessCluster.waitFor('the wiped node to vote again', async () => (lines.some((l) => l.includes('rejoined the metadata quorum as a voter')) ? true : undefined), CEILING_MS);
    const quorum = await ProcessCluster.waitFor('the controller to report the re-added voter', async () => {
      const agreed = await c.agreedController();
      if (agreed === undefined) return undefined;
      const q = await c.describeQuorum(agreed.controllerId);
      const member = q.voters.find((v) => v.replicaId === victim);
      return member !== undefined && !member.rejoining && member.directoryId !== '' ? q : undefined;
    }, CEILING_MS);
    expect(quorum.voters.map((v) => v.replicaId).sort()).toEqual([1, 2, 3]);
    expect(quorum.observers.map((o) => o.replicaId)).not.toContain(victim);

    // Data: it re-fetched every partition and is back in every ISR.
    await ProcessCluster.waitFor('the wiped node back in every ISR', async () => {
      const m = await c.metadata(others[0], [TOPIC]);
      return m.topics[0].partitions.every((p) => p.isr.includes(victim) && p.leaderId >= 0) ? true : undefined;
    }, CEILING_MS);
    await workload.stop();
    expect(workload.count()).toBeGreaterThan(300);

    // The controller saw the re-created log dir and replaced the old voter identity.
    const controllerLines = others.flatMap((id) => c.node(id).process?.lines ?? []);
    expect(controllerLines.some((l) => l.includes('broker registered with a re-created log dir'))).toBe(true);
    expect(controllerLines.some((l) => l.includes('removing the old voter identity'))).toBe(true);
    expect(controllerLines.some((l) => l.includes('adding a rejoined node back as a controller voter'))).toBe(true);

    // It never led a partition before holding everything acknowledged before it was killed.
    for (const line of lines) {
      if (!line.includes('"leading the partition"')) continue;
      const entry = JSON.parse(line) as { topicPartition: string; logEndOffset: string };
      const partition = Number(entry.topicPartition.slice(TOPIC.length + 1));
      expect(BigInt(entry.logEndOffset), line).toBeGreaterThanOrEqual(ackedAtKill[partition]);
    }

    const after = await c.metadata(others[0], [TOPIC]);
    for (let partition = 0; partition < PARTITIONS; partition++) {
      const leader = after.topics[0].partitions.find((p) => p.partition === partition)?.leaderId ?? -1;
      expect(leader).toBeGreaterThan(0);
      // A leader that just took over may still have its high watermark below its log end; wait
      // until it has moved past every acknowledged offset (a lost record never appears).
      const acknowledged = workload.acknowledged[partition];
      const complete = (stored: Map<bigint, string>) => [...acknowledged].every(([offset, value]) => stored.get(offset) === value);
      const found = await ProcessCluster.waitFor(`every acknowledged record of ${TOPIC}-${partition}`, async () => {
        const stored = await readPartition(c.node(leader).clientAddress, partition);
        return complete(stored) ? stored : undefined;
      }, CEILING_MS, 100).catch(() => undefined);
      const stored = found ?? (await readPartition(c.node(leader).clientAddress, partition));
      for (const [offset, value] of acknowledged) expect(stored.get(offset), `${TOPIC}-${partition}@${offset}`).toBe(value);
      // Byte-identical replicas once the followers have fetched the leader's whole log.
      const leaderBytes = await ProcessCluster.waitFor(`${TOPIC}-${partition} replicas to match`, async () => {
        const bytes = await logBytes(leader, partition);
        const all = await Promise.all([1, 2, 3].map((id) => logBytes(id, partition)));
        return all.every((b) => b.equals(bytes)) ? bytes : undefined;
      }, CEILING_MS, 100);
      expect(leaderBytes.length).toBeGreaterThan(0);
    }
  });
});
