// `npm run bench`: produce then consume fixed-size records through the TypeScript client and
// report msgs/s, MB/s and produce latency (p50/p99 per send() call), once per flush policy
// (log.flush.policy=batch and os, set per topic through its flush.policy config).
//
// Without --brokers it starts one `kavka broker` process per policy (port 0, a temp dir), so the
// client and the broker each have their own event loop, as in a deployment. Figures compare the
// two policies of one run, not runs on another machine or day (DESIGN.md section 9). Besides
// throughput under load it measures latency at low load: one record per send, one send at a
// time, no linger. It reports; it never fails on time.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { startBrokerProcess } from '../harness/index.js';
import { Kavka } from '../client/index.js';
import { percentile, producePhase, rates, type PhaseResult } from './phases.js';

interface BenchOptions {
  brokers: string[] | undefined;
  records: number;
  seconds: number;
  recordBytes: number;
  partitions: number;
  policies: ('batch' | 'os')[];
  batchSizeBytes: number;
  lingerMs: number;
  messagesPerSend: number;
  sendsOutstanding: number;
  acks: -1 | 0 | 1;
  latencySends: number;
}

const USAGE = `usage: npm run bench -- [--brokers host:port] [--records 200000] [--seconds 20]
  [--record-bytes 1024] [--partitions 3] [--policies batch,os] [--batch-size 16384]
  [--linger-ms 5] [--messages-per-send 100] [--sends-outstanding 64] [--acks -1]
  [--latency-sends 2000]`;

function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      brokers: { type: 'string' },
      records: { type: 'string', default: '200000' },
      seconds: { type: 'string', default: '20' },
      'record-bytes': { type: 'string', default: '1024' },
      partitions: { type: 'string', default: '3' },
      policies: { type: 'string', default: 'batch,os' },
      'batch-size': { type: 'string', default: '16384' },
      'linger-ms': { type: 'string', default: '5' },
      'messages-per-send': { type: 'string', default: '100' },
      'sends-outstanding': { type: 'string', default: '64' },
      acks: { type: 'string', default: '-1' },
      'latency-sends': { type: 'string', default: '2000' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const int = (name: string, value: string, min: number) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} ${value}: expected an integer >= ${min}`);
    return n;
  };
  const policies = values.policies.split(',').map((p) => p.trim());
  for (const p of policies) if (p !== 'batch' && p !== 'os') throw new Error(`--policies: ${p} is not batch or os`);
  const acks = int('acks', values.acks, -1);
  if (acks > 1) throw new Error('--acks: expected -1, 0 or 1');
  return {
    brokers: values.brokers?.split(',').filter((b) => b.length > 0),
    records: int('records', values.records, 1),
    seconds: int('seconds', values.seconds, 1),
    recordBytes: int('record-bytes', values['record-bytes'], 0),
    partitions: int('partitions', values.partitions, 1),
    policies: policies as ('batch' | 'os')[],
    batchSizeBytes: int('batch-size', values['batch-size'], 1),
    lingerMs: int('linger-ms', values['linger-ms'], 0),
    messagesPerSend: int('messages-per-send', values['messages-per-send'], 1),
    sendsOutstanding: int('sends-outstanding', values['sends-outstanding'], 1),
    acks: acks as -1 | 0 | 1,
    latencySends: int('latency-sends', values['latency-sends'], 0),
  };
}

/** One record per send, each awaited before the next, linger 0: the latency a lone producer sees. */
async function latencyPhase(kavka: Kavka, topic: string, options: BenchOptions): Promise<number[]> {
  const producer = kavka.producer({ lingerMs: 0, acks: options.acks });
  await producer.connect();
  const value = randomBytes(options.recordBytes);
  const latencies: number[] = [];
  for (let i = 0; i < options.latencySends; i++) {
    const sentAt = performance.now();
    await producer.send({ topic, messages: [{ value }] });
    latencies.push(performance.now() - sentAt);
  }
  await producer.disconnect();
  return latencies.sort((a, b) => a - b);
}

async function consumePhase(kavka: Kavka, topic: string, expected: number): Promise<PhaseResult> {
  const consumer = kavka.consumer({ maxWaitTimeMs: 100, maxBytesPerPartition: 4 * 1024 * 1024, maxBytes: 32 * 1024 * 1024 });
  await consumer.connect();
  consumer.assign([{ topic, fromBeginning: true }]);
  let records = 0;
  let bytes = 0;
  const started = performance.now();
  await consumer.run({
    eachBatch: async ({ batch }) => {
      records += batch.messages.length;
      for (const m of batch.messages) bytes += m.size;
      if (records >= expected) void consumer.stop();
    },
  });
  await consumer.finished();
  const seconds = (performance.now() - started) / 1000;
  await consumer.disconnect();
  return { records, bytes, seconds };
}

async function runPolicy(policy: 'batch' | 'os', options: BenchOptions): Promise<void> {
  let stopBroker: (() => Promise<void>) | undefined;
  let brokers = options.brokers;
  if (brokers === undefined) {
    const dataDir = await mkdtemp(join(tmpdir(), 'kavka-bench-'));
    const broker = await startBrokerProcess(dataDir, { 'log.flush.policy': policy });
    brokers = [broker.clientAddress];
    stopBroker = async () => {
      await broker.stop();
      await rm(dataDir, { recursive: true, force: true });
    };
  }
  try {
    const kavka = new Kavka({ clientId: 'kavka-bench', brokers });
    const admin = kavka.admin();
    const topic = `bench-${policy}-${Date.now()}`;
    await admin.createTopics({ topics: [{ topic, numPartitions: options.partitions, configEntries: [{ name: 'flush.policy', value: policy }] }] });
    await admin.disconnect();
    const produced = await producePhase(kavka, topic, options);
    const latencies = produced.latenciesMs ?? [];
    process.stdout.write(`flush.policy=${policy}\n`);
    process.stdout.write(`  produce: ${rates(produced)}\n`);
    process.stdout.write(`  produce latency per send() of ${options.messagesPerSend} records: p50 ${percentile(latencies, 50).toFixed(2)} ms, p99 ${percentile(latencies, 99).toFixed(2)} ms\n`);
    const consumed = await consumePhase(kavka, topic, produced.records);
    process.stdout.write(`  consume: ${rates(consumed)}\n`);
    if (options.latencySends > 0) {
      const lone = await latencyPhase(kavka, topic, options);
      process.stdout.write(`  latency at low load (${lone.length} sends of 1 record, one at a time): p50 ${percentile(lone, 50).toFixed(2)} ms, p99 ${percentile(lone, 99).toFixed(2)} ms\n`);
    }
  } finally {
    await stopBroker?.();
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  process.stdout.write(
    `kavka bench: ${options.records} records of ${options.recordBytes} B (or ${options.seconds} s), ${options.partitions} partitions, ` +
      `batch.size ${options.batchSizeBytes}, linger.ms ${options.lingerMs}, acks ${options.acks}, ${options.sendsOutstanding} sends of ${options.messagesPerSend} outstanding; ` +
      `${options.brokers === undefined ? 'one broker process per policy' : `brokers ${options.brokers.join(',')}`}\n`,
  );
  for (const policy of options.policies) await runPolicy(policy, options);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
