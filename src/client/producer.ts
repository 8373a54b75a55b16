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
// The parts: producer-config.ts resolves and checks the configuration; record-partitioner.ts
// picks each message's partition; accumulator.ts holds records until their batch is ready;
// buffered-batches.ts bounds the unsettled bytes (buffer.memory); send-placements.ts turns a
// send's batches into its RecordMetadata; partition-queues.ts queues drained batches per
// partition and takes requests from each broker's round robin; batch-send-policy.ts decides which
// batch may go and encodes it (sequences from idempotence.ts); produce-request.ts builds requests
// and reads responses; produce-retry.ts decides retry, epoch bump or failure and spends retries;
// producer-id.ts calls InitProducerId. This file is the Producer: its public API, the send path
// and the scheduling that ties the parts together.
//
// Called from user code on any tick; the state below is only touched synchronously between
// awaits, so no interleaving sees a half-updated queue.
import { KavkaError, toKavkaError } from '../util/errors.js';
import type { Clock } from '../util/clock.js';
import { RecordAccumulator, type BatchResult, type BatchSettings, type ProducerBatch } from './accumulator.js';
import { BatchSendPolicy } from './batch-send-policy.js';
import { BufferedBatches } from './buffered-batches.js';
import type { Cluster, TopicInfo } from './cluster.js';
import { estimateRecordSize, toBytes, toRecordHeaders, toTimestamp } from './convert.js';
import { IdempotentState, partitionKey } from './idempotence.js';
import { StickyPartitioner } from './partitioner.js';
import { PartitionQueues, type PartitionQueue } from './partition-queues.js';
import { handlingOfBatchError, spendQueueRetries, spendRetry } from './produce-retry.js';
import { buildProduceRequest, groupByPartition, partitionOutcome, resultsByPartition, type BatchesByPartition } from './produce-request.js';
import { ProduceStreamConnection } from './produce-stream.js';
import { batchSettingsFor, resolveProducerConfig, type ResolvedProducerConfig } from './producer-config.js';
import { requestProducerId } from './producer-id.js';
import { RecordPartitioner } from './record-partitioner.js';
import { backoffMs, withRetry } from './retry.js';
import type { ConnectionPool, KavkaRpc } from './rpc.js';
import { placeRecord, recordMetadataFor, type SendPlacements } from './send-placements.js';
import type { ProduceResponse__Output } from '../gen/kavka/v1/ProduceResponse.js';
import type { ClientLogger, Message, ProducerBatchRecord, ProducerConfig, ProducerRecord, RecordMetadata, RetryOptions } from './types.js';

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

type ProducerState = 'idle' | 'connected' | 'disconnecting' | 'disconnected';

export class Producer {
  private readonly config: ResolvedProducerConfig;
  private readonly accumulator: RecordAccumulator;
  private readonly partitioner: RecordPartitioner;
  private readonly connections = new Map<string, ProduceStreamConnection>();
  /** Batches drained or retried and not yet sent, per partition and per leader broker. */
  private readonly queues: PartitionQueues;
  private readonly sendPolicy: BatchSendPolicy;
  /** Produce requests sent and not answered, over all brokers. */
  private inFlightRequests = 0;
  private nextOrdinal = 0;
  /** Undefined when the producer is not idempotent. */
  private readonly idempotence: IdempotentState | undefined;
  /** The epoch bump under way, if any. */
  private bumping: Promise<void> | undefined;
  private connecting: Promise<void> | undefined;
  /** Every batch not yet settled and its record bytes (buffer.memory). */
  private readonly buffered: BufferedBatches;
  private readonly topicsOfInterest = new Set<string>();
  /** Cancels the linger timer; undefined when none is set. */
  private cancelTimer: (() => void) | undefined;
  private timerDueMs = Infinity;
  private refreshing: Promise<void> | undefined;
  private appendChain: Promise<void> = Promise.resolve();
  private state: ProducerState = 'idle';

  constructor(
    config: ProducerConfig,
    private readonly deps: ProducerDependencies,
  ) {
    this.config = resolveProducerConfig(config);
    this.accumulator = new RecordAccumulator(this.config.batchSizeBytes, this.config.lingerMs);
    this.partitioner = new RecordPartitioner(new StickyPartitioner(deps.random), config.partitioner?.());
    this.buffered = new BufferedBatches(this.config.maxBufferedBytes);
    this.idempotence = this.config.idempotent ? new IdempotentState() : undefined;
    this.sendPolicy = new BatchSendPolicy(this.idempotence, { batchSizeBytes: this.config.batchSizeBytes, maxRequestSizeBytes: this.config.maxRequestSizeBytes });
    this.queues = new PartitionQueues(this.sendPolicy, this.config.maxRequestSizeBytes);
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
    const settings = batchSettingsFor(record, this.config);
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
    return recordMetadataFor(record.topic, await appended, settings.acks);
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
    while (!this.buffered.isEmpty) {
      await this.buffered.allSettled();
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

  private topicMetadata(topic: string): Promise<TopicInfo> {
    return withRetry(() => this.deps.cluster.topic(topic, this.config.allowAutoTopicCreation), {
      options: this.deps.retry,
      random: this.deps.random,
      sleep: this.deps.sleep,
    });
  }

  private appendAll(topic: TopicInfo, messages: Message[], settings: BatchSettings): SendPlacements {
    // Convert and partition everything first, so a bad message fails the send before any record
    // of it is queued.
    const nowMs = this.deps.clock.nowMs();
    const prepared = messages.map((message) => {
      const key = toBytes(message.key);
      const value = toBytes(message.value);
      const headers = toRecordHeaders(message.headers);
      const timestamp = toTimestamp(message.timestamp, nowMs);
      return { partition: this.partitioner.partitionFor(topic, message, key), record: { key, value, headers, timestamp }, size: estimateRecordSize(key, value, headers) };
    });
    const placements: SendPlacements = new Map();
    const monotonicMs = this.deps.clock.monotonicMs();
    for (const { partition, record, size } of prepared) {
      const { batch, newBatch } = this.accumulator.append(topic.name, partition, record, size, settings, monotonicMs);
      this.buffered.added(batch, size, newBatch);
      placeRecord(placements, partition, batch);
    }
    return placements;
  }

  /**
   * Kafka's buffer.memory: while unsettled records hold maxBufferedBytes, a send waits (sending
   * lingering batches at once) until some settle. Sends append in order, so one waiting send
   * holds back the later ones too.
   */
  private async bufferSpace(): Promise<void> {
    while (this.buffered.isFull) {
      this.drain(true);
      await this.buffered.anySettled();
    }
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
      if (topic !== undefined) this.partitioner.onBatchSent(topic, batch.partition);
      batch.ordinal = this.nextOrdinal++;
      touched.add(this.queues.enqueue(batch));
    }
    for (const queue of touched) this.list(queue);
    this.scheduleTimer();
  }

  /**
   * Lists a queue that has batches and no backoff under its partition's leader (looked up now
   * when it is not listed yet) and sends what may go there.
   */
  private list(queue: PartitionQueue): void {
    if (queue.backoffs > 0) return;
    if (queue.batches.length === 0) {
      this.queues.unlist(queue);
      return;
    }
    let address = queue.address;
    if (address === undefined) {
      const head = queue.batches[0];
      try {
        address = this.deps.cluster.leaderFor(head.topic, head.partition).address;
      } catch (error) {
        this.backOffQueue(queue, toKavkaError(error));
        return;
      }
      this.queues.listUnder(queue, address);
    }
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

  /** Sends queued batches to `address` while it has free in-flight slots and batches may go. */
  private pump(address: string): void {
    if (this.idempotence?.bumpRequired === true || this.bumping !== undefined) {
      this.maybeBumpEpoch();
      return;
    }
    if (!this.queues.hasListed(address)) return;
    const connection = this.connection(address);
    while (this.queues.hasListed(address) && connection.hasCapacity) {
      const request = this.queues.takeRequest(address, connection.usesUnary);
      if (request.length === 0) break;
      this.sendRequest(address, connection, request);
    }
  }

  private pumpAll(): void {
    for (const address of this.queues.addresses()) this.pump(address);
  }

  private sendRequest(address: string, connection: ProduceStreamConnection, batches: ProducerBatch[]): void {
    for (const batch of batches) batch.sends++;
    // Per topic, per partition, the batches in queue order; their bytes go back to back.
    const { byTopic, timeoutMs } = groupByPartition(batches);
    const request = buildProduceRequest(byTopic, batches[0].settings.acks, timeoutMs, (batch) => this.sendPolicy.encode(batch));
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
      const queued = this.queues.addressOf(batch);
      if (queued !== undefined) addresses.add(queued);
    }
    for (const each of addresses) this.pump(each);
  }

  private onResponse(sent: BatchesByPartition, response: ProduceResponse__Output): void {
    const results = resultsByPartition(response);
    for (const [topic, partitions] of sent) {
      for (const [partition, list] of partitions) {
        const outcome = partitionOutcome(topic, partition, list, results.get(partitionKey(topic, partition)));
        if (outcome.kind === 'failed') {
          for (const batch of list) this.onBatchError(batch, outcome.error);
          continue;
        }
        for (const { batch, result } of outcome.results) this.succeed(batch, result);
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

  /** Retries, retries behind an epoch bump, or fails the batch (produce-retry.ts says which). */
  private onBatchError(batch: ProducerBatch, error: KavkaError): void {
    const handling = handlingOfBatchError(batch, error, this.idempotence);
    if (handling === 'fail') {
      this.failBatch(batch, error);
      return;
    }
    if (handling === 'bump-epoch-and-retry') this.requireEpochBump(batch, `${batch.topic}-${batch.partition}: ${error.message}`);
    this.retry(batch, error);
  }

  /**
   * Puts the batch back into its partition's queue, before every later batch, and holds the
   * partition for a backoff; then metadata is refreshed and the queue goes to its leader. Fails
   * the batch when it is out of retries.
   */
  private retry(batch: ProducerBatch, error: KavkaError): void {
    const delay = spendRetry(batch, this.deps.retry, this.deps.random);
    if (delay === undefined) {
      this.failBatch(batch, error);
      return;
    }
    this.deps.logger?.debug({ topic: batch.topic, partition: batch.partition, code: error.code, attempt: batch.attempts, delayMs: delay }, 'retrying produce batch');
    this.backOff(this.queues.enqueue(batch), delay);
  }

  /** The partition has no leader to send to: every queued batch spends a retry, or fails. */
  private backOffQueue(queue: PartitionQueue, error: KavkaError): void {
    const { exhausted, attempt } = spendQueueRetries(queue.batches, this.deps.retry);
    for (const batch of exhausted) this.failBatch(batch, error);
    this.deps.logger?.debug({ queue: queue.key.replace('\u0000', '-'), code: error.code, batches: queue.batches.length }, 'no leader to send to; backing off');
    this.backOff(queue, backoffMs(attempt, this.deps.retry, this.deps.random));
  }

  private backOff(queue: PartitionQueue, delayMs: number): void {
    this.queues.unlist(queue);
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
   * Gets a producer id and epoch (producer-id.ts); with a producer id already, the next epoch of
   * it (KIP-360). Returns the unacknowledged batches of the partitions that required the bump,
   * whose sequences start again at 0 under the new epoch (IdempotentState.bumped).
   */
  private async initProducerId(): Promise<ProducerBatch[]> {
    const state = this.idempotence;
    if (state === undefined) return [];
    const current = state.hasProducerId ? { producerId: state.producerId, producerEpoch: state.producerEpoch } : undefined;
    const { producerId, producerEpoch } = await requestProducerId(this.deps, current);
    this.deps.logger?.debug({ producerId: producerId.toString(), producerEpoch }, 'idempotent producer id and epoch');
    return state.bumped(producerId, producerEpoch);
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
    if (!this.queues.hasWaitingBatches()) return;
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
          for (const queue of this.queues.all()) {
            for (const batch of queue.batches.splice(0)) this.failBatch(batch, failure);
            this.queues.unlist(queue);
          }
        },
      )
      .finally(() => {
        this.bumping = undefined;
        this.pumpAll();
      });
  }
}
