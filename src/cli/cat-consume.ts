// `kavka cat -C`: consume one topic (all partitions, or -p) from -o's start, print each record
// with -f's format or -J's JSON, and stop at -c messages, at e@ timestamps, or with -e when every
// partition has reached its end. "Reached end" and stop notices go to stderr as kcat's do;
// stdout carries only records.
import type { Admin, Consumer, EachBatchPayload, TopicInfo } from '../client/index.js';
import { CliError } from './cli-error.js';
import { info, kavkaFor, type CatIo } from './cat-client.js';
import { formatMessage, formatMessageJson } from './cat-format.js';
import type { CatOptions } from './cat-options.js';
import { OutputWriter } from './output.js';
import { ProgressBar } from './progress.js';

interface Target {
  partitions: number[];
  /** Records expected before the end, for the progress bar; undefined when unknown. */
  expected: number | undefined;
}

async function topicOrThrow(admin: Admin, topic: string): Promise<TopicInfo> {
  const snapshot = await admin.fetchMetadataSnapshot([topic]);
  const info = snapshot.topics.find((t) => t.name === topic);
  if (info === undefined || info.errorCode !== 'NONE') {
    const code = info?.errorCode ?? 'UNKNOWN_TOPIC_OR_PARTITION';
    throw new CliError(`Topic ${topic} error: ${code}: ${info?.errorMessage || 'not in the metadata'}`);
  }
  if (info.partitions.length === 0) throw new CliError(`Topic ${topic} has no partitions`);
  return info;
}

/** Places the consumer at -o's start and says how many records lie before the current end. */
async function position(consumer: Consumer, admin: Admin, options: CatOptions, topic: string, partitions: number[]): Promise<Target> {
  const start = options.start;
  if (start.kind === 'timestamp') {
    consumer.assign([{ topic, partitions, fromTimestamp: start.timestamp.toString() }]);
    return { partitions, expected: undefined };
  }
  const offsets = new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, { low: BigInt(o.low), high: BigInt(o.high) }]));
  consumer.assign([{ topic, partitions, fromBeginning: start.kind === 'beginning' }]);
  let expected = 0n;
  for (const partition of partitions) {
    const { low, high } = offsets.get(partition) ?? { low: 0n, high: 0n };
    let from: bigint;
    if (start.kind === 'beginning') from = low;
    else if (start.kind === 'end') from = high;
    else if (start.kind === 'absolute') from = start.offset;
    else if (start.kind === 'tail') from = high - start.count < low ? low : high - start.count;
    else throw new CliError(`-o ${start.kind} is not supported`);
    if (start.kind === 'absolute' || start.kind === 'tail') consumer.seek({ topic, partition, offset: from });
    if (high > from) expected += high - from;
  }
  return { partitions, expected: Number(expected) };
}

export async function runCatConsumer(options: CatOptions, io: CatIo): Promise<number> {
  const s = options.settings;
  const topic = options.topic as string;
  const kavka = kavkaFor(options);
  const admin = kavka.admin();
  const consumer = kavka.consumer({
    maxWaitTimeMs: s.fetchWaitMaxMs,
    minBytes: s.fetchMinBytes,
    maxBytes: s.fetchMaxBytes,
    maxBytesPerPartition: s.maxPartitionFetchBytes,
    autoOffsetReset: s.autoOffsetReset ?? 'latest',
  });
  const output = new OutputWriter(io.stdout, options.unbuffered);
  const removeSignal = io.onSignal(() => void consumer.stop());
  let progress: ProgressBar | undefined;
  try {
    const metadata = await topicOrThrow(admin, topic);
    const all = metadata.partitions.map((p) => p.partition);
    if (options.partition !== undefined && !all.includes(options.partition)) {
      throw new CliError(`Topic ${topic} (with partitions 0..${all.length - 1}): partition ${options.partition} does not exist`);
    }
    const target = await position(consumer, admin, options, topic, options.partition === undefined ? all : [options.partition]);
    await admin.disconnect();
    progress = new ProgressBar(io.stderr, io.stderrIsTTY && options.exitAtEnd, `consuming ${topic}`, 'messages', target.expected, io.nowMs);
    await consume(consumer, options, io, output, target, progress);
  } finally {
    removeSignal();
    progress?.finish();
    await consumer.disconnect().catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
    await output.end();
  }
  return 0;
}

async function consume(consumer: Consumer, options: CatOptions, io: CatIo, output: OutputWriter, target: Target, progress: ProgressBar): Promise<void> {
  const topic = options.topic as string;
  /** Partitions finished: at their end with -e, or past the e@ stop timestamp. */
  const finished = new Set<number>();
  let received = 0;
  let stopping = false;
  const stopAll = () => {
    stopping = true;
    void consumer.stop();
  };
  const finish = (partition: number): boolean => {
    finished.add(partition);
    consumer.pause([{ topic, partitions: [partition] }]);
    const all = finished.size >= target.partitions.length;
    if (all) stopAll();
    return all;
  };

  const eachBatch = async ({ batch, brokerId }: EachBatchPayload): Promise<void> => {
    for (const message of batch.messages) {
      if (stopping || output.closed) return;
      if (options.stopTimestamp !== undefined && BigInt(message.timestamp) >= options.stopTimestamp) {
        const exiting = finish(batch.partition);
        info(io, options, 1, `Reached stop timestamp for topic ${topic} [${batch.partition}] at offset ${message.offset}${exiting ? ': exiting' : ''}`);
        return;
      }
      const bytes = options.json
        ? formatMessageJson(message, { topic, partition: batch.partition, brokerId }, options.delimiter)
        : formatMessage(options.format, message, { topic, partition: batch.partition, nullString: options.nullString });
      await output.write(bytes);
      received++;
      if (options.count !== undefined && received >= options.count) {
        stopAll();
        return;
      }
    }
    progress.update(received);
    if (output.closed) stopAll();
  };

  await consumer.run({
    eachBatch,
    onPartitionEnd: async ({ partition, offset }) => {
      await output.flush();
      if (stopping) return;
      const exiting = options.exitAtEnd ? finish(partition) : false;
      info(io, options, 1, `Reached end of topic ${topic} [${partition}] at offset ${offset}${exiting ? ': exiting' : ''}`);
    },
  });
  try {
    await consumer.finished();
  } finally {
    await output.flush();
    progress.update(received, true);
  }
}
