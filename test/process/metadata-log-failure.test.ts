// A node whose metadata log fails (its Raft store cannot write: a full or broken disk) can no
// longer follow the cluster's metadata, so it must not go on serving with what it last knew:
// `kavka broker` halts with exit code 3, as Kafka halts, and a supervisor starts it again.
// Three real processes, every node a voter, an RF-3 topic with min.insync.replicas=2. The
// active controller's metadata log is made to fail through the debug fault switch; a topic
// create then makes every voter write. Wall-clock bounds are generous ceilings.
import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { FAST_CLUSTER_TIMING, ProcessCluster } from '../../src/harness/cluster-process.js';
import { processClusters } from '../helpers/process-clusters.js';
import { Kavka } from '../../src/client/index.js';
import { EXIT_METADATA_LOG_FAILED } from '../../src/cli/exit-codes.js';

const CEILING_MS = 30_000;
const TOPIC = 'survives';
const clusters = processClusters('kavka-metadata-failure-');

describe('a node whose metadata log fails', () => {
  it('halts with exit code 3 while the others go on serving; started again, it rejoins and nothing acknowledged is lost', async () => {
    const exits: { id: number; code: number | null }[] = [];
    const c = await clusters.start({
      size: 3,
      logs: true,
      overrides: { ...FAST_CLUSTER_TIMING, 'debug.fault.injection.enable': 'true', 'default.replication.factor': '3', 'min.insync.replicas': '2' },
      onUnexpectedExit: (id, exit) => exits.push({ id, code: exit.code }),
    });
    await c.waitReady([1, 2, 3]);
    const kavka = new Kavka({ clientId: 'metadata-failure', brokers: [1, 2, 3].map((id) => c.node(id).clientAddress), retry: { retries: 60, initialRetryTimeMs: 50, maxRetryTimeMs: 250 }, requestTimeoutMs: 5000 });
    const admin = kavka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 3, replicationFactor: 3 }], timeoutMs: 10_000 });
    const producer = kavka.producer({ acks: -1, lingerMs: 1 });
    await producer.connect();
    const sent: string[] = [];
    const send = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const value = `v${sent.length}`;
        await producer.send({ topic: TOPIC, messages: [{ key: value, value }] });
        sent.push(value);
      }
    };
    await send(60);

    const controller = await ProcessCluster.waitFor('an agreed controller', () => c.agreedController(), CEILING_MS);
    const victim = controller.controllerId;
    const response = await fetch(`http://${c.node(victim).process?.adminAddress}/debug/storage-fault`, { method: 'POST', body: JSON.stringify({ errno: 'EIO', store: 'metadata' }) });
    expect(response.status).toBe(200);
    // A metadata write: the victim, as the active controller, fails to persist it.
    await admin.createTopics({ topics: [{ topic: 'after-the-failure', numPartitions: 1, replicationFactor: 3 }], timeoutMs: 10_000 }).catch(() => undefined);
    await ProcessCluster.waitFor(`node ${victim} to exit`, async () => (exits.length > 0 ? true : undefined), CEILING_MS, 50);
    expect(exits).toEqual([{ id: victim, code: EXIT_METADATA_LOG_FAILED }]);
    expect(c.isRunning(victim)).toBe(false);
    const log = await readFile(c.logFile(victim) ?? '', 'utf8');
    expect(log).toContain('halting: the metadata log failed');

    // The other two elect a controller, take over the partitions, and acks=all writes go on.
    const next = await ProcessCluster.waitFor('a new controller', () => c.agreedController([victim]), CEILING_MS);
    expect(next.controllerId).not.toBe(victim);
    await send(60);

    // Started again (what a supervisor does), it recovers, catches up and rejoins every ISR.
    await c.startNode(victim);
    await c.waitReady([1, 2, 3], CEILING_MS);
    await ProcessCluster.waitFor(
      `node ${victim} back in every ISR`,
      async () => {
        const m = await c.metadata(next.controllerId, [TOPIC]);
        return m.topics[0].partitions.every((p) => p.isr.includes(victim)) ? true : undefined;
      },
      CEILING_MS,
      100,
    );
    await send(30);
    await producer.disconnect();
    await admin.disconnect();

    const consumer = kavka.consumer({ maxWaitTimeMs: 50 });
    const seen: string[] = [];
    consumer.assign([{ topic: TOPIC, partitions: [0, 1, 2], fromBeginning: true }]);
    await consumer.run({
      eachMessage: async ({ message }) => {
        seen.push(message.value?.toString() ?? '');
      },
    });
    await ProcessCluster.waitFor('every acknowledged record', async () => (seen.length >= sent.length ? true : undefined), CEILING_MS, 50);
    await consumer.disconnect();
    expect([...seen].sort()).toEqual([...sent].sort());
    expect(exits).toHaveLength(1);
  }, 120_000);
});
