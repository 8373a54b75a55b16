// The kafkajs-shaped producer. send() partitions its messages, appends them to the accumulator
// and resolves once every batch holding them is acknowledged. Batches leave the accumulator when
// full (batchSizeBytes) or after lingerMs, wait in a FIFO per partition, are encoded once as
// RecordBatch v2, grouped per leader broker (up to maxRequestSizeBytes, several batches of one
// partition back to back) and sent on that broker's ProduceStream with at most
// maxInFlightRequests outstanding.
//
// Retriable failures (a moved leader, a broker restart) put the batch back into its partition's
// queue, before every later batch of the partition, and hold the partition for a backoff; then
// metadata is refreshed and the partition's queue goes to its (new) leader. The same encoded
// bytes are sent again, up to retry.retries times.
//
// Idempotence (on by default with acks -1, as in Kafka 3): on connect the producer gets a producer
// id and epoch (InitProducerId); every batch is stamped with them and a per-partition sequence
// when first encoded, so a batch retried after a lost answer is recognised by the broker and
// answered with its original offsets, and each partition's order holds even with up to 5 batches
// in flight. A retried batch is sent alone and only once every earlier batch of its partition is
// acknowledged; later batches that reach the broker past the gap it leaves get
// OUT_OF_ORDER_SEQUENCE_NUMBER and are retried behind it. When the broker has lost or rejects the
// producer's state (UNKNOWN_PRODUCER_ID, INVALID_PRODUCER_EPOCH, a sequence gap no earlier batch
// explains) or a batch with a sequence fails for good, the producer waits for its in-flight
// requests, bumps its epoch (InitProducerId with its id and epoch, KIP-360) and re-encodes the
// unacknowledged batches of THAT partition with the new epoch and sequences from 0. A batch of it
// written under the old epoch whose answer was lost is then written again: across an epoch bump a
// record of that partition can be duplicated, as with Kafka's producer. Every other partition
// keeps its epoch and sequences until its unacknowledged batches are settled (idempotence.ts), so
// their retries are still recognised. Without idempotence a retry may reorder or duplicate
// records, as with Kafka's producer when idempotence is off.
//
// Called from user code on any tick; the state below is only touched synchronously between
// awaits, so no interleaving sees a half-updated queue.
import { encodeRecordBatch, type CompressionName } from '../codec/record-batch.js';
import { KavkaError, toKavkaError, isRetriable } from '../util/errors.js';
import type { Clock } from '../util/clock.js';
import { RecordAccumulator, type BatchResult, type BatchSettings, type ProducerBatch } from './accumulator.js';
import type { Cluster, TopicInfo } from './cluster.js';
import { errorNameOf } from './cluster.js';
import { estimateRecordSize, toBytes, toRecordHeaders, toTimestamp } from './convert.js';
import { IdempotentState, MAX_UNACKNOWLEDGED_BATCHES_PER_PARTITION, partitionKey } from './idempotence.js';
import { StickyPartitioner, type PartitionChoice } from './partitioner.js';
import { ProduceStreamConnection } from './produce-stream.js';
import { backoffMs, withRetry } from './retry.js';
import type { ConnectionPool, KavkaRpc } from './rpc.js';
import type { ProduceResponse__Output } from '../gen/kavka/v1/ProduceResponse.js';
import type { Acks, ClientLogger, CustomPartitioner, Message, ProducerBatchRecord, ProducerConfig, ProducerRecord, RecordMetadata, RetryOptions } from './types.js';

/** How many batch sizes queued batches of one partition may merge into (see coalesce). */
const COALESCE_BATCH_SIZES = 8;

function sameBatchSettings(a: ProducerBatch, b: ProducerBatch): boolean {
  return a.settings.acks === b.settings.acks && a.settings.compression === b.settings.compression && a.settings.timeoutMs === b.settings.timeoutMs;
}

export interface ProducerDependencies {
  cluster: Cluster;
  pool: ConnectionPool;
  rpc: KavkaRpc;
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
  idempotent: boolean;
  /** Whether the user set idempotent: true (then a send() with other acks is refused). */
  idempotentExplicit: boolean;
}

/** Largest producer epoch (int16). */
const MAX_PRODUCER_EPOCH = 32_767;

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
    idempotent: false,
    idempotentExplicit: config.idempotent === true,
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
  if (config.idempotent !== undefined && typeof config.idempotent !== 'boolean') throw new KavkaError('INVALID_REQUEST', `producer idempotent must be true or false, got ${String(config.idempotent)}`, { retriable: false });
  if (config.idempotent === true) {
    if (resolved.acks !== -1) throw new KavkaError('INVALID_REQUEST', `an idempotent producer needs acks -1 (all in-sync replicas), got acks ${resolved.acks}: set acks: -1 or idempotent: false`, { retriable: false });
    if (resolved.maxInFlightRequests > MAX_UNACKNOWLEDGED_BATCHES_PER_PARTITION) {
      throw new KavkaError(
        'INVALID_REQUEST',
        `an idempotent producer allows at most ${MAX_UNACKNOWLEDGED_BATCHES_PER_PARTITION} maxInFlightRequests (the broker remembers a producer's last ${MAX_UNACKNOWLEDGED_BATCHES_PER_PARTITION} batches per partition), got ${resolved.maxInFlightRequests}: lower maxInFlightRequests or set idempotent: false`,
        { retriable: false },
      );
    }
  }
  // Kafka 3: on unless set, and silently off when acks or max in flight conflict with it.
  resolved.idempotent = config.idempotent ?? (resolved.acks === -1 && resolved.maxInFlightRequests <= MAX_UNACKNOWLEDGED_BATCHES_PER_PARTITION);
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

/** The batches of one partition that wait to be sent, and the broker they go to. */
interface PartitionQueue {
  readonly key: string;
  /** Ascending by ordinal: fresh batches at the end, a retried one back before every later one. */
  readonly batches: ProducerBatch[];
  /** The broker whose round robin lists this queue; undefined while not listed. */
  address: string | undefined;
  /** Backoffs under way: while any runs, the queue is not listed and sends nothing. */
  backoffs: number;
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
  /** Per partition ("topic\u0000partition"): batches drained or retried and not yet sent. */
  private readonly partitionQueues = new Map<string, PartitionQueue>();
  /**
   * Per broker address, the partition queues it leads that may send. Map order is the
   * round-robin order of partitions. A queue is listed under at most one address.
   */
  private readonly brokerQueues = new Map<string, Map<string, PartitionQueue>>();
  /** Produce requests sent and not answered, over all brokers. */
  private inFlightRequests = 0;
  private nextOrdinal = 0;
  /** Undefined when the producer is not idempotent. */
  private readonly idempotence: IdempotentState | undefined;
  /** The epoch bump under way, if any. */
  private bumping: Promise<void> | undefined;
  private connecting: Promise<void> | undefined;
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
    this.idempotence = this.config.idempotent ? new IdempotentState() : undefined;
  }

  /** Fetches metadata and, for an idempotent producer, its producer id and epoch. */
  async connect(): Promise<void> {
    if (this.state === 'disconnecting' || this.state === 'disconnected') throw new KavkaError('NETWORK_EXCEPTION', 'the producer is disconnected; create a new one', { retriable: false });
    this.connecting ??= this.establish().catch((error: unknown) => {
      this.connecting = undefined;
      throw error;
    });
    await this.connecting;
  }

  private async establish(): Promise<void> {
    await this.deps.cluster.connect();
    if (this.idempotence !== undefined && !this.idempotence.hasProducerId) await this.initProducerId();
    if (this.state === 'idle') this.state = 'connected';
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
    if (this.config.idempotentExplicit && acks !== -1) {
      throw new KavkaError('INVALID_REQUEST', `this producer is idempotent (idempotent: true), which needs acks -1; the send asked for acks ${acks}`, { retriable: false });
    }
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

  /** Moves ready batches (all of them with `flush`) from the accumulator to their partition queues. */
  private drain(flush: boolean): void {
    const ready = this.accumulator.drainReady(this.deps.clock.monotonicMs(), flush || this.state === 'disconnecting');
    const touched = new Set<PartitionQueue>();
    for (const batch of ready) {
      const topic = this.deps.cluster.cachedTopic(batch.topic);
      if (topic !== undefined) this.sticky.onBatchSent(batch.topic, batch.partition, choiceOf(topic));
      batch.ordinal = this.nextOrdinal++;
      touched.add(this.enqueue(batch));
    }
    for (const queue of touched) this.list(queue);
    this.scheduleTimer();
  }

  /** Puts a batch into its partition's queue, in ordinal order. */
  private enqueue(batch: ProducerBatch): PartitionQueue {
    const key = partitionKey(batch.topic, batch.partition);
    let queue = this.partitionQueues.get(key);
    if (queue === undefined) {
      queue = { key, batches: [], address: undefined, backoffs: 0 };
      this.partitionQueues.set(key, queue);
    }
    let at = queue.batches.length;
    while (at > 0 && queue.batches[at - 1].ordinal > batch.ordinal) at--;
    queue.batches.splice(at, 0, batch);
    return queue;
  }

  /**
   * Lists a queue that has batches and no backoff under its partition's leader (looked up now
   * when it is not listed yet) and sends what may go there.
   */
  private list(queue: PartitionQueue): void {
    if (queue.backoffs > 0) return;
    if (queue.batches.length === 0) {
      this.unlist(queue);
      return;
    }
    if (queue.address === undefined) {
      const head = queue.batches[0];
      let address: string;
      try {
        address = this.deps.cluster.leaderFor(head.topic, head.partition).address;
      } catch (error) {
        this.backOffQueue(queue, toKavkaError(error));
        return;
      }
      let listed = this.brokerQueues.get(address);
      if (listed === undefined) {
        listed = new Map();
        this.brokerQueues.set(address, listed);
      }
      listed.set(queue.key, queue);
      queue.address = address;
    }
    this.pump(queue.address);
  }

  /** Takes a queue out of its broker's round robin; forgets it when it is empty and idle. */
  private unlist(queue: PartitionQueue): void {
    if (queue.address !== undefined) {
      const listed = this.brokerQueues.get(queue.address);
      listed?.delete(queue.key);
      if (listed?.size === 0) this.brokerQueues.delete(queue.address);
      queue.address = undefined;
    }
    if (queue.batches.length === 0 && queue.backoffs === 0 && this.partitionQueues.get(queue.key) === queue) this.partitionQueues.delete(queue.key);
  }

  private connection(address: string): ProduceStreamConnection {
    let connection = this.connections.get(address);
    if (connection === undefined) {
      connection = new ProduceStreamConnection(this.deps.pool.client(address), address, this.config.maxInFlightRequests, this.config.useUnaryProduce, this.deps.clock, this.deps.logger);
      this.connections.set(address, connection);
    }
    return connection;
  }

  /** Sends queued batches to `address` while it has free in-flight slots and batches may go. */
  private pump(address: string): void {
    if (this.idempotence?.bumpRequired === true || this.bumping !== undefined) {
      this.maybeBumpEpoch();
      return;
    }
    const listed = this.brokerQueues.get(address);
    if (listed === undefined) return;
    const connection = this.connection(address);
    while (listed.size > 0 && connection.hasCapacity) {
      const request = this.takeRequest(listed, connection.usesUnary);
      if (request.length === 0) break;
      this.sendRequest(address, connection, request);
    }
  }

  private pumpAll(): void {
    for (const address of [...this.brokerQueues.keys()]) this.pump(address);
  }

  /**
   * Takes batches for one request: from each listed partition queue in round-robin order, its
   * oldest batches that may go (mayTake), all with the acks of the first, up to
   * maxRequestSizeBytes (the first batch always goes, however large). Several batches of one
   * partition travel back to back in one PartitionProduceData, which the broker appends at
   * consecutive offsets; an idempotent producer's retried batch travels alone. A visited
   * partition moves to the back of the order; an emptied one leaves it.
   * Costs O(partitions + batches taken).
   */
  private takeRequest(listed: Map<string, PartitionQueue>, unary: boolean): ProducerBatch[] {
    const taken: ProducerBatch[] = [];
    let acks: number | undefined;
    let bytes = 0;
    for (const queue of [...listed.values()]) {
      let fromQueue = 0;
      while (queue.batches.length > 0) {
        const head = queue.batches[0];
        if (acks !== undefined && head.settings.acks !== acks) break;
        if (!this.mayTake(head, fromQueue, unary)) break;
        this.coalesce(queue, head);
        const resend = this.isIdempotentResend(head);
        const size = this.encode(head).length;
        if (taken.length > 0 && bytes + size > this.config.maxRequestSizeBytes) break;
        acks ??= head.settings.acks;
        taken.push(queue.batches.shift() as ProducerBatch);
        bytes += size;
        fromQueue++;
        if (resend) break;
      }
      listed.delete(queue.key);
      if (queue.batches.length > 0) listed.set(queue.key, queue);
      else this.unlist(queue);
      if (bytes >= this.config.maxRequestSizeBytes) break;
    }
    return taken;
  }

  /**
   * An idempotent producer has at most 5 batches of a partition in flight (the broker remembers
   * 5), so batches queue up behind them. Before the head goes out for the first time, the fresh
   * batches queued behind it join it, up to COALESCE_BATCH_SIZES x batch size: fewer, larger
   * batches keep the window's throughput. Nothing encoded (no sequence yet) is ever merged.
   */
  private coalesce(queue: PartitionQueue, head: ProducerBatch): void {
    if (!this.isIdempotentBatch(head) || head.encoded !== undefined || head.sends > 0) return;
    const limit = Math.min(this.config.maxRequestSizeBytes, COALESCE_BATCH_SIZES * this.config.batchSizeBytes);
    while (queue.batches.length > 1) {
      const next = queue.batches[1];
      const mergeable = next.encoded === undefined && next.sends === 0 && next.attempts === 0 && sameBatchSettings(next, head);
      if (!mergeable || head.sizeBytes + next.sizeBytes > limit) break;
      head.absorb(next);
      queue.batches.splice(1, 1);
    }
  }

  private isIdempotentBatch(batch: ProducerBatch): boolean {
    return this.idempotence !== undefined && batch.settings.acks === -1;
  }

  /** An idempotent batch sent before under the current epoch (its bytes are kept). */
  private isIdempotentResend(batch: ProducerBatch): boolean {
    return this.isIdempotentBatch(batch) && batch.sends > 0 && batch.encoded !== undefined;
  }

  /**
   * May the head of a partition queue go now, as the (fromQueue + 1)-th batch of its partition in
   * this request? Without idempotence, always. With it: a retried batch only alone and only when
   * every earlier batch of the partition is acknowledged (Kafka's Sender does the same), so a
   * retry can never overtake a later batch; a fresh batch only while fewer than 5 batches of the
   * partition were sent from the oldest unacknowledged one on (the broker remembers the last 5). Unary Produce calls may be
   * handled out of order, so there a partition has one request in flight at a time.
   */
  private mayTake(head: ProducerBatch, fromQueue: number, unary: boolean): boolean {
    const state = this.idempotence;
    if (state === undefined || !this.isIdempotentBatch(head)) return true;
    const position = state.position(head);
    if (this.isIdempotentResend(head)) return fromQueue === 0 && position === 0;
    // After a bump, a partition's new batches wait until its old epoch's batches are settled.
    if (head.encoded === undefined && !state.mayAssign(head)) return false;
    if (unary && fromQueue === 0 && position > 0) return false;
    // Holding a sequence, it has its slot; a fresh one needs the oldest unacknowledged batch to stay
    // among the broker's last 5 (IdempotentState.windowLength).
    return head.encoded !== undefined || state.windowLength(head) < MAX_UNACKNOWLEDGED_BATCHES_PER_PARTITION;
  }

  /** The batch's bytes, encoded on first use; an idempotent batch gets its sequence here. */
  private encode(batch: ProducerBatch): Buffer {
    if (batch.encoded !== undefined) return batch.encoded;
    const state = this.idempotence;
    if (state !== undefined && this.isIdempotentBatch(batch)) {
      batch.baseSequence = state.assign(batch);
      batch.encoded = encodeRecordBatch({
        records: batch.records,
        compression: batch.settings.compression,
        producerId: state.producerId,
        producerEpoch: state.producerEpoch,
        baseSequence: batch.baseSequence,
      });
    } else {
      batch.encoded = encodeRecordBatch({ records: batch.records, compression: batch.settings.compression });
    }
    return batch.encoded;
  }

  private sendRequest(address: string, connection: ProduceStreamConnection, batches: ProducerBatch[]): void {
    // Per topic, per partition, the batches in queue order; their bytes go back to back.
    const byTopic = new Map<string, Map<number, ProducerBatch[]>>();
    let timeoutMs = 0;
    for (const batch of batches) {
      batch.sends++;
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
    this.inFlightRequests++;
    connection.send(request, timeoutMs + this.deps.requestTimeoutMs).then(
      (response) => {
        this.inFlightRequests--;
        this.onResponse(byTopic, response);
        this.afterRequest(address, batches);
      },
      (error: unknown) => {
        this.inFlightRequests--;
        const failure = toKavkaError(error);
        this.deps.logger?.debug({ address, error: failure.message, code: failure.code }, 'produce request failed');
        for (const batch of batches) this.onBatchError(batch, failure);
        this.afterRequest(address, batches);
      },
    );
  }

  /** A request was answered: its broker has a free slot, and its partitions may send again. */
  private afterRequest(address: string, batches: ProducerBatch[]): void {
    const addresses = new Set([address]);
    for (const batch of batches) {
      const queued = this.partitionQueues.get(partitionKey(batch.topic, batch.partition))?.address;
      if (queued !== undefined) addresses.add(queued);
    }
    for (const each of addresses) this.pump(each);
  }

  private onResponse(sent: Map<string, Map<number, ProducerBatch[]>>, response: ProduceResponse__Output): void {
    const results = new Map<string, ProduceResponse__Output['topics'][number]['partitions'][number]>();
    for (const topic of response.topics) {
      for (const p of topic.partitions) results.set(partitionKey(topic.name, p.partition), p);
    }
    for (const [topic, partitions] of sent) {
      for (const [partition, list] of partitions) {
        const result = results.get(partitionKey(topic, partition));
        const code = result === undefined ? 'UNKNOWN_SERVER_ERROR' : errorNameOf(result.errorCode);
        // A duplicate answered with offsets is a success: the broker has these batches there.
        const duplicateWithOffsets = code === 'DUPLICATE_SEQUENCE_NUMBER' && result !== undefined && BigInt(result.baseOffset) >= 0n;
        if (result === undefined || (code !== 'NONE' && !duplicateWithOffsets)) {
          const message = result === undefined ? `produce response has no result for ${topic}-${partition}` : `${topic}-${partition}: ${result.errorMessage || code}`;
          const error = new KavkaError(code, message, result === undefined ? { retriable: false } : {});
          for (const batch of list) this.onBatchError(batch, error);
          continue;
        }
        // The broker appended the batches at consecutive offsets from base_offset.
        let baseOffset = BigInt(result.baseOffset);
        for (const batch of list) {
          this.succeed(batch, { baseOffset, logAppendTime: BigInt(result.logAppendTime), logStartOffset: BigInt(result.logStartOffset) });
          if (baseOffset >= 0n) baseOffset += BigInt(batch.recordCount);
        }
      }
    }
  }

  private succeed(batch: ProducerBatch, result: BatchResult): void {
    this.idempotence?.settle(batch);
    batch.succeed(result);
  }

  /**
   * Fails a batch for good. An idempotent batch with a sequence leaves a gap the broker may or may
   * not have filled, so the producer bumps its epoch before it sends again.
   */
  private failBatch(batch: ProducerBatch, error: KavkaError): void {
    const state = this.idempotence;
    if (state?.holds(batch) === true) {
      state.settle(batch);
      this.requireEpochBump(batch, `${batch.topic}-${batch.partition} batch at sequence ${batch.baseSequence} failed with ${error.code}`);
    }
    batch.fail(error);
  }

  private onBatchError(batch: ProducerBatch, error: KavkaError): void {
    if (isRetriable(error) || this.retriableForIdempotence(batch, error)) this.retry(batch, error);
    else this.failBatch(batch, error);
  }

  /**
   * The sequence errors of an idempotent batch, all retried (within the retry count):
   * - DUPLICATE_SEQUENCE_NUMBER without offsets: the broker has the batch but could not say where
   *   (it repeated one inside an append of several); the retry goes alone and gets its offsets.
   * - OUT_OF_ORDER_SEQUENCE_NUMBER, UNKNOWN_PRODUCER_ID, INVALID_PRODUCER_EPOCH while an earlier
   *   batch of the partition is unacknowledged: this one arrived past the gap that one leaves, or
   *   both carry a state the broker lost; the earlier batch's fate decides, so wait behind it.
   * - The same for the oldest unacknowledged batch: the broker lost or rejects this producer's
   *   state (expired after producer.id.expiration.ms, or lost with an unclean leader change).
   *   Bump the epoch and retry under it from sequence 0 (Kafka 3 bumps on these too).
   */
  private retriableForIdempotence(batch: ProducerBatch, error: KavkaError): boolean {
    const state = this.idempotence;
    if (state === undefined || !state.holds(batch)) return false;
    switch (error.code) {
      case 'DUPLICATE_SEQUENCE_NUMBER':
        return true;
      case 'OUT_OF_ORDER_SEQUENCE_NUMBER':
      case 'UNKNOWN_PRODUCER_ID':
      case 'INVALID_PRODUCER_EPOCH':
        if (!state.hasEarlierUnacknowledged(batch)) this.requireEpochBump(batch, `${batch.topic}-${batch.partition}: ${error.message}`);
        return true;
      default:
        return false;
    }
  }

  /**
   * Puts the batch back into its partition's queue, before every later batch, and holds the
   * partition for a backoff; then metadata is refreshed and the queue goes to its leader. Fails
   * the batch when it is out of retries.
   */
  private retry(batch: ProducerBatch, error: KavkaError): void {
    if (batch.attempts >= this.deps.retry.retries) {
      this.failBatch(batch, error);
      return;
    }
    const delay = backoffMs(batch.attempts, this.deps.retry, this.deps.random);
    batch.attempts++;
    this.deps.logger?.debug({ topic: batch.topic, partition: batch.partition, code: error.code, attempt: batch.attempts, delayMs: delay }, 'retrying produce batch');
    this.backOff(this.enqueue(batch), delay);
  }

  /** The partition has no leader to send to: every queued batch spends a retry, or fails. */
  private backOffQueue(queue: PartitionQueue, error: KavkaError): void {
    let attempt = 0;
    for (const batch of [...queue.batches]) {
      if (batch.attempts >= this.deps.retry.retries) {
        queue.batches.splice(queue.batches.indexOf(batch), 1);
        this.failBatch(batch, error);
      } else {
        attempt = Math.max(attempt, batch.attempts);
        batch.attempts++;
      }
    }
    this.deps.logger?.debug({ queue: queue.key.replace('\u0000', '-'), code: error.code, batches: queue.batches.length }, 'no leader to send to; backing off');
    this.backOff(queue, backoffMs(attempt, this.deps.retry, this.deps.random));
  }

  private backOff(queue: PartitionQueue, delayMs: number): void {
    this.unlist(queue);
    queue.backoffs++;
    void this.deps
      .sleep(delayMs)
      .then(() => this.refreshMetadata())
      .then(() => {
        queue.backoffs--;
        this.list(queue);
      });
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

  // ---------------------------------------------------------------- idempotence

  /**
   * InitProducerId through any broker (the controller first, then the others in turn), with the
   * client's retries on retriable errors. With a producer id already, asks for the next epoch of
   * it (KIP-360). Returns the unacknowledged batches of the partitions that required the bump,
   * whose sequences start again at 0 under the new epoch (IdempotentState.bumped).
   */
  private async initProducerId(): Promise<ProducerBatch[]> {
    const state = this.idempotence;
    if (state === undefined) return [];
    const current = state.hasProducerId ? { producerId: state.producerId.toString(), producerEpoch: state.producerEpoch } : {};
    const response = await withRetry(async (attempt) => this.deps.rpc.initProducerId(await this.brokerForAttempt(attempt), { transactionalId: '', ...current }), {
      options: this.deps.retry,
      random: this.deps.random,
      sleep: this.deps.sleep,
      beforeRetry: () => this.deps.cluster.refresh([]),
    });
    const producerId = BigInt(response.producerId);
    const producerEpoch = response.producerEpoch;
    if (producerId < 0n || !Number.isInteger(producerEpoch) || producerEpoch < 0 || producerEpoch > MAX_PRODUCER_EPOCH) {
      throw new KavkaError('UNKNOWN_SERVER_ERROR', `InitProducerId answered producer id ${response.producerId} epoch ${producerEpoch}`, { retriable: false });
    }
    this.deps.logger?.debug({ producerId: producerId.toString(), producerEpoch }, 'idempotent producer id and epoch');
    return state.bumped(producerId, producerEpoch);
  }

  private async brokerForAttempt(attempt: number): Promise<string> {
    const first = await this.deps.cluster.anyBrokerAddress();
    const all = [first, ...this.deps.cluster.describe().brokers.map((b) => b.address).filter((a) => a !== first)];
    return all[attempt % all.length];
  }

  /** The broker lost or rejects the sequences of `batch`'s partition: bump the epoch and rewrite that partition's. */
  private requireEpochBump(batch: ProducerBatch, reason: string): void {
    const state = this.idempotence;
    if (state === undefined || !state.requireEpochBump(partitionKey(batch.topic, batch.partition))) return;
    this.deps.logger?.info({ producerId: state.producerId.toString(), producerEpoch: state.producerEpoch, reason }, 'idempotent producer will bump its epoch');
  }

  /**
   * Bumps the epoch once nothing is in flight (a batch still in flight under the old epoch could
   * succeed and leave a gap in the new sequences) and something waits to be sent. Then the
   * unacknowledged batches of the partitions that required it are re-encoded with the new epoch
   * and sequences from 0, in order; other partitions keep theirs (idempotence.ts). If the bump
   * fails, the queued batches fail with its error; the next send tries again.
   */
  private maybeBumpEpoch(): void {
    const state = this.idempotence;
    if (state === undefined || !state.bumpRequired || this.bumping !== undefined || this.inFlightRequests > 0) return;
    if (![...this.partitionQueues.values()].some((q) => q.batches.length > 0)) return;
    this.bumping = this.initProducerId()
      .then(
        (rewrite) => {
          for (const batch of rewrite) {
            batch.encoded = undefined;
            batch.baseSequence = -1;
          }
        },
        (error: unknown) => {
          const failure = toKavkaError(error);
          this.deps.logger?.warn({ error: failure.message, code: failure.code }, 'idempotent producer could not bump its epoch');
          for (const queue of [...this.partitionQueues.values()]) {
            for (const batch of queue.batches.splice(0)) this.failBatch(batch, failure);
            this.unlist(queue);
          }
        },
      )
      .finally(() => {
        this.bumping = undefined;
        this.pumpAll();
      });
  }
}
