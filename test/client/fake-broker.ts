// A scripted kavka.v1.Kavka server for client tests that need failures a real single broker
// does not produce on demand (a moved leader, a partition error, a request-level error). Each
// test gives the handlers it needs; the others answer UNIMPLEMENTED, except InitProducerId, which
// hands out producer ids (a new id from 1000 on, or the next epoch of a given one) unless the test
// gives its own. FakePartitionLog is a partition leader's log with the broker's idempotent-producer
// checks, for tests that need duplicates and sequence gaps answered as a real leader would.
import * as grpc from '@grpc/grpc-js';
import { loadKavkaGrpc } from '../../src/proto/index.js';
import { scanBatches, setBaseOffset, decodeRecordBatch, type BatchHeader } from '../../src/codec/record-batch.js';
import { ProducerStateManager, producerBatchMetaOf } from '../../src/storage/producer-state.js';
import { KavkaError, type ErrorName } from '../../src/util/errors.js';
import type { KavkaHandlers } from '../../src/gen/kavka/v1/Kavka.js';
import type { MetadataResponse } from '../../src/gen/kavka/v1/MetadataResponse.js';
import type { InitProducerIdRequest__Output } from '../../src/gen/kavka/v1/InitProducerIdRequest.js';
import type { InitProducerIdResponse } from '../../src/gen/kavka/v1/InitProducerIdResponse.js';

export interface FakeBroker {
  address: string;
  port: number;
  /** The InitProducerId requests the default handler answered, in order. */
  initProducerIdRequests: InitProducerIdRequest__Output[];
  stop(): Promise<void>;
}

export async function startFakeBroker(handlers: Partial<KavkaHandlers>, options: { firstProducerId?: number } = {}): Promise<FakeBroker> {
  const kavka = loadKavkaGrpc();
  const server = new grpc.Server();
  const initProducerIdRequests: InitProducerIdRequest__Output[] = [];
  let nextProducerId = options.firstProducerId ?? 1000;
  const initProducerId: grpc.handleUnaryCall<InitProducerIdRequest__Output, InitProducerIdResponse> = (call, callback) => {
    const request = call.request;
    initProducerIdRequests.push(request);
    const bump = request._producerId !== undefined && request.producerId !== undefined && BigInt(request.producerId) >= 0n;
    callback(null, bump ? { producerId: request.producerId, producerEpoch: (request.producerEpoch ?? 0) + 1 } : { producerId: String(nextProducerId++), producerEpoch: 0 });
  };
  server.addService(kavka.kavka.v1.Kavka.service, { InitProducerId: initProducerId, ...handlers } as grpc.UntypedServiceImplementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return {
    address: `127.0.0.1:${port}`,
    port,
    initProducerIdRequests,
    stop: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())).then(() => server.forceShutdown()),
  };
}

/** A Metadata answer: `leaders[p]` is the node leading partition p of `topic`. */
export function metadataAnswer(topic: string, leaders: number[], brokers: { nodeId: number; port: number }[], answeringNodeId = brokers[0].nodeId): MetadataResponse {
  return {
    clusterId: 'fake',
    controllerId: brokers[0].nodeId,
    nodeId: answeringNodeId,
    brokers: brokers.map((b) => ({ nodeId: b.nodeId, host: '127.0.0.1', port: b.port, rack: '' })),
    topics: [
      {
        errorCode: 'NONE',
        name: topic,
        partitions: leaders.map((leader, partition) => ({ errorCode: 'NONE', partition, leaderId: leader, leaderEpoch: 0, replicas: [leader], isr: [leader] })),
      },
    ],
  };
}

/** The headers of the batches laid back to back in `bytes` (a PartitionProduceData's batches). */
export function batchHeaders(bytes: Buffer): BatchHeader[] {
  return scanBatches(bytes, { verifyCrc: true }).batches.map((b) => b.header);
}

export interface AppendOutcome {
  errorCode: ErrorName;
  errorMessage: string;
  /** -1 on error. */
  baseOffset: bigint;
  lastOffset: bigint;
  /** The batches were already in the log: answered with their original offsets. */
  duplicate: boolean;
}

/**
 * One partition's log as its leader keeps it: appends check the producer's epoch and sequences
 * (ProducerStateManager, 'reject' for unknown producers as DESIGN.md has it), a retry of one of
 * the last 5 batches is answered with its original offsets and not written again.
 */
export class FakePartitionLog {
  /** The appended batches, base offsets stamped. */
  readonly batches: Buffer[] = [];
  private state = new ProducerStateManager(0n);
  private end = 0n;

  append(bytes: Buffer): AppendOutcome {
    const scan = scanBatches(bytes, { verifyCrc: true });
    if (scan.stop.kind !== 'end') return { errorCode: 'CORRUPT_MESSAGE', errorMessage: 'bad batch', baseOffset: -1n, lastOffset: -1n, duplicate: false };
    try {
      const check = this.state.checkAppends(scan.batches.map((b) => producerBatchMetaOf(b.header)));
      if (check.kind === 'duplicate') return { errorCode: 'NONE', errorMessage: '', baseOffset: check.firstOffset, lastOffset: check.lastOffset, duplicate: true };
    } catch (error) {
      if (!(error instanceof KavkaError)) throw error;
      return { errorCode: error.code, errorMessage: error.message, baseOffset: -1n, lastOffset: -1n, duplicate: false };
    }
    const baseOffset = this.end;
    for (const { position, size, header } of scan.batches) {
      const batch = Buffer.from(bytes.subarray(position, position + size));
      setBaseOffset(batch, this.end);
      const last = this.end + BigInt(header.lastOffsetDelta);
      this.state.onAppended(producerBatchMetaOf(header), this.end, last, 0);
      this.batches.push(batch);
      this.end = last + 1n;
    }
    return { errorCode: 'NONE', errorMessage: '', baseOffset, lastOffset: this.end - 1n, duplicate: false };
  }

  /** Forgets every producer, as after producer.id.expiration.ms: their next batch gets UNKNOWN_PRODUCER_ID. */
  expireProducers(): void {
    this.state = new ProducerStateManager(this.end);
  }

  /** The record values in offset order. */
  values(): string[] {
    return this.batches.flatMap((b) => decodeRecordBatch(b).records.map((r) => r.value?.toString() ?? 'null'));
  }
}
