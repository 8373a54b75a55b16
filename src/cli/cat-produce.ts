// `kavka cat -P`: produce messages read from stdin (or a file with -l) split at -D, with a key
// split off at -K, or each file given as one message. Sends go out in chunks with a bounded
// number of sends outstanding, so a large file streams through in constant memory. The command
// waits for every acknowledgement and exits 1 if any message failed.
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { Message, Producer } from '../client/index.js';
import { KavkaError } from '../util/errors.js';
import { describeError } from './cli-error.js';
import { info, kavkaFor, type CatIo } from './cat-client.js';
import type { CatOptions } from './cat-options.js';
import { DelimitedSplitter, splitKey } from './delimited-splitter.js';
import { ProgressBar } from './progress.js';

/** Messages per send() call and sends outstanding: bounds the memory a fast reader can fill. */
const MESSAGES_PER_SEND = 1_000;
const BYTES_PER_SEND = 1024 * 1024;
const SENDS_OUTSTANDING_MAX = 16;
/** Longest message the reader accepts without a delimiter (librdkafka's message.max.bytes). */
const MAX_MESSAGE_BYTES = 1_000_000;

/** Batches messages into send() calls and tracks delivery. */
class ChunkedSender {
  private chunk: Message[] = [];
  private chunkBytes = 0;
  private readonly outstanding = new Set<Promise<void>>();
  delivered = 0;
  failed = 0;
  queued = 0;

  constructor(
    private readonly producer: Producer,
    private readonly topic: string,
    private readonly onFailure: (count: number, error: unknown) => void,
  ) {}

  async add(message: Message, size: number): Promise<void> {
    this.chunk.push(message);
    this.chunkBytes += size;
    this.queued++;
    if (this.chunk.length >= MESSAGES_PER_SEND || this.chunkBytes >= BYTES_PER_SEND) await this.flush();
  }

  /** Sends the collected messages; waits while too many sends are outstanding. */
  async flush(): Promise<void> {
    if (this.chunk.length === 0) return;
    const messages = this.chunk;
    this.chunk = [];
    this.chunkBytes = 0;
    const sent: Promise<void> = this.producer.send({ topic: this.topic, messages }).then(
      () => {
        this.delivered += messages.length;
      },
      (error: unknown) => {
        this.failed += messages.length;
        this.onFailure(messages.length, error);
      },
    );
    const tracked = sent.finally(() => this.outstanding.delete(tracked));
    this.outstanding.add(tracked);
    while (this.outstanding.size >= SENDS_OUTSTANDING_MAX) await Promise.race(this.outstanding);
  }

  async finish(): Promise<void> {
    await this.flush();
    await Promise.all(this.outstanding);
  }
}

function messageOf(payload: Buffer, options: CatOptions): { message: Message; size: number } {
  const split = splitKey(payload, options.keyDelimiter, options.nullString !== undefined);
  const key = split !== undefined ? split.key : (options.fixedKey ?? null);
  const value = split !== undefined ? split.value : payload;
  const message: Message = { key: key ?? options.fixedKey ?? null, value };
  if (options.partition !== undefined) message.partition = options.partition;
  if (options.headers.length > 0) {
    const headers: Record<string, (Buffer | null)[]> = {};
    for (const h of options.headers) (headers[h.key] ??= []).push(h.value);
    message.headers = headers;
  }
  return { message, size: payload.length };
}

export async function runCatProducer(options: CatOptions, io: CatIo): Promise<number> {
  const s = options.settings;
  const kavka = kavkaFor(options);
  const producer = kavka.producer({
    batchSizeBytes: s.batchSizeBytes,
    lingerMs: s.lingerMs,
    acks: s.acks,
    compression: s.compression,
    maxInFlightRequests: s.maxInFlightRequests,
    timeoutMs: s.produceTimeoutMs,
  });
  const topic = options.topic as string;
  let reportedFailures = 0;
  const sender = new ChunkedSender(producer, topic, (count, error) => {
    if (reportedFailures++ < 10) info(io, options, 1, `Delivery failed for ${count} message${count === 1 ? '' : 's'}: ${describeError(error)}`);
  });
  let interrupted = false;
  let input: Readable | undefined;
  const removeSignal = io.onSignal(() => {
    interrupted = true;
    input?.destroy();
  });
  let progress: ProgressBar | undefined;
  try {
    await producer.connect();
    if (options.files.length > 0 && !options.lineMode) {
      for (const file of options.files) {
        const { message, size } = messageOf(await readFile(file), { ...options, keyDelimiter: undefined });
        await sender.add(message, size);
        if (options.count !== undefined && sender.queued >= options.count) break;
      }
    } else {
      const file = options.lineMode ? options.files[0] : undefined;
      const totalBytes = file === undefined ? undefined : (await stat(file)).size;
      progress = new ProgressBar(io.stderr, io.stderrIsTTY, `producing to ${topic}`, file === undefined ? 'messages' : 'bytes', totalBytes, io.nowMs);
      input = file === undefined ? io.stdin : createReadStream(file);
      await produceStream(input, options, io, sender, progress, () => interrupted);
    }
    await sender.finish();
    progress?.finish();
    await producer.disconnect();
  } catch (error) {
    progress?.finish();
    await producer.disconnect().catch(() => undefined);
    throw error;
  } finally {
    removeSignal();
  }
  if (interrupted) info(io, options, 1, `Interrupted: ${sender.delivered} messages delivered, ${sender.failed} failed`);
  if (sender.failed > 0) {
    info(io, options, 0, `ERROR: ${sender.failed} of ${sender.queued} messages failed to be delivered`);
    return 1;
  }
  info(io, options, 2, `${sender.delivered} messages delivered to ${topic}`);
  return 0;
}

async function produceStream(input: Readable, options: CatOptions, io: CatIo, sender: ChunkedSender, progress: ProgressBar, interrupted: () => boolean): Promise<void> {
  const splitter = new DelimitedSplitter(options.delimiter, MAX_MESSAGE_BYTES);
  let bytesRead = 0;
  const limit = options.count;
  const take = async (payload: Buffer): Promise<boolean> => {
    if (limit !== undefined && sender.queued >= limit) return false;
    const { message, size } = messageOf(payload, options);
    await sender.add(message, size);
    if (options.tee) io.stdout.write(Buffer.concat([payload, options.delimiter]));
    return true;
  };
  try {
    for await (const chunk of input as AsyncIterable<Buffer | string>) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      bytesRead += bytes.length;
      for (const payload of splitter.push(bytes)) {
        if (!(await take(payload))) return;
      }
      // Send what this read completed now: interactive input must not wait for more lines.
      await sender.flush();
      progress.update(options.lineMode ? bytesRead : sender.queued);
      if (interrupted()) return;
    }
  } catch (error) {
    if (interrupted()) return;
    throw new KavkaError('UNKNOWN_SERVER_ERROR', `unable to read input: ${(error as Error).message}`, { retriable: false, cause: error });
  }
  for (const payload of splitter.end()) await take(payload);
}
