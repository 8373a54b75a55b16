// The client against scripted brokers: partition errors, moved leaders and request-level errors
// take the paths Kafka's clients take (refresh metadata, back off, retry or give up).
import { afterEach, describe, expect, it } from 'vitest';
import type * as grpc from '@grpc/grpc-js';
import { Kavka } from '../../src/client/index.js';
import { encodeRecordBatch, setBaseOffset } from '../../src/codec/record-batch.js';
import { toServiceError } from '../../src/proto/index.js';
import { KavkaError } from '../../src/util/errors.js';
import { metadataAnswer, startFakeBroker, type FakeBroker } from './fake-broker.js';
import type { ProduceRequest__Output } from '../../src/gen/kavka/v1/ProduceRequest.js';
import type { ProduceResponse } from '../../src/gen/kavka/v1/ProduceResponse.js';
import type { FetchRequest__Output } from '../../src/gen/kavka/v1/FetchRequest.js';
import type { FetchResponse } from '../../src/gen/kavka/v1/FetchResponse.js';
import type { ListOffsetsResponse } from '../../src/gen/kavka/v1/ListOffsetsResponse.js';
import type { ErrorName } from '../../src/util/errors.js';
import type { MetadataRequest__Output } from '../../src/gen/kavka/v1/MetadataRequest.js';
import type { MetadataResponse } from '../../src/gen/kavka/v1/MetadataResponse.js';

const brokers: FakeBroker[] = [];
const fast = { retries: 5, initialRetryTimeMs: 10, maxRetryTimeMs: 50 };

afterEach(async () => {
  await Promise.all(brokers.splice(0).map((b) => b.stop()));
});

function produceAnswer(request: ProduceRequest__Output, errorCode: ErrorName, baseOffset = '0'): ProduceResponse {
  return {
    correlationId: request.correlationId,
    topics: request.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => ({ partition: p.partition, errorCode, errorMessage: errorCode === 'NONE' ? '' : 'scripted', baseOffset, lastOffset: baseOffset, logAppendTime: '-1', logStartOffset: '0' })),
    })),
  };
}

describe('producer failover', () => {
  // KAFKA_STORAGE_ERROR: the leader's log dir went offline (Kavka issue 6); treated like a moved leader.
  it.each(['NOT_LEADER_OR_FOLLOWER', 'KAFKA_STORAGE_ERROR'] as const)('refreshes metadata and follows a moved leader after %s', async (refusal) => {
    let metadataCalls = 0;
    const produced: string[] = [];
    const nodes: { nodeId: number; port: number }[] = [];
    const metadata: grpc.handleUnaryCall<MetadataRequest__Output, MetadataResponse> = (_call, callback) => {
      metadataCalls++;
      // Node 1 leads until it has refused a produce; then node 2 does.
      callback(null, metadataAnswer('t', [produced.includes('one') ? 2 : 1], nodes));
    };
    const streamFor = (name: string, errorCode: ErrorName) => (call: grpc.ServerDuplexStream<ProduceRequest__Output, ProduceResponse>) => {
      call.on('data', (request: ProduceRequest__Output) => {
        produced.push(name);
        call.write(produceAnswer(request, errorCode, '7'));
      });
      call.on('end', () => call.end());
    };
    const one = await startFakeBroker({ Metadata: metadata, ProduceStream: streamFor('one', refusal) });
    const two = await startFakeBroker({ Metadata: metadata, ProduceStream: streamFor('two', 'NONE') });
    brokers.push(one, two);
    nodes.push({ nodeId: 1, port: one.port }, { nodeId: 2, port: two.port });

    const producer = new Kavka({ clientId: 'failover', brokers: [one.address], retry: fast }).producer({ lingerMs: 0 });
    const [metadataOut] = await producer.send({ topic: 't', messages: [{ value: 'x' }] });
    await producer.disconnect();
    expect(metadataOut.baseOffset).toBe('7');
    expect(produced).toEqual(['one', 'two']);
    expect(metadataCalls).toBeGreaterThanOrEqual(3);
  });

  it('gives up after the configured retries with the partition error', async () => {
    let produceCalls = 0;
    const broker = await startFakeBroker({
      Metadata: (_call, callback) => callback(null, metadataAnswer('t', [1], [{ nodeId: 1, port: broker.port }])),
      Produce: (call: grpc.ServerUnaryCall<ProduceRequest__Output, ProduceResponse>, callback: grpc.sendUnaryData<ProduceResponse>) => {
        produceCalls++;
        callback(null, produceAnswer(call.request, 'NOT_ENOUGH_REPLICAS'));
      },
    });
    brokers.push(broker);
    const producer = new Kavka({ clientId: 'give-up', brokers: [broker.address], retry: { ...fast, retries: 2 } }).producer({ lingerMs: 0, useUnaryProduce: true });
    const failure = await producer.send({ topic: 't', messages: [{ value: 'x' }] }).catch((e: unknown) => e);
    await producer.disconnect();
    expect(failure).toBeInstanceOf(KavkaError);
    expect(failure).toMatchObject({ code: 'NOT_ENOUGH_REPLICAS', retriable: true });
    expect(produceCalls).toBe(3);
  });

  it('fails at once on a non-retriable request-level error read from ErrorInfo', async () => {
    let produceCalls = 0;
    const broker = await startFakeBroker({
      Metadata: (_call, callback) => callback(null, metadataAnswer('t', [1], [{ nodeId: 1, port: broker.port }])),
      ProduceStream: (call: grpc.ServerDuplexStream<ProduceRequest__Output, ProduceResponse>) => {
        call.on('data', () => {
          produceCalls++;
          // emit, not destroy: grpc-js sends the status from end(), which a destroyed stream skips.
          call.emit('error', toServiceError(new KavkaError('INVALID_REQUIRED_ACKS', 'acks=2 is not valid')));
        });
      },
    });
    brokers.push(broker);
    const producer = new Kavka({ clientId: 'request-error', brokers: [broker.address], retry: fast }).producer({ lingerMs: 0 });
    await expect(producer.send({ topic: 't', messages: [{ value: 'x' }] })).rejects.toMatchObject({ code: 'INVALID_REQUIRED_ACKS', retriable: false });
    await producer.disconnect();
    expect(produceCalls).toBe(1);
  });

  it('falls back to unary Produce when the broker has no ProduceStream', async () => {
    const broker = await startFakeBroker({
      Metadata: (_call, callback) => callback(null, metadataAnswer('t', [1], [{ nodeId: 1, port: broker.port }])),
      Produce: (call: grpc.ServerUnaryCall<ProduceRequest__Output, ProduceResponse>, callback: grpc.sendUnaryData<ProduceResponse>) => callback(null, produceAnswer(call.request, 'NONE', '3')),
    });
    brokers.push(broker);
    const producer = new Kavka({ clientId: 'unary', brokers: [broker.address], retry: fast }).producer({ lingerMs: 0 });
    const [first] = await producer.send({ topic: 't', messages: [{ value: 'x' }] });
    await producer.disconnect();
    expect(first.baseOffset).toBe('3');
  });
  it('holds further sends while maxBufferedBytes of records wait for acknowledgement', async () => {
    const held: (() => void)[] = [];
    let requests = 0;
    const broker = await startFakeBroker({
      Metadata: (_call, callback) => callback(null, metadataAnswer('t', [1], [{ nodeId: 1, port: broker.port }])),
      ProduceStream: (call: grpc.ServerDuplexStream<ProduceRequest__Output, ProduceResponse>) => {
        call.on('data', (request: ProduceRequest__Output) => {
          requests++;
          held.push(() => call.write(produceAnswer(request, 'NONE', String(requests - 1))));
        });
        call.on('end', () => call.end());
      },
    });
    brokers.push(broker);
    const producer = new Kavka({ clientId: 'bounded', brokers: [broker.address], retry: fast }).producer({ lingerMs: 0, maxBufferedBytes: 2_000 });
    // The first send alone fills the buffer: the second may not even append until it settles.
    const first = producer.send({ topic: 't', messages: [{ value: Buffer.alloc(2_500) }] });
    const second = producer.send({ topic: 't', messages: [{ value: Buffer.alloc(100) }] });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(requests).toBe(1);
    held.shift()?.();
    await first;
    // Wait on the event (the second request arriving), bounded, never on a fixed sleep.
    for (let i = 0; i < 500 && requests < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(requests).toBe(2);
    held.shift()?.();
    await second;
    await producer.disconnect();
  });
});

describe('consumer failover', () => {
  it.each(['NOT_LEADER_OR_FOLLOWER', 'KAFKA_STORAGE_ERROR'] as const)('moves its fetches to the new leader after %s', async (refusal) => {
    let metadataCalls = 0;
    const nodes: { nodeId: number; port: number }[] = [];
    const batch = encodeRecordBatch({ records: [{ key: null, value: Buffer.from('from-two'), headers: [], timestamp: 1n }] });
    setBaseOffset(batch, 0n);
    const metadata: grpc.handleUnaryCall<MetadataRequest__Output, MetadataResponse> = (_call, callback) => {
      metadataCalls++;
      callback(null, metadataAnswer('t', [metadataCalls <= 2 ? 1 : 2], nodes));
    };
    const listOffsets: grpc.handleUnaryCall<unknown, ListOffsetsResponse> = (_call, callback) =>
      callback(null, { topics: [{ name: 't', partitions: [{ partition: 0, errorCode: 'NONE', offset: '0', timestamp: '-1', leaderEpoch: 0 }] }] });
    const fetchFor = (errorCode: ErrorName, batches: Buffer) => (call: grpc.ServerUnaryCall<FetchRequest__Output, FetchResponse>, callback: grpc.sendUnaryData<FetchResponse>) => {
      const offset = call.request.topics[0].partitions[0].fetchOffset;
      const data = offset === '0' ? batches : Buffer.alloc(0);
      callback(null, { topics: [{ name: 't', partitions: [{ partition: 0, errorCode, highWatermark: '1', logStartOffset: '0', batches: errorCode === 'NONE' ? data : Buffer.alloc(0), nextFetchOffset: '1' }] }] });
    };
    const one = await startFakeBroker({ Metadata: metadata, ListOffsets: listOffsets, Fetch: fetchFor(refusal, Buffer.alloc(0)) });
    const two = await startFakeBroker({ Metadata: metadata, ListOffsets: listOffsets, Fetch: fetchFor('NONE', batch) });
    brokers.push(one, two);
    nodes.push({ nodeId: 1, port: one.port }, { nodeId: 2, port: two.port });

    const consumer = new Kavka({ clientId: 'consumer-failover', brokers: [one.address], retry: fast }).consumer({ maxWaitTimeMs: 10 });
    consumer.assign([{ topic: 't', fromBeginning: true }]);
    const seen: { value: string; brokerId: number }[] = [];
    await consumer.run({
      eachMessage: async ({ message, brokerId }) => {
        seen.push({ value: message.value?.toString() ?? '', brokerId });
        void consumer.stop();
      },
    });
    await consumer.finished();
    await consumer.disconnect();
    expect(seen).toEqual([{ value: 'from-two', brokerId: 2 }]);
  });
});
