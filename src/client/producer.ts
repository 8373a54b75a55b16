// The kafkajs-shaped producer. send() partitions its messages, appends them to the accumulator
// and resolves once every batch holding them is acknowledged. Batches leave the accumulator when
// full (batchSizeBytes) or after lingerMs, are encoded once as RecordBatch v2, grouped per leader
// broker (one batch per partition per request, up to maxRequestSizeBytes) and sent on that
// broker's ProduceStream with at most maxInFlightRequests outstanding.
//
// Retriable failures (a moved leader, a broker restart) refresh metadata and resend the same
// encoded batch after a backoff, up to retry.retries times. Without an idempotent producer a
// retry may reorder or duplicate records, as with Kafka's producer when idempotence is off.
//
// Called from user code on any tick; the state below is only touched synchronously between
// awaits, so no interleaving sees a half-updated queue.
import { encodeRecordBatch, type CompressionName } from '../codec/record-batch.js';
import { KavkaError, toKavkaError, isRetriable } from '../util/errors.js';
import type { Clock } from '../util/clock.js';
import { RecordAccumulator, type BatchSettings, type ProducerBatch } from './accumulator.js';
import type { Cluster, TopicInfo } from './cluster.js';
import { errorNameOf } from './cluster.js';
import { estimateRecordSize, toBytes, toRecordHeaders, toTimestamp } from './convert.js';
import { StickyPartitioner, type PartitionChoice } from './partitioner.js';
import { ProduceStreamConnection } from './produce-stream.js';
import { backoffMs, withRetry } from './retry.js';
import type { ConnectionPool } from './rpc.js';
import type { ProduceResponse__Output } from '../gen/kavka/v1/ProduceResponse.js';
import type { Acks, ClientLogger, CustomPartitioner, Message, ProducerBatchRecord, ProducerConfig, ProducerRecord, RecordMetadata, RetryOptions } from './types.js';

export interface ProducerDependencies {
  cluster: Cluster;
  pool: ConnectionPool;
  clock: Clock;
  random: () => number;
  sleep: (ms: number) => Promise<void>;
  retry: RetryOptions;
  requestTimeoutMs: number;
  logger: ClientLogger | undefined;
}

interface ResolvedProducerConfig {
  lingerMs: number;
  batchSizeBytes: number;
  acks: Acks;
  compression: CompressionName;
  maxInFlightRequests: number;
  maxRequestSizeBytes: number;
  maxBufferedBytes: number;
  timeoutMs: number;
  allowAutoTopicCreation: boolean;
  useUnaryProduce: boolean;
}

function resolveConfig(config: ProducerConfig): ResolvedProducerConfig {
  const resolved: ResolvedProducerConfig = {
    lingerMs: config.lingerMs ?? 5,
    batchSizeBytes: config.batchSizeBytes ?? 16_384,
    acks: config.acks ?? -1,
    compression: config.compression ?? 'none',
    maxInFlightRequests: config.maxInFlightRequests ?? 5,
    maxRequestSizeBytes: config.maxRequestSizeBytes ?? 1_048_576,
    maxBufferedBytes: config.maxBufferedBytes ?? 32 * 1024 * 1024,
    timeoutMs: config.timeoutMs ?? 30_000,
    allowAutoTopicCreation: config.allowAutoTopicCreation ?? true,
    useUnaryProduce: config.useUnaryProduce ?? false,
  };
  const positive: [keyof ResolvedProducerConfig, number][] = [
    ['batchSizeBytes', resolved.batchSizeBytes],
    ['maxInFlightRequests', resolved.maxInFlightRequests],
    ['maxRequestSizeBytes', resolved.maxRequestSizeBytes],
    ['maxBufferedBytes', resolved.maxBufferedBytes],
    ['timeoutMs', resolved.timeoutMs],
  ];
  for (const [name, value] of positive) {
    if (!Number.isInteger(value) || value <= 0) throw new KavkaError('INVALID_REQUEST', `producer ${name} must be a positive integer, got ${value}`, { retriable: false });
  }
  if (!Number.isInteger(resolved.lingerMs) || resolved.lingerMs < 0) throw new KavkaError('INVALID_REQUEST', `producer lingerMs must be a non-negative integer, got ${resolved.lingerMs}`, { retriable: false });
  checkAcks(resolved.acks);
  checkCompression(resolved.compression);
  return resolved;
}

function checkAcks(acks: number): asserts acks is Acks {
  if (acks !== -1 && acks !== 0 && acks !== 1) throw new KavkaError('INVALID_REQUIRED_ACKS', `acks must be -1, 0 or 1, got ${acks}`, { retriable: false });
}

function checkCompression(compression: string): asserts compression is CompressionName {
  if (compression !== 'none' && compression !== 'gzip') throw new KavkaError('UNSUPPORTED_COMPRESSION_TYPE', `compression ${compression} is not supported; use none or gzip`, { retriable: false });
}

function choiceOf(topic: TopicInfo): PartitionChoice {
  return { partitions: topic.partitions.map((p) => p.partition), available: topic.partitions.filter((p) => p.leader >= 0).map((p) => p.partition) };
}

/** Where the first record of one send() landed in one partition. */
interface SendPlacement {
  batch: ProducerBatch;
  indexInBatch: number;
}

type ProducerState = 'idle' | 'connected' | 'disconnecting' | 'disconnected';

export class Producer {
  private readonly config: ResolvedProducerConfig;
  private readonly accumulator: RecordAccumulator;
  private readonly sticky: StickyPartitioner;
  private readonly custom: CustomPartitioner | undefined;
  private readonly connections = new Map<string, ProduceStreamConnection>();
  /**
   * Batches routed to a broker and waiting for an in-flight slot: per address, a FIFO per
   * partition ("topic\u0000partition"). Map order is the round-robin order of partitions.
   */
  private readonly brokerQueues = new Map<string, Map<string, ProducerBatch[]>>();
  /** Every batch not yet settled, wherever it is. */
  private readonly unsettled = new Set<ProducerBatch>();
  private readonly topicsOfInterest = new Set<string>();
  /** Cancels the linger timer; undefined when none is set. */
  private cancelTimer: (() => void) | undefined;
  private timerDueMs = Infinity;
  private refreshing: Promise<void> | undefined;
  private appendChain: Promise<void> = Promise.resolve();
  /** Record bytes appended and not yet settled; bounded by maxBufferedBytes. */
  private bufferedBytes = 0;
  private state: ProducerState = 'idle';

  constructor(
    config: ProducerConfig,
    private readonly deps: ProducerDependencies,
  ) {
    this.config = resolveConfig(config);
    this.accumulator = new RecordAccumulator(this.config.batchSizeBytes, this.config.lingerMs);
    this.sticky = new StickyPartitioner(deps.random);
    this.custom = config.partitioner?.();
  }

  async connect(): Promise<void> {
    if (this.state === 'disconnecting' || this.state === 'disconnected') throw new KavkaError('NETWORK_EXCEPTION', 'the producer is disconnected; create a new one', { retriable: false });
    await this.deps.cluster.connect();
    this.state = 'connected';
  }

  async send(record: ProducerRecord): Promise<RecordMetadata[]> {
    if (this.state === 'disconnecting' || this.state === 'disconnected') throw new KavkaError('NETWORK_EXCEPTION', 'the producer is disconnected', { retriable: false });
    if (this.state === 'idle') await this.connect();
    const settings = this.settingsFor(record);
    if (typeof record.topic !== 'string' || record.topic.length === 0) throw new KavkaError('INVALID_TOPIC_EXCEPTION', 'send() needs a topic', { retriable: false });
    if (!Array.isArray(record.messages)) throw new KavkaError('INVALID_RECORD', `send() to ${record.topic} needs a messages array`, { retriable: false });
    if (record.messages.length === 0) return [];
    this.topicsOfInterest.add(record.topic);
    // Appends happen in send() call order, even when one send waits for metadata: records of
    // consecutive sends to one partition keep their order.
    const appended = this.appendChain.then(async () => {
      await this.bufferSpace();
      const topic = await this.topicMetadata(record.topic);
      const placements = this.appendAll(topic, record.messages, settings);
      this.afterAppend();
      return placements;
    });
    this.appendChain = appended.then(
      () => undefined,
      () => undefined,
    );
    return this.awaitPlacements(record.topic, await appended, settings.acks);
  }

  async sendBatch(batch: ProducerBatchRecord): Promise<RecordMetadata[]> {
    const results = await Promise.all(
      batch.topicMessages.map((tm) => this.send({ topic: tm.topic, messages: tm.messages, acks: batch.acks, timeoutMs: batch.timeoutMs, compression: batch.compression })),
    );
    return results.flat();
  }

  /** Sends every waiting batch now and resolves when all sent batches are settled. */
  async flush(): Promise<void> {
    this.drain(true);
    while (this.unsettled.size > 0) {
      await Promise.allSettled([...this.unsettled].map((b) => b.done));
      this.drain(true);
    }
  }

  /** Flushes pending records, then closes the streams. Further sends fail. */
  async disconnect(): Promise<void> {
    if (this.state === 'disconnected') return;
    this.state = 'disconnecting';
    // Sends still waiting for metadata append first, so their records are flushed too.
    await this.appendChain;
    await this.flush();
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    for (const connection of this.connections.values()) connection.close();
    this.connections.clear();
    this.state = 'disconnected';
  }

  // ---------------------------------------------------------------- appending

  private settingsFor(record: ProducerRecord): BatchSettings {
    const acks = record.acks ?? this.config.acks;
    checkAcks(acks);
    const compression = record.compression ?? this.config.compression;
    checkCompression(compression);
    const timeoutMs = record.timeoutMs ?? this.config.timeoutMs;
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new KavkaError('INVALID_REQUEST', `timeoutMs must be a positive integer, got ${timeoutMs}`, { retriable: false });
    return { acks, compression, timeoutMs };
  }

  private topicMetadata(topic: string): Promise<TopicInfo> {
    return withRetry(() => this.deps.cluster.topic(topic, this.config.allowAutoTopicCreation), {
      options: this.deps.retry,
      random: this.deps.random,
      sleep: this.deps.sleep,
    });
  }

  private partitionFor(topic: TopicInfo, message: Message, key: Buffer | null): number {
    const count = topic.partitions.length;
    let partition: number;
    if (message.partition !== undefined && message.partition !== null) partition = message.partition;
    else if (this.custom !== undefined) {
      partition = this.custom({ topic: topic.name, partitionMetadata: topic.partitions.map((p) => ({ partitionId: p.partition, leader: p.leader })), message });
    } else partition = this.sticky.partition(topic.name, key, choiceOf(topic));
    if (!Number.isInteger(partition) || partition < 0 || partition >= count) {
      throw new KavkaError('UNKNOWN_TOPIC_OR_PARTITION', `partition ${partition} does not exist in ${topic.name} (partitions 0..${count - 1})`, { retriable: false });
    }
    return partition;
  }

  private appendAll(topic: TopicInfo, messages: Message[], settings: BatchSettings): Map<number, SendPlacement[]> {
    // Convert and partition everything first, so a bad message fails the send before any record
    // of it is queued.
    const nowMs = this.deps.clock.nowMs();
    const prepared = messages.map((message) => {
      const key = toBytes(message.key);
      const value = toBytes(message.value);
      const headers = toRecordHeaders(message.headers);
      const timestamp = toTimestamp(message.timestamp, nowMs);
      return { partition: this.partitionFor(topic, message, key), record: { key, value, headers, timestamp }, size: estimateRecordSize(key, value, headers) };
    });
    const placements = new Map<number, SendPlacement[]>();
    const monotonicMs = this.deps.clock.monotonicMs();
    for (const { partition, record, size } of prepared) {
      const { batch, newBatch } = this.accumulator.append(topic.name, partition, record, size, settings, monotonicMs);
      if (newBatch) {
        this.track(batch);
        this.bufferedBytes += batch.sizeBytes - size;
      }
      this.bufferedBytes += size;
      let list = placements.get(partition);
      if (list === undefined) {
        list = [];
        placements.set(partition, list);
      }
      if (list[list.length - 1]?.batch !== batch) list.push({ batch, indexInBatch: batch.recordCount - 1 });
    }
    return placements;
  }

  private track(batch: ProducerBatch): void {
    this.unsettled.add(batch);
    const settled = () => {
      this.unsettled.delete(batch);
      this.bufferedBytes -= batch.sizeBytes;
    };
    batch.done.then(settled, settled);
  }

  /**
   * Kafka's buffer.memory: while unsettled records hold maxBufferedBytes, a send waits (sending
   * lingering batches at once) until some settle. Sends append in order, so one waiting send
   * holds back the later ones too.
   */
  private async bufferSpace(): Promise<void> {
    while (this.bufferedBytes >= this.config.maxBufferedBytes && this.unsettled.size > 0) {
      this.drain(true);
      await Promise.race([...this.unsettled].map((b) => b.done.then(
        () => undefined,
        () => undefined,
      )));
    }
  }

  private async awaitPlacements(topic: string, placements: Map<number, SendPlacement[]>, acks: Acks): Promise<RecordMetadata[]> {
    const all = [...placements.values()].flat();
    await Promise.all(all.map((p) => p.batch.done));
    const out: RecordMetadata[] = [];
    for (const [partition, list] of [...placements.entries()].sort((a, b) => a[0] - b[0])) {
      const first = list[0];
      const result = await first.batch.done;
      const baseOffset = acks === 0 || result.baseOffset < 0n ? '-1' : (result.baseOffset + BigInt(first.indexInBatch)).toString();
      out.push({ topicName: topic, partition, errorCode: 0, baseOffset, logAppendTime: result.logAppendTime.toString(), logStartOffset: result.logStartOffset.toString() });
    }
    return out;
  }

  // ---------------------------------------------------------------- sending

  private afterAppend(): void {
    if (this.accumulator.hasFullBatch()) this.drain(false);
    else this.scheduleTimer();
  }

  private scheduleTimer(): void {
    const deadline = this.accumulator.nextDeadlineMs();
    if (deadline === undefined) return;
    if (this.cancelTimer !== undefined && this.timerDueMs <= deadline) return;
    this.cancelTimer?.();
    this.timerDueMs = deadline;
    this.cancelTimer = this.deps.clock.schedule(Math.max(0, deadline - this.deps.clock.monotonicMs()), () => {
      this.cancelTimer = undefined;
      this.timerDueMs = Infinity;
      this.drain(false);
    });
  }

  /** Moves ready batches (all of them with `flush`) from the accumulator towards their brokers. */
  private drain(flush: boolean): void {
    const ready = this.accumulator.drainReady(this.deps.clock.monotonicMs(), flush || this.state === 'disconnecting');
    for (const batch of ready) {
      const topic = this.deps.cluster.cachedTopic(batch.topic);
      if (topic !== undefined) this.sticky.onBatchSent(batch.topic, batch.partition, choiceOf(topic));
      this.route(batch);
    }
    this.scheduleTimer();
  }

  private route(batch: ProducerBatch): void {
    let address: string;
    try {
      address = this.deps.cluster.leaderFor(batch.topic, batch.partition).address;
    } catch (error) {
      this.retryLater(batch, toKavkaError(error));
      return;
    }
    let queues = this.brokerQueues.get(address);
    if (queues === undefined) {
      queues = new Map();
      this.brokerQueues.set(address, queues);
    }
    const key = `${batch.topic}\u0000${batch.partition}`;
    const queue = queues.get(key);
    if (queue === undefined) queues.set(key, [batch]);
    else queue.push(batch);
    this.pump(address);
  }

  private connection(address: string): ProduceStreamConnection {
    let connection = this.connections.get(address);
    if (connection === undefined) {
      connection = new ProduceStreamConnection(this.deps.pool.client(address), address, this.config.maxInFlightRequests, this.config.useUnaryProduce, this.deps.clock, this.deps.logger);
      this.connections.set(address, connection);
    }
    return connection;
  }

  /** Sends queued batches to `address` while it has free in-flight slots. */
  private pump(address: string): void {
    const queues = this.brokerQueues.get(address);
    if (queues === undefined) return;
    const connection = this.connection(address);
    while (queues.size > 0 && connection.hasCapacity) {
      const request = this.takeRequest(queues);
      this.sendRequest(address, connection, request);
    }
    if (queues.size === 0) this.brokerQueues.delete(address);
  }

  /**
   * Takes batches for one request: from each partition queue in round-robin order, its oldest
   * batches (so per-partition order holds), all with the acks of the first, up to
   * maxRequestSizeBytes (the first batch always goes, however large). Several batches of one
   * partition travel back to back in one PartitionProduceData, which the broker appends at
   * consecutive offsets. A partition that still has batches moves to the back of the order.
   * Costs O(partitions + batches taken).
   */
  private takeRequest(queues: Map<string, ProducerBatch[]>): ProducerBatch[] {
    const taken: ProducerBatch[] = [];
    let acks: number | undefined;
    let bytes = 0;
    for (const [key, queue] of [...queues]) {
      acks ??= queue[0].settings.acks;
      while (queue.length > 0 && queue[0].settings.acks === acks) {
        const size = this.encode(queue[0]).length;
        if (taken.length > 0 && bytes + size > this.config.maxRequestSizeBytes) break;
        taken.push(queue.shift() as ProducerBatch);
        bytes += size;
      }
      queues.delete(key);
      if (queue.length > 0) queues.set(key, queue);
      if (bytes >= this.config.maxRequestSizeBytes) break;
    }
    return taken;
  }

  private encode(batch: ProducerBatch): Buffer {
    batch.encoded ??= encodeRecordBatch({ records: batch.records, compression: batch.settings.compression });
    return batch.encoded;
  }

  private sendRequest(address: string, connection: ProduceStreamConnection, batches: ProducerBatch[]): void {
    // Per topic, per partition, the batches in queue order; their bytes go back to back.
    const byTopic = new Map<string, Map<number, ProducerBatch[]>>();
    let timeoutMs = 0;
    for (const batch of batches) {
      let partitions = byTopic.get(batch.topic);
      if (partitions === undefined) {
        partitions = new Map();
        byTopic.set(batch.topic, partitions);
      }
      const list = partitions.get(batch.partition);
      if (list === undefined) partitions.set(batch.partition, [batch]);
      else list.push(batch);
      timeoutMs = Math.max(timeoutMs, batch.settings.timeoutMs);
    }
    const topics = [...byTopic].map(([name, partitions]) => ({
      name,
      partitions: [...partitions].map(([partition, list]) => ({
        partition,
        batches: list.length === 1 ? this.encode(list[0]) : Buffer.concat(list.map((b) => this.encode(b))),
      })),
    }));
    const request = { acks: batches[0].settings.acks, timeoutMs, topics };
    connection.send(request, timeoutMs + this.deps.requestTimeoutMs).then(
      (response) => {
        this.onResponse(byTopic, response);
        this.pump(address);
      },
      (error: unknown) => {
        const failure = toKavkaError(error);
        this.deps.logger?.debug({ address, error: failure.message, code: failure.code }, 'produce request failed');
        for (const batch of batches) this.onBatchError(batch, failure);
        this.pump(address);
      },
    );
  }

  private onResponse(sent: Map<string, Map<number, ProducerBatch[]>>, response: ProduceResponse__Output): void {
    const results = new Map<string, ProduceResponse__Output['topics'][number]['partitions'][number]>();
    for (const topic of response.topics) {
      for (const p of topic.partitions) results.set(`${topic.name}\u0000${p.partition}`, p);
    }
    for (const [topic, partitions] of sent) {
      for (const [partition, list] of partitions) {
        const result = results.get(`${topic}\u0000${partition}`);
        const code = result === undefined ? 'UNKNOWN_SERVER_ERROR' : errorNameOf(result.errorCode);
        if (result === undefined || code !== 'NONE') {
          const message = result === undefined ? `produce response has no result for ${topic}-${partition}` : `${topic}-${partition}: ${result.errorMessage || code}`;
          const error = new KavkaError(code, message, result === undefined ? { retriable: false } : {});
          for (const batch of list) this.onBatchError(batch, error);
          continue;
        }
        // The broker appended the batches at consecutive offsets from base_offset.
        let baseOffset = BigInt(result.baseOffset);
        for (const batch of list) {
          batch.succeed({ baseOffset, logAppendTime: BigInt(result.logAppendTime), logStartOffset: BigInt(result.logStartOffset) });
          if (baseOffset >= 0n) baseOffset += BigInt(batch.recordCount);
        }
      }
    }
  }

  private onBatchError(batch: ProducerBatch, error: KavkaError): void {
    if (isRetriable(error)) this.retryLater(batch, error);
    else batch.fail(error);
  }

  /** Refreshes metadata and re-routes the batch after a backoff, or fails it when out of retries. */
  private retryLater(batch: ProducerBatch, error: KavkaError): void {
    if (batch.attempts >= this.deps.retry.retries) {
      batch.fail(error);
      return;
    }
    const delay = backoffMs(batch.attempts, this.deps.retry, this.deps.random);
    batch.attempts++;
    this.deps.logger?.debug({ topic: batch.topic, partition: batch.partition, code: error.code, attempt: batch.attempts, delayMs: delay }, 'retrying produce batch');
    void this.deps
      .sleep(delay)
      .then(() => this.refreshMetadata())
      .then(() => this.route(batch));
  }

  private refreshMetadata(): Promise<void> {
    this.refreshing ??= this.deps.cluster
      .refresh([...this.topicsOfInterest], this.config.allowAutoTopicCreation)
      .catch((error: unknown) => this.deps.logger?.debug({ error: String(error) }, 'metadata refresh failed'))
      .finally(() => {
        this.refreshing = undefined;
      });
    return this.refreshing;
  }
}

