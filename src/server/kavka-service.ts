// gRPC adapters for kavka.v1.Kavka: decode the request, call the controller or the replica
// manager, encode the reply. Business rules live below; what is here is request shape checks,
// defaults and clamping, and the mapping of results to per-partition error codes.
import type * as grpc from '@grpc/grpc-js';
import { KavkaError, toKavkaError, type ErrorName } from '../util/errors.js';
import { encodeRecordBatch, type RecordInput } from '../codec/index.js';
import { failuresTolerated, isInternalTopic, validateTopicName, type PartitionImage } from '../controller/index.js';
import { topicDefaults } from './config-handler.js';
import type { Acks } from '../replication/index.js';
import type { Clock } from '../util/clock.js';
import type { KavkaHandlers } from '../gen/kavka/v1/Kavka.js';
import type { MetadataRequest__Output } from '../gen/kavka/v1/MetadataRequest.js';
import type { MetadataResponse } from '../gen/kavka/v1/MetadataResponse.js';
import type { TopicMetadata } from '../gen/kavka/v1/TopicMetadata.js';
import type { ProduceRequest__Output } from '../gen/kavka/v1/ProduceRequest.js';
import type { ProduceResponse } from '../gen/kavka/v1/ProduceResponse.js';
import type { PartitionProduceData__Output } from '../gen/kavka/v1/PartitionProduceData.js';
import type { PartitionProduceResponse } from '../gen/kavka/v1/PartitionProduceResponse.js';
import type { ListOffsetsRequest__Output } from '../gen/kavka/v1/ListOffsetsRequest.js';
import type { ListOffsetsResponse } from '../gen/kavka/v1/ListOffsetsResponse.js';
import type { ServerContext } from './context.js';
import { answerError, checkDecoded, unary } from './request-guard.js';
import { failStream, shuttingDownError, type StreamRegistry } from './stream-registry.js';
import { toServiceError } from '../proto/index.js';
import { FetchHandler } from './fetch-handler.js';
import { ConfigHandler } from './config-handler.js';
import { AdminHandler } from './admin-handler.js';

/** Records per plain-`Record` produce, so one request cannot build an unbounded batch. */
const MAX_PLAIN_RECORDS_PER_PARTITION = 100_000;
/** Outstanding requests per ProduceStream before the server stops reading from it. */
const PRODUCE_STREAM_IN_FLIGHT_MAX = 64;

export function parseAcks(acks: number | undefined): Acks {
  const value = acks ?? -1;
  if (value !== -1 && value !== 0 && value !== 1) {
    throw new KavkaError('INVALID_REQUIRED_ACKS', `acks=${value} is not valid; use -1 (all), 0 or 1`);
  }
  return value;
}

export class KavkaService {
  private readonly fetchHandler: FetchHandler;
  private readonly configHandler: ConfigHandler;
  private readonly admin: AdminHandler;

  constructor(
    private readonly context: ServerContext,
    /** The listener this service instance answers on; Metadata gives endpoints of this listener. */
    private readonly listenerName: string,
    private readonly streams: StreamRegistry,
  ) {
    this.fetchHandler = new FetchHandler(context, streams);
    this.configHandler = new ConfigHandler(context);
    this.admin = new AdminHandler(context);
  }

  handlers(): KavkaHandlers {
    const logger = this.context.logger;
    return {
      Metadata: unary(logger, 'Metadata', (req: MetadataRequest__Output) => this.metadata(req)),
      CreateTopics: unary(logger, 'CreateTopics', (req) => this.admin.createTopics(req)),
      DeleteTopics: unary(logger, 'DeleteTopics', (req) => this.admin.deleteTopics(req)),
      CreatePartitions: unary(logger, 'CreatePartitions', (req) => this.admin.createPartitions(req)),
      DescribeConfigs: unary(logger, 'DescribeConfigs', async (req) => this.configHandler.describe(req)),
      AlterConfigs: unary(logger, 'AlterConfigs', (req) => this.admin.alterConfigs(req)),
      InitProducerId: unary(logger, 'InitProducerId', async (req) => {
        // An absent optional field stays absent (the oneof marker says so), whatever the defaults.
        const producerId = req._producerId === undefined || req.producerId === undefined ? -1n : BigInt(req.producerId);
        const producerEpoch = req._producerEpoch === undefined || req.producerEpoch === undefined ? -1 : req.producerEpoch;
        const granted = await this.context.producerIds.initProducerId(req.transactionalId, producerId, producerEpoch);
        return { producerId: granted.producerId.toString(), producerEpoch: granted.producerEpoch };
      }),
      DescribeQuorum: unary(logger, 'DescribeQuorum', () => this.admin.describeQuorum()),
      AddRaftVoter: unary(logger, 'AddRaftVoter', (req) => this.admin.addRaftVoter(req.voterId)),
      RemoveRaftVoter: unary(logger, 'RemoveRaftVoter', (req) => this.admin.removeRaftVoter(req.voterId)),
      Produce: unary(logger, 'Produce', async (req: ProduceRequest__Output) => (await this.produce(req)).response),
      ProduceStream: (call) => this.produceStream(call),
      Fetch: unary(logger, 'Fetch', (req, call) => this.fetchHandler.fetchOnce(req, call)),
      FetchStream: (call) => this.fetchHandler.fetchStream(call),
      ListOffsets: unary(logger, 'ListOffsets', (req: ListOffsetsRequest__Output) => this.listOffsets(req)),
    };
  }

  // ------------------------------------------------------------------ metadata

  private async metadata(request: MetadataRequest__Output): Promise<MetadataResponse> {
    const { controller, config } = this.context;
    if (!this.context.metadataCaughtUp()) {
      throw new KavkaError('BROKER_NOT_AVAILABLE', `node ${this.context.nodeId} is catching up on cluster metadata after its start; ask another broker or retry`);
    }
    if (request.allowAutoTopicCreation) await this.autoCreate(request.topics);
    const image = controller.image;
    const voters = controller.voters();
    const tolerated = (p: PartitionImage, configs: ReadonlyMap<string, string>) => {
      const minInsync = Number(configs.get('min.insync.replicas') ?? topicDefaults(this.context)['min.insync.replicas']);
      const f = failuresTolerated(image, p, minInsync, voters);
      return { writeFailuresTolerated: f.write, dataFailuresTolerated: f.data };
    };
    const names = request.topics.length > 0 ? request.topics : request.brokersOnly ? [] : [...image.topics.keys()].sort();
    const topics: TopicMetadata[] = names.map((name) => {
      const topic = image.topic(name);
      if (topic === undefined) {
        const invalid = invalidTopicNameError(name);
        return {
          errorCode: invalid?.code ?? 'UNKNOWN_TOPIC_OR_PARTITION',
          errorMessage: invalid?.message ?? `topic ${name} does not exist`,
          name,
          partitions: [],
        };
      }
      return {
        errorCode: 'NONE',
        name,
        isInternal: isInternalTopic(name),
        partitions: topic.partitions.map((p) => ({
          errorCode: p.leader === -1 ? 'LEADER_NOT_AVAILABLE' : 'NONE',
          partition: p.partition,
          leaderId: p.leader,
          leaderEpoch: p.leaderEpoch,
          replicas: [...p.replicas],
          isr: [...p.isr],
          offlineReplicas: [],
          ...tolerated(p, topic.configs),
        })),
      };
    });
    // Fenced brokers (stopped, crashed, starting up) serve nothing, so clients are not sent there (as KRaft does).
    const brokers = [...image.brokers.values()].filter((b) => !b.fenced).map((b) => {
      const endpoint = b.endpoints.get(this.listenerName) ?? b.endpoints.get('CLIENT');
      return { nodeId: b.nodeId, host: endpoint?.host ?? '', port: endpoint?.port ?? 0, rack: b.rack ?? '' };
    });
    return { clusterId: config.clusterId, controllerId: controller.controllerId, nodeId: this.context.nodeId, brokers, topics };
  }

  // ------------------------------------------------------------------ produce

  /**
   * Starts every partition's append (in request order, so a stream's appends to one partition
   * keep their order) and returns once all are enqueued: `response` resolves when acks are met.
   */
  private async produce(request: ProduceRequest__Output): Promise<{ response: Promise<ProduceResponse> }> {
    const acks = parseAcks(request._acks === undefined ? undefined : request.acks);
    if (request.topics.length === 0 || request.topics.every((t) => t.partitions.length === 0)) {
      throw new KavkaError('INVALID_REQUEST', 'the produce request names no topic partitions; send at least one partition with records');
    }
    await this.autoCreate(request.topics.map((t) => t.name));
    const topicResults = request.topics.map((topic) => ({
      name: topic.name,
      partitions: topic.partitions.map((data) => this.produceToPartition(topic.name, data, acks, request.timeoutMs)),
    }));
    const response = (async (): Promise<ProduceResponse> => ({
      correlationId: request.correlationId,
      topics: await Promise.all(topicResults.map(async (t) => ({ name: t.name, partitions: await Promise.all(t.partitions) }))),
    }))();
    return { response };
  }

  private produceToPartition(topic: string, data: PartitionProduceData__Output, acks: Acks, timeoutMs: number): Promise<PartitionProduceResponse> {
    const { replicaManager, metrics, clock, logger } = this.context;
    const failed = (error: unknown): PartitionProduceResponse => {
      const e = toKavkaError(error);
      metrics.errors.inc({ method: 'Produce', code: e.code });
      const topicPartition = `${topic}-${data.partition}`;
      if (e.code === 'UNKNOWN_SERVER_ERROR') logger.error({ err: error, topicPartition }, 'produce failed unexpectedly');
      // With acks=0 nobody else hears of a failed append.
      else if (acks === 0) logger.warn({ topicPartition, code: e.code, message: e.message }, 'acks=0 produce failed; the client was not told');
      const currentLeader = e.code === 'NOT_LEADER_OR_FOLLOWER' ? { currentLeader: replicaManager.currentLeader({ topic, partition: data.partition }) } : {};
      return { partition: data.partition, errorCode: e.code, errorMessage: e.message, baseOffset: '-1', lastOffset: '-1', logAppendTime: '-1', logStartOffset: '-1', ...currentLeader };
    };
    let append: Promise<PartitionProduceResponse>;
    try {
      const batches = batchesOf(data, BigInt(clock.nowMs()));
      append = withTimeout(replicaManager.appendRecords({ topic, partition: data.partition }, batches, acks), timeoutMs, clock, `${topic}-${data.partition}`).then((result) => {
        metrics.produceRequests.inc({ topic });
        metrics.produceRecords.inc({ topic }, result.recordCount);
        metrics.produceBytes.inc({ topic }, result.sizeBytes);
        return {
          partition: data.partition,
          errorCode: 'NONE' as ErrorName,
          errorMessage: '',
          baseOffset: result.baseOffset.toString(),
          lastOffset: result.lastOffset.toString(),
          logAppendTime: result.logAppendTimeMs.toString(),
          logStartOffset: result.logStartOffset.toString(),
        };
      }, failed);
    } catch (error) {
      return Promise.resolve(failed(error));
    }
    if (acks === 0) {
      // The client asked for no acknowledgement: answer now; the append goes on and logs failures.
      void append;
      return Promise.resolve({ partition: data.partition, errorCode: 'NONE', errorMessage: '', baseOffset: '-1', lastOffset: '-1', logAppendTime: '-1', logStartOffset: '-1' });
    }
    return append;
  }

  private async autoCreate(names: string[]): Promise<void> {
    const { controller, config } = this.context;
    if (!config.get('auto.create.topics.enable')) return;
    const missing = [...new Set(names)].filter((name) => controller.image.topic(name) === undefined && isValidTopicName(name));
    if (missing.length === 0) return;
    const { topics } = await this.admin.createTopics({ topics: missing.map((name) => ({ name, configs: {}, assignments: [], _numPartitions: undefined, numPartitions: 0, _replicationFactor: undefined, replicationFactor: 0 })), validateOnly: false });
    for (const result of topics ?? []) {
      // A concurrent create of the same topic is fine; anything else is the caller's answer.
      if (result.errorCode !== 'NONE' && result.errorCode !== 'TOPIC_ALREADY_EXISTS') {
        this.context.logger.info({ topic: result.name, code: result.errorCode, message: result.errorMessage }, 'auto-creating a topic failed');
      }
    }
  }

  /**
   * Requests on one stream start their appends in arrival order (so appends to a partition keep
   * the stream's order) and are answered in arrival order. At most PRODUCE_STREAM_IN_FLIGHT_MAX
   * are outstanding; past that the server stops reading the stream (transport backpressure).
   * A request-level failure ends the stream with that status after the responses before it.
   */
  private produceStream(call: grpc.ServerDuplexStream<ProduceRequest__Output, ProduceResponse>): void {
    const { logger } = this.context;
    let started: Promise<unknown> = Promise.resolve();
    let written: Promise<unknown> = Promise.resolve();
    let inFlight = 0;
    let finished = false;
    let clientEnded = false;
    let shuttingDown = false;
    // Set when a request fails the stream: requests read after it must not append anything.
    let failed = false;
    const finish = (error?: ReturnType<typeof toServiceError>) => {
      if (finished) return;
      finished = true;
      unregister();
      if (error === undefined) call.end();
      else failStream(call, error);
    };
    const finishIfDrained = () => {
      if (inFlight > 0) return;
      if (shuttingDown) finish(toServiceError(shuttingDownError(this.context.nodeId)));
      else if (clientEnded) finish();
    };
    const unregister = this.streams.add(() => {
      shuttingDown = true;
      call.pause();
      finishIfDrained();
    });
    call.on('data', (request: ProduceRequest__Output) => {
      if (finished || shuttingDown) return;
      inFlight += 1;
      if (inFlight >= PRODUCE_STREAM_IN_FLIGHT_MAX) call.pause();
      const start = started.then(() => {
        if (failed) throw new KavkaError('INVALID_REQUEST', 'an earlier request on this stream failed it; nothing after it was appended');
        checkDecoded(request);
        return this.produce(request);
      });
      started = start.catch(() => {
        failed = true;
      });
      const response = start.then(({ response }) => response);
      written = Promise.all([written, response.catch(() => undefined)]).then(async () => {
        try {
          const value = await response;
          if (!finished && !call.cancelled) call.write(value);
        } catch (error) {
          finish(answerError(error, logger, 'ProduceStream'));
        } finally {
          inFlight -= 1;
          if (!shuttingDown && inFlight < PRODUCE_STREAM_IN_FLIGHT_MAX && call.isPaused()) call.resume();
          finishIfDrained();
        }
      });
    });
    call.on('end', () => {
      clientEnded = true;
      finishIfDrained();
    });
    call.on('cancelled', () => {
      finished = true;
      unregister();
    });
    call.on('error', (error) => logger.debug({ err: error }, 'produce stream closed by the client'));
  }

  // ------------------------------------------------------------------ offsets

  private async listOffsets(request: ListOffsetsRequest__Output): Promise<ListOffsetsResponse> {
    const { replicaManager } = this.context;
    return {
      topics: await Promise.all(
        request.topics.map(async (topic) => ({
          name: topic.name,
          partitions: await Promise.all(
            topic.partitions.map(async (p) => {
              try {
                const found = await replicaManager.listOffset({ topic: topic.name, partition: p.partition }, BigInt(p.timestamp));
                return { partition: p.partition, errorCode: 'NONE' as ErrorName, errorMessage: '', offset: found.offset.toString(), timestamp: found.timestamp.toString(), leaderEpoch: found.leaderEpoch };
              } catch (error) {
                const e = toKavkaError(error);
                return { partition: p.partition, errorCode: e.code, errorMessage: e.message, offset: '-1', timestamp: '-1', leaderEpoch: -1 };
              }
            }),
          ),
        })),
      ),
    };
  }
}

/**
 * Bounds the wait for acks by the request's timeout_ms (0 = no bound). On timeout the append may
 * still complete: the outcome is unknown to the client, as in Kafka, and it retries.
 */
function withTimeout<T>(work: Promise<T>, timeoutMs: number, clock: Clock, what: string): Promise<T> {
  if (timeoutMs <= 0) return work;
  return new Promise<T>((resolve, reject) => {
    const cancel = clock.schedule(timeoutMs, () => reject(new KavkaError('REQUEST_TIMED_OUT', `${what}: the append was not acknowledged within timeout_ms=${timeoutMs}; it may still complete`)));
    work.then(
      (value) => {
        cancel();
        resolve(value);
      },
      (error: unknown) => {
        cancel();
        reject(error);
      },
    );
  });
}

function invalidTopicNameError(name: string): KavkaError | undefined {
  try {
    validateTopicName(name);
    return undefined;
  } catch (error) {
    return toKavkaError(error);
  }
}

function isValidTopicName(name: string): boolean {
  return invalidTopicNameError(name) === undefined;
}

/** The partition's batches: pre-encoded bytes as sent, or plain records encoded as one batch. */
export function batchesOf(data: PartitionProduceData__Output, nowMs: bigint): Buffer {
  const hasBatches = data.batches.length > 0;
  const hasRecords = data.records.length > 0;
  if (hasBatches && hasRecords) throw new KavkaError('INVALID_REQUEST', 'send either batches or records for a partition, not both');
  if (hasBatches) return data.batches;
  if (!hasRecords) throw new KavkaError('INVALID_RECORD', `partition ${data.partition} has no records; send at least one`);
  if (data.records.length > MAX_PLAIN_RECORDS_PER_PARTITION) {
    throw new KavkaError('RECORD_LIST_TOO_LARGE', `partition ${data.partition} has ${data.records.length} records; send at most ${MAX_PLAIN_RECORDS_PER_PARTITION} per request`);
  }
  const records: RecordInput[] = data.records.map((r) => ({
    key: r._key === undefined ? null : (r.key ?? null),
    value: r._value === undefined ? null : (r.value ?? null),
    headers: r.headers.map((h) => ({ key: h.key, value: h._value === undefined ? null : (h.value ?? null) })),
    timestamp: r._timestamp === undefined ? nowMs : BigInt(r.timestamp ?? nowMs),
  }));
  return encodeRecordBatch({ records });
}
