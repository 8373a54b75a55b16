// The client rides out a broker restart: sends made while it is down are retried with backoff
// and succeed once it is back; a running consumer keeps retrying and resumes where it was.
import { afterAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { Kavka } from '../../src/client/index.js';

let node: TestBroker | undefined;

afterAll(async () => {
  await node?.destroy();
});

describe('broker restart', () => {
  it('retries sends until the broker is back and keeps consuming', async () => {
    // A short shutdown bound: the broker waits that long for open streams to end.
    node = await startTestBroker({ 'shutdown.timeout.ms': '500' });
    const port = node.clientAddress.split(':')[1];
    const kavka = new Kavka({ clientId: 'restart-test', brokers: [node.clientAddress], retry: { retries: 30, initialRetryTimeMs: 50, maxRetryTimeMs: 200 } });
    const admin = kavka.admin();
    await admin.createTopics({ topics: [{ topic: 'restart', numPartitions: 1 }] });
    await admin.disconnect();
    const producer = kavka.producer({ lingerMs: 0 });
    await producer.send({ topic: 'restart', messages: [{ value: 'before' }] });

    const consumer = kavka.consumer({ maxWaitTimeMs: 50 });
    consumer.assign([{ topic: 'restart', fromBeginning: true }]);
    const seen: string[] = [];
    await consumer.run({
      eachMessage: async ({ message }) => {
        seen.push(message.value?.toString() ?? '');
        if (seen.length === 2) void consumer.stop();
      },
    });

    const dataDir = node.dataDir;
    await node.stop();
    const pending = producer.send({ topic: 'restart', messages: [{ value: 'during' }] });
    await new Promise((resolve) => setTimeout(resolve, 300));
    node = await startTestBroker({ 'shutdown.timeout.ms': '500', listeners: `CLIENT://127.0.0.1:${port},INTERNAL://127.0.0.1:0` }, { dataDir });

    const [metadata] = await pending;
    expect(metadata.baseOffset).toBe('1');
    await consumer.finished();
    expect(seen).toEqual(['before', 'during']);
    await consumer.disconnect();
    await producer.disconnect();
  });
});
