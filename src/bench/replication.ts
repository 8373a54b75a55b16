// `npm run bench:replication`: what replication costs and how long a leader failure interrupts
// writes, on a 3-node cluster of real `kavka broker` processes (default timing).
//   1. acks=all produce throughput through the client to a topic with replication factor 1 and
//      to one with replication factor 3 (min.insync.replicas=2), same run, same load.
//   2. Leader failure: a producer sends acks=all, one record at a time, to a replicated
//      partition; the partition's leader is SIGKILLed; the figure is the time from the kill to
//      the first send that succeeds after it (median over --failovers runs). It includes
//      broker.session.timeout.ms (9 s by default): a crashed leader is replaced once fenced.
// It reports; it never fails on time.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Kavka } from '../client/index.js';
import { ProcessCluster } from '../harness/cluster-process.js';
import { producePhase, rates, type ProduceOptions } from './phases.js';

const CEILING_MS = 60_000;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function withCluster<T>(body: (cluster: ProcessCluster) => Promise<T>): Promise<T> {
  const dataRoot = await mkdtemp(join(tmpdir(), 'kavka-bench-repl-'));
  const cluster = await ProcessCluster.start({ size: 3, dataRoot, overrides: { 'min.insync.replicas': '2' } });
  try {
    await cluster.waitReady([1, 2, 3], CEILING_MS);
    return await body(cluster);
  } finally {
    await cluster.destroy();
    await rm(dataRoot, { recursive: true, force: true });
  }
}

function clientFor(cluster: ProcessCluster): Kavka {
  return new Kavka({
    clientId: 'kavka-bench-replication',
    brokers: [1, 2, 3].map((id) => cluster.node(id).clientAddress),
    // Retries that outlast a session timeout and an election.
    retry: { retries: 100, initialRetryTimeMs: 50, maxRetryTimeMs: 250 },
  });
}

async function throughput(options: ProduceOptions, partitions: number): Promise<void> {
  await withCluster(async (cluster) => {
    const kavka = clientFor(cluster);
    const admin = kavka.admin();
    await admin.createTopics({
      topics: [
        { topic: 'rf1', numPartitions: partitions, replicationFactor: 1, configEntries: [{ name: 'min.insync.replicas', value: '1' }] },
        { topic: 'rf3', numPartitions: partitions, replicationFactor: 3 },
      ],
    });
    await admin.disconnect();
    for (const topic of ['rf1', 'rf3']) {
      const result = await producePhase(kavka, topic, options);
      process.stdout.write(`  acks=all produce, replication factor ${topic === 'rf1' ? 1 : 3}: ${rates(result)}\n`);
    }
  });
}

async function oneFailover(): Promise<number> {
  return withCluster(async (cluster) => {
    const kavka = clientFor(cluster);
    const admin = kavka.admin();
    await admin.createTopics({ topics: [{ topic: 'failover', numPartitions: 1, replicationFactor: 3 }] });
    await admin.disconnect();
    const producer = kavka.producer({ acks: -1, lingerMs: 0 });
    await producer.connect();
    // Warm up until every replica is in the ISR.
    await ProcessCluster.waitFor('a full ISR', async () => {
      await producer.send({ topic: 'failover', messages: [{ value: 'warm-up' }] });
      return (await cluster.metadata(1, ['failover'])).topics[0].partitions[0].isr.length === 3 ? true : undefined;
    }, CEILING_MS, 100);
    const leader = (await cluster.metadata(1, ['failover'])).topics[0].partitions[0].leaderId;
    const killedAt = performance.now();
    await cluster.signal(leader, 'SIGKILL');
    await producer.send({ topic: 'failover', messages: [{ value: 'after the kill' }] });
    const ms = performance.now() - killedAt;
    await producer.disconnect();
    return ms;
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      records: { type: 'string', default: '100000' },
      seconds: { type: 'string', default: '20' },
      'record-bytes': { type: 'string', default: '1024' },
      partitions: { type: 'string', default: '3' },
      failovers: { type: 'string', default: '3' },
    },
  });
  const int = (name: string, value: string, min: number) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} ${value}: expected an integer >= ${min}`);
    return n;
  };
  const options: ProduceOptions = {
    records: int('records', values.records, 1),
    seconds: int('seconds', values.seconds, 1),
    recordBytes: int('record-bytes', values['record-bytes'], 0),
    batchSizeBytes: 16_384,
    lingerMs: 5,
    messagesPerSend: 100,
    sendsOutstanding: 64,
    acks: -1,
  };
  const partitions = int('partitions', values.partitions, 1);
  const failovers = int('failovers', values.failovers, 0);
  process.stdout.write(`kavka bench:replication: 3 broker processes, ${options.records} records of ${options.recordBytes} B (or ${options.seconds} s) per topic, ${partitions} partitions\n`);
  await throughput(options, partitions);
  if (failovers > 0) {
    const times: number[] = [];
    for (let i = 1; i <= failovers; i++) {
      const ms = await oneFailover();
      times.push(ms);
      process.stdout.write(`  failover ${i}: leader SIGKILL -> first successful acks=all write ${ms.toFixed(0)} ms\n`);
    }
    process.stdout.write(`  leader SIGKILL -> first successful write: median ${median(times).toFixed(0)} ms (min ${Math.min(...times).toFixed(0)}, max ${Math.max(...times).toFixed(0)})\n`);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench:replication: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
