// The TypeScript client against a real broker in this process (OS-assigned ports, temp dir).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { Kavka, KavkaError, type Admin, type KafkaMessage, type Producer } from '../../src/client/index.js';
import { ConnectionPool, KavkaRpc } from '../../src/client/rpc.js';
import { partitionForKey } from '../../src/util/murmur2.js';
import { batchHeaders } from './fake-broker.js';

let node: TestBroker;
let kavka: Kavka;
let admin: Admin;
let producer: Producer;

beforeAll(async () => {
  node = await startTestBroker();
  kavka = new Kavka({ clientId: 'client-test', brokers: [node.clientAddress], retry: { retries: 3, initialRetryTimeMs: 20, maxRetryTimeMs: 200 } });
  admin = kavka.admin();
  await admin.connect();
  producer = kavka.producer();
  await producer.connect();
});

afterAll(async () => {
  await producer?.disconnect();
  await admin?.disconnect();
  await node?.destroy();
});

/** Reads `count` records from every partition of `topic` from the beginning. */
async function readAll(topic: string, count: number): Promise<{ partition: number; message: KafkaMessage }[]> {
  const consumer = kavka.consumer({ maxWaitTimeMs: 50 });
  const out: { partition: number; message: KafkaMessage }[] = [];
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      out.push({ partition, message });
      if (out.length >= count) void consumer.stop();
    },
  });
  await consumer.finished();
  await consumer.disconnect();
  return out;
}

describe('producer and consumer', () => {
  it('round-trips keyed records to murmur2 partitions, with headers and offsets', async () => {
    await admin.createTopics({ topics: [{ topic: 'keyed', numPartitions: 3 }] });
    const messages = Array.from({ length: 300 }, (_, i) => ({ key: `key-${i}`, value: `value-${i}`, headers: { n: String(i), twice: ['a', 'b'] } }));
    const metadata = await producer.send({ topic: 'keyed', messages });
    expect(metadata.map((m) => m.partition)).toEqual([0, 1, 2]);
    expect(metadata.every((m) => m.baseOffset === '0' && m.errorCode === 0)).toBe(true);

    const records = await readAll('keyed', 300);
    expect(records).toHaveLength(300);
    for (const { partition, message } of records) {
      const i = Number(message.value?.toString().slice('value-'.length));
      expect(message.key?.toString()).toBe(`key-${i}`);
      expect(partition).toBe(partitionForKey(Buffer.from(`key-${i}`), 3));
      expect(message.headers.n).toEqual(Buffer.from(String(i)));
      expect(message.headers.twice).toEqual([Buffer.from('a'), Buffer.from('b')]);
      expect(message.timestampType).toBe('CreateTime');
    }
    for (const p of [0, 1, 2]) {
      const offsets = records.filter((r) => r.partition === p).map((r) => Number(r.message.offset));
      expect(offsets).toEqual(offsets.map((_, i) => i));
    }
  });

  it('reports the offset of each send in a batch shared by concurrent sends', async () => {
    await admin.createTopics({ topics: [{ topic: 'shared', numPartitions: 1 }] });
    const sends = await Promise.all(Array.from({ length: 20 }, (_, i) => producer.send({ topic: 'shared', messages: [{ value: `a${i}` }, { value: `b${i}` }] })));
    expect(sends.map((s) => s[0].baseOffset)).toEqual(Array.from({ length: 20 }, (_, i) => String(i * 2)));
    const records = await readAll('shared', 40);
    expect(records.map((r) => r.message.value?.toString())).toEqual(Array.from({ length: 20 }, (_, i) => [`a${i}`, `b${i}`]).flat());
  });

  it('fills several batches back to back in one request and numbers them consecutively', async () => {
    await admin.createTopics({ topics: [{ topic: 'many-batches', numPartitions: 1 }] });
    const small = kavka.producer({ batchSizeBytes: 1_024, lingerMs: 50 });
    const value = Buffer.alloc(300, 1);
    const sends = await Promise.all(Array.from({ length: 30 }, () => small.send({ topic: 'many-batches', messages: [{ value }, { value }] })));
    await small.disconnect();
    expect(sends.map((s) => s[0].baseOffset)).toEqual(Array.from({ length: 30 }, (_, i) => String(i * 2)));
    const [offsets] = await admin.fetchTopicOffsets('many-batches');
    expect(offsets).toEqual({ partition: 0, offset: '60', high: '60', low: '0' });
  });

  it('keeps null keys on a sticky partition and hashes empty keys', async () => {
    await admin.createTopics({ topics: [{ topic: 'sticky', numPartitions: 3 }] });
    const keyless = await producer.send({ topic: 'sticky', messages: Array.from({ length: 10 }, (_, i) => ({ key: null, value: `v${i}` })) });
    expect(keyless).toHaveLength(1);
    const empty = await producer.send({ topic: 'sticky', messages: [{ key: '', value: 'e' }, { key: Buffer.alloc(0), value: 'f' }] });
    expect(empty.map((m) => m.partition)).toEqual([partitionForKey(Buffer.alloc(0), 3)]);
  });

  it('sends gzip batches and unary Produce, and acks=0 gets no offset', async () => {
    await admin.createTopics({ topics: [{ topic: 'modes', numPartitions: 1 }] });
    const unary = kavka.producer({ useUnaryProduce: true, compression: 'gzip' });
    const [viaUnary] = await unary.send({ topic: 'modes', messages: [{ value: 'x'.repeat(5_000) }] });
    await unary.disconnect();
    expect(viaUnary.baseOffset).toBe('0');
    const [noAck] = await producer.send({ topic: 'modes', acks: 0, messages: [{ value: 'fire' }] });
    expect(noAck.baseOffset).toBe('-1');
    const records = await readAll('modes', 2);
    expect(records.map((r) => r.message.value?.toString().slice(0, 4))).toEqual(['xxxx', 'fire']);
  });

  it('surfaces a partition error as a KavkaError with its Kafka name', async () => {
    await admin.createTopics({ topics: [{ topic: 'limits', numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '2000' }] }] });
    await expect(producer.send({ topic: 'limits', messages: [{ value: Buffer.alloc(5_000) }] })).rejects.toMatchObject({ name: 'KavkaError', code: 'MESSAGE_TOO_LARGE' });
    await expect(producer.send({ topic: 'limits', messages: [{ value: 'x', partition: 5 }] })).rejects.toMatchObject({ code: 'UNKNOWN_TOPIC_OR_PARTITION' });
    // The producer still works after a failed batch.
    const [ok] = await producer.send({ topic: 'limits', messages: [{ value: 'fits' }] });
    expect(ok.baseOffset).toBe('0');
  });

  it('refuses a consumer groupId with a clear error', () => {
    expect(() => kavka.consumer({ groupId: 'g' })).toThrow(KavkaError);
    expect(() => kavka.consumer({ groupId: 'g' })).toThrow(/consumer groups are not available yet/);
  });
});

describe('consumer positions', () => {
  beforeAll(async () => {
    await admin.createTopics({ topics: [{ topic: 'positions', numPartitions: 2 }] });
    for (let i = 0; i < 10; i++) await producer.send({ topic: 'positions', messages: [{ value: `p0-${i}`, partition: 0, timestamp: 1_000 + i * 10 }, { value: `p1-${i}`, partition: 1, timestamp: 1_000 + i * 10 }] });
  });

  async function collect(setup: (c: ReturnType<Kavka['consumer']>) => Promise<void> | void, count: number, config = {}): Promise<string[]> {
    const consumer = kavka.consumer({ maxWaitTimeMs: 50, ...config });
    await setup(consumer);
    const values: string[] = [];
    await consumer.run({
      eachMessage: async ({ message }) => {
        values.push(message.value?.toString() ?? 'null');
        if (values.length >= count) void consumer.stop();
      },
    });
    await consumer.finished();
    await consumer.disconnect();
    return values;
  }

  it('starts at a sought offset', async () => {
    const values = await collect((c) => {
      c.assign([{ topic: 'positions', partitions: [0] }]);
      c.seek({ topic: 'positions', partition: 0, offset: '7' });
    }, 3);
    expect(values).toEqual(['p0-7', 'p0-8', 'p0-9']);
  });

  it('starts at the first record at or after a timestamp', async () => {
    const values = await collect((c) => c.assign([{ topic: 'positions', partitions: [1], fromTimestamp: 1_055 }]), 4);
    expect(values).toEqual(['p1-6', 'p1-7', 'p1-8', 'p1-9']);
  });

  it('starts at the end by default and sees only new records', async () => {
    const consumer = kavka.consumer({ maxWaitTimeMs: 50 });
    consumer.assign([{ topic: 'positions', partitions: [0] }]);
    const seen: string[] = [];
    let ended!: () => void;
    const atEnd = new Promise<void>((resolve) => (ended = resolve));
    await consumer.run({
      eachMessage: async ({ message }) => {
        seen.push(message.value?.toString() ?? '');
        void consumer.stop();
      },
      onPartitionEnd: () => ended(),
    });
    await atEnd;
    await producer.send({ topic: 'positions', messages: [{ value: 'late', partition: 0 }] });
    await consumer.finished();
    await consumer.disconnect();
    expect(seen).toEqual(['late']);
  });

  it('resets an out-of-range position to the earliest offset when asked', async () => {
    const values = await collect(
      (c) => {
        c.assign([{ topic: 'positions', partitions: [1] }]);
        c.seek({ topic: 'positions', partition: 1, offset: '1000' });
      },
      1,
      { autoOffsetReset: 'earliest' },
    );
    expect(values).toEqual(['p1-0']);
  });

  it('crashes with OFFSET_OUT_OF_RANGE when autoOffsetReset is none', async () => {
    const consumer = kavka.consumer({ maxWaitTimeMs: 50, autoOffsetReset: 'none' });
    consumer.assign([{ topic: 'positions', partitions: [1] }]);
    consumer.seek({ topic: 'positions', partition: 1, offset: '1000' });
    await consumer.run({ eachMessage: async () => undefined });
    await expect(consumer.finished()).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
    await consumer.disconnect();
  });

  it('delivers batches with eachBatch and reports the high watermark', async () => {
    const consumer = kavka.consumer({ maxWaitTimeMs: 50 });
    consumer.assign([{ topic: 'positions', partitions: [1], fromBeginning: true }]);
    const highWatermarks: string[] = [];
    let total = 0;
    await consumer.run({
      eachBatch: async ({ batch }) => {
        highWatermarks.push(batch.highWatermark);
        total += batch.messages.length;
        if (total >= 10) void consumer.stop();
      },
    });
    await consumer.finished();
    await consumer.disconnect();
    expect(total).toBe(10);
    expect(highWatermarks.every((h) => h === '10')).toBe(true);
  });

  it('pauses and resumes a partition', async () => {
    const consumer = kavka.consumer({ maxWaitTimeMs: 50 });
    consumer.assign([{ topic: 'positions', fromBeginning: true }]);
    const byPartition = new Map<number, number>();
    let resumed = false;
    await consumer.run({
      eachMessage: async ({ partition, pause }) => {
        byPartition.set(partition, (byPartition.get(partition) ?? 0) + 1);
        if (partition === 0 && !resumed) {
          const resume = pause();
          setTimeout(() => {
            resumed = true;
            resume();
          }, 100);
        }
        if ([...byPartition.values()].reduce((a, b) => a + b, 0) >= 20) void consumer.stop();
      },
    });
    await consumer.finished();
    await consumer.disconnect();
    expect(byPartition.get(0)).toBe(10);
    expect(byPartition.get(1)).toBe(10);
  });
});

describe('admin', () => {
  it('creates, lists, grows, configures and deletes topics', async () => {
    expect(await admin.createTopics({ topics: [{ topic: 'admin-a', numPartitions: 1, configEntries: [{ name: 'retention.ms', value: '60000' }] }] })).toBe(true);
    expect(await admin.createTopics({ topics: [{ topic: 'admin-a', numPartitions: 1 }] })).toBe(false);
    expect(await admin.listTopics()).toContain('admin-a');

    await admin.createPartitions({ topicPartitions: [{ topic: 'admin-a', count: 3 }] });
    const { topics } = await admin.fetchTopicMetadata({ topics: ['admin-a'] });
    expect(topics[0].partitions.map((p) => p.partitionId)).toEqual([0, 1, 2]);

    const described = await admin.describeConfigs({ resources: [{ type: 2, name: 'admin-a', configNames: ['retention.ms'] }] });
    expect(described.resources[0].configEntries).toEqual([expect.objectContaining({ configName: 'retention.ms', configValue: '60000', isDefault: false })]);
    await admin.alterConfigs({ resources: [{ type: 2, name: 'admin-a', configEntries: [{ name: 'retention.ms', operation: 'DELETE' }, { name: 'segment.bytes', value: '1048576' }] }] });
    const after = await admin.describeConfigs({ resources: [{ type: 2, name: 'admin-a' }] });
    const entries = new Map(after.resources[0].configEntries.map((e) => [e.configName, e]));
    expect(entries.get('retention.ms')?.isDefault).toBe(true);
    expect(entries.get('segment.bytes')?.configValue).toBe('1048576');

    await admin.deleteTopics({ topics: ['admin-a'] });
    expect(await admin.listTopics()).not.toContain('admin-a');
    await expect(admin.deleteTopics({ topics: ['admin-a'] })).rejects.toMatchObject({ code: 'UNKNOWN_TOPIC_OR_PARTITION' });
  });

  it('reports offsets, offsets by timestamp and the cluster', async () => {
    await admin.createTopics({ topics: [{ topic: 'offsets', numPartitions: 1 }] });
    await producer.send({ topic: 'offsets', messages: [1, 2, 3].map((i) => ({ value: `v${i}`, timestamp: i * 1_000 })) });
    expect(await admin.fetchTopicOffsets('offsets')).toEqual([{ partition: 0, offset: '3', high: '3', low: '0' }]);
    expect(await admin.fetchTopicOffsetsByTimestamp('offsets', 1_500)).toEqual([{ partition: 0, offset: '1' }]);
    expect(await admin.fetchTopicOffsetsByTimestamp('offsets', 9_000)).toEqual([{ partition: 0, offset: '3' }]);
    const cluster = await admin.describeCluster();
    expect(cluster.brokers).toEqual([expect.objectContaining({ nodeId: 1 })]);
    expect(cluster.controller).toBe(1);
    await expect(admin.fetchTopicOffsets('no-such-topic')).rejects.toMatchObject({ code: 'UNKNOWN_TOPIC_OR_PARTITION' });
  });
});

describe('idempotent producer', () => {
  it('gets producer ids from InitProducerId, a different one per producer, and stamps them into its batches', async () => {
    const pool = new ConnectionPool('init-producer-id');
    const rpc = new KavkaRpc(pool, 10_000);
    try {
      const first = await rpc.initProducerId(node.clientAddress, { transactionalId: '' });
      const second = await rpc.initProducerId(node.clientAddress, { transactionalId: '' });
      expect(BigInt(first.producerId)).toBeGreaterThanOrEqual(0n);
      expect(BigInt(second.producerId)).toBeGreaterThanOrEqual(0n);
      expect(second.producerId).not.toBe(first.producerId);
      expect([first.producerEpoch, second.producerEpoch]).toEqual([0, 0]);
      // KIP-360: the same id with the next epoch.
      const bumped = await rpc.initProducerId(node.clientAddress, { transactionalId: '', producerId: first.producerId, producerEpoch: first.producerEpoch });
      expect(bumped).toEqual({ producerId: first.producerId, producerEpoch: 1 });

      await admin.createTopics({ topics: [{ topic: 'idempotent', numPartitions: 1 }] });
      const a = kavka.producer({ lingerMs: 0 });
      const b = kavka.producer({ lingerMs: 0 });
      await a.send({ topic: 'idempotent', messages: [{ value: 'a1' }, { value: 'a2' }] });
      await b.send({ topic: 'idempotent', messages: [{ value: 'b1' }] });
      await a.send({ topic: 'idempotent', messages: [{ value: 'a3' }] });
      await a.disconnect();
      await b.disconnect();

      const fetched = await rpc.fetch(node.clientAddress, { maxWaitMs: 0, minBytes: 0, topics: [{ name: 'idempotent', partitions: [{ partition: 0, fetchOffset: '0' }] }] });
      const headers = batchHeaders(fetched.topics[0].partitions[0].batches);
      expect(headers.map((h) => [h.producerEpoch, h.baseSequence, h.recordsCount])).toEqual([
        [0, 0, 2],
        [0, 0, 1],
        [0, 2, 1],
      ]);
      const [idA, idB, idA2] = headers.map((h) => h.producerId);
      expect(idA).toBeGreaterThanOrEqual(0n);
      expect(idB).toBeGreaterThanOrEqual(0n);
      expect(idB).not.toBe(idA);
      expect(idA2).toBe(idA);
      expect([idA, idB]).not.toContain(BigInt(first.producerId));
    } finally {
      pool.close();
    }
  });
});
