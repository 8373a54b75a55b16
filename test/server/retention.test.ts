// Retention runs on the broker's schedule: whole old segments go, the log start offset moves up,
// and fetches below it get OFFSET_OUT_OF_RANGE while everything above stays readable.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { call, rawClient } from './raw-client.js';
import type { KavkaClient } from '../../src/gen/kavka/v1/Kavka.js';
import type { ListOffsetsResponse__Output } from '../../src/gen/kavka/v1/ListOffsetsResponse.js';
import type { FetchResponse__Output } from '../../src/gen/kavka/v1/FetchResponse.js';

let node: TestBroker;
let client: KavkaClient;

beforeAll(async () => {
  node = await startTestBroker({ 'log.retention.check.interval.ms': '50' });
  client = rawClient(node.clientAddress);
});

afterAll(async () => {
  client?.close();
  await node?.destroy();
});

async function earliest(topic: string): Promise<bigint> {
  const r = await call<object, ListOffsetsResponse__Output>(client, 'ListOffsets', { topics: [{ name: topic, partitions: [{ partition: 0, timestamp: '-2' }] }] });
  if (!r.ok) throw new Error(r.details);
  return BigInt(r.value.topics[0].partitions[0].offset);
}

async function produceKiB(topic: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const r = await call(client, 'Produce', { topics: [{ name: topic, partitions: [{ partition: 0, records: [{ value: Buffer.alloc(1024, i % 256) }] }] }] });
    expect(r.ok).toBe(true);
  }
}

async function until(predicate: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('retention on a running broker', () => {
  it.each([
    ['retention.bytes', { 'retention.bytes': '20000' }],
    ['retention.messages', { 'retention.messages': '30' }],
    ['retention.ms', { 'retention.ms': '1' }],
  ])('deletes old segments by %s and moves the log start offset up', async (name, configs) => {
    const topic = `ret-${name.replace('.', '-')}`;
    await call(client, 'CreateTopics', { topics: [{ name: topic, numPartitions: 1, configs: { 'segment.bytes': '16384', ...configs } }] });
    await produceKiB(topic, 100);
    await until(async () => (await earliest(topic)) > 0n, `retention of ${topic}`);
    const start = await earliest(topic);
    expect(start).toBeLessThan(100n);
    if (name === 'retention.messages') expect(100n - start).toBeGreaterThanOrEqual(30n);
    const below = await call<object, FetchResponse__Output>(client, 'Fetch', { maxWaitMs: 0, topics: [{ name: topic, partitions: [{ partition: 0, fetchOffset: '0' }] }] });
    expect(below.ok && below.value.topics[0].partitions[0].errorCode).toBe('OFFSET_OUT_OF_RANGE');
    // A fetch at the log start returns the record there. Retention keeps running (with
    // retention.ms=1 every sealed segment goes at the next check), so the start may move between
    // reading it and fetching: then read it again (bounded).
    let first: { fetched: string | undefined; start: bigint } | undefined;
    for (let attempt = 0; attempt < 20 && (first === undefined || first.fetched !== first.start.toString()); attempt++) {
      const current = await earliest(topic);
      const at = await call<object, FetchResponse__Output>(client, 'Fetch', { maxWaitMs: 0, plainRecords: true, topics: [{ name: topic, partitions: [{ partition: 0, fetchOffset: current.toString() }] }] });
      first = { fetched: at.ok ? at.value.topics[0].partitions[0].records[0]?.offset : undefined, start: current };
    }
    expect(first?.fetched).toBe(first?.start.toString());
  });
});
