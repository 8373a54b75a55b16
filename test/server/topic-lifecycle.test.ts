// A topic's data belongs to one incarnation of it: deleting and re-creating a name never brings
// old records back, not even when the node crashed before the old directory was removed. A
// partition that cannot be opened is not served, and the node serves every other one.
import { afterEach, describe, expect, it } from 'vitest';
import { cp, readdir, rm, unlink, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { call, rawClient } from './raw-client.js';
import type { FetchResponse__Output } from '../../src/gen/kavka/v1/FetchResponse.js';
import type { ProduceResponse__Output } from '../../src/gen/kavka/v1/ProduceResponse.js';

let node: TestBroker | undefined;
let spare: string | undefined;
afterEach(async () => {
  await node?.destroy();
  node = undefined;
  if (spare) await rm(spare, { recursive: true, force: true });
});

async function produce(address: string, topic: string, value: string, partition = 0) {
  const client = rawClient(address);
  const result = await call<object, ProduceResponse__Output>(client, 'Produce', { topics: [{ name: topic, partitions: [{ partition, records: [{ value: Buffer.alloc(value.length, value) }] }] }] });
  client.close();
  return result.ok ? result.value.topics[0].partitions[0].errorCode : `call failed: ${result.details}`;
}

async function values(address: string, topic: string, partition = 0): Promise<string[] | string> {
  const client = rawClient(address);
  const result = await call<object, FetchResponse__Output>(client, 'Fetch', { maxWaitMs: 0, plainRecords: true, topics: [{ name: topic, partitions: [{ partition, fetchOffset: '0' }] }] });
  client.close();
  if (!result.ok) return result.details;
  const p = result.value.topics[0].partitions[0];
  return p.errorCode === 'NONE' ? p.records.map((r) => r.value?.toString() ?? '') : p.errorCode;
}

async function admin(address: string, method: string, request: object) {
  const client = rawClient(address);
  const result = await call(client, method, request);
  client.close();
  expect(result.ok).toBe(true);
}

describe('topic incarnations', () => {
  it('a deleted and re-created topic starts empty', async () => {
    node = await startTestBroker();
    expect(await produce(node.clientAddress, 'again', 'old')).toBe('NONE');
    await admin(node.clientAddress, 'DeleteTopics', { names: ['again'] });
    await admin(node.clientAddress, 'CreateTopics', { topics: [{ name: 'again', numPartitions: 1 }] });
    expect(await values(node.clientAddress, 'again')).toEqual([]);
  });

  it('a directory left behind by a deleted topic is removed at start-up and never served', async () => {
    node = await startTestBroker();
    expect(await produce(node.clientAddress, 'ghost', 'secret')).toBe('NONE');
    await node.stop();
    spare = `${node.dataDir}-spare`;
    await cp(join(node.dataDir, 'ghost-0'), spare, { recursive: true });
    node = await startTestBroker({}, { dataDir: node.dataDir });
    await admin(node.clientAddress, 'DeleteTopics', { names: ['ghost'] });
    await node.stop();
    // The disk as a crash between committing the delete and removing the directory leaves it.
    await cp(spare, join(node.dataDir, 'ghost-0'), { recursive: true });
    node = await startTestBroker({}, { dataDir: node.dataDir });
    expect(await readdir(node.dataDir)).not.toContain('ghost-0');
    await admin(node.clientAddress, 'CreateTopics', { topics: [{ name: 'ghost', numPartitions: 1 }] });
    expect(await values(node.clientAddress, 'ghost')).toEqual([]);
  });
});

describe('a partition repaired after corruption with no other replica to re-fetch from (Kavka issue 6)', () => {
  it('is answered with KAFKA_STORAGE_ERROR, never served truncated, while the node serves the others', async () => {
    node = await startTestBroker();
    await admin(node.clientAddress, 'CreateTopics', { topics: [{ name: 'seg', numPartitions: 2, configs: { 'segment.bytes': '16384' } }] });
    for (let i = 0; i < 40; i++) {
      for (const partition of [0, 1]) expect(await produce(node.clientAddress, 'seg', 'x'.repeat(1000), partition)).toBe('NONE');
    }
    await node.stop();
    // Damage a sealed segment of seg-0 and remove its index, so recovery must rescan it.
    const dir = join(node.dataDir, 'seg-0');
    const sealed = join(dir, '00000000000000000000.log');
    const bytes = await readFile(sealed);
    bytes[bytes.length - 100] ^= 0xff;
    await writeFile(sealed, bytes);
    await unlink(join(dir, '00000000000000000000.index'));

    node = await startTestBroker({}, { dataDir: node.dataDir });
    expect(await values(node.clientAddress, 'seg', 0)).toBe('KAFKA_STORAGE_ERROR');
    expect(await produce(node.clientAddress, 'seg', 'y', 0)).toBe('KAFKA_STORAGE_ERROR');
    expect((await values(node.clientAddress, 'seg', 1)).length).toBeGreaterThan(10);
    expect(await produce(node.clientAddress, 'seg', 'y', 1)).toBe('NONE');
    const metrics = await (await fetch(`http://${node.adminAddress}/metrics`)).text();
    expect(metrics).toMatch(/kavka_log_corruption_repairs_total\{node_id="1"\} 1/);
    // The damaged segment is kept for the operator.
    expect(await readFile(`${sealed}.corrupt`)).toEqual(bytes);
  });
});
