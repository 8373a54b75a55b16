// Streaming calls end with a status a client can read: a request-level error on a stream reaches
// the client with its ErrorInfo, and a stopping node ends open streams (and long-polls) with a
// retriable BROKER_NOT_AVAILABLE instead of holding its shutdown open.
import { afterEach, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { call, rawClient } from './raw-client.js';
import { readErrorInfo } from '../../src/proto/index.js';
import type { ProduceResponse__Output } from '../../src/gen/kavka/v1/ProduceResponse.js';
import type { FetchResponse__Output } from '../../src/gen/kavka/v1/FetchResponse.js';

let node: TestBroker | undefined;

afterEach(async () => {
  await node?.destroy();
  node = undefined;
});

/** The final status of a call (grpc-js emits 'status' once, after 'end' or 'error'). */
function streamEnd(stream: grpc.ClientReadableStream<unknown> | grpc.ClientDuplexStream<unknown, unknown>): Promise<grpc.StatusObject> {
  return new Promise((resolve) => {
    stream.on('status', (status: grpc.StatusObject) => resolve(status));
    stream.on('error', () => undefined);
    stream.on('data', () => undefined);
  });
}

describe('stream status', () => {
  it('ends a ProduceStream with the request-level error after answering the requests before it', async () => {
    node = await startTestBroker();
    const client = rawClient(node.clientAddress);
    const stream = client.ProduceStream({ deadline: Date.now() + 30_000 });
    const responses: ProduceResponse__Output[] = [];
    stream.on('data', (r: ProduceResponse__Output) => responses.push(r));
    const ended = streamEnd(stream);
    stream.write({ correlationId: 1, topics: [{ name: 's', partitions: [{ partition: 0, records: [{ value: Buffer.from('ok') }] }] }] });
    stream.write({ correlationId: 2, acks: 2, topics: [{ name: 's', partitions: [{ partition: 0, records: [{ value: Buffer.from('bad') }] }] }] });
    const error = await ended;
    client.close();
    expect(responses.map((r) => r.correlationId)).toEqual(['1']);
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(readErrorInfo(error.metadata)?.reason).toBe('INVALID_REQUIRED_ACKS');
  });

  it('appends nothing from requests read after the one that failed the stream', async () => {
    node = await startTestBroker();
    const client = rawClient(node.clientAddress);
    await call(client, 'CreateTopics', { topics: [{ name: 'after', numPartitions: 1 }] });
    const stream = client.ProduceStream({ deadline: Date.now() + 30_000 });
    const ended = streamEnd(stream);
    for (let i = 1; i <= 40; i++) {
      stream.write({ correlationId: i, acks: i === 10 ? 7 : -1, topics: [{ name: 'after', partitions: [{ partition: 0, records: [{ value: Buffer.from(`m${i}`) }] }] }] });
    }
    const status = await ended;
    expect(readErrorInfo(status.metadata)?.reason).toBe('INVALID_REQUIRED_ACKS');
    const offsets = await call<object, { topics: { partitions: { offset: string }[] }[] }>(client, 'ListOffsets', { topics: [{ name: 'after', partitions: [{ partition: 0, timestamp: '-1' }] }] });
    client.close();
    expect(offsets.ok && offsets.value.topics[0].partitions[0].offset).toBe('9');
  });

  it('ends open streams and long-polls with a retriable BROKER_NOT_AVAILABLE when the node stops', async () => {
    // A shutdown bound far above the test timeout: if open calls held the shutdown, the test would time out.
    node = await startTestBroker({ 'shutdown.timeout.ms': '600000' });
    const client = rawClient(node.clientAddress);
    await call(client, 'CreateTopics', { topics: [{ name: 'open', numPartitions: 1 }] });
    const produceStream = client.ProduceStream();
    const produceEnded = streamEnd(produceStream);
    const answered = new Promise((resolve) => produceStream.once('data', resolve));
    produceStream.write({ correlationId: 1, topics: [{ name: 'open', partitions: [{ partition: 0, records: [{ value: Buffer.from('x') }] }] }] });
    await answered;
    const fetchStream = client.FetchStream({ maxWaitMs: 500, topics: [{ name: 'open', partitions: [{ partition: 0, fetchOffset: '1' }] }] });
    const fetchEnded = streamEnd(fetchStream);
    // The fetch stream is known to be open once it delivers the next record.
    const delivered = new Promise((resolve) => fetchStream.once('data', resolve));
    const secondAnswer = new Promise((resolve) => produceStream.once('data', resolve));
    produceStream.write({ correlationId: 2, topics: [{ name: 'open', partitions: [{ partition: 0, records: [{ value: Buffer.from('y') }] }] }] });
    await Promise.all([delivered, secondAnswer]);
    const longPoll = call<object, FetchResponse__Output>(client, 'Fetch', { maxWaitMs: 30_000, minBytes: 1, topics: [{ name: 'open', partitions: [{ partition: 0, fetchOffset: '2' }] }] });
    await new Promise((resolve) => setTimeout(resolve, 200));

    await node.stop();
    const [produceError, fetchError, poll] = await Promise.all([produceEnded, fetchEnded, longPoll]);
    client.close();
    for (const error of [produceError, fetchError]) {
      expect(error.code).toBe(grpc.status.UNAVAILABLE);
      expect(readErrorInfo(error.metadata)).toMatchObject({ reason: 'BROKER_NOT_AVAILABLE', retriable: true });
    }
    // Controlled shutdown fenced this broker first, so the long-poll ends with the partition's
    // retriable "led elsewhere" answer (here: nowhere until the node is back).
    expect(poll.ok && poll.value.topics[0].partitions[0].errorCode).toBe('NOT_LEADER_OR_FOLLOWER');
  });
});
