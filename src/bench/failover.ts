// `npm run bench:failover`: how long a 3-node cluster of real `kavka broker` processes takes to
// recover from SIGKILL of the node that is the active controller and leads partitions.
// Each run starts a fresh cluster, creates a topic (never written, so its partitions can move;
// see README "Availability"), kills the controller, and measures from the kill to:
//   - a new controller: every survivor names the same new node, which answers as Raft leader;
//   - new partition leaders: no partition is led by the killed node any more, as a survivor sees it.
// The second includes broker.session.timeout.ms: a crashed broker is only fenced (and its
// partitions moved) once its session expires, as in Kafka.
//
// Options: --runs N (default 10), --fast (the scaled-down timing the tests use instead of the
// defaults: election 1000 ms, heartbeat 2000 ms, session 9000 ms). It reports; it never fails on time.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { FAST_CLUSTER_TIMING, ProcessCluster } from '../harness/cluster-process.js';
import { loadKavkaGrpc } from '../proto/index.js';

const PARTITIONS = 6;
const CEILING_MS = 60_000;

interface RunResult {
  controllerMs: number;
  leadersMs: number;
}

async function createTopic(address: string, name: string): Promise<void> {
  const kavka = loadKavkaGrpc();
  const client = new kavka.kavka.v1.Kavka(address, grpc.credentials.createInsecure());
  try {
    await new Promise<void>((resolve, reject) => {
      client.CreateTopics({ topics: [{ name, numPartitions: PARTITIONS, replicationFactor: 3 }] }, { deadline: Date.now() + 10_000 }, (error, response) => {
        const code = response?.topics?.[0]?.errorCode;
        if (error !== null || code !== 'NONE') reject(new Error(`create ${name}: ${error?.message ?? code}`));
        else resolve();
      });
    });
  } finally {
    client.close();
  }
}

async function oneRun(fast: boolean): Promise<RunResult> {
  const dataRoot = await mkdtemp(join(tmpdir(), 'kavka-failover-'));
  const cluster = await ProcessCluster.start({ size: 3, dataRoot, overrides: { 'default.replication.factor': '3', ...(fast ? FAST_CLUSTER_TIMING : {}) } });
  try {
    await cluster.waitReady([1, 2, 3], CEILING_MS);
    const controller = await ProcessCluster.waitFor('a controller', () => cluster.agreedController(), CEILING_MS);
    const victim = controller.controllerId;
    await createTopic(cluster.node(victim).clientAddress, 'failover');
    const survivor = [1, 2, 3].find((id) => id !== victim) ?? 1;
    const leadersOnVictim = async () => (await cluster.metadata(survivor, ['failover'])).topics[0].partitions.filter((p) => p.leaderId === victim).length;
    // Every node must know the topic (and at least one of its partitions must be led by the victim) before the kill.
    await ProcessCluster.waitFor('the victim to lead a partition', async () => ((await leadersOnVictim()) > 0 ? true : undefined), CEILING_MS);

    const killedAt = performance.now();
    await cluster.signal(victim, 'SIGKILL');
    const newController = ProcessCluster.waitFor('a new controller', () => cluster.agreedController([victim]), CEILING_MS, 5).then(() => performance.now() - killedAt);
    const newLeaders = ProcessCluster.waitFor('new partition leaders', async () => ((await leadersOnVictim()) === 0 ? true : undefined), CEILING_MS, 5).then(() => performance.now() - killedAt);
    const [controllerMs, leadersMs] = await Promise.all([newController, newLeaders]);
    return { controllerMs, leadersMs };
  } finally {
    await cluster.destroy();
    await rm(dataRoot, { recursive: true, force: true });
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '10' }, fast: { type: 'boolean', default: false } } });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1 || runs > 100) throw new Error(`--runs must be 1..100, got ${values.runs}`);
  const fast = values.fast === true;
  process.stdout.write(`failover: ${runs} runs, 3 nodes, ${fast ? 'fast test timing' : 'default timing'} (election ${fast ? FAST_CLUSTER_TIMING['controller.quorum.election.timeout.ms'] : 1000} ms, session ${fast ? FAST_CLUSTER_TIMING['broker.session.timeout.ms'] : 9000} ms)\n`);
  const results: RunResult[] = [];
  for (let i = 1; i <= runs; i++) {
    const result = await oneRun(fast);
    results.push(result);
    process.stdout.write(`run ${i}: new controller ${result.controllerMs.toFixed(0)} ms, new partition leaders ${result.leadersMs.toFixed(0)} ms\n`);
  }
  const summary = (name: string, xs: number[]) => `${name}: median ${median(xs).toFixed(0)} ms, min ${Math.min(...xs).toFixed(0)} ms, max ${Math.max(...xs).toFixed(0)} ms`;
  process.stdout.write(`${summary('SIGKILL -> new controller', results.map((r) => r.controllerMs))}\n`);
  process.stdout.write(`${summary('SIGKILL -> new partition leaders', results.map((r) => r.leadersMs))}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
