// `npm run bench:recovery`: what CRC-checking the sealed segments costs when a partition opens
// (log.recovery.verify.sealed.segments), and what the serving-path CRC check costs a read.
//   1. Writes one partition of --gib GiB in --segment-mib MiB segments (64 KiB batches of 1 KiB
//      records, fsynced at each roll) and closes it cleanly.
//   2. Opens it N times with verification `never` (the clean-shutdown path: index files only) and
//      with `always` (every batch of every sealed segment read and CRC-checked), alternating, and
//      reports the median time of each. The page cache is warm (the data was just written); a
//      cold cache reads at disk speed instead, which this reports only if --drop-caches works.
//   3. Reads the whole log front to back in 1 MiB fetches (each batch CRC-checked before it is
//      served) and reports the rate.
// It reports; it never fails on time.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { encodeRecordBatch } from '../codec/record-batch.js';
import { openPartitionLog, type LogConfig, type SealedSegmentVerification } from '../storage/index.js';
import { systemClock } from '../util/clock.js';
import { silentLogger } from '../util/logger.js';

const { values: args } = parseArgs({
  options: {
    gib: { type: 'string', default: '1' },
    'segment-mib': { type: 'string', default: '128' },
    runs: { type: 'string', default: '3' },
    'drop-caches': { type: 'boolean', default: false },
  },
});

const TP = { topic: 'bench', partition: 0 };

function config(segmentBytes: number): LogConfig {
  return {
    segmentBytes,
    segmentMs: 7 * 24 * 3_600_000,
    retentionMs: -1,
    retentionBytes: -1,
    retentionMessages: -1,
    maxMessageBytes: 1_048_588,
    indexIntervalBytes: 4096,
    flushPolicy: 'os',
    messageTimestampType: 'CreateTime',
    producerIdExpirationMs: 86_400_000,
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function dropCaches(): Promise<boolean> {
  try {
    await writeFile('/proc/sys/vm/drop_caches', '3\n');
    return true;
  } catch {
    return false;
  }
}

async function openOnce(directory: string, cfg: LogConfig, verify: SealedSegmentVerification): Promise<{ ms: number; verified: number }> {
  const started = performance.now();
  const log = await openPartitionLog({ directory, topicPartition: TP, config: cfg, clock: systemClock, logger: silentLogger(), verifySealedSegments: verify });
  const ms = performance.now() - started;
  const verified = log.recovery.sealedSegmentsVerified;
  await log.close();
  return { ms, verified };
}

async function main(): Promise<void> {
  const totalBytes = Number(args.gib) * 1024 ** 3;
  const cfg = config(Number(args['segment-mib']) * 1024 * 1024);
  const runs = Number(args.runs);
  const root = await mkdtemp(join(tmpdir(), 'kavka-bench-recovery-'));
  const directory = join(root, 'bench-0');
  try {
    const records = Array.from({ length: 64 }, (_, i) => ({ key: null, value: Buffer.alloc(1000, i), timestamp: BigInt(Date.now()) }));
    const template = encodeRecordBatch({ records });
    let log = await openPartitionLog({ directory, topicPartition: TP, config: cfg, clock: systemClock, logger: silentLogger() });
    const writeStarted = performance.now();
    while (log.sizeBytes < totalBytes) await log.appendAsLeader(Buffer.from(template), 0);
    await log.flush();
    const writeMs = performance.now() - writeStarted;
    const segments = log.segmentCount;
    const bytes = log.sizeBytes;
    await log.close();
    process.stdout.write(`wrote ${(bytes / 1024 ** 3).toFixed(2)} GiB in ${segments} segments (${args['segment-mib']} MiB each) in ${(writeMs / 1000).toFixed(1)} s\n`);

    const timings: Record<SealedSegmentVerification, number[]> = { never: [], unclean: [], always: [] };
    let verified = 0;
    for (let run = 0; run < runs; run++) {
      for (const policy of ['never', 'always'] as const) {
        const result = await openOnce(directory, cfg, policy);
        timings[policy].push(result.ms);
        if (policy === 'always') verified = result.verified;
      }
    }
    process.stdout.write(`open, warm page cache, median of ${runs}: without verification ${median(timings.never).toFixed(0)} ms; verifying ${verified} sealed segments ${median(timings.always).toFixed(0)} ms (${(bytes / 1024 ** 2 / (median(timings.always) / 1000)).toFixed(0)} MiB/s)\n`);

    if (args['drop-caches']) {
      if (await dropCaches()) {
        const cold = await openOnce(directory, cfg, 'always');
        await dropCaches();
        const coldNever = await openOnce(directory, cfg, 'never');
        process.stdout.write(`open, cold page cache: without verification ${coldNever.ms.toFixed(0)} ms; verifying ${cold.ms.toFixed(0)} ms (${(bytes / 1024 ** 2 / (cold.ms / 1000)).toFixed(0)} MiB/s)\n`);
      } else {
        process.stdout.write('open, cold page cache: not measured (cannot write /proc/sys/vm/drop_caches here)\n');
      }
    }

    log = await openPartitionLog({ directory, topicPartition: TP, config: cfg, clock: systemClock, logger: silentLogger() });
    const readStarted = performance.now();
    let offset = log.logStartOffset;
    let read = 0;
    while (offset < log.logEndOffset) {
      const result = await log.read(offset, 1024 * 1024, { maxOffset: log.logEndOffset, minOneBatch: true });
      read += result.batches.length;
      offset = result.nextOffset;
    }
    const readMs = performance.now() - readStarted;
    process.stdout.write(`read front to back in 1 MiB fetches, each batch CRC-checked before serving: ${(read / 1024 ** 2 / (readMs / 1000)).toFixed(0)} MiB/s\n`);
    await log.close();
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

await main();
