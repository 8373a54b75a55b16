// The client API end to end over real gRPC on real sockets, against a real node with real files.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { call, rawClient } from './raw-client.js';
import type { KavkaClient } from '../../src/gen/kavka/v1/Kavka.js';
import type { ProduceRequest } from '../../src/gen/kavka/v1/ProduceRequest.js';
import type { ProduceResponse__Output } from '../../src/gen/kavka/v1/ProduceResponse.js';
import type { FetchResponse__Output } from '../../src/gen/kavka/v1/FetchResponse.js';
import type { ListOffsetsResponse__Output } from '../../src/gen/kavka/v1/ListOffsetsResponse.js';
import type { DescribeConfigsResponse__Output } from '../../src/gen/kavka/v1/DescribeConfigsResponse.js';
import type { AlterConfigsResponse__Output } from '../../src/gen/kavka/v1/AlterConfigsResponse.js';
import type { MetadataResponse__Output } from '../../src/gen/kavka/v1/MetadataResponse.js';
import type { CreateTopicsResponse__Output } from '../../src/gen/kavka/v1/CreateTopicsResponse.js';

let node: TestBroker;
let client: KavkaClient;

function produce(topic: string, values: string[], options: { partition?: number; timestamp?: number } = {}) {
  return call<ProduceRequest, ProduceResponse__Output>(client, 'Produce', {
    topics: [{ name: topic, partitions: [{ partition: options.partition ?? 0, records: values.map((v) => ({ value: Buffer.from(v), timestamp: options.timestamp })) }] }],
  });
}

function fetchRecords(topic: string, fetchOffset: string, extra: object = {}) {
  return call<object, FetchResponse__Output>(client, 'Fetch', { maxWaitMs: 0, plainRecords: true, topics: [{ name: topic, partitions: [{ partition: 0, fetchOffset }] }], ...extra });
}

beforeAll(async () => {
  node = await startTestBroker({ 'num.partitions': '2' });
  client = rawClient(node.clientAddress);
});

afterAll(async () => {
  client?.close();
  await node?.destroy();
});

describe('produce and fetch', () => {
  it('auto-creates a topic on first produce with num.partitions, and assigns consecutive offsets', async () => {
    const first = await produce('auto', ['a', 'b']);
    const second = await produce('auto', ['c']);
    expect(first.ok && first.value.topics[0].partitions[0]).toMatchObject({ errorCode: 'NONE', baseOffset: '0', lastOffset: '1' });
    expect(second.ok && second.value.topics[0].partitions[0]).toMatchObject({ errorCode: 'NONE', baseOffset: '2' });
    const metadata = await call<object, MetadataResponse__Output>(client, 'Metadata', { topics: ['auto'] });
    expect(metadata.ok && metadata.value.topics[0].partitions).toHaveLength(2);
  });

  it('answers brokers only when asked, and every topic for an empty list otherwise', async () => {
    const brokersOnly = await call<object, MetadataResponse__Output>(client, 'Metadata', { brokersOnly: true });
    expect(brokersOnly.ok && brokersOnly.value.topics).toEqual([]);
    expect(brokersOnly.ok && brokersOnly.value.brokers.map((b) => b.nodeId)).toEqual([1]);
    const all = await call<object, MetadataResponse__Output>(client, 'Metadata', {});
    expect(all.ok && all.value.topics.map((t) => t.name)).toContain('auto');
  });

  it('fetches from an offset inside a batch, returning records from that offset on', async () => {
    const result = await fetchRecords('auto', '1');
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const partition = result.value.topics[0].partitions[0];
    expect(partition.records.map((r) => [r.offset, r.value?.toString()])).toEqual([['1', 'b'], ['2', 'c']]);
    expect(partition.highWatermark).toBe('3');
    expect(partition.nextFetchOffset).toBe('3');
  });

  it('long-polls: a fetch at the end waits for the next produce', async () => {
    const pending = fetchRecords('auto', '3', { maxWaitMs: 10_000, minBytes: 1 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await produce('auto', ['d']);
    const result = await pending;
    expect(result.ok && result.value.topics[0].partitions[0].records.map((r) => r.value?.toString())).toEqual(['d']);
  });

  it('returns empty after max wait when nothing arrives', async () => {
    const result = await fetchRecords('auto', '4', { maxWaitMs: 50, minBytes: 1 });
    expect(result.ok && result.value.topics[0].partitions[0].records).toEqual([]);
  });

  it('answers every ProduceStream request with its own correlation id, in order per partition', async () => {
    await call(client, 'CreateTopics', { topics: [{ name: 'stream', numPartitions: 1 }] });
    const stream = client.ProduceStream();
    const responses: ProduceResponse__Output[] = [];
    const done = new Promise<void>((resolve, reject) => {
      stream.on('data', (r: ProduceResponse__Output) => responses.push(r));
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    const count = 200;
    for (let i = 0; i < count; i++) {
      stream.write({ correlationId: i + 1, topics: [{ name: 'stream', partitions: [{ partition: 0, records: [{ value: Buffer.from(`m${i}`) }] }] }] });
    }
    stream.end();
    await done;
    expect(responses.map((r) => Number(r.correlationId))).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    expect(responses.map((r) => Number(r.topics[0].partitions[0].baseOffset))).toEqual(Array.from({ length: count }, (_, i) => i));
  });

  it('FetchStream follows the log as records arrive', async () => {
    await call(client, 'CreateTopics', { topics: [{ name: 'follow', numPartitions: 1 }] });
    const stream = client.FetchStream({ plainRecords: true, maxWaitMs: 500, topics: [{ name: 'follow', partitions: [{ partition: 0, fetchOffset: '0' }] }] });
    const seen: string[] = [];
    const gotAll = new Promise<void>((resolve, reject) => {
      stream.on('data', (r: FetchResponse__Output) => {
        for (const record of r.topics[0].partitions[0].records) seen.push(record.value?.toString() ?? '');
        if (seen.length >= 3) resolve();
      });
      stream.on('error', (error: grpc.ServiceError) => (error.code === grpc.status.CANCELLED ? undefined : reject(error)));
    });
    await produce('follow', ['x']);
    await produce('follow', ['y', 'z']);
    await gotAll;
    stream.cancel();
    expect(seen).toEqual(['x', 'y', 'z']);
  });
});

describe('offsets by time', () => {
  it('lists earliest, latest and the first offset at or after a timestamp', async () => {
    await call(client, 'CreateTopics', { topics: [{ name: 'times', numPartitions: 1 }] });
    await produce('times', ['old'], { timestamp: 1_000 });
    await produce('times', ['mid'], { timestamp: 2_000 });
    await produce('times', ['new'], { timestamp: 3_000 });
    const ask = (timestamp: string) =>
      call<object, ListOffsetsResponse__Output>(client, 'ListOffsets', { topics: [{ name: 'times', partitions: [{ partition: 0, timestamp }] }] }).then((r) => (r.ok ? r.value.topics[0].partitions[0] : undefined));
    expect((await ask('-2'))?.offset).toBe('0');
    expect((await ask('-1'))?.offset).toBe('3');
    expect(await ask('1500')).toMatchObject({ offset: '1', timestamp: '2000' });
    expect((await ask('2000'))?.offset).toBe('1');
    expect((await ask('9000'))?.offset).toBe('-1');
    expect(await ask('-3')).toMatchObject({ offset: '2', timestamp: '3000' });
  });
});

describe('topic configs', () => {
  it('describes topic configs with their sources and alters them incrementally', async () => {
    const created = await call<object, CreateTopicsResponse__Output>(client, 'CreateTopics', { topics: [{ name: 'cfg', numPartitions: 1, configs: { 'retention.ms': '60000' } }] });
    expect(created.ok && created.value.topics[0].errorCode).toBe('NONE');
    const describe1 = await call<object, DescribeConfigsResponse__Output>(client, 'DescribeConfigs', { resources: [{ type: 'TOPIC', name: 'cfg', keys: ['retention.ms', 'segment.bytes'] }] });
    expect(describe1.ok && describe1.value.results[0].entries.map((e) => [e.name, e.value, e.source])).toEqual([
      ['retention.ms', '60000', 'TOPIC_CONFIG'],
      ['segment.bytes', '1073741824', 'STATIC_BROKER_CONFIG'],
    ]);
    const altered = await call<object, AlterConfigsResponse__Output>(client, 'AlterConfigs', {
      resources: [{ type: 'TOPIC', name: 'cfg', configs: [{ name: 'retention.ms', op: 'DELETE' }, { name: 'retention.bytes', op: 'SET', value: '1000000' }] }],
    });
    expect(altered.ok && altered.value.results[0].errorCode).toBe('NONE');
    const describe2 = await call<object, DescribeConfigsResponse__Output>(client, 'DescribeConfigs', { resources: [{ type: 'TOPIC', name: 'cfg', keys: ['retention.ms', 'retention.bytes'] }] });
    expect(describe2.ok && describe2.value.results[0].entries.map((e) => [e.name, e.value, e.isDefault])).toEqual([
      ['retention.ms', String(168 * 3_600_000), true],
      ['retention.bytes', '1000000', false],
    ]);
    const bad = await call<object, AlterConfigsResponse__Output>(client, 'AlterConfigs', { resources: [{ type: 'TOPIC', name: 'cfg', configs: [{ name: 'retention.ms', op: 'SET', value: 'forever' }] }] });
    expect(bad.ok && bad.value.results[0].errorCode).toBe('INVALID_CONFIG');
  });
});

describe('operations', () => {
  it('serves grpc.health.v1 and server reflection on the client listener', async () => {
    const healthDefinition = protoLoader.loadSync(healthProtoPath, { enums: String });
    const Health = (grpc.loadPackageDefinition(healthDefinition) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } }).grpc.health.v1.Health;
    const health = new Health(node.clientAddress, grpc.credentials.createInsecure());
    const status = await new Promise<{ status: string }>((resolve, reject) =>
      (health as unknown as { check: (req: object, cb: (e: Error | null, r: { status: string }) => void) => void }).check({ service: 'kavka.v1.Kavka' }, (e, r) => (e ? reject(e) : resolve(r))),
    );
    health.close();
    expect(status.status).toBe('SERVING');

    const reflectionDefinition = protoLoader.loadSync('grpc/reflection/v1/reflection.proto', { includeDirs: ['node_modules/@grpc/reflection/build/proto'] });
    const Reflection = (grpc.loadPackageDefinition(reflectionDefinition) as unknown as { grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } } }).grpc.reflection.v1.ServerReflection;
    const reflection = new Reflection(node.clientAddress, grpc.credentials.createInsecure());
    const services = await new Promise<string[]>((resolve, reject) => {
      const stream = (reflection as unknown as { ServerReflectionInfo: () => grpc.ClientDuplexStream<object, { listServicesResponse?: { service: { name: string }[] } }> }).ServerReflectionInfo();
      stream.on('data', (r: { listServicesResponse?: { service: { name: string }[] } }) => {
        resolve(r.listServicesResponse?.service.map((s) => s.name) ?? []);
        stream.end();
      });
      stream.on('error', reject);
      stream.write({ listServices: '' });
    });
    reflection.close();
    expect(services).toContain('kavka.v1.Kavka');
  });

  it('answers /healthz, /readyz and /metrics with per-partition figures', async () => {
    const base = `http://${node.adminAddress}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${base}/readyz`)).text()).toContain('ready');
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/kavka_partition_log_end_offset\{topic="auto",partition="0",node_id="1"\} 4\n/);
    expect(metrics).toMatch(/kavka_produce_records_total\{topic="auto",node_id="1"\} 4\n/);
    expect(metrics).toContain('kavka_log_dir_offline');
  });

  it('keeps topics and records across a clean restart', async () => {
    await node.stop();
    node = await startTestBroker({ 'num.partitions': '2' }, { dataDir: node.dataDir });
    client.close();
    client = rawClient(node.clientAddress);
    const result = await fetchRecords('auto', '0');
    expect(result.ok && result.value.topics[0].partitions[0].records.map((r) => r.value?.toString())).toEqual(['a', 'b', 'c', 'd']);
    const next = await produce('auto', ['e']);
    expect(next.ok && next.value.topics[0].partitions[0].baseOffset).toBe('4');
  });
});
