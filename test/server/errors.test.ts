// Bad input gets a Kafka-named error and loses nothing: after each bad request the node still
// serves, and every record acknowledged before it is still there.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { encodeRecordBatch } from '../../src/codec/index.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { call, rawClient } from './raw-client.js';
import type { KavkaClient } from '../../src/gen/kavka/v1/Kavka.js';
import type { ProduceResponse__Output } from '../../src/gen/kavka/v1/ProduceResponse.js';
import type { FetchResponse__Output } from '../../src/gen/kavka/v1/FetchResponse.js';
import type { CreateTopicsResponse__Output } from '../../src/gen/kavka/v1/CreateTopicsResponse.js';
import type { MetadataResponse__Output } from '../../src/gen/kavka/v1/MetadataResponse.js';

let node: TestBroker;
let client: KavkaClient;
const acknowledged: string[] = [];

function produceRecords(topic: string, values: string[], partition = 0, acks = -1) {
  return call<object, ProduceResponse__Output>(client, 'Produce', {
    acks,
    topics: [{ name: topic, partitions: [{ partition, records: values.map((v) => ({ key: Buffer.from('k'), value: Buffer.from(v) })) }] }],
  });
}

async function fetchAll(topic: string, partition = 0, offset = '0', extra: object = {}) {
  return call<object, FetchResponse__Output>(client, 'Fetch', {
    maxWaitMs: 0,
    plainRecords: true,
    topics: [{ name: topic, partitions: [{ partition, fetchOffset: offset }] }],
    ...extra,
  });
}

/** The node still serves and still holds every acknowledged record. */
async function expectNothingLost(): Promise<void> {
  const fetched = await fetchAll('safe');
  expect(fetched.ok).toBe(true);
  if (!fetched.ok) return;
  const partition = fetched.value.topics[0].partitions[0];
  expect(partition.errorCode).toBe('NONE');
  expect(partition.records.map((r) => r.value?.toString())).toEqual(acknowledged);
}

beforeAll(async () => {
  node = await startTestBroker({ 'auto.create.topics.enable': 'false' });
  client = rawClient(node.clientAddress);
  const created = await call<object, CreateTopicsResponse__Output>(client, 'CreateTopics', { topics: [{ name: 'safe', numPartitions: 3 }] });
  expect(created.ok && created.value.topics[0].errorCode).toBe('NONE');
  const produced = await produceRecords('safe', ['a', 'b', 'c']);
  expect(produced.ok && produced.value.topics[0].partitions[0].errorCode).toBe('NONE');
  acknowledged.push('a', 'b', 'c');
});

afterAll(async () => {
  client?.close();
  await node?.destroy();
});

describe('bad input gets a named error and the node keeps serving', () => {
  it.each([
    ['illegal characters', 'no spaces allowed'],
    ['more than 249 characters', 'x'.repeat(250)],
    ['"."', '.'],
    ['".."', '..'],
  ])('CreateTopics with a name with %s: INVALID_TOPIC_EXCEPTION', async (_what, name) => {
    const result = await call<object, CreateTopicsResponse__Output>(client, 'CreateTopics', { topics: [{ name, numPartitions: 1 }] });
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.value.topics[0].errorCode).toBe('INVALID_TOPIC_EXCEPTION');
    await expectNothingLost();
  });

  it("CreateTopics colliding on '.' and '_': INVALID_TOPIC_EXCEPTION", async () => {
    await call(client, 'CreateTopics', { topics: [{ name: 'metrics.cpu' }] });
    const result = await call<object, CreateTopicsResponse__Output>(client, 'CreateTopics', { topics: [{ name: 'metrics_cpu' }] });
    expect(result.ok && result.value.topics[0].errorCode).toBe('INVALID_TOPIC_EXCEPTION');
    await expectNothingLost();
  });

  it.each([0, -3])('CreateTopics with %i partitions: INVALID_PARTITIONS', async (numPartitions) => {
    const result = await call<object, CreateTopicsResponse__Output>(client, 'CreateTopics', { topics: [{ name: `p${numPartitions + 10}`, numPartitions }] });
    expect(result.ok && result.value.topics[0].errorCode).toBe('INVALID_PARTITIONS');
    await expectNothingLost();
  });

  it('Produce to an unknown topic: UNKNOWN_TOPIC_OR_PARTITION per partition', async () => {
    const result = await produceRecords('missing', ['x']);
    expect(result.ok && result.value.topics[0].partitions[0].errorCode).toBe('UNKNOWN_TOPIC_OR_PARTITION');
    await expectNothingLost();
  });

  it('Produce to an unknown partition: UNKNOWN_TOPIC_OR_PARTITION, other partitions unaffected', async () => {
    const result = await call<object, ProduceResponse__Output>(client, 'Produce', {
      topics: [{ name: 'safe', partitions: [{ partition: 7, records: [{ value: Buffer.from('x') }] }, { partition: 1, records: [{ value: Buffer.from('y') }] }] }],
    });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value.topics[0].partitions.map((p) => p.errorCode)).toEqual(['UNKNOWN_TOPIC_OR_PARTITION', 'NONE']);
    await expectNothingLost();
  });

  it('Fetch above the log end or below the log start: OFFSET_OUT_OF_RANGE', async () => {
    for (const offset of ['4', '1000', '-5']) {
      const result = await fetchAll('safe', 0, offset);
      expect(result.ok && result.value.topics[0].partitions[0].errorCode).toBe('OFFSET_OUT_OF_RANGE');
    }
    const atEnd = await fetchAll('safe', 0, '3');
    expect(atEnd.ok && atEnd.value.topics[0].partitions[0].errorCode).toBe('NONE');
    await expectNothingLost();
  });

  it.each(['', '.', 'a/b', 'x'.repeat(250)])('Produce, Fetch and ListOffsets on the invalid name %j: INVALID_TOPIC_EXCEPTION', async (name) => {
    const produced = await produceRecords(name, ['x']);
    expect(produced.ok && produced.value.topics[0].partitions[0].errorCode).toBe('INVALID_TOPIC_EXCEPTION');
    const fetched = await fetchAll(name);
    expect(fetched.ok && fetched.value.topics[0].partitions[0].errorCode).toBe('INVALID_TOPIC_EXCEPTION');
    const listed = await call<object, { topics: { partitions: { errorCode: string }[] }[] }>(client, 'ListOffsets', { topics: [{ name, partitions: [{ partition: 0, timestamp: '-1' }] }] });
    expect(listed.ok && listed.value.topics[0].partitions[0].errorCode).toBe('INVALID_TOPIC_EXCEPTION');
    await expectNothingLost();
  });

  it('Fetch of an unknown topic: UNKNOWN_TOPIC_OR_PARTITION', async () => {
    const result = await fetchAll('missing');
    expect(result.ok && result.value.topics[0].partitions[0].errorCode).toBe('UNKNOWN_TOPIC_OR_PARTITION');
  });

  it('a batch larger than message.max.bytes: MESSAGE_TOO_LARGE', async () => {
    const batch = encodeRecordBatch({ records: [{ key: null, value: Buffer.alloc(1048588 + 10, 1), timestamp: 1n }] });
    const result = await call<object, ProduceResponse__Output>(client, 'Produce', { topics: [{ name: 'safe', partitions: [{ partition: 0, batches: batch }] }] });
    expect(result.ok && result.value.topics[0].partitions[0].errorCode).toBe('MESSAGE_TOO_LARGE');
    await expectNothingLost();
  });

  it('a batch with a bad CRC: CORRUPT_MESSAGE', async () => {
    const batch = encodeRecordBatch({ records: [{ key: null, value: Buffer.from('hello'), timestamp: 1n }] });
    batch[batch.length - 3] ^= 0xff;
    const result = await call<object, ProduceResponse__Output>(client, 'Produce', { topics: [{ name: 'safe', partitions: [{ partition: 0, batches: batch }] }] });
    expect(result.ok && result.value.topics[0].partitions[0].errorCode).toBe('CORRUPT_MESSAGE');
    await expectNothingLost();
  });

  it('bytes that are not a record batch: CORRUPT_MESSAGE', async () => {
    const result = await call<object, ProduceResponse__Output>(client, 'Produce', { topics: [{ name: 'safe', partitions: [{ partition: 0, batches: Buffer.from('definitely not a batch, but long enough to hold a header......') }] }] });
    expect(result.ok && result.value.topics[0].partitions[0].errorCode).toBe('CORRUPT_MESSAGE');
    await expectNothingLost();
  });

  it.each([2, -2, 100])('acks=%i: INVALID_REQUIRED_ACKS in the status details', async (acks) => {
    const result = await produceRecords('safe', ['never'], 0, acks);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(result.info?.reason).toBe('INVALID_REQUIRED_ACKS');
    expect(result.info?.retriable).toBe(false);
    await expectNothingLost();
  });

  it('an empty produce: INVALID_REQUEST; a partition with no records: INVALID_RECORD', async () => {
    const empty = await call<object, ProduceResponse__Output>(client, 'Produce', { topics: [] });
    expect(empty.ok).toBe(false);
    if (!empty.ok) expect(empty.info?.reason).toBe('INVALID_REQUEST');
    const noRecords = await call<object, ProduceResponse__Output>(client, 'Produce', { topics: [{ name: 'safe', partitions: [{ partition: 0 }] }] });
    expect(noRecords.ok && noRecords.value.topics[0].partitions[0].errorCode).toBe('INVALID_RECORD');
    await expectNothingLost();
  });

  it('a malformed request (bytes that are not the message): INVALID_REQUEST', async () => {
    const channel = new grpc.Client(node.clientAddress, grpc.credentials.createInsecure());
    const result = await new Promise<grpc.ServiceError | null>((resolve) => {
      channel.makeUnaryRequest(
        '/kavka.v1.Kavka/Produce',
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from([0x22, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]),
        (error) => resolve(error),
      );
    });
    channel.close();
    expect(result).not.toBeNull();
    const { readErrorInfo } = await import('../../src/proto/index.js');
    expect(readErrorInfo(result?.metadata)?.reason).toBe('INVALID_REQUEST');
    await expectNothingLost();
  });

  it('a fetch with an absurd max bytes is clamped and still returns at least one whole batch', async () => {
    const huge = await fetchAll('safe', 0, '0', { maxBytes: 2_000_000_000 });
    expect(huge.ok && huge.value.topics[0].partitions[0].records.length).toBe(3);
    const tiny = await call<object, FetchResponse__Output>(client, 'Fetch', { maxWaitMs: 0, maxBytes: 1, topics: [{ name: 'safe', partitions: [{ partition: 0, fetchOffset: '0', partitionMaxBytes: 1 }] }] });
    expect(tiny.ok).toBe(true);
    if (tiny.ok) expect(tiny.value.topics[0].partitions[0].batches.length).toBeGreaterThan(61);
    await expectNothingLost();
  });

  it('Metadata names an unknown or invalid topic with its error', async () => {
    const result = await call<object, MetadataResponse__Output>(client, 'Metadata', { topics: ['safe', 'nope', 'bad name'] });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value.topics.map((t) => t.errorCode)).toEqual(['NONE', 'UNKNOWN_TOPIC_OR_PARTITION', 'INVALID_TOPIC_EXCEPTION']);
    expect(result.value.topics[0].partitions).toHaveLength(3);
    expect(result.value.brokers[0].port).toBe(Number(node.clientAddress.split(':')[1]));
  });
});
