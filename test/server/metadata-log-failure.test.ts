// The metadata log's store failing (debug fault switch, store "metadata") on an in-process
// node: the owner hears of it once through onFatal (what `kavka broker` halts on), /readyz says
// why, and waitReady rejects at once with the storage error instead of waiting out its timeout.
// Also: metadata.log.dir puts the Raft store on a directory of its own.
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RAFT_DIRECTORY, startBroker, type Broker } from '../../src/broker/index.js';
import type { KavkaError } from '../../src/util/errors.js';
import { silentLogger } from '../../src/util/logger.js';
import { call, rawClient } from './raw-client.js';
import type { ProduceResponse__Output } from '../../src/gen/kavka/v1/ProduceResponse.js';

const brokers: Broker[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const b of brokers.splice(0)) await b.stop();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

async function start(overrides: Record<string, string>, onFatal?: (error: KavkaError) => void): Promise<Broker> {
  const broker = await startBroker({ overrides: { listeners: 'CLIENT://127.0.0.1:0,INTERNAL://127.0.0.1:0', 'admin.listener': '127.0.0.1:0', ...overrides }, logger: silentLogger(), onFatal });
  brokers.push(broker);
  return broker;
}

const postFault = (broker: Broker, body: object) => fetch(`http://${broker.adminAddress}/debug/storage-fault`, { method: 'POST', body: JSON.stringify(body) });

describe('a failed metadata log', () => {
  it('is reported once through onFatal; /readyz says why and waitReady rejects at once', async () => {
    const fatal: KavkaError[] = [];
    const broker = await start({ 'log.dirs': await tempDir('kavka-meta-fail-'), 'debug.fault.injection.enable': 'true' }, (error) => fatal.push(error));
    const refused = await postFault(broker, { errno: 'ENOSPC', store: 'raft' });
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain('"store": "log" (default) or "metadata"');
    expect((await postFault(broker, { errno: 'ENOSPC', store: 'metadata' })).status).toBe(200);

    // Auto-creating a topic writes the metadata log; the write fails.
    const client = rawClient(broker.clientAddress);
    await call<object, ProduceResponse__Output>(client, 'Produce', { topics: [{ name: 'needs-metadata', partitions: [{ partition: 0, records: [{ value: Buffer.from('x') }] }] }] });
    client.close();
    for (let i = 0; i < 200 && fatal.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 25));
    expect(fatal.map((e) => e.code)).toEqual(['KAFKA_STORAGE_ERROR']);
    expect(fatal[0].message).toContain('ENOSPC');

    const ready = await fetch(`http://${broker.adminAddress}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.text()).toContain('the metadata log failed');
    const startedAt = Date.now();
    await expect(broker.waitReady(60_000)).rejects.toMatchObject({ code: 'KAFKA_STORAGE_ERROR' });
    expect(Date.now() - startedAt).toBeLessThan(30_000);
    expect(fatal).toHaveLength(1);
  });

  it('without debug.fault.injection.enable there is no fault switch', async () => {
    const broker = await start({ 'log.dirs': await tempDir('kavka-meta-nofault-') });
    expect((await postFault(broker, { errno: 'ENOSPC', store: 'metadata' })).status).toBe(404);
  });
});

describe('metadata.log.dir', () => {
  it('keeps the Raft store in its own directory, and a restart reads it from there', async () => {
    const logDir = await tempDir('kavka-data-');
    const metadataDir = join(await tempDir('kavka-metadata-'), 'nested');
    const overrides = { 'log.dirs': logDir, 'metadata.log.dir': metadataDir };
    const broker = await start(overrides);
    const client = rawClient(broker.clientAddress);
    const produced = await call<object, ProduceResponse__Output>(client, 'Produce', { topics: [{ name: 'placed', partitions: [{ partition: 0, records: [{ value: Buffer.from('x') }] }] }] });
    client.close();
    expect(produced.ok && produced.value.topics[0].partitions[0].errorCode).toBe('NONE');
    expect(existsSync(join(metadataDir, RAFT_DIRECTORY))).toBe(true);
    expect(existsSync(join(logDir, RAFT_DIRECTORY))).toBe(false);
    await broker.stop();
    brokers.splice(0);

    const again = await start(overrides);
    expect(again.controller.image.topics.has('placed')).toBe(true);
  });
});
